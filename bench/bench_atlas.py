"""An atlas run's wall time in this process and on 1 and 2 local Ray workers: `neurflow-ingest --classes-file`
into an empty graph, the same classes and settings each time, predictions cached beforehand.

    python bench/bench_atlas.py --wipe          # writes the `atlas` section of bench/results-engine.md

Each run is a fresh `neurflow-ingest` process (model loading, Ray start and actors included: what a user waits
for) with its own `--out`; the graph is emptied between runs. Needs `pip install 'neurflow[ray]'` and a Neo4j
(NEO4J_* or the local server).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from bench_engine import cpu_model, load_average, publish  # noqa: E402

from neurflow.graph.connection import open_driver, resolve_connection  # noqa: E402
from neurflow.graph.deletion import clear_graph  # noqa: E402

IMAGES = Path(os.environ.get("NEURFLOW_IMAGEWOOF", ROOT.parent / "shared" / "data" / "imagewoof-val"))
CLASSES = ("Samoyed", "golden retriever", "beagle", "Shih-Tzu")
SETTINGS = ["--layers", "_fc,_blocks.15,_blocks.14", "--tau", "8", "--k", "20", "--steps", "8",
            "--max-images", "4", "--label-source", "folder", "--device", "cpu", "--no-progress"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=IMAGES)
    parser.add_argument("--workers", default="0,1,2", help="runs: 0 = in this process, N = N Ray workers")
    parser.add_argument("--wipe", action="store_true", help="empty the database first (else refuse a non-empty one)")
    parser.add_argument("--out", default=str(BENCH / "results-engine.md"), help="results file ('' for none)")
    args = parser.parse_args(argv)
    settings = resolve_connection()
    driver = open_driver(settings)
    records, _, _ = driver.execute_query("MATCH (n) RETURN count(n) AS n", database_=settings.database)
    if records[0]["n"] and not args.wipe:
        print(f"error: the database holds {records[0]['n']:,} nodes; pass --wipe to empty it", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-atlas-"))
    classes = work / "classes.txt"
    classes.write_text("\n".join(CLASSES) + "\n")
    env = {**os.environ, "NEURFLOW_CACHE": str(work / "cache"), "RAY_AUTH_MODE": "disabled"}
    common = [sys.executable, "-m", "neurflow.ingest.cli", "-m", "efficientnet-lite0", "--images", str(args.images), *SETTINGS]
    base = [*common, "--classes-file", str(classes)]
    # predictions first (cached, with one class built), so that every timed run starts from the same cache
    subprocess.run([*common, "--out", str(work / "warm"), "--classes", CLASSES[0]], env=env, cwd=ROOT, check=True,
                   capture_output=True)
    load_before = load_average()
    rows = []
    for workers in (int(w) for w in args.workers.split(",")):
        clear_graph(driver, settings.database)
        start = time.perf_counter()
        done = subprocess.run([*base, "--out", str(work / f"run-{workers}"), "--workers", str(workers)], env=env,
                              cwd=ROOT, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            print(done.stdout + done.stderr, file=sys.stderr)
            return 1
        summary = [line for line in done.stdout.splitlines() if line.startswith("Classes:")][-1]
        rows.append((workers, seconds, summary))
        print(f"workers {workers}: {seconds:.1f} s; {summary}", flush=True)
    clear_graph(driver, settings.database)
    driver.close()
    serial = rows[0][1]
    lines = [
        "### Atlas runs: in this process, on 1 and 2 local Ray workers (`bench/bench_atlas.py`)",
        "",
        f"`neurflow-ingest` of {len(CLASSES)} classes ({', '.join(CLASSES)}), EfficientNet-Lite0 pretrained, "
        f"{' '.join(SETTINGS[:-3])}; a fresh process each (model loading, Ray start included), predictions from "
        f"the cache; {cpu_model()}, {os.cpu_count()} cores, load average {load_before} before, {load_average()} "
        "after.",
        "",
        "| workers | seconds | speed-up over this process | summary |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {'in this process' if w == 0 else f'{w} Ray'} | {s:.1f} | {serial / s:.2f}x | {summary} |"
              for w, s, summary in rows]
    publish(lines, args.out, "atlas")
    return 0


if __name__ == "__main__":
    sys.exit(main())
