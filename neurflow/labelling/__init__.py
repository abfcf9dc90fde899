"""Concept labels from a multimodal LLM, stored on the graph (NeurFlow, Cao et al., ICLR 2025, Appendix G).

One job per module, lowest first: ``errors`` (LabellingError), ``prompts`` (the versioned prompt files),
``crops`` (patch images), ``requests`` (the chat requests and their token estimate), ``parsing`` (reading the
answers), ``llm`` (the OpenAI-compatible client: cache, retries, errors), ``selection`` (which circuit, from the
graph or from folders) and ``run`` (planning and running a labelling run). The Cypher writes are
``neurflow.graph.labels``.
"""
