"""The query tests' shared fixtures (tests/graph/graphs.py)."""

from tests.graph.graphs import real_graph

__all__ = ["real_graph"]
