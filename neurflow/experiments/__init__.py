"""Experiments back on the model: masking, fidelity (the paper's Figure 5) and image debugging (metric M).

May import: the engine, ``neurflow.circuit``, ``neurflow.format``, ``neurflow.analysis``. Records go into the
graph through ``neurflow.graph.experiments`` (called by the CLI); this package holds no Cypher and never
imports the cli or labelling packages (checked by import-linter, see pyproject.toml).
"""
