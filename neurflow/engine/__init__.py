"""The engine: patches -> activations -> attribution -> groups -> a :class:`~neurflow.circuit.Circuit`.

``models`` (loading, class names), ``patches`` (images and their 59 crops), ``segments`` (torch.fx segments
between layers, recording and masking hooks), ``attribution`` (batched integrated gradients), ``groups``
(semantic and neuron groups, edge weights), ``config`` (the build settings) and ``builder`` (the pipeline).
"""
