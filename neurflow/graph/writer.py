"""Writing one circuit into Neo4j: batched ``UNWIND $rows ...`` writes in managed transactions.

A circuit is written as ``(:Circuit {complete: false})`` first, then its parts, and marked ``complete`` in a
last transaction; queries only look at complete circuits. A complete circuit is skipped unless ``force``; an
incomplete one (an ingestion that died) is deleted and written again, so counts end up as after one clean
ingestion. See docs/graph-model.md for the graph model.

May import: neo4j, ``neurflow.circuit`` and the graph package's schema, rows, overlaps, reads, deletion and
statements.

>>> from neurflow.graph.writer import write_circuit                                   # doctest: +SKIP
>>> write_circuit(driver, load_circuit("circuits/0258-samoyed"), "circuits/0258-samoyed").status  # doctest: +SKIP
'written'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, LiteralString

import neo4j

from neurflow.circuit import Circuit
from neurflow.graph.deletion import delete_circuit
from neurflow.graph.overlaps import OVERLAP_MIN_JACCARD, overlap_rows
from neurflow.graph.reads import circuit_status
from neurflow.graph.rows import circuit_rows
from neurflow.graph.schema import StoreError, ensure_schema_once
from neurflow.graph.statements import statement

DEFAULT_BATCH_ROWS = 5000

Progress = Callable[[str, int, int], None]
"""``progress(step, rows_done, rows_total)`` after each batch."""

RowRels = Callable[[Any], int]
"""Relationships one row of a write must create."""


@dataclass
class IngestResult:
    """What :func:`write_circuit` did with one circuit.

    ``status``: ``written`` (new), ``skipped`` (already complete), ``outdated`` (complete but written by graph
    model 1.0, without influence: left as it is; ``force`` rewrites it), ``rewritten`` (an incomplete earlier
    ingestion was deleted first) or ``replaced`` (complete, ``force``).
    """

    circuit_id: str
    class_name: str
    class_index: int
    status: str
    nodes: int = 0
    relationships: int = 0
    seconds: float = 0.0

    @property
    def relationships_per_second(self) -> float:
        return self.relationships / self.seconds if self.seconds > 0 else 0.0


def _one(_: Any) -> int:
    return 1


def _sg_rels(row: dict[str, Any]) -> int:
    """Relationships one semantic-group row creates: OF_NEURON, HAS_SEMANTIC_GROUP, CONTRIBUTES_TO, EXEMPLIFIES."""
    return 1 + len(row["groups"]) + len(row["in"]) + len(row["patches"])


class BatchWriter:
    """Runs batched writes of one circuit in managed transactions, counting what they created.

    A batch holds at most ``batch_rows`` rows, or, for rows that create several relationships, rows creating
    at most about ``batch_rows`` relationships.
    """

    def __init__(self, session: neo4j.Session, circuit_id: str, batch_rows: int, progress: Progress | None):
        self.session = session
        self.circuit_id = circuit_id
        self.batch_rows = max(1, batch_rows)
        self.progress = progress
        self.nodes = 0
        self.relationships = 0

    def _chunks(self, rows: Sequence[Any], rels: RowRels) -> Iterable[tuple[list[Any], int]]:
        batch: list[Any] = []
        weight = expected = 0
        for row in rows:
            count = rels(row)
            if batch and weight + max(1, count) > self.batch_rows:
                yield batch, expected
                batch, weight, expected = [], 0, 0
            batch.append(row)
            weight += max(1, count)
            expected += count
        if batch:
            yield batch, expected

    def run(self, step: str, query: LiteralString, rows: Sequence[Any], expect_rels: RowRels | None = None) -> None:
        """``expect_rels(row)``: relationships the row must create (circuit parts are CREATEd); fewer means a
        node the row refers to is missing, and the batch is rolled back with a StoreError."""
        done = 0
        for batch, expected in self._chunks(rows, expect_rels or _one):
            counters = self.session.execute_write(self._work, query, batch,
                                                  expected if expect_rels else None, step)
            self.nodes += counters.nodes_created
            self.relationships += counters.relationships_created
            done += len(batch)
            if self.progress is not None:
                self.progress(step, done, len(rows))

    def single(self, step: str, query: LiteralString, **params: Any) -> None:
        counters = self.session.execute_write(self._single, query, params)
        self.nodes += counters.nodes_created
        self.relationships += counters.relationships_created
        if self.progress is not None:
            self.progress(step, 1, 1)

    def _work(self, tx: neo4j.ManagedTransaction, query: LiteralString, rows: list[Any], expected: int | None,
              step: str) -> Any:
        counters = tx.run(query, rows=rows, circuitId=self.circuit_id).consume().counters
        if expected is not None and counters.relationships_created != expected:
            raise StoreError(
                f"circuit {self.circuit_id}: {step} created {counters.relationships_created} relationships for "
                f"{len(rows)} rows (expected {expected}): a node they refer to is missing"
            )
        return counters

    @staticmethod
    def _single(tx: neo4j.ManagedTransaction, query: LiteralString, params: dict[str, Any]) -> Any:
        return tx.run(query, params).consume().counters


def _complete(tx: neo4j.ManagedTransaction, circuit_id: str, family: str, neurons: list[str]) -> list[Any]:
    """Marks the circuit complete and refreshes its family's totals on its neurons, in one transaction."""
    marked = list(tx.run(statement("writer/complete"), circuitId=circuit_id))
    if marked:
        tx.run(statement("family/refresh-totals"), family=family, neurons=neurons).consume()
    return marked


