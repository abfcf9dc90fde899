"""Deleting from the graph: one circuit with everything scoped to it, or the whole graph.

May import: neo4j, ``neurflow.graph.statements``, ``neurflow.graph.server_config`` (the default database name).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import neo4j

from neurflow.graph.server_config import DATABASE
from neurflow.graph.statements import records, statement, with_label

#: Labels of the nodes that belong to one circuit (they carry its ``circuitId``), deleted in batches.
CIRCUIT_SCOPED_LABELS: tuple[str, ...] = ("SemanticGroup", "NeuronGroup")


def _batches(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def delete_circuit(driver: neo4j.Driver, circuit_id: str, database: str | None = None,
                   batch_nodes: int = 1000) -> bool:
    """Deletes a circuit and everything scoped to it; returns whether it existed.

    The circuit is first marked incomplete (so queries stop seeing it at once), then its semantic and neuron
    groups are deleted in batches (with their relationships), then the Circuit node, and its family's
    total influence on its neurons is recomputed without it. Patches and images that
    no circuit uses any more are deleted too; Model, Layer, Neuron and Class nodes stay. A deletion killed
    mid-way leaves an incomplete circuit, which the next ingestion deletes again.
    """
    found = records(driver, statement("deletion/mark-incomplete"), database, id=circuit_id)
    if not found or found[0]["circuits"] == 0:
        return False
    images: set[str] = set(found[0]["images"])
    family, neurons = found[0]["family"], found[0]["neurons"]
    patches: set[str] = set()
    for label in CIRCUIT_SCOPED_LABELS:
        query = with_label("deletion/circuit-parts", CIRCUIT_SCOPED_LABELS, label)
        while True:
            found = records(driver, query, database, id=circuit_id, limit=batch_nodes)
            patches.update(found[0]["patches"] or [])
            if found[0]["deleted"] == 0:
                break
    records(driver, statement("deletion/circuit-node"), database, id=circuit_id)
    if family is not None:  # circuits written before families (data model 1.0) have none
        records(driver, statement("family/refresh-totals"), database, family=family, neurons=neurons)
    for batch in _batches(sorted(patches), 5000):
        found = records(driver, statement("deletion/orphan-patches"), database, keys=list(batch))
        images.update(found[0]["images"])
    records(driver, statement("deletion/orphan-images"), database, shas=sorted(images))
    return True


def clear_graph(driver: neo4j.Driver, database: str = DATABASE) -> None:
    """Delete every node and relationship of ``database``; indexes and constraints stay.

    ``CALL {} IN TRANSACTIONS`` needs an auto-commit transaction, hence ``session.run``.
    """
    with driver.session(database=database) as session:
        session.run(statement("deletion/clear-graph")).consume()
