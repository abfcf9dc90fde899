"""Do the named queries give the same answers as an earlier version of them, on the graph in the database?

    python bench/compare_query_versions.py --ref 05b3458      # on a graph left by bench_neo4j.py --keep

Every query file of ``queries/`` that differs from the one at ``--ref`` (a git commit) is run in both versions
with the parameters bench_neo4j.py supplies (``--query-class``: default the first synthetic class), and the
rows are compared (same columns and rows in the same order; floats within a relative 1e-9, since sums taken in
another order differ in their last bits). Prints markdown and writes the section ``query-versions-<classes>``
of ``bench/results-neo4j.md`` (``--out ''``: nothing), with each version's median time over ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_engine import publish  # noqa: E402
from bench_neo4j import first_synthetic_class, query_supplies  # noqa: E402

from neurflow.graph.connection import open_driver, resolve_connection  # noqa: E402
from neurflow.graph.named_queries import list_queries, run_query  # noqa: E402
from neurflow.graph.reads import graph_counts  # noqa: E402

TOLERANCE = 1e-9


def same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return bool(a == b)


def verdict(now: list[dict[str, Any]], before: list[dict[str, Any]]) -> str:
    """yes; or, when the new version adds rows (a new relationship type's count), whether it keeps every
    earlier row, in order."""
    if same(now, before):
        return "yes"
    rest = iter(now)
    if len(now) > len(before) and all(any(same(row, other) for other in rest) for row in before):
        return f"yes, plus {len(now) - len(before)} new row(s)"
    return "**no**"


def old_queries(ref: str, folder: Path) -> set[str]:
    """Writes the query files of commit ``ref`` into ``folder``; returns the names that differ from now."""
    names = subprocess.run(["git", "ls-tree", "--name-only", ref, "queries/"], cwd=ROOT, capture_output=True,
                           text=True, check=True).stdout.split()
    changed = set()
    for path in names:
        if not path.endswith(".cypher"):
            continue
        text = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
        (folder / Path(path).name).write_text(text)
        current = ROOT / path
        if not current.exists() or current.read_text() != text:
            changed.add(Path(path).stem)
    return changed


def timed(driver: Any, name: str, params: dict[str, Any], database: str, folder: Path | None,
          runs: int) -> tuple[list[dict[str, Any]], float]:
    rows: list[dict[str, Any]] = []
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        rows = run_query(driver, name, params, database=database, folder=folder, timeout=120)[1]
        times.append(1000 * (time.perf_counter() - start))
    return rows, statistics.median(times)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--ref", required=True, help="git commit of the earlier query versions")
    parser.add_argument("--query-class", default=None, help="class of the queries (default: first synthetic)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each version (after one warm-up)")
    parser.add_argument("--out", default=str(BENCH / "results-neo4j.md"), help="results file ('' for none)")
    args = parser.parse_args(argv)
    settings = resolve_connection()
    driver = open_driver(settings)
    db = settings.database
    lines: list[str] = []
    with driver, tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp)
        changed = old_queries(args.ref, old)
        query_class = args.query_class or first_synthetic_class(driver, db)
        supplied, _ = query_supplies(driver, query_class, db)
        classes = graph_counts(driver, db)["Circuit"]
        lines += [f"### Named queries against their versions of commit {args.ref}, at {classes:,} classes", "",
                  f"Each query changed since {args.ref} run in both versions on the same graph, parameters as "
                  f"bench_neo4j.py supplies them (class = {query_class}); rows compared in order, floats within "
                  f"a relative {TOLERANCE:g}; median of {args.runs} runs after a warm-up.", "",
                  "| query | parameters | rows | same answer | now ms | before ms |", "|---|---|---:|---|---:|---:|"]
        for info in list_queries():
            if info.name not in changed:
                continue
            params = {p.name: supplied[p.name] for p in info.params if p.name in supplied}
            run_query(driver, info.name, params, database=db, timeout=120)  # warm-up
            run_query(driver, info.name, params, database=db, folder=old, timeout=120)
            now, now_ms = timed(driver, info.name, params, db, None, args.runs)
            before, before_ms = timed(driver, info.name, params, db, old, args.runs)
            shown = ", ".join(f"{k}={v if len(str(v)) < 40 else str(v)[:37] + '...'}" for k, v in params.items())
            lines.append(f"| {info.name} | {shown} | {len(now)} | {verdict(now, before)} | "
                         f"{now_ms:.1f} | {before_ms:.1f} |")
            print(lines[-1], flush=True)
    publish(lines, args.out, f"query-versions-{classes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
