"""Writing one circuit into Neo4j: batched ``UNWIND $rows ...`` writes in managed transactions.

Each ingestion attempt claims the circuit's node with a write id (``writer/claim.cypher``); every later
transaction of the attempt first checks that it still owns it (``writer/guard.cypher``), so of two attempts of
the same circuit the later one takes over and the earlier one stops with WriteConflictError at its next batch.
The circuit stays ``complete: false`` (hidden from queries) until its last transaction, which holds its model's
lock, computes its OVERLAPS against every complete circuit of the model, marks it complete and refreshes its
family's totals; its comparisons with the other circuits are prepared on a thread meanwhile
(:mod:`neurflow.graph.comparisons`). A transaction carries
the rows of one or more steps, up to ``batch_rows`` (:func:`~neurflow.graph.circuit_writes.packed`). Every batch
merges on keys or, for semantic groups, creates them with their relationships and only counts those found, so a
batch run twice (a retried commit) changes nothing.

A complete circuit is skipped unless ``force``; ``force`` rewrites it in one transaction that keeps what users
added (:mod:`neurflow.graph.forced_rewrite`). An incomplete one (an ingestion that died, or one still running) is
taken over: what it wrote is deleted and written again, so counts end up as after one clean ingestion. See
docs/graph-model.md for the graph model and docs/reliability.md for the rules and their tests.

>>> from neurflow.graph.ingestion import write_circuit                                   # doctest: +SKIP
>>> write_circuit(driver, load_circuit("circuits/0258-samoyed"), "circuits/0258-samoyed").status  # doctest: +SKIP
'written'
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, LiteralString

import neo4j
from neo4j.exceptions import IncompleteCommit

from neurflow.circuit import Circuit
from neurflow.graph.circuit_writes import (
    IngestResult,
    Piece,
    circuit_node,
    circuit_writes,
    complete_circuit,
    new_write_id,
    packed,
    run_pieces,
    writer_tag,
)
from neurflow.graph.comparisons import Preparation, prepare
from neurflow.graph.cross_class import EarlierState, earlier_state
from neurflow.graph.deletion import WriteConflictError, check_owner, delete_parts
from neurflow.graph.forced_rewrite import replace_circuit
from neurflow.graph.reads import circuit_state
from neurflow.graph.rows import CircuitRows, circuit_rows
from neurflow.graph.schema import OVERLAP_MIN_JACCARD, ensure_schema_once
from neurflow.graph.statements import statement

DEFAULT_BATCH_ROWS = 5000
#: Times a batch is sent when the connection drops while it commits (IncompleteCommit).
COMMIT_RETRIES = 3

Progress = Callable[[str, int, int], None]
"""``progress(step, rows_done, rows_total)`` after each batch."""

__all__ = ["DEFAULT_BATCH_ROWS", "IngestResult", "Progress", "WriteConflictError", "write_circuit"]


class BatchWriter:
    """Runs the batched writes of one ingestion attempt in managed transactions, each first checking that the
    attempt still owns the circuit, and counts what they created."""

    def __init__(self, session: neo4j.Session, circuit_id: str, write_id: str, batch_rows: int,
                 progress: Progress | None):
        self.session = session
        self.circuit_id = circuit_id
        self.write_id = write_id
        self.batch_rows = max(1, batch_rows)
        self.progress = progress
        self.nodes = 0
        self.relationships = 0

    def _count(self, counters: Any) -> None:
        self.nodes += counters.nodes_created
        self.relationships += counters.relationships_created

    def write(self, work: Callable[..., Any], *args: Any) -> Any:
        """``session.execute_write(work, *args)``, run again when the connection was lost while committing
        (IncompleteCommit, which the driver does not retry: the commit may or may not have happened). Safe
        because every write of a circuit merges: a batch that did commit changes nothing the second time."""
        for attempt in range(1, COMMIT_RETRIES + 1):
            try:
                return self.session.execute_write(work, *args)
            except IncompleteCommit:
                if attempt == COMMIT_RETRIES:
                    raise
        raise AssertionError("unreachable")

    def run(self, writes: Iterable[tuple[str, LiteralString, Sequence[Any], Any]], first: Sequence[Piece] = ()
            ) -> None:
        """Runs ``writes`` (and ``first`` before them) in the transactions :func:`packed` makes of them; reports
        each piece's progress once its transaction has committed."""
        for pieces in packed(writes, self.batch_rows, first):
            self._count(self.write(self._work, pieces))
            if self.progress is not None:
                for piece in pieces:
                    self.progress(piece.step, piece.done, piece.total)

    def _work(self, tx: neo4j.ManagedTransaction, pieces: list[Piece]) -> Any:
        check_owner(tx, self.circuit_id, self.write_id)
        return run_pieces(tx, self.circuit_id, pieces)


