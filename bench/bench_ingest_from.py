"""A whole atlas written from saved folders: ``neurflow-ingest --from DIR`` of N class circuits into an empty graph,
timed end to end (a fresh process: reading every circuit.json, building the rows, every write, OVERLAPS,
SIMILAR_TO, family totals and reuse summaries at completion).

    python bench/bench_ingest_from.py --circuit /path/to/0258-samoyed.<model>.<id> --classes 1000 --wipe --keep

The folders hold the real circuit (``--circuit``: a ``neurflow build`` folder) and N - 1 synthetic circuits of
its size and family (``neurflow.synthetic``, as bench_neo4j.py makes them), saved once under ``--folders`` (not
timed; reused when already there). ``--keep`` leaves the graph for ``bench_neo4j.py --at-scale``, which times
one more circuit's write and every named query on it. Prints markdown and writes the ``ingest-from`` section of
``bench/results-neo4j.md`` (``--out ''``: nothing). The graph must be empty (``--wipe`` empties it first).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from bench_engine import cpu_model, load_average, publish  # noqa: E402
from bench_neo4j import SyntheticSize, occupied, real_circuit_folder, synthetic_like  # noqa: E402

from neurflow.format import find_circuits, load_circuit  # noqa: E402
from neurflow.graph.connection import open_driver, resolve_connection  # noqa: E402
from neurflow.graph.deletion import clear_graph  # noqa: E402
from neurflow.graph.reads import LABELS, RELATIONSHIP_TYPES, graph_counts  # noqa: E402
from neurflow.synthetic import save_synthetic  # noqa: E402

DEFAULT_FOLDERS = Path("/tmp/nf-bench-atlas")
TARGET_MINUTES = 15.0


def prepare_folders(real_folder: Path, classes: int, folders: Path, seed: int) -> tuple[int, float]:
    """The real circuit's folder and ``classes`` - 1 synthetic ones under ``folders``; returns how many
    circuits are there and the seconds spent making the missing ones."""
    real = load_circuit(real_folder)
    params = real.params
    size = SyntheticSize(tuple(real.layers), int(params.get("tau") or 16), int(params.get("k") or 50),
                         max(1, len(real.images)), int(params.get("max_semantic_groups") or 5),
                         int(params.get("max_neuron_groups") or 8), real.model.name, real.model.weights_id, True)
    folders.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    target = folders / real_folder.name
    if not target.exists():
        shutil.copytree(real_folder, target)
    indices = [i for i in range(1000) if i != real.target.index][: classes - 1]
    for number, index in enumerate(indices, 1):
        folder = folders / f"synthetic-{index:04d}"
        if not (folder / "circuit.json").exists():
            save_synthetic(synthetic_like(real, index, size, seed), folder)
        if number % 100 == 0:
            print(f"  folders: {number}/{len(indices)}", flush=True)
    return len(find_circuits(folders)), time.perf_counter() - start


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--circuit", type=Path, required=True, help="a `neurflow build` folder (the real circuit)")
    parser.add_argument("--classes", type=int, default=1000, help="circuits in the atlas, the real one included")
    parser.add_argument("--folders", type=Path, default=DEFAULT_FOLDERS, help="where the circuit folders are saved")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic circuits")
    parser.add_argument("--writers", type=int, default=1, help="neurflow-ingest --writers (threads writing at once)")
    parser.add_argument("--wipe", action="store_true", help="empty the database first (else refuse a non-empty one)")
    parser.add_argument("--keep", action="store_true", help="leave the atlas in the graph (else it is emptied)")
    parser.add_argument("--out", default=str(BENCH / "results-neo4j.md"), help="results file ('' for none)")
    args = parser.parse_args(argv)
    settings = resolve_connection()
    driver = open_driver(settings)
    db = settings.database
    with driver:
        if occupied(driver, db, args.wipe):
            return 2
        real_folder = real_circuit_folder(args.circuit)
        count, made = prepare_folders(real_folder, args.classes, args.folders, args.seed)
        print(f"{count} circuit folders under {args.folders} ({made:.0f} s to make the missing ones, not timed)")
        clear_graph(driver, db)
        load_before = load_average()
        env = {**os.environ, "NEO4J_URI": settings.uri, "NEO4J_USER": settings.user,
               "NEO4J_DATABASE": db, "NEO4J_PASSWORD": settings.password or ""}
        command = [sys.executable, "-m", "neurflow.ingest.cli", "--from", str(args.folders),
                   "--writers", str(args.writers)]
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        seconds = time.perf_counter() - start
        load_after = load_average()
        if done.returncode != 0:
            print(done.stdout[-3000:], done.stderr[-3000:], file=sys.stderr)
            return done.returncode
        # per circuit: the wall clock of its write_circuit call (with 2 writers they overlap)
        per = [float(x) for x in re.findall(r"relationships and [\d,]+ nodes in ([\d.]+) s", done.stdout)]
        counts = graph_counts(driver, db)
        if not args.keep:
            clear_graph(driver, db)
    per_sorted = sorted(per)
    last = sorted(per[-max(1, len(per) // 10):])
    rels = sum(counts[r] for r in RELATIONSHIP_TYPES)
    minutes = seconds / 60
    lines = [
        f"### A {count:,}-class atlas written from saved folders (`neurflow-ingest --from`)",
        "",
        f"`neurflow-ingest --from {args.folders} --writers {args.writers}` in a fresh process into an empty graph: "
        "the real circuit "
        f"`{real_folder.name}` and {count - 1:,} synthetic circuits of its size and family (bench_neo4j.py's), "
        f"{args.writers} writer thread(s); {cpu_model()}, Neo4j on the same machine (default `neurflow db start` "
        f"settings); load average "
        f"{load_before} before, {load_after} after.",
        "",
        "| circuits | minutes | relationships in the graph | relationships/s | per circuit, median s (min-max) | "
        "median of the last 10 % | target |",
        "|---:|---:|---:|---:|---|---:|---|",
        f"| {count:,} | {minutes:.1f} | {rels:,} | {rels / seconds:,.0f} | "
        f"{per_sorted[len(per_sorted) // 2]:.2f} ({per_sorted[0]:.2f}-{per_sorted[-1]:.2f}) | "
        f"{last[len(last) // 2]:.2f} | < {TARGET_MINUTES:g} min: {'met' if minutes < TARGET_MINUTES else '**not met**'} |",
        "",
        "Graph after: " + ", ".join(f"{counts[k]:,} {k}" for k in LABELS if counts.get(k)) + "; "
        + ", ".join(f"{counts[r]:,} {r}" for r in RELATIONSHIP_TYPES if counts.get(r)) + ".",
    ]
    publish(lines, args.out, "ingest-from")
    return 0


if __name__ == "__main__":
    sys.exit(main())
