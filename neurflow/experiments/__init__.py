"""Experiments back on the model: masking, fidelity (the paper's Figure 5) and image debugging (metric M).

- ``channels``: channel sets per layer; ``runner``: logits under masks; ``effects``: what a mask does;
- ``masking``, ``fidelity``, ``debugging``: the three experiments (pure functions of a loaded model);
- ``sources``: which circuit, neurons and images an experiment uses (graph reads, image folders);
- ``records``: results as graph records, written through ``neurflow.graph.experiment_records``.
"""
