"""Deleting one circuit: its parts and orphaned patches and images go, the shared vocabulary stays."""

from __future__ import annotations

import neo4j

from neurflow.graph.deletion import delete_circuit
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.reads import graph_counts
from tests.helpers import expected_counts, small_synthetic


def test_delete_circuit_removes_its_parts_and_orphans(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    keep, drop = small_synthetic(258), small_synthetic(207)
    write_circuit(clean_graph, keep, database=db)
    write_circuit(clean_graph, drop, database=db)
    assert delete_circuit(clean_graph, drop.id, db)
    assert not delete_circuit(clean_graph, drop.id, db)
    counts = graph_counts(clean_graph, db)
    expected = expected_counts([keep])
    # shared vocabulary stays: the model's layers and neurons, and the class
    for key in ("Layer", "Neuron", "HAS_LAYER", "HAS_NEURON", "Class"):
        counts.pop(key), expected.pop(key)
    assert counts == expected
