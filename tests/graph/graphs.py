"""Graphs of circuits for the query tests: ingesting circuits and the two real ones."""

from __future__ import annotations

from pathlib import Path

import neo4j
import pytest

from neurflow.circuit import Circuit
from neurflow.format import load_circuit
from neurflow.graph.ingestion import write_circuit

Graph = tuple[neo4j.Driver, str, list[Circuit], list[Path | None]]
"""(driver, database, the circuits in the order ingested, their folders)."""


def ingest(driver: neo4j.Driver, database: str, circuits: list[Circuit], folders: list[Path | None]) -> Graph:
    for circuit, folder in zip(circuits, folders, strict=True):
        assert write_circuit(driver, circuit, folder, database=database).status == "written"
    return driver, database, circuits, folders


@pytest.fixture
def real_graph(clean_graph: neo4j.Driver, neo4j_settings, real_circuit_dirs: list[Path]) -> Graph:
    """The two real circuits (Samoyed, golden retriever: one family), ingested in this order into an empty graph."""
    return ingest(clean_graph, neo4j_settings.database, [load_circuit(f) for f in real_circuit_dirs],
                  list(real_circuit_dirs))
