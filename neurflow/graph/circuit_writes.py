"""The writes of one circuit's parts and its completion, shared by a batched ingestion
(:mod:`neurflow.graph.ingestion`) and a forced one in a single transaction (:mod:`neurflow.graph.forced_rewrite`).

Every statement merges on keys and reports how many relationships it *ensured* (created or found), so a
batch run twice leaves the graph as it was and a missing node still shows as a shortfall.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, LiteralString

import neo4j

from neurflow.graph.circuit_vectors import model_vectors
from neurflow.graph.comparisons import Comparisons, up_to_date
from neurflow.graph.cross_class import EarlierState, refresh_reuse
from neurflow.graph.deletion import WriteConflictError, check_owner
from neurflow.graph.rows import CircuitRows
from neurflow.graph.schema import StoreError
from neurflow.graph.statements import statement

RowRels = Callable[[Any], int]
"""Relationships one row of a write must ensure (create, or find when the batch runs again)."""


@dataclass
class IngestResult:
    """What :func:`neurflow.graph.ingestion.write_circuit` did with one circuit.

    ``status``: ``written`` (new), ``skipped`` (already complete), ``outdated`` (complete but written by graph
    model 1.0, without influence: left as it is; ``force`` rewrites it), ``rewritten`` (an earlier attempt,
    dead or still running, was taken over and its parts deleted first) or ``replaced`` (complete, ``force``).
    ``carried``: for ``replaced``, what users had added to the old circuit and the new one keeps (labels,
    evolutions, masked groups); ``not_carried``: the same for groups that changed, dropped with the old ones.
    """

    circuit_id: str
    class_name: str
    class_index: int
    status: str
    nodes: int = 0
    relationships: int = 0
    seconds: float = 0.0
    carried: dict[str, int] = field(default_factory=dict)
    not_carried: dict[str, int] = field(default_factory=dict)

    @property
    def relationships_per_second(self) -> float:
        return self.relationships / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Created:
    """Nodes and relationships created by several statements (named as the driver's counters)."""

    nodes_created: int
    relationships_created: int


def one(_: Any) -> int:
    return 1


def semantic_group_rels(row: dict[str, Any]) -> int:
    """Relationships one semantic-group row ensures: OF_NEURON, HAS_SEMANTIC_GROUP, CONTRIBUTES_TO, EXEMPLIFIES."""
    return 1 + len(row["groups"]) + len(row["in"]) + len(row["patches"])


@dataclass(frozen=True)
class Piece:
    """One statement of a transaction of an ingestion: ``step`` with ``params`` (``rows``: a batch of its rows),
    the relationships it must ensure (None: unchecked), and how many of the step's rows are done with it."""

    step: str
    query: LiteralString
    params: dict[str, Any]
    expected: int | None
    done: int
    total: int


def packed(writes: Iterable[tuple[str, LiteralString, Sequence[Any], RowRels | None]], batch_rows: int,
           first: Sequence[Piece] = ()) -> Iterable[list[Piece]]:
    """The transactions of an ingestion's batched writes (:func:`circuit_writes`), in order: each carries rows
    of one or more steps, at most ``batch_rows`` rows or, for rows that ensure several relationships, about
    ``batch_rows`` relationships (a step's rows may end one transaction and begin the next). ``first``: pieces
    that open the first transaction. Fewer, fuller transactions: each costs a round trip, the ownership check and
    a commit (~15 ms here), and most steps of a circuit have a few hundred rows."""
    batch_rows = max(1, batch_rows)
    pieces: list[Piece] = list(first)
    weight = len(pieces)
    for step, query, rows, rels in writes:
        count_of = rels or one
        batch: list[Any] = []
        expected = 0
        for at, row in enumerate(rows):
            count = count_of(row)
            if weight + max(1, count) > batch_rows and (pieces or batch):
                if batch:
                    pieces.append(Piece(step, query, {"rows": batch}, expected if rels else None, at, len(rows)))
                yield pieces
                pieces, batch, weight, expected = [], [], 0, 0
            batch.append(row)
            weight += max(1, count)
            expected += count
        if batch:
            pieces.append(Piece(step, query, {"rows": batch}, expected if rels else None, len(rows), len(rows)))
    if pieces:
        yield pieces


def circuit_node(rows: CircuitRows) -> Piece:
    """The write of the Circuit node's properties and its model, class and family links: the first piece of a
    circuit's writes."""
    return Piece("circuit", statement("writer/circuit"), {"model": rows.model, "target": rows.target,
                 "circuit": rows.circuit, "family": rows.family}, None, 1, 1)


def run_pieces(tx: neo4j.ManagedTransaction, circuit_id: str, pieces: Sequence[Piece]) -> Created:
    """Runs the pieces of one transaction (:func:`packed`); what they created."""
    nodes = relationships = 0
    for piece in pieces:
        if "rows" in piece.params:
            counters = run_rows(tx, circuit_id, piece.step, piece.query, piece.params["rows"], piece.expected)
        else:
            counters = tx.run(piece.query, piece.params, circuitId=circuit_id).consume().counters
        nodes, relationships = nodes + counters.nodes_created, relationships + counters.relationships_created
    return Created(nodes, relationships)


def run_rows(tx: neo4j.ManagedTransaction, circuit_id: str, step: str, query: LiteralString, rows: list[Any],
             expected: int | None) -> Any:
    """Runs one write of rows; ``expected``: relationships the statement must report as ensured (fewer means a
    node the rows refer to is missing: StoreError, and the transaction is rolled back)."""
    result = tx.run(query, rows=rows, circuitId=circuit_id)
    record = result.single() if expected is not None else None
    counters = result.consume().counters
    ensured = record["ensured"] if record is not None else None
    if expected is not None and ensured != expected:
        raise StoreError(
            f"circuit {circuit_id}: {step} ensured {ensured} relationships for {len(rows)} rows (expected "
            f"{expected}): a node they refer to is missing"
        )
    return counters


def circuit_writes(rows: CircuitRows) -> list[tuple[str, LiteralString, Sequence[Any], RowRels | None]]:
    """The batched writes of a circuit after its node, in order: (step, statement, rows, relationships per
    row to check or None)."""
    return [
        ("layers", statement("writer/layers"), rows.layers, None),
        ("neurons", statement("writer/neurons"), rows.neurons, None),
        ("logit", statement("writer/logit"), [rows.logit], one),
        ("core neurons", statement("writer/core-neurons"), rows.core, one),
        ("images", statement("writer/images"), rows.images, one),
        ("patches", statement("writer/patches"), rows.patches, None),
        ("neuron groups", statement("writer/neuron-groups"), rows.groups, one),
        ("group members", statement("writer/group-members"), rows.members, one),
        ("semantic groups", statement("writer/semantic-groups"), rows.semantic_groups, semantic_group_rels),
        ("group flows", statement("writer/group-flows"), rows.flows, one),
    ]


def complete_circuit(tx: neo4j.ManagedTransaction, rows: CircuitRows, write_id: str, min_jaccard: float,
                     earlier: EarlierState | None = None, prepared: Comparisons | None = None) -> Any:
    """The last transaction of a circuit: takes its model's lock, writes its OVERLAPS and SIMILAR_TO against the
    complete circuits of the other classes of its model and family (from their vectors,
    :mod:`neurflow.graph.circuit_vectors`; ``prepared``: the rows computed while the parts were written, brought
    up to date, :mod:`neurflow.graph.comparisons`), marks it complete and brings the family's maintained values
    up to date: the totals on its neurons (added to on a first write; with an ``earlier`` state, recomputed on the
    neurons of both, since the earlier one may have counted) and the reuse summaries of the groups it touches and
    the earlier state touched. Returns what the OVERLAPS and SIMILAR_TO writes created (the totals and summaries
    are the family's, not the circuit's)."""
    cid = rows.circuit_id
    family = rows.family["key"]
    tx.run(statement("writer/lock-model"), model=rows.model["key"]).consume()
    check_owner(tx, cid, write_id)
    others = model_vectors(tx, rows.model["key"], rows.target["index"])
    rows_now = up_to_date(prepared, rows, others, min_jaccard)
    overlaps = run_rows(tx, cid, "overlaps", statement("writer/overlaps"), rows_now.overlaps,
                        len(rows_now.overlaps))
    pairs = run_rows(tx, cid, "similarity", statement("similarity/write"), rows_now.similar, len(rows_now.similar))
    counters = Created(overlaps.nodes_created + pairs.nodes_created,
                       overlaps.relationships_created + pairs.relationships_created)
    if tx.run(statement("writer/complete"), circuitId=cid, writeId=write_id).single() is None:
        raise WriteConflictError(f"circuit {cid}: claimed by another ingestion while it was completed")
    if earlier is None:
        tx.run(statement("family/add-circuit"), family=family, circuitId=cid).consume()
    else:
        neurons = sorted({r["neuron"] for r in rows.core} | set(earlier.neurons))
        tx.run(statement("family/refresh-totals"), family=family, neurons=neurons).consume()
    refresh_reuse(tx, family, rows.target["index"], earlier.touched if earlier is not None else ())
    return counters


def new_write_id() -> str:
    """A fresh id of one ingestion attempt (random; the writer's host and PID are stored beside it)."""
    return uuid.uuid4().hex


def writer_tag() -> str:
    """Who writes: ``host:pid``, stored on the claimed Circuit node for people looking at a stuck ingestion."""
    return f"{socket.gethostname()}:{os.getpid()}"
