"""Concept labels from a multimodal LLM: prompts, patch crops, requests, answer parsing and the run loop.

May import: ``neurflow.circuit``, ``neurflow.format``, ``neurflow.analysis``, ``neurflow.pictures`` and
``neurflow.graph`` (to write labels). Never torch, the engine, experiments or cli (checked by import-linter).
"""
