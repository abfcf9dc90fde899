"""`neurflow-ingest` against a real Neo4j: real circuits, idempotency, a run killed mid-circuit, bad settings."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import neo4j
import pytest
from click.testing import CliRunner

from neurflow.format import load_circuit
from neurflow.graph.deletion import clear_graph
from neurflow.graph.named_queries import EmptyAnswerError, run_query
from neurflow.graph.reads import graph_counts, incomplete_circuits
from neurflow.ingest.cli import main as ingest_main
from tests.circuit_fixtures import SMALL_IMAGES, SMALL_LAYERS
from tests.helpers import expected_counts

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.neo4j


@pytest.fixture
def env(neo4j_settings) -> dict[str, str]:
    return {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
            "NEO4J_PASSWORD": neo4j_settings.password or "", "NEO4J_DATABASE": neo4j_settings.database}


@pytest.fixture
def circuits_dir(real_circuit_dirs: list[Path], tmp_path: Path) -> Path:
    """The two real circuits in one folder, as `neurflow build` leaves them."""
    root = tmp_path / "circuits"
    for folder in real_circuit_dirs:
        shutil.copytree(folder, root / folder.name)
    return root


def counts(driver: neo4j.Driver, database: str) -> dict[str, int]:
    return graph_counts(driver, database)


def test_ingest_from_folder_is_idempotent(clean_graph: neo4j.Driver, neo4j_settings, circuits_dir: Path,
                                          env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(ingest_main, ["--from", str(circuits_dir)], env=env)
    assert result.exit_code == 0, result.output
    circuits = [load_circuit(f) for f in sorted(circuits_dir.iterdir())]
    for number, circuit in enumerate(circuits, 1):
        assert f"[{number}/2] {circuit.target.name} ({circuit.target.index}), circuit {circuit.id}" in result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class "))
    assert lines[header].split() == ["class", "index", "circuit", "status", "nodes", "relationships", "seconds", "rels/s"]
    assert all(" written " in line for line in lines[header + 2 : header + 4])
    assert lines[-1].startswith("total")
    expected = expected_counts(circuits)
    assert counts(clean_graph, neo4j_settings.database) == expected

    again = runner.invoke(ingest_main, ["--from", str(circuits_dir)], env=env)
    assert again.exit_code == 0, again.output
    assert again.output.count("already complete, skipped") == 2
    assert counts(clean_graph, neo4j_settings.database) == expected

    forced = runner.invoke(ingest_main, ["--from", str(circuits_dir), "--force", "--batch-rows", "50"], env=env)
    assert forced.exit_code == 0, forced.output
    assert forced.output.count(": replaced, ") == 2
    assert counts(clean_graph, neo4j_settings.database) == expected


def _parts_in_progress(driver: neo4j.Driver, database: str) -> int:
    """Semantic groups written of the circuit whose ingestion is in progress (0: none is)."""
    records, _, _ = driver.execute_query(
        """
        MATCH (c:Circuit) WHERE NOT c.complete
        MATCH (s:SemanticGroup {circuitId: c.id})
        RETURN count(s) AS parts
        """,
        database_=database,
    )
    return records[0]["parts"] if records else 0


@pytest.mark.slow
def test_a_killed_ingestion_is_hidden_and_the_next_run_matches_a_clean_one(
    clean_graph: neo4j.Driver, neo4j_settings, circuits_dir: Path, env: dict[str, str]
) -> None:
    db = neo4j_settings.database
    runner = CliRunner()
    assert runner.invoke(ingest_main, ["--from", str(circuits_dir)], env=env).exit_code == 0
    clean = counts(clean_graph, db)
    clear_graph(clean_graph, db)

    # One row per transaction makes the ingestion slow enough to be killed inside a circuit: --verbose says
    # when the first circuit's semantic groups (its largest step) start, and the graph when some are written.
    process = subprocess.Popen(
        [sys.executable, "-m", "neurflow.ingest.cli", "--from", str(circuits_dir), "--batch-rows", "1", "--verbose"],
        cwd=ROOT, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert process.stdout is not None
        seen = []
        while not any(line.strip().startswith("group members:") for line in seen):
            line = process.stdout.readline()
            assert line, "the ingestion ended before its first circuit's semantic groups:\n" + "".join(seen)
            seen.append(line)
        deadline = time.monotonic() + 60
        while not _parts_in_progress(clean_graph, db):
            assert process.poll() is None, "the ingestion ended before it could be killed"
            assert time.monotonic() < deadline, "no circuit was ever in progress"
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    half = incomplete_circuits(clean_graph, db)
    assert len(half) == 1
    circuit = next(load_circuit(f) for f in circuits_dir.iterdir() if load_circuit(f).id == half[0])
    assert 0 < _parts_in_progress(clean_graph, db) <= len(circuit.semantic_groups), "killed mid-write"
    for name in ("top-groups", "class-circuit", "bias-paths", "class-similarity"):  # hidden, and said so
        with pytest.raises(EmptyAnswerError, match="has no complete circuit in the graph"):
            run_query(clean_graph, name, {"class": circuit.target.name}, db)
    circuits_seen = run_query(clean_graph, "graph-stats", {}, db)[1]
    assert {r["name"]: r["count"] for r in circuits_seen if r["kind"] == "circuits"}["incomplete"] == 1

    result = runner.invoke(ingest_main, ["--from", str(circuits_dir)], env=env)
    assert result.exit_code == 0, result.output
    assert f"{circuit.target.name}: rewritten" in result.output
    assert counts(clean_graph, db) == clean
    assert incomplete_circuits(clean_graph, db) == []


def test_wrong_password_fails_clearly_and_writes_nothing(clean_graph: neo4j.Driver, neo4j_settings,
                                                         circuits_dir: Path, env: dict[str, str]) -> None:
    before = counts(clean_graph, neo4j_settings.database)
    result = CliRunner().invoke(ingest_main, ["--from", str(circuits_dir)],
                                env={**env, "NEO4J_PASSWORD": "not-the-password"})
    assert result.exit_code == 1
    assert neo4j_settings.uri in result.output and "not-the-password" not in result.output
    assert "Authentication failed" in result.output
    assert counts(clean_graph, neo4j_settings.database) == before


def test_unreachable_server_fails_clearly(circuits_dir: Path, env: dict[str, str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    uri = f"bolt://127.0.0.1:{port}"
    result = CliRunner().invoke(ingest_main, ["--from", str(circuits_dir), "--uri", uri], env=env)
    assert result.exit_code == 1
    assert uri in result.output and "Traceback" not in result.output


def test_usage_errors(tmp_path: Path, env: dict[str, str]) -> None:
    runner = CliRunner()
    result = runner.invoke(ingest_main, [], env=env)
    assert result.exit_code == 2 and "--from DIR" in result.output
    result = runner.invoke(ingest_main, ["--from", str(tmp_path), "--model", "resnet18"], env=env)
    assert result.exit_code == 2 and "leave out --model" in result.output
    result = runner.invoke(ingest_main, ["--from", str(tmp_path)], env=env)
    assert result.exit_code == 1 and "no circuit under" in result.output


@pytest.mark.slow
def test_build_then_ingest(clean_graph: neo4j.Driver, neo4j_settings, real_circuit_dirs: list[Path],
                           tmp_path: Path, env: dict[str, str]) -> None:
    """The engine path: the same settings as the shared fixture give the same circuit, written into Neo4j. The
    images are a folder of linked class folders (links into the shipped set), as people assemble image sets:
    the same images, so the same circuit id."""
    linked = tmp_path / "linked"
    linked.mkdir()
    for folder in sorted(SMALL_IMAGES.iterdir()):
        (linked / folder.name).symlink_to(folder, target_is_directory=True)
    args = ["--model", "efficientnet-lite0", "--classes", "Samoyed", "--images", str(linked),
            "--layers", ",".join(SMALL_LAYERS), "--tau", "6", "--k", "12", "--steps", "8", "--max-images", "3",
            "--max-neuron-groups", "4", "--device", "cpu", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(ingest_main, args, env=env)
    assert result.exit_code == 0, result.output
    built = load_circuit(tmp_path / "out" / real_circuit_dirs[0].name)
    assert built.id == load_circuit(real_circuit_dirs[0]).id
    assert "Samoyed: written" in result.output
    assert counts(clean_graph, neo4j_settings.database) == expected_counts([built])


def test_ingest_from_with_two_writers_equals_one_writer(clean_graph: neo4j.Driver, neo4j_settings, tmp_path: Path,
                                                        env: dict[str, str]) -> None:
    from neurflow.synthetic import save_synthetic
    from tests.graph.test_maintained_cross_class import assert_maintained, narrow

    circuits = [narrow(i) for i in (3, 17, 258, 407, 511, 906)]
    for circuit in circuits:
        save_synthetic(circuit, tmp_path / "atlas" / f"{circuit.target.index:04d}")
    result = CliRunner().invoke(ingest_main, ["--from", str(tmp_path / "atlas"), "--writers", "2"], env=env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("class "))
    # the summary lists the folders in their order, whichever writer finished first
    assert [line.split()[0] for line in lines[header + 2: header + 2 + len(circuits)]] == [
        c.target.name.split()[0] for c in circuits]
    assert counts(clean_graph, neo4j_settings.database) == expected_counts(circuits)
    assert_maintained(clean_graph, neo4j_settings.database)
