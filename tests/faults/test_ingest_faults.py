"""Faults injected into real `neurflow-ingest` processes against a real Neo4j: kill -9 of the ingestion at
several points, kill -9 of the Neo4j server mid-write, two ingestions at once (of one circuit, of two classes).
After each, a rerun leaves the counts of a clean ingestion, computed independently by tests/helpers.py.

The figures these tests record are in docs/reliability.md.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import neo4j
import pytest

from neurflow.circuit import Circuit
from neurflow.graph import server as local_server
from neurflow.graph import server_config as sc
from neurflow.graph.connection import ConnectionSettings, open_driver
from neurflow.graph.reads import graph_counts, incomplete_circuits
from neurflow.synthetic import save_synthetic, synthetic_circuit
from tests.helpers import SMALL, expected_counts

REPO = Path(__file__).resolve().parents[2]
#: Small batches make the write of one circuit hundreds of transactions, so every point below is reached
#: while the process runs.
BATCH = ["--batch-rows", "2"]

Counts = dict[str, int]

# One round trip for the counts the kill points look at (from the count store: instant).
_POLL = """
CALL () { MATCH (n:Circuit) RETURN count(n) AS Circuit }
CALL () { MATCH (n:Image) RETURN count(n) AS Image }
CALL () { MATCH (n:Patch) RETURN count(n) AS Patch }
CALL () { MATCH (n:SemanticGroup) RETURN count(n) AS SemanticGroup }
CALL () { MATCH (n:NeuronGroup) RETURN count(n) AS NeuronGroup }
RETURN Circuit, Image, Patch, SemanticGroup, NeuronGroup
"""


def poll_counts(driver: neo4j.Driver, database: str) -> Counts:
    records, _, _ = driver.execute_query(_POLL, database_=database, routing_=neo4j.RoutingControl.READ)
    return dict(records[0])


def fault_circuit(index: int) -> Circuit:
    return synthetic_circuit(index, **{**SMALL, "tau": 8, "k": 16, "images": 12})  # type: ignore[arg-type]


def save_all(circuits: Sequence[Circuit], root: Path) -> Path:
    for circuit in circuits:
        save_synthetic(circuit, root / f"{circuit.target.index:04d}-{circuit.id}")
    return root


def ingest_args(folder: Path, settings: ConnectionSettings, *extra: str) -> tuple[list[str], dict[str, str]]:
    """``neurflow-ingest --from FOLDER`` as its own process; the password goes in the environment."""
    args = [sys.executable, "-m", "neurflow.ingest.cli", "--from", str(folder), "--uri", settings.uri, "--user",
            settings.user, "--database", settings.database, *extra]
    env = {**os.environ, "NEO4J_PASSWORD": settings.password or "", "PYTHONPATH": str(REPO)}
    return args, env


def ingest(folder: Path, settings: ConnectionSettings, *extra: str, timeout: float = 300) -> subprocess.CompletedProcess:
    args, env = ingest_args(folder, settings, *extra)
    return subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)


def kill_when(folder: Path, settings: ConnectionSettings, driver: neo4j.Driver, reached: Callable[[Counts], bool],
              *extra: str) -> Counts:
    """Starts an ingestion and kills it (SIGKILL) as soon as the graph's counts satisfy ``reached``; returns
    those counts. Fails when the process ends first."""
    args, env = ingest_args(folder, settings, *BATCH, *extra)
    process = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        while process.poll() is None:
            counts = poll_counts(driver, settings.database)
            if reached(counts):
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
                return counts
            time.sleep(0.002)
        output = process.stdout.read() if process.stdout else ""
        pytest.fail(f"the ingestion ended (exit {process.returncode}) before the point was reached:\n{output}")
    finally:
        if process.poll() is None:
            process.kill()
        if process.stdout:
            process.stdout.close()


#: Where the ingestion is killed: its circuit claimed with nothing below it yet; its patches written but no
#: semantic group; half-way through the semantic groups; the first circuit complete and the second started.
KILL_POINTS: dict[str, Callable[[Counts], bool]] = {
    "claimed": lambda c: c["Circuit"] == 1 and c["Image"] == 0,
    "patches, no semantic groups": lambda c: c["Patch"] > 0 and c["SemanticGroup"] == 0,
    "mid semantic groups": lambda c: c["SemanticGroup"] > 10,
    "second circuit": lambda c: c["Circuit"] == 2 and c["NeuronGroup"] > 0,
}


@pytest.fixture(scope="module")
def two_classes(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Circuit], Path]:
    circuits = [fault_circuit(258), fault_circuit(207)]
    return circuits, save_all(circuits, tmp_path_factory.mktemp("fault-circuits"))


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_an_ingestion_killed_at_any_point_is_finished_by_the_next_run(
        point: str, two_classes: tuple[list[Circuit], Path], clean_graph: neo4j.Driver,
        neo4j_settings: ConnectionSettings) -> None:
    circuits, folder = two_classes
    db = neo4j_settings.database
    at_kill = kill_when(folder, neo4j_settings, clean_graph, KILL_POINTS[point])
    assert KILL_POINTS[point](at_kill)
    assert incomplete_circuits(clean_graph, db)  # killed mid-write: hidden from queries
    done = ingest(folder, neo4j_settings)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rewritten" in done.stdout
    assert graph_counts(clean_graph, db) == expected_counts(circuits)
    assert incomplete_circuits(clean_graph, db) == []


def test_two_ingestions_of_the_same_circuit_leave_one_complete_circuit(
        tmp_path: Path, clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings) -> None:
    circuit = fault_circuit(259)
    folder = save_all([circuit], tmp_path)
    runs = []
    for _ in range(2):
        args, env = ingest_args(folder, neo4j_settings, *BATCH)
        runs.append(subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True))
        time.sleep(1.0)  # the second starts while the first writes
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    codes = [run.returncode for run in runs]
    assert 0 in codes, outputs
    for code, output in zip(codes, outputs, strict=True):
        assert "Traceback" not in output
        if code != 0:  # the earlier one, taken over by the later one
            assert "took it over" in output, output
    assert graph_counts(clean_graph, neo4j_settings.database) == expected_counts([circuit])
    assert incomplete_circuits(clean_graph, neo4j_settings.database) == []


def test_two_classes_ingested_at_once_get_the_overlaps_of_serial_runs(
        tmp_path: Path, clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings) -> None:
    circuits = [fault_circuit(258), fault_circuit(207)]
    folders = [save_all([c], tmp_path / str(c.target.index)) for c in circuits]
    runs = []
    for folder in folders:
        args, env = ingest_args(folder, neo4j_settings, *BATCH)
        runs.append(subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True))
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    expected = expected_counts(circuits)
    assert expected["OVERLAPS"] > 0
    assert graph_counts(clean_graph, neo4j_settings.database) == expected


@pytest.mark.neo4j
@pytest.mark.slow  # starts a Neo4j server of its own, twice
def test_neo4j_killed_mid_write_then_restarted_the_rerun_finishes(
        tmp_path: Path, two_classes: tuple[list[Circuit], Path]) -> None:
    circuits, folder = two_classes
    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    config = sc.server_config(tmp_path / "server", bolt_port=ports[0], http_port=ports[1])
    local_server.start_server(config)
    settings = ConnectionSettings(config.uri, "neo4j", sc.read_password(config.data_dir), "neo4j")
    try:
        args, env = ingest_args(folder, settings, *BATCH)
        # The killed server stays down: 2 s of the driver's retries instead of the default 30 s, which the
        # test would only wait out (the setting is the one tests/faults/test_lost_server.py uses).
        env["NEURFLOW_NEO4J_RETRY_SECONDS"] = "2"
        process = subprocess.Popen(args, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   text=True)
        with open_driver(settings) as driver:
            while process.poll() is None and poll_counts(driver, "neo4j")["SemanticGroup"] <= 10:
                time.sleep(0.01)
        pid = local_server.running_pid(config)
        assert process.poll() is None and pid is not None, "the ingestion ended before the server was killed"
        os.kill(pid, signal.SIGKILL)
        output = process.communicate(timeout=120)[0]
        assert process.returncode != 0
        assert "Traceback" not in output
        assert "lost the connection to Neo4j" in output.strip().splitlines()[-1]

        local_server.start_server(config)  # recovers from its transaction log
        with open_driver(settings) as driver:
            assert incomplete_circuits(driver, "neo4j")
            done = ingest(folder, settings)
            assert done.returncode == 0, done.stdout + done.stderr
            assert graph_counts(driver, "neo4j") == expected_counts(circuits)
            assert incomplete_circuits(driver, "neo4j") == []
    finally:
        local_server.stop_server(config)