def _claim(tx: neo4j.ManagedTransaction, circuit_id: str, write_id: str) -> Any:
    return tx.run(statement("writer/claim"), circuitId=circuit_id, writeId=write_id, writer=writer_tag()).single()


def read_earlier_state(driver: neo4j.Driver, rows: CircuitRows, database: str | None) -> EarlierState:
    """What an earlier attempt's parts count in the maintained values, read before they are deleted (that attempt
    may have completed once: a deletion killed mid-way)."""
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        return session.execute_read(earlier_state, rows.circuit_id, rows.family["key"], rows.target["index"])


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

    Idempotent: a complete circuit is skipped (``status="skipped"``) unless ``force``, which rewrites it in one
    transaction keeping labels and experiment links; an incomplete one is taken over, deleted and written
    again. Raises WriteConflictError when a later attempt of the same circuit takes it over meanwhile. Creates
    the schema on first use with this driver and database.

    >>> write_circuit(driver, synthetic_circuit(207), batch_rows=5000).status      # doctest: +SKIP
    'written'
    """
    ensure_schema_once(driver, database)
    rows = circuit_rows(circuit, folder)
    cid = rows.circuit_id
    result = IngestResult(cid, circuit.target.name, circuit.target.index, "written")
    start = time.perf_counter()
    rows.circuit["ingestStartedAt"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    state = circuit_state(driver, cid, database)
    if state is not None and state.status in ("complete", "outdated"):
        if not force:
            result.status = "skipped" if state.status == "complete" else "outdated"  # kept as it is
            return result
        prepared = prepare(driver, database, rows, overlap_min_jaccard)  # before the model's lock
        return replace_circuit(driver, rows, state.write_id, result, database=database, start=start,
                               min_jaccard=overlap_min_jaccard, prepared=prepared)
    write_id = new_write_id()
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        claimed = session.execute_write(_claim, cid, write_id)
    if claimed["complete"]:  # completed by another attempt since the state was read
        result.status = "skipped"
        return result
    preparation = Preparation(driver, database, rows, overlap_min_jaccard)  # while the parts are written
    earlier = None
    if not claimed["created"]:
        earlier = read_earlier_state(driver, rows, database)
        delete_parts(driver, cid, write_id, database)
        result.status = "rewritten"
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        w = BatchWriter(session, cid, write_id, batch_rows, progress)
        w.nodes += int(claimed["created"])  # the Circuit node, created by the claim
        w.run(circuit_writes(rows), first=[circuit_node(rows)])
        prepared = preparation.result()
        try:
            w._count(w.write(complete_circuit, rows, write_id, overlap_min_jaccard, earlier, prepared))
        except WriteConflictError:
            # A completion whose commit went through but whose answer was lost fails its retry's ownership check
            state = circuit_state(driver, cid, database)
            if state is None or state.status != "complete" or state.write_id != write_id:
                raise
    result.nodes, result.relationships = w.nodes, w.relationships
    result.seconds = time.perf_counter() - start
    return result
