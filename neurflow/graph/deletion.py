"""Deleting from the graph: one circuit with everything scoped to it, the parts of a circuit whose node is
kept for a new write, or the whole graph.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any, LiteralString

import neo4j

from neurflow.graph.cross_class import refresh_reuse, touched_groups
from neurflow.graph.schema import StoreError
from neurflow.graph.server_config import DATABASE
from neurflow.graph.statements import each_statement, records, statement, with_label

#: Labels of the nodes that belong to one circuit (they carry its ``circuitId``), deleted in batches.
CIRCUIT_SCOPED_LABELS: tuple[str, ...] = ("SemanticGroup", "NeuronGroup")


class WriteConflictError(StoreError):
    """Another ingestion (or deletion) of the same circuit claimed it after this one: this one stops, the other
    one finishes it."""


def _batches(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def check_owner(tx: neo4j.ManagedTransaction, circuit_id: str, write_id: str) -> None:
    """Raises WriteConflictError unless the attempt ``write_id`` still owns the (incomplete) circuit; locks its
    node until ``tx`` ends, so a later claim waits for this transaction."""
    owned = tx.run(statement("writer/guard"), circuitId=circuit_id, writeId=write_id).single()
    if owned is None or owned["owned"] == 0:
        raise WriteConflictError(
            f"circuit {circuit_id}: another ingestion or deletion of the same circuit started after this one and "
            "took it over; this one stops (the later one finishes it)")


def _guarded(driver: neo4j.Driver, database: str | None, circuit_id: str, write_id: str, query: LiteralString,
             **params: Any) -> list[neo4j.Record]:
    def work(tx: neo4j.ManagedTransaction) -> list[neo4j.Record]:
        check_owner(tx, circuit_id, write_id)
        return list(tx.run(query, params))

    with driver.session(database=database, notifications_min_severity="OFF") as session:
        return session.execute_write(work)


def delete_parts(driver: neo4j.Driver, circuit_id: str, write_id: str, database: str | None = None,
                 batch_nodes: int = 1000) -> None:
    """Deletes what an earlier attempt wrote of a circuit whose node the attempt ``write_id`` has claimed
    (``writer/claim.cypher``): its semantic and neuron groups, its links to core neurons, images and groups,
    and the patches and images no circuit uses any more. Every batch checks the claim first."""
    images = records(driver, statement("reads/circuit-images"), database, read=True, id=circuit_id)[0]["images"]
    patches = _delete_scoped(driver, database, circuit_id, write_id, batch_nodes)
    _guarded(driver, database, circuit_id, write_id, statement("deletion/circuit-links"), id=circuit_id)
    delete_orphans(driver, database, patches, images)


def _delete_scoped(driver: neo4j.Driver, database: str | None, circuit_id: str, write_id: str,
                   batch_nodes: int) -> set[str]:
    patches: set[str] = set()
    for label in CIRCUIT_SCOPED_LABELS:
        query = with_label("deletion/circuit-parts", CIRCUIT_SCOPED_LABELS, label)
        while True:
            found = _guarded(driver, database, circuit_id, write_id, query, id=circuit_id, limit=batch_nodes)
            patches.update(found[0]["patches"] or [])
            if found[0]["deleted"] == 0:
                break
    return patches


def delete_orphans(driver: neo4j.Driver, database: str | None, patches: Iterable[str],
                   images: Iterable[str]) -> None:
    """Deletes the given patches that exemplify nothing, the patches of the given images that no circuit uses
    and that exemplify nothing (left by an ingestion killed before its semantic groups), then those images
    when nothing refers to them."""
    shas = set(images)
    for batch in _batches(sorted(set(patches)), 5000):
        found = records(driver, statement("deletion/orphan-patches"), database, keys=list(batch))
        shas.update(found[0]["images"])
    for batch in _batches(sorted(shas), 500):
        records(driver, statement("deletion/orphan-patches-of-images"), database, shas=list(batch))
        records(driver, statement("deletion/orphan-images"), database, shas=list(batch))


def _refresh_family(tx: neo4j.ManagedTransaction, model: str | None, family: str, neurons: list[str],
                    class_index: int, touched: list[str]) -> None:
    tx.run(statement("writer/lock-model"), model=model).consume()  # same lock order as a completion
    tx.run(statement("family/refresh-totals"), family=family, neurons=neurons).consume()
    refresh_reuse(tx, family, class_index, touched)


def delete_circuit(driver: neo4j.Driver, circuit_id: str, database: str | None = None,
                   batch_nodes: int = 1000) -> bool:
    """Deletes a circuit and everything scoped to it; returns whether it existed.

    The circuit is first marked incomplete and claimed for the deletion (so queries stop seeing it at once and
    an ingestion still writing it stops), then its semantic and neuron groups are deleted in batches (with
    their relationships), then the Circuit node, and its family's total influence on its neurons is recomputed
    without it. Patches and images that no circuit uses any more are deleted too (also those an ingestion
    killed mid-way left without semantic groups); Model, Layer, Neuron and Class nodes stay. A deletion killed
    mid-way leaves an incomplete circuit, which the next ingestion deletes again.
    """
    write_id = f"delete-{uuid.uuid4().hex}"
    found = records(driver, statement("deletion/mark-incomplete"), database, id=circuit_id, writeId=write_id)
    if not found or found[0]["circuits"] == 0:
        return False
    images: list[str] = list(found[0]["images"])
    family, neurons, model = found[0]["family"], found[0]["neurons"], found[0]["model"]
    touched: list[str] = []
    if family is not None:  # the groups whose reuse summary counted this circuit, read before they go
        with driver.session(database=database, notifications_min_severity="OFF") as session:
            touched = session.execute_read(touched_groups, family, found[0]["classIndex"])
    patches = _delete_scoped(driver, database, circuit_id, write_id, batch_nodes)
    _guarded(driver, database, circuit_id, write_id, statement("deletion/circuit-node"), id=circuit_id)
    if family is not None:  # circuits written before families (data model 1.0) have none
        with driver.session(database=database, notifications_min_severity="OFF") as session:
            session.execute_write(_refresh_family, model, family, neurons, found[0]["classIndex"], touched)
    delete_orphans(driver, database, patches, images)
    return True


def clear_graph(driver: neo4j.Driver, database: str = DATABASE) -> None:
    """Delete every node and relationship of ``database``; indexes and constraints stay.

    ``CALL {} IN TRANSACTIONS`` needs an auto-commit transaction, hence ``session.run``; it counts as one
    transaction for the server's time limit (60 s on neurflow's local server), so it asks for none (timeout 0).
    """
    with driver.session(database=database) as session:
        for step in each_statement(statement("deletion/clear-graph")):  # relationships, then nodes
            session.run(neo4j.Query(step, timeout=0)).consume()
