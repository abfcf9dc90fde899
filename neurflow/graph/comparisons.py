"""A completing circuit's OVERLAPS and SIMILAR_TO rows, prepared while its parts are written.

The completion must compare the circuit with every complete circuit of the other classes of its model, and it
holds the model's lock while it does. So a thread started with the write reads those circuits' lists (a new
process at 1,000 classes reads 1.6 M values, 0.2-0.3 s) and computes the rows against them (~70 ms); the
completion then reads which circuits are complete now and computes rows only for those completed since. Rows are
per pair of circuits, so the union is exact; if a circuit compared with was rewritten or deleted meanwhile, the
completion computes everything again. A failed preparation is left to the completion, which reads and computes
what it needs itself and raises there.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import neo4j

from neurflow.graph.circuit_vectors import CircuitVectors, circuit_vectors, model_vectors
from neurflow.graph.overlaps import overlap_rows
from neurflow.graph.rows import CircuitRows
from neurflow.graph.similarity import similarity_rows


@dataclass(frozen=True)
class Comparisons:
    """OVERLAPS rows (:func:`~neurflow.graph.overlaps.overlap_rows`) and SIMILAR_TO rows
    (:func:`~neurflow.graph.similarity.similarity_rows`) of one circuit against the circuits ``seen`` (id -> the
    write id compared with)."""

    seen: dict[str, str]
    overlaps: list[list[Any]]
    similar: list[dict[str, Any]]


def compare(rows: CircuitRows, others: dict[str, CircuitVectors], min_jaccard: float) -> Comparisons:
    """The rows of the circuit of ``rows`` against ``others``."""
    mine = circuit_vectors(rows.circuit)
    overlaps = overlap_rows(rows.circuit_id, mine.groups, {cid: v.groups for cid, v in others.items()}, min_jaccard)
    similar = similarity_rows(mine, len(rows.circuit["layers"]), others)
    return Comparisons({cid: v.write_id for cid, v in others.items()}, overlaps, similar)


def up_to_date(prepared: Comparisons | None, rows: CircuitRows, others: dict[str, CircuitVectors],
               min_jaccard: float) -> Comparisons:
    """The rows against ``others`` (the complete circuits now), reusing ``prepared`` where it compared with the
    same writes of them."""
    if prepared is None or any(cid not in others or others[cid].write_id != write_id
                               for cid, write_id in prepared.seen.items()):
        return compare(rows, others, min_jaccard)
    added = compare(rows, {cid: v for cid, v in others.items() if cid not in prepared.seen}, min_jaccard)
    return Comparisons({**prepared.seen, **added.seen}, sorted(prepared.overlaps + added.overlaps),
                       sorted(prepared.similar + added.similar, key=lambda row: row["other"]))


def prepare(driver: neo4j.Driver, database: str | None, rows: CircuitRows, min_jaccard: float) -> Comparisons | None:
    """Reads the other circuits' lists (a read transaction of its own) and computes the rows against them; None
    when that fails (the completion reads and computes them again, and raises there)."""
    try:
        with driver.session(database=database, notifications_min_severity="OFF") as session:
            others = session.execute_read(model_vectors, rows.model["key"], rows.target["index"])
        return compare(rows, others, min_jaccard)
    except Exception:  # noqa: BLE001 - a head start only
        return None


class Preparation:
    """:func:`prepare` on a thread, while the circuit's parts are written; :meth:`result` waits for it.

    >>> preparation = Preparation(driver, None, circuit_rows(circuit), 0.2)     # doctest: +SKIP
    >>> ...                                                                      # write the parts meanwhile
    >>> complete_circuit(tx, rows, write_id, 0.2, prepared=preparation.result())  # doctest: +SKIP
    """

    def __init__(self, driver: neo4j.Driver, database: str | None, rows: CircuitRows, min_jaccard: float):
        self._result: Comparisons | None = None
        self._thread = threading.Thread(target=self._run, args=(driver, database, rows, min_jaccard),
                                        name="neurflow-comparisons", daemon=True)
        self._thread.start()

    def _run(self, driver: neo4j.Driver, database: str | None, rows: CircuitRows, min_jaccard: float) -> None:
        self._result = prepare(driver, database, rows, min_jaccard)

    def result(self) -> Comparisons | None:
        """The prepared rows, or None when the preparation failed."""
        self._thread.join()
        return self._result
