"""`neurflow-ingest --force` after `neurflow label`, `neurflow mask` and `neurflow validate` on real circuits: the
labels, evolutions, the masking experiment and the validation study still answer their queries afterwards, and
the class had a complete circuit at every moment of the rewrite (polled from another connection)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import neo4j
import pytest
from click.testing import CliRunner

from neurflow.cli.main import main
from neurflow.format import load_circuit
from neurflow.graph.circuits import class_circuits
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.named_queries import run_query
from neurflow.ingest.cli import main as ingest_main
from tests.labelling.fake_openai import FakeOpenAI
from tests.labelling.support import KEY, explained_chain

MODEL = ["-m", "efficientnet-lite0", "--device", "cpu", "--no-progress"]


def _connection(settings: ConnectionSettings) -> list[str]:
    return ["--uri", settings.uri, "--user", settings.user, "--database", settings.database,
            *(["--password", settings.password] if settings.password else [])]


def _run(command: Any, args: list[str], env: dict[str, str | None] | None = None) -> str:
    result = CliRunner().invoke(command, args, env=env)
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    return result.output


def _user_work(driver: neo4j.Driver, db: str, samoyed_id: str) -> dict[str, Any]:
    """What the queries answer about the labels and experiments of the Samoyed circuit."""
    chain = explained_chain(driver, db, model="efficientnet-lite0")
    _, masks = run_query(driver, "masking-experiments", {"class": "Samoyed"}, db)
    _, studies = run_query(driver, "validation-summary", {"class": "Samoyed"}, db)
    records, _, _ = driver.execute_query(
        "MATCH (g:NeuronGroup {circuitId: $id}) WHERE g.caption IS NOT NULL "
        "RETURN g.groupId AS group, g.caption AS caption ORDER BY group", id=samoyed_id, database_=db)
    return {"captions": [tuple(r.values()) for r in records],
            "chain": [(r["group"], r["caption"], r["evolutionCaption"]) for r in chain],
            "masks": sorted((r["experiment"], tuple(r["groups"]), r["circuit"]) for r in masks),
            "studies": sorted(str(sorted(r.items())) for r in studies)}


@pytest.mark.slow  # labels, masks and validates real circuits of the pretrained model
def test_force_after_label_mask_and_validate_keeps_them_answering(
        clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, real_circuit_dirs: list[Path],
        tmp_path: Path) -> None:
    db = neo4j_settings.database
    for folder in real_circuit_dirs:
        write_circuit(clean_graph, load_circuit(folder), folder, database=db)
    folder = next(f for f in real_circuit_dirs if load_circuit(f).target.name == "Samoyed")
    samoyed = load_circuit(folder)
    conn = _connection(neo4j_settings)
    with FakeOpenAI() as llm:
        _run(main, ["label", "--model", "efficientnet-lite0", "--class", "Samoyed", "--llm-model", "fake-vision",
                    "--max-images", "3", "--cache-dir", str(tmp_path / "cache"), "--base-url", llm.base_url,
                    *conn], env={"OPENAI_API_KEY": KEY})
    group = samoyed.groups_of_layer(samoyed.layers[1])[0].id
    _run(main, ["mask", *MODEL, "-c", "Samoyed", "-g", group, "--random-draws", "1", "--patch-images", "0", *conn])
    _run(main, ["validate", "optimality", "-m", "efficientnet-lite0", "-c", "Samoyed", "--device", "cpu",
                "--no-progress", "--targets", "1", "--layers", samoyed.layers[1], "--taus", "2",
                "--random-sets", "2", "--out", str(tmp_path / "study"), *conn])
    before = _user_work(clean_graph, db, samoyed.id)
    assert before["captions"] and before["masks"] and before["studies"]
    assert any(evolution for _, _, evolution in before["chain"])

    seen: list[int] = []
    stop = threading.Event()

    def watch() -> None:  # the class's complete circuits, as a query sees them during the rewrite
        while not stop.is_set():
            seen.append(len(class_circuits(clean_graph, "efficientnet-lite0", samoyed.target.index, db)))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        output = _run(ingest_main, ["--from", str(folder), "--force", *conn])
    finally:
        stop.set()
        watcher.join()
    assert "replaced" in output and "kept from the old circuit" in output
    assert seen and set(seen) == {1}
    assert _user_work(clean_graph, db, samoyed.id) == before