def write_circuit(
    driver: neo4j.Driver,
    circuit: Circuit,
    folder: str | Path | None = None,
    *,
    database: str | None = None,
    force: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    overlap_min_jaccard: float = OVERLAP_MIN_JACCARD,
    progress: Progress | None = None,
) -> IngestResult:
    """Writes one circuit (``folder``: where it was loaded from, for thumbnail URIs and provenance).

    Idempotent: a complete circuit is skipped (``status="skipped"``) unless ``force``; an incomplete one is
    deleted and written again. Creates the schema on first use with this driver and database.

    >>> write_circuit(driver, synthetic_circuit(207), batch_rows=5000).status      # doctest: +SKIP
    'written'
    """
    ensure_schema_once(driver, database)
    rows = circuit_rows(circuit, folder)
    cid = rows.circuit_id
    result = IngestResult(cid, circuit.target.name, circuit.target.index, "written")
    start = time.perf_counter()
    status = circuit_status(driver, cid, database)
    if status in ("complete", "outdated") and not force:
        result.status = "skipped" if status == "complete" else "outdated"  # outdated: kept as it is, not rewritten
        return result
    if status is not None:
        delete_circuit(driver, cid, database)
        result.status = "replaced" if status in ("complete", "outdated") else "rewritten"
    overlaps = overlap_rows(driver, rows, database, overlap_min_jaccard)
    rows.circuit["ingestStartedAt"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        w = BatchWriter(session, cid, batch_rows, progress)
        w.single("circuit", statement("writer/circuit"), model=rows.model, target=rows.target,
                 circuit=rows.circuit, family=rows.family)
        w.run("layers", statement("writer/layers"), rows.layers)
        w.run("neurons", statement("writer/neurons"), rows.neurons)
        w.single("logit", statement("writer/logit"), circuitId=cid, logit=rows.logit)
        w.run("core neurons", statement("writer/core-neurons"), rows.core, expect_rels=_one)
        w.run("images", statement("writer/images"), rows.images, expect_rels=_one)
        w.run("patches", statement("writer/patches"), rows.patches)
        w.run("neuron groups", statement("writer/neuron-groups"), rows.groups, expect_rels=_one)
        w.run("group members", statement("writer/group-members"), rows.members, expect_rels=_one)
        w.run("semantic groups", statement("writer/semantic-groups"), rows.semantic_groups, expect_rels=_sg_rels)
        w.run("group flows", statement("writer/group-flows"), rows.flows, expect_rels=_one)
        w.run("overlaps", statement("writer/overlaps"), overlaps, expect_rels=_one)
        marked = session.execute_write(_complete, cid, rows.family["key"], [r["neuron"] for r in rows.core])
        if not marked:
            raise StoreError(f"circuit {cid} disappeared while it was written (deleted by another process?)")
    result.nodes, result.relationships = w.nodes, w.relationships
    result.seconds = time.perf_counter() - start
    return result
