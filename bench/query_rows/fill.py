"""Fill one Neo4j graph for bench/query_rows/compare.py, so that every named query has rows.

    PYTHON bench/query_rows/fill.py --checkout NEW --work WORK [--graph WORK/graph.json] [--clear]

It runs with the code of CHECKOUT (default: the repository this script is in) and that checkout's tests/
fixtures: when the environment would import another tree (PYTHONPATH, NEURFLOW_QUERIES or the working folder not
pointing at CHECKOUT), the script runs itself again with them set. The server is the one the environment names:
NEURFLOW_NEO4J_DATA / NEURFLOW_NEO4J_BOLT_PORT for neurflow's local server, or NEO4J_*.

What goes in:
- 4 synthetic circuits (tests/helpers.small_synthetic, as the synthetic_graph fixture of
  tests/graph/test_named_queries.py: foreign-labelled images, overlapping groups), written first;
- the two real circuits of the test suite (Samoyed and golden retriever: pretrained EfficientNet-Lite0,
  tests.circuit_fixtures.small_config on tests/data/imagewoof), built into WORK/fill and written last;
- `neurflow label` on the real Samoyed circuit against the test suite's fake OpenAI endpoint;
- a caption with depicts=background on a synthetic group (the "context" rows of bias-paths);
- `neurflow mask` (a group; neurons in retain mode), `neurflow fidelity`, `neurflow validate optimality`;
- a hand-written ValidationStudy whose summary holds a NaN (as real studies can).

The graph must be empty, or --clear given (which deletes every node of the database first). Writes the ids the
query parameters are taken from to --graph.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DEFAULT_WORK = Path(tempfile.gettempdir()) / "neurflow-query-rows"
CHILD = "NEURFLOW_QUERY_ROWS_FILL"
MODEL = ["-m", "efficientnet-lite0", "--device", "cpu", "--no-progress"]


def checkout_env(checkout: Path) -> dict[str, str]:
    """The environment in which `python` imports neurflow, its named queries and tests/ from ``checkout``.

    NEURFLOW_QUERIES matters when the venv has neurflow installed editable from another tree: its finder maps
    `neurflow.queries` (package-dir "queries") to THAT tree's queries/, even when `neurflow` comes from PYTHONPATH.
    """
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != checkout]
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), *rest]),
            "NEURFLOW_QUERIES": str(checkout / "queries")}


def in_checkout(checkout: Path) -> bool:
    env = checkout_env(checkout)
    return (Path.cwd().resolve() == checkout and os.environ.get("PYTHONPATH") == env["PYTHONPATH"]
            and os.environ.get("NEURFLOW_QUERIES") == env["NEURFLOW_QUERIES"])


def check_imports(checkout: Path) -> None:
    import neurflow
    import neurflow.cli.main
    import tests
    from neurflow.graph.named_queries import queries_dir

    for path in (neurflow.__file__, neurflow.cli.main.__file__, tests.__file__, queries_dir()):
        if path is None or not Path(path).resolve().is_relative_to(checkout):
            raise SystemExit(f"fill.py: {path} is not under {checkout}")


def run_cli(args: list[str], env: dict[str, str] | None = None) -> str:
    """`neurflow ARGS` in this process, against the server the environment names."""
    from click.testing import CliRunner

    from neurflow.cli.main import main
    from neurflow.graph.connection import resolve_connection

    settings = resolve_connection()
    conn = ["--uri", settings.uri, "--user", settings.user, "--database", settings.database]
    if settings.password:
        conn += ["--password", settings.password]
    result = CliRunner().invoke(main, [*args, *conn], env=env)
    print(f"$ neurflow {' '.join(args)}\n  -> exit {result.exit_code}", file=sys.stderr)
    if result.exit_code != 0 or "Traceback" in result.output:
        print(result.output, file=sys.stderr)
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        raise SystemExit(f"fill.py: failed: neurflow {' '.join(args)}")
    return result.output


def fill(work: Path, clear: bool) -> dict[str, Any]:
    from neurflow.engine.plans import build_circuits
    from neurflow.experiments.validation.result import StudyResult
    from neurflow.experiments.validation.study_properties import validation_properties
    from neurflow.format import load_circuit
    from neurflow.graph.connection import open_driver, resolve_connection
    from neurflow.graph.deletion import clear_graph
    from neurflow.graph.ingestion import write_circuit
    from neurflow.graph.labels import write_caption
    from neurflow.graph.study_records import write_validation_study
    from tests.circuit_fixtures import REAL_CLASSES, SMALL_IMAGES, small_config
    from tests.helpers import small_synthetic
    from tests.labelling.fake_openai import FakeOpenAI
    from tests.labelling.support import KEY

    settings = resolve_connection()
    db = settings.database
    driver = open_driver(settings)
    try:
        with driver.session(database=db) as session:
            nodes = session.run("MATCH (n) RETURN count(n) AS n").single(strict=True)["n"]
        if nodes and not clear:
            raise SystemExit(f"fill.py: database {db!r} at {settings.uri} holds {nodes} nodes; "
                             "give --clear to delete them first")
        print(f"graph: {settings.uri} database {db!r} ({nodes} nodes before)", file=sys.stderr)
        clear_graph(driver, db)
        work.mkdir(parents=True, exist_ok=True)

        synthetic = [small_synthetic(i, foreign_fraction=0.7, max_neuron_groups=3, images=12)
                     for i in (258, 207, 259, 208)]
        for c in synthetic:
            status = write_circuit(driver, c, work / f"synthetic-{c.target.index}", database=db).status
            assert status == "written", status

        out = Path(tempfile.mkdtemp(prefix="real-", dir=work))
        folders = build_circuits(small_config(), list(REAL_CLASSES), SMALL_IMAGES, out, echo=lambda _: None,
                                 progress=False)
        real = {}
        for folder in folders:
            circuit = load_circuit(folder)
            status = write_circuit(driver, circuit, folder, database=db).status
            assert status == "written", status
            real[circuit.target.name] = (circuit, folder)
        samoyed, _ = real["Samoyed"]

        # context/background captions on a synthetic group (as test_bias_paths_through_groups_labelled_context...)
        s0 = synthetic[0]
        middle = [g.id for g in s0.neuron_groups if g.layer == s0.layers[2]][:2]
        for group, depicts in zip(middle, ("background", "object"), strict=True):
            write_caption(driver, s0.id, group, label=f"{depicts} thing", caption="c", common_features=["fur"],
                          model="m", prompt_version="group-caption-v2", at=None, raw=None, database=db,
                          depicts=depicts)

        with FakeOpenAI() as llm:
            run_cli(["label", "--model", f"efficientnet-lite0@{samoyed.model.weights_id}", "--class", "Samoyed",
                     "--circuit-id", samoyed.id, "--llm-model", "fake-vision", "--max-images", "3",
                     "--cache-dir", str(work / "llm-cache"), "--base-url", llm.base_url],
                    env={"OPENAI_API_KEY": KEY})

        gid = samoyed.groups_of_layer(samoyed.layers[1])[0].id
        run_cli(["mask", *MODEL, "-c", "Samoyed", "-g", gid, "--random-draws", "1", "--patch-images", "0"])
        run_cli(["mask", *MODEL, "-c", "Samoyed", "--neurons", "_blocks.15:1,_blocks.15:2,_blocks.14:7",
                 "--images", str(SMALL_IMAGES), "--mode", "retain", "--random-draws", "1", "--patch-images", "0",
                 "--max-images", "2"])
        run_cli(["fidelity", *MODEL, "-c", "Samoyed,golden retriever", "--random-draws", "1", "--max-images", "2",
                 "--out", str(work / "fidelity")])
        run_cli(["validate", "optimality", "-m", "efficientnet-lite0", "-c", "Samoyed", "--device", "cpu",
                 "--no-progress", "--targets", "1", "--layers", samoyed.layers[1], "--taus", "2",
                 "--random-sets", "2", "--out", str(work / "study")])
        result = StudyResult(
            study="correlation", circuit_id=samoyed.id, model_key=samoyed.model.name,
            class_index=samoyed.target.index, class_name=samoyed.target.name, layers=samoyed.layers[:2],
            parameters={"sizes": [1, 2], "sets_per_size": 3, "seed": 7},
            summary={"mean_abs_r/size1": 0.5, "mean_abs_r/size2": math.nan, "k": 3},
            columns=["layer", "target", "size", "r"],
            rows=[{"layer": samoyed.layers[0], "target": 1, "size": 1, "r": 0.5}],
        )
        write_validation_study(driver, validation_properties(result, "zero"), db)
    finally:
        driver.close()

    return {
        "real": {name: {"id": c.id, "model_key": f"{c.model.name}@{c.model.weights_id}", "family": c.family_key,
                        "folder": str(f), "layers": c.layers, "wnid": c.target.wnid, "index": c.target.index,
                        "neuron": c.neurons[c.layers[1]][0].key, "group": gid if name == "Samoyed" else None}
                 for name, (c, f) in real.items()},
        "synthetic": [{"id": c.id, "index": c.target.index, "name": c.target.name,
                       "model_key": f"{c.model.name}@{c.model.weights_id}", "family": c.family_key,
                       "neuron": c.neurons[c.layers[1]][0].key} for c in synthetic],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkout", type=Path, default=REPO,
                    help="the neurflow checkout whose code fills the graph (default: this repository)")
    ap.add_argument("--work", type=Path, default=DEFAULT_WORK,
                    help=f"folder for the built circuits and the graph description (default: {DEFAULT_WORK})")
    ap.add_argument("--graph", type=Path, default=None, help="where the JSON of ids goes (default: WORK/graph.json)")
    ap.add_argument("--clear", action="store_true", help="delete what the database holds first")
    a = ap.parse_args()
    checkout, work = a.checkout.resolve(), a.work.resolve()
    graph = (a.graph or work / "graph.json").resolve()
    if not in_checkout(checkout):
        if os.environ.get(CHILD):
            raise SystemExit(f"fill.py: could not set up the environment for {checkout}")
        args = ["--checkout", str(checkout), "--work", str(work), "--graph", str(graph)] + ["--clear"] * a.clear
        return subprocess.run([sys.executable, str(Path(__file__).resolve()), *args], cwd=checkout,
                              env={**checkout_env(checkout), CHILD: "1"}).returncode
    check_imports(checkout)
    info = fill(work / "fill", a.clear)
    graph.parent.mkdir(parents=True, exist_ok=True)
    graph.write_text(json.dumps(info, indent=1))
    print(json.dumps(info, indent=1))
    print(f"wrote {graph}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
