"""Atlas ingestion: predictions cached by image sha256, classes planned (with their circuit ids) before any
build, `neurflow-ingest` streaming class by class, resuming after a kill without rebuilding finished classes,
and a local Ray of two workers leaving the same graph as a serial run. Real images (tests/data/imagewoof, three
breeds), EfficientNet-Lite0 with random weights, a real Neo4j."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import neo4j
import numpy as np
import pytest

from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.config import BuildConfig
from neurflow.engine.models import load_model
from neurflow.engine.patches import list_images
from neurflow.engine.plans import (
    PredictionCache,
    build_planned,
    plan_class,
    predict_folder,
    resolve_classes,
)
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.reads import graph_counts
from tests.circuit_fixtures import SMALL_IMAGES

REPO = Path(__file__).resolve().parents[2]
BUILD = ["-m", "efficientnet-lite0", "--random-weights", "--label-source", "folder", "--images", str(SMALL_IMAGES),
         "--layers", "_fc,_blocks.15", "--tau", "3", "--k", "6", "--steps", "4", "--max-images", "2",
         "--device", "cpu", "--no-progress"]


def tiny_config() -> BuildConfig:
    return BuildConfig(model="efficientnet-lite0", random_weights=True, layers=["_fc", "_blocks.15"], tau=3, k=6,
                       steps=4, max_images=2, label_source="folder", device="cpu")


@pytest.fixture(scope="module")
def loaded():
    return load_model("efficientnet-lite0", random_weights=True, device="cpu")


def test_predictions_are_cached_by_image_and_shared(loaded, tmp_path: Path) -> None:
    files = list_images(SMALL_IMAGES)[:6]
    first = predict_folder(loaded, files, PredictionCache(tmp_path, loaded), batch_size=4)
    again = predict_folder(loaded, files, PredictionCache(tmp_path, loaded))
    assert first.predicted == 6 and again.predicted == 0
    assert np.array_equal(first.logits, again.logits) and first.shas == again.shas
    # another list of the same images (another order) reads the same rows
    reordered = predict_folder(loaded, list(reversed(files)), PredictionCache(tmp_path, loaded))
    assert reordered.predicted == 0 and np.array_equal(reordered.logits, first.logits[::-1])
    # writers at the same time lose nothing: the file is locked, reread and merged
    cache = PredictionCache(tmp_path / "shared", loaded)
    rows = {f"{i:064x}": np.full(len(loaded.categories), i, np.float32) for i in range(40)}
    threads = [threading.Thread(target=cache.add, args=({k: v},)) for k, v in rows.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(cache.load()) == sorted(rows)


@pytest.mark.slow  # builds a circuit
def test_all_classes_and_the_planned_circuit_id(loaded, tmp_path: Path) -> None:
    config = tiny_config()
    predictions = predict_folder(loaded, list_images(SMALL_IMAGES), PredictionCache(tmp_path, loaded))
    targets = resolve_classes(loaded, ["all"], predictions, "folder")
    assert [t.name for t in targets] == ["beagle", "golden retriever", "Samoyed"]
    predicted = resolve_classes(loaded, ["all"], predictions, "predicted")
    assert {t.index for t in predicted} == set(predictions.logits.argmax(1).tolist())
    plan = plan_class(loaded, config, targets[2], predictions)
    assert len(plan.files) == 2 and all(f.label == "n02111889" for f in plan.files)
    result = build_planned(CircuitBuilder(loaded, config, progress=False), plan)
    assert result.circuit.id == plan.circuit_id
    assert plan.folder == f"0258-samoyed.efficientnet-lite0.{plan.circuit_id}"


def _ingest_args(settings: ConnectionSettings, out: Path, cache: Path, *extra: str) -> tuple[list[str], dict]:
    args = [sys.executable, "-m", "neurflow.ingest.cli", *BUILD, "--out", str(out), "--predictions-cache", str(cache),
            "--uri", settings.uri, "--user", settings.user, "--database", settings.database, *extra]
    env = {**os.environ, "NEO4J_PASSWORD": settings.password or "", "PYTHONPATH": str(REPO),
           "RAY_AUTH_MODE": "disabled"}
    return args, env


def _ingest(settings: ConnectionSettings, out: Path, cache: Path, *extra: str) -> str:
    args, env = _ingest_args(settings, out, cache, *extra)
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _circuits(driver: neo4j.Driver, database: str) -> dict[str, list[str]]:
    records, _, _ = driver.execute_query(
        "MATCH (c:Circuit {complete: true}) RETURN c.id AS id, "
        "COLLECT { MATCH (c)-[:HAS_CORE_NEURON]->(n) RETURN n.key ORDER BY n.key } AS core", database_=database)
    return {r["id"]: r["core"] for r in records}


@pytest.mark.slow  # builds three classes three times, once on a local Ray
def test_atlas_streams_resumes_after_a_kill_and_ray_leaves_the_serial_graph(
        clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, tmp_path: Path) -> None:
    db = neo4j_settings.database
    cache = tmp_path / "cache"
    classes = tmp_path / "classes.txt"
    classes.write_text("beagle\n# a comment\nSamoyed\ngolden retriever\n")
    out = tmp_path / "serial"
    args, env = _ingest_args(neo4j_settings, out, cache, "--classes-file", str(classes))
    process = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:  # killed once its first class is written: the others are not
        while process.poll() is None and not _circuits(clean_graph, db):
            time.sleep(0.05)
        assert process.poll() is None, "the ingestion ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.stdout:
            process.stdout.close()
    [first] = _circuits(clean_graph, db)
    [first_folder] = [f for f in out.iterdir() if f.name.endswith(first)]
    written_at = (first_folder / "circuit.json").stat().st_mtime_ns

    output = _ingest(neo4j_settings, out, cache, "--classes-file", str(classes))
    assert "skipped 1 (complete in the graph)" in output and "failed 0" in output
    assert "0 predicted now" in output  # predictions from the cache
    assert (first_folder / "circuit.json").stat().st_mtime_ns == written_at  # not rebuilt
    serial_counts, serial_circuits = graph_counts(clean_graph, db), _circuits(clean_graph, db)
    assert len(serial_circuits) == 3

    clean_graph.execute_query("MATCH (n) DETACH DELETE n", database_=db)
    output = _ingest(neo4j_settings, tmp_path / "ray", cache, "--classes", "all", "--workers", "2",
                     "--writers", "2")
    assert "on 2 Ray worker(s)" in output and "built 3" in output
    assert _circuits(clean_graph, db) == serial_circuits
    assert graph_counts(clean_graph, db) == serial_counts
