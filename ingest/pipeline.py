"""Ingestion glue: circuit folders -> Neo4j, with per-class progress and a summary table.

>>> from neurflow.ingest.pipeline import ingest_folders, summary_table             # doctest: +SKIP
>>> results = ingest_folders(driver, find_circuits("circuits/"))           # doctest: +SKIP
>>> print(summary_table(results))                                           # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import neo4j

from neurflow.format import load_circuit
from neurflow.graph.ingestion import DEFAULT_BATCH_ROWS, IngestResult, Progress, write_circuit
from neurflow.graph.schema import StoreError, ensure_schema

Echo = Callable[[str], None]


@dataclass
class FolderResult:
    """One circuit folder's ingestion: the store's result, or the error that stopped it."""

    folder: Path
    result: IngestResult | None
    error: str | None = None


def _step_printer(echo: Echo, verbose: bool) -> Progress | None:
    if not verbose:
        return None

    def progress(step: str, done: int, total: int) -> None:
        if done == total:
            echo(f"      {step}: {total} rows")

    return progress


def ingest_folder(
    driver: neo4j.Driver,
    folder: Path,
    *,
    database: str | None = None,
    force: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    echo: Echo = print,
    verbose: bool = False,
    prefix: str = "",
) -> FolderResult:
    """Writes one circuit folder, echoing what happened; a folder that cannot be read or written is reported
    in the result (connection losses propagate)."""
    prefix = f"{prefix} " if prefix else ""
    try:
        circuit = load_circuit(folder)
    except (OSError, ValueError, KeyError, TypeError) as error:
        echo(f"{prefix}{folder}: cannot read the circuit: {error}")
        return FolderResult(Path(folder), None, f"unreadable: {error}")
    echo(f"{prefix}{circuit.target.name} ({circuit.target.index}), circuit {circuit.id}: "
         f"{len(circuit.edges)} edges, {len(circuit.neuron_groups)} neuron groups")
    try:
        result = write_circuit(driver, circuit, folder, database=database, force=force,
                               batch_rows=batch_rows, progress=_step_printer(echo, verbose))
    except StoreError as error:
        echo(f"{prefix}{circuit.target.name}: not written: {error}")
        return FolderResult(Path(folder), None, str(error))
    if result.status == "skipped":
        echo(f"{prefix}{circuit.target.name}: already complete, skipped (use --force to write it again)")
    elif result.status == "outdated":
        echo(f"{prefix}{circuit.target.name}: in the graph from graph model 1.0, without influence, so "
             "cross-class queries leave it out; kept as it is: --force rewrites it (keeping its labels and "
             "experiment links)")
    else:
        echo(f"{prefix}{circuit.target.name}: {result.status}, {result.relationships:,} relationships and "
             f"{result.nodes:,} nodes in {result.seconds:.2f} s "
             f"({result.relationships_per_second:,.0f} relationships/s)")
        if result.status == "replaced":
            echo(f"{prefix}{circuit.target.name}: kept from the old circuit: {_counts(result.carried)}"
                 + (f"; dropped with groups that changed: {_counts(result.not_carried)}"
                    if result.not_carried else ""))
    return FolderResult(Path(folder), result)


def ingest_folders(
    driver: neo4j.Driver,
    folders: Sequence[Path],
    *,
    database: str | None = None,
    force: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    echo: Echo = print,
    verbose: bool = False,
    writers: int = 1,
) -> list[FolderResult]:
    """Writes every circuit folder, echoing a line per class; ``writers`` folders at once (threads, each its own
    session; their completions take turns on the model's lock). Results come in the order of ``folders``.

    A folder that cannot be read or written is reported and the others still go in; connection losses
    propagate (:class:`neo4j.exceptions.ServiceUnavailable` and friends) after the circuit in progress is
    left incomplete, which the next run cleans.
    """
    ensure_schema(driver, database)

    def write(numbered: tuple[int, Path]) -> FolderResult:
        number, folder = numbered
        return ingest_folder(driver, folder, database=database, force=force, batch_rows=batch_rows, echo=echo,
                             verbose=verbose, prefix=f"[{number}/{len(folders)}]")

    if writers <= 1:
        return [write(numbered) for numbered in enumerate(folders, 1)]
    with ThreadPoolExecutor(max_workers=writers, thread_name_prefix="writer") as pool:
        return list(pool.map(write, enumerate(folders, 1)))


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind}" for kind, n in counts.items()) or "nothing"


def summary_table(results: Sequence[FolderResult]) -> str:
    """A plain-text table: one row per circuit folder, and a total line."""
    header = ("class", "index", "circuit", "status", "nodes", "relationships", "seconds", "rels/s")
    rows: list[tuple[str, ...]] = []
    total_rels = total_nodes = 0
    total_seconds = 0.0
    for item in results:
        r = item.result
        if r is None:
            rows.append((item.folder.name, "", "", f"failed: {item.error}"[:60], "", "", "", ""))
            continue
        total_rels += r.relationships
        total_nodes += r.nodes
        total_seconds += r.seconds
        rows.append((r.class_name, str(r.class_index), r.circuit_id, r.status, f"{r.nodes:,}", f"{r.relationships:,}",
                     f"{r.seconds:.2f}", f"{r.relationships_per_second:,.0f}" if r.seconds else ""))
    rate = f"{total_rels / total_seconds:,.0f}" if total_seconds > 0 else ""
    rows.append(("total", "", f"{len(results)} circuits", "", f"{total_nodes:,}", f"{total_rels:,}",
                 f"{total_seconds:.2f}", rate))
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(lines)
