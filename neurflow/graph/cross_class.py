"""Cross-class values maintained at ingestion (graph model 1.7) besides SIMILAR_TO (:mod:`neurflow.graph.similarity`)
and the family totals: the reuse summaries of neuron groups, what concept-reuse's "group" rows read, and what a
rewrite or deletion must read of a circuit's earlier state to bring them up to date.

A group's summary depends on its OVERLAPS with the groups of the newest circuit of each other class of its family,
so it changes when a circuit of the family is completed, rewritten or deleted: those writes refresh the summaries
of the groups they touch (their class's groups in the family and the groups those overlap), in the transaction
that holds the model's lock. The threshold is :data:`~neurflow.graph.schema.REUSE_MIN_JACCARD`, concept-reuse's
default; another ``minJaccard`` is computed at query time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import neo4j

from neurflow.graph.schema import REUSE_MIN_JACCARD
from neurflow.graph.statements import statement

#: Groups refreshed per statement.
_BATCH = 5000


def touched_groups(tx: neo4j.ManagedTransaction, family: str, class_index: int) -> list[str]:
    """Keys of the groups whose reuse summary depends on the circuits of ``class_index`` in ``family`` now."""
    found = tx.run(statement("reuse/touched-groups"), family=family, classIndex=class_index,
                   minJaccard=REUSE_MIN_JACCARD).single()
    return list(found["groups"]) if found is not None else []


def refresh_reuse(tx: neo4j.ManagedTransaction, family: str, class_index: int, touched: Iterable[str] = ()) -> None:
    """Recomputes the reuse summary (``reuse/refresh-groups.cypher``) of the groups the circuits of
    ``class_index`` in ``family`` touch now and of ``touched`` (groups they touched before a rewrite or
    deletion), against the newest circuit of each class of the family."""
    groups = sorted(set(touched_groups(tx, family, class_index)) | set(touched))
    ids = tx.run(statement("reuse/newest-circuits"), family=family).single()["ids"]  # type: ignore[index]
    for start in range(0, len(groups), _BATCH):
        tx.run(statement("reuse/refresh-groups"), groups=groups[start:start + _BATCH], ids=ids,
               minJaccard=REUSE_MIN_JACCARD).consume()


@dataclass
class EarlierState:
    """What the maintained values of a circuit's earlier state (rewritten, taken over or deleted) depend on:
    the groups whose reuse summary it touched and its core neurons (whose family totals it may have counted)."""

    touched: list[str] = field(default_factory=list)
    neurons: list[str] = field(default_factory=list)


def earlier_state(tx: neo4j.ManagedTransaction, circuit_id: str, family: str, class_index: int) -> EarlierState:
    """Read before a circuit's earlier parts are deleted."""
    keys = tx.run(statement("reads/core-neuron-keys"), id=circuit_id).single()
    return EarlierState(touched_groups(tx, family, class_index), list(keys["keys"]) if keys is not None else [])
