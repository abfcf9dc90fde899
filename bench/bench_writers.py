"""Do Neo4j writes keep up with an atlas build? Relationships per second of ``write_circuit`` with 1, 2, 4 ...
writer threads (``neurflow-ingest --writers``), each writing other classes, into one empty graph per setting.

    python bench/bench_writers.py --circuits 24 --writers 1,2,4 --wipe      # the table in results-neo4j.md

Synthetic class circuits of EfficientNet-Lite0's top 4 layers at tau 16, k 50, 10 images (the size of
bench_neo4j.py's), built before the clock starts. Prints markdown and writes the ``writers`` section of
``bench/results-neo4j.md`` (``--out ''``: nothing). The graph must be empty (``--wipe`` empties it first).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import neo4j

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_engine import cpu_model, load_average, publish  # noqa: E402
from bench_neo4j import occupied  # noqa: E402

from neurflow.graph.connection import open_driver, resolve_connection  # noqa: E402
from neurflow.graph.deletion import clear_graph  # noqa: E402
from neurflow.graph.ingestion import write_circuit  # noqa: E402
from neurflow.graph.schema import ensure_schema  # noqa: E402
from neurflow.synthetic import synthetic_circuit  # noqa: E402

LAYERS = ["_fc", "_blocks.15", "_blocks.14", "_blocks.13"]


def timed_writes(driver: neo4j.Driver, database: str, circuits: Sequence, writers: int) -> tuple[float, int]:
    """Seconds to write every circuit with ``writers`` threads, and the relationships they created."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=writers) as pool:
        results = list(pool.map(lambda c: write_circuit(driver, c, database=database), circuits))
    seconds = time.perf_counter() - start
    assert all(r.status == "written" for r in results)
    return seconds, sum(r.relationships for r in results)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--circuits", type=int, default=24, help="synthetic class circuits per setting")
    parser.add_argument("--writers", default="1,2,4", help="writer threads to compare")
    parser.add_argument("--wipe", action="store_true", help="empty the database first (else refuse a non-empty one)")
    parser.add_argument("--out", default=str(BENCH / "results-neo4j.md"), help="results file ('' for none)")
    args = parser.parse_args(argv)
    settings = resolve_connection()
    driver = open_driver(settings)
    db = settings.database
    with driver:
        if occupied(driver, db, args.wipe):
            return 2
        circuits = [synthetic_circuit(i * 37 % 1000, layers=LAYERS, tau=16, k=50, images=10)
                    for i in range(args.circuits)]
        load_before = load_average()
        rows = []
        for writers in (int(w) for w in args.writers.split(",")):
            clear_graph(driver, db)
            ensure_schema(driver, db)
            seconds, rels = timed_writes(driver, db, circuits, writers)
            rows.append((writers, seconds, rels))
            print(f"{writers} writer(s): {rels:,} relationships in {seconds:.1f} s = {rels / seconds:,.0f}/s")
        clear_graph(driver, db)
    base = rows[0][1]
    lines = [
        "### Parallel writers (`neurflow-ingest --writers`)",
        "",
        f"{args.circuits} synthetic class circuits (4 layers, tau 16, k 50, 10 images) written into an empty graph "
        f"by `write_circuit` on N threads, other classes each; {cpu_model()}, load average {load_before} before, "
        f"{load_average()} after; Neo4j on the same machine.",
        "",
        "| writers | seconds | relationships | relationships/s | speed-up | target 50,000/s |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    lines += [f"| {w} | {s:.1f} | {r:,} | {r / s:,.0f} | {base / s:.2f}x | {'met' if r / s >= 50_000 else 'not met'} |"
              for w, s, r in rows]
    publish(lines, args.out, "writers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
