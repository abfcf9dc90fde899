"""A Neo4j server lost after the command connected: `neurflow query | label | mask | fidelity` and
`neurflow-ingest` end with exit 1 and one line on stderr naming the lost connection (no traceback, no driver
logs), and leave nothing half-written: an experiment or study whose transaction was cut is not in the graph,
a circuit cut mid-ingestion stays incomplete (hidden) and the next run completes it.

The fault is real: every command talks to the test server through ``tests/faults/proxy.py``, which shuts every
connection and refuses new ones at a chosen point of the command (a statement it sends, its k-th Bolt message
or its n-th byte). The driver retries a lost transaction for 30 s by default; ``quick_give_up`` makes that 1 s
so that these tests stay fast (the retries still happen, against a server that is gone).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, LiteralString
from urllib.parse import urlsplit

import neo4j
import pytest
import torch
from click.testing import CliRunner, Result

from neurflow.circuit import Circuit
from neurflow.cli.errors import DRIVER_LOGGERS
from neurflow.cli.main import main
from neurflow.engine.models import load_model
from neurflow.format import file_sha256, save_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.deletion import clear_graph
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.named_queries import EmptyAnswerError, run_query
from neurflow.graph.reads import circuit_status, graph_counts, incomplete_circuits
from neurflow.ingest.cli import main as ingest_main
from neurflow.synthetic import save_synthetic, synthetic_circuit
from tests.circuit_fixtures import SMALL_IMAGES
from tests.faults.proxy import BoltProxy
from tests.helpers import expected_counts, small_synthetic
from tests.labelling.fake_openai import FakeOpenAI
from tests.labelling.support import KEY, TINY_MODEL, tiny_circuit

pytestmark = pytest.mark.neo4j

RESNET_LAYERS = ["fc", "layer4.1", "layer4.0"]
SAMOYEDS = sorted((SMALL_IMAGES / "n02111889").glob("*.JPEG"))[:2]
LOST = "lost the connection to Neo4j"


@pytest.fixture
def proxy(neo4j_settings: ConnectionSettings) -> Iterator[BoltProxy]:
    where = urlsplit(neo4j_settings.uri)
    with BoltProxy(where.port or 7687, where.hostname or "127.0.0.1") as running:
        yield running


@pytest.fixture(autouse=True)
def no_driver_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The driver logs a warning per retry and an error per dead socket; none of it reaches the user."""
    yield
    logged = [r for r in caplog.get_records("call") if r.name in DRIVER_LOGGERS and r.levelno >= logging.WARNING]
    assert logged == [], [r.getMessage() for r in logged]


@pytest.fixture
def quick_give_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver retries a transaction on a lost server for 1 s instead of its default 30 s."""
    monkeypatch.setenv("NEURFLOW_NEO4J_RETRY_SECONDS", "1")


@pytest.fixture
def env(proxy: BoltProxy, neo4j_settings: ConnectionSettings, quick_give_up: None) -> dict[str, str]:
    """The commands' connection: the proxy, with the test server's user, password and database."""
    return {"NEO4J_URI": proxy.uri, "NEO4J_USER": neo4j_settings.user,
            "NEO4J_PASSWORD": neo4j_settings.password or "", "NEO4J_DATABASE": neo4j_settings.database}


def lost_line(result: Result, proxy: BoltProxy) -> str:
    """The one line on stderr of a command that lost its server; fails when the command did anything else."""
    assert proxy.cut_event.is_set(), f"the server was never lost:\n{result.output}"
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert LOST in lines[0] and lines[0].startswith("Error: "), lines[0]
    return lines[0]


def count(driver: neo4j.Driver, database: str, query: LiteralString, **params: Any) -> int:
    records, _, _ = driver.execute_query(query, params, database_=database, routing_=neo4j.RoutingControl.READ)
    return int(records[0]["n"])


# --------------------------------------------------------------------------- neurflow query


def test_query_lost_mid_query(neo4j_driver: neo4j.Driver, proxy: BoltProxy, env: dict[str, str]) -> None:
    proxy.cut_on(b"UNION ALL")  # graph-stats' statement: connected, authenticated, then the server is gone
    result = CliRunner().invoke(main, ["query", "graph-stats"], env=env)
    line = lost_line(result, proxy)
    assert "ServiceUnavailable" in line or "SessionExpired" in line
    assert result.stdout == ""


# --------------------------------------------------------------------------- neurflow-ingest


@pytest.mark.parametrize("fault", ["bytes", "messages"])
def test_ingest_lost_mid_circuit_leaves_it_incomplete_and_the_next_run_completes_it(
        fault: str, clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, proxy: BoltProxy,
        env: dict[str, str], tmp_path: Path) -> None:
    db = neo4j_settings.database
    circuit = small_synthetic(207, layers=["_fc", "_blocks.15", "_blocks.14"], images=4)
    save_synthetic(circuit, tmp_path / "circuits" / "0207")
    args = ["--from", str(tmp_path / "circuits"), "--batch-rows", "20"]
    runner = CliRunner()
    # A whole run through the proxy measures the conversation; the graph is emptied and the run repeated with
    # the server lost two thirds of the way in: inside the circuit's writes, whatever their statements are.
    assert runner.invoke(ingest_main, args, env=env).exit_code == 0
    whole = expected_counts([circuit])
    assert graph_counts(clean_graph, db) == whole
    clear_graph(clean_graph, db)
    if fault == "bytes":
        proxy.cut_after_bytes(proxy.client_bytes * 2 // 3)
    else:
        proxy.cut_on_message(proxy.client_messages * 2 // 3)

    result = runner.invoke(ingest_main, args, env=env)
    line = lost_line(result, proxy)
    assert proxy.uri in line and "run the same command again" in line
    assert circuit_status(clean_graph, circuit.id, db) == "incomplete"
    assert incomplete_circuits(clean_graph, db) == [circuit.id]
    with pytest.raises(EmptyAnswerError, match="has no complete circuit in the graph"):  # hidden, and said so
        run_query(clean_graph, "class-circuit", {"class": circuit.target.name}, db)

    proxy.restore()  # the server is back
    again = runner.invoke(ingest_main, args, env=env)
    assert again.exit_code == 0, again.output
    assert circuit_status(clean_graph, circuit.id, db) == "complete"
    assert incomplete_circuits(clean_graph, db) == []
    assert graph_counts(clean_graph, db) == whole


# --------------------------------------------------------------------------- neurflow label


def test_label_lost_mid_run_says_how_far_it_got_and_the_next_run_finishes(
        clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, proxy: BoltProxy, env: dict[str, str],
        tmp_path: Path) -> None:
    db = neo4j_settings.database
    circuit, folder = tiny_circuit(tmp_path / "tiny")
    write_circuit(clean_graph, circuit, folder, database=db)
    args = ["label", "-m", TINY_MODEL, "-c", "Samoyed", "--cache-dir", str(tmp_path / "cache"),
            "--api-key-env", "NEURFLOW_TEST_LLM_KEY", "--max-retries", "0"]
    groups_query: LiteralString = "MATCH (g:NeuronGroup {circuitId: $id}) WHERE g.caption IS NOT NULL RETURN count(g) AS n"
    with FakeOpenAI() as fake:
        env = {**env, "NEURFLOW_TEST_LLM_KEY": KEY, "OPENAI_API_KEY": "", "OPENAI_BASE_URL": fake.base_url}
        proxy.cut_on(b"labelRequest", nth=2)  # the second caption's write: the first one is in
        result = CliRunner().invoke(main, args, env=env)
        line = lost_line(result, proxy)
        assert "storing the caption of _blocks.15/g0" in line and "1 of 10 answer(s) were stored before" in line
        assert KEY not in result.output
        assert count(clean_graph, db, groups_query, id=circuit.id) == 1
        asked = len(fake.chat_requests)
        assert asked == 2

        proxy.restore()
        again = CliRunner().invoke(main, args, env=env)
        assert again.exit_code == 0, again.output
        assert "8 sent, 2 from the cache" in again.output  # the answers before the loss are not asked again
        assert len(fake.chat_requests) == asked + 8
    assert count(clean_graph, db, groups_query, id=circuit.id) == len(circuit.neuron_groups)


# --------------------------------------------------------------------------- neurflow mask and fidelity


@pytest.fixture(scope="module")
def random_resnet(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A resnet18 weights file with seeded random weights, and the model key it loads as."""
    path = tmp_path_factory.mktemp("weights") / "resnet18-random.pt"
    torch.save(load_model("resnet18", random_weights=True, device="cpu").module.state_dict(), path)
    return path, load_model("resnet18", path, device="cpu").info.key


def resnet_circuit(weights_id: str) -> Circuit:
    """A small synthetic Samoyed circuit of the random resnet18 whose images are two real Samoyed photos."""
    circuit = synthetic_circuit(258, layers=RESNET_LAYERS, channels={"fc": 1000, "layer4.1": 512, "layer4.0": 512},
                                tau=3, k=6, images=len(SAMOYEDS), model="resnet18", weights_id=weights_id)
    circuit.images = [replace(record, path=str(path), sha256=file_sha256(path), label="n02111889")
                      for record, path in zip(circuit.images, SAMOYEDS, strict=True)]
    return circuit


@pytest.fixture
def resnet_graph(clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings,
                 random_resnet: tuple[Path, str], tmp_path: Path) -> Circuit:
    """The circuit in the graph and in the folder it was ingested from (where mask reads it)."""
    circuit = resnet_circuit(random_resnet[1].split("@", 1)[1])
    folder = save_circuit(circuit, tmp_path / "resnet-circuit")
    write_circuit(clean_graph, circuit, folder, database=neo4j_settings.database)
    return circuit


def model_args(random_resnet: tuple[Path, str]) -> list[str]:
    return ["-m", "resnet18", "--weights", str(random_resnet[0]), "--device", "cpu", "--no-progress"]


def test_mask_lost_inside_its_record_leaves_no_experiment(
        resnet_graph: Circuit, clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings,
        random_resnet: tuple[Path, str], proxy: BoltProxy, env: dict[str, str]) -> None:
    db = neo4j_settings.database
    # The record is one transaction of two statements: the experiment, then the neurons it masked. The
    # server is lost at the second; the first must not stay behind.
    proxy.cut_on(b"UNWIND $neurons")
    result = CliRunner().invoke(main, ["mask", *model_args(random_resnet), "-c", "Samoyed", "--neurons",
                                       "layer4.1:1,layer4.0:2", "--random-draws", "1", "--patch-images", "0"],
                                env=env)
    lost_line(result, proxy)
    assert count(clean_graph, db, "MATCH (e:MaskingExperiment) RETURN count(e) AS n") == 0
    assert run_query(clean_graph, "masking-experiments", {"model": random_resnet[1]}, db)[1] == []


def test_fidelity_lost_between_the_study_and_its_results_leaves_no_study(
        resnet_graph: Circuit, clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings,
        random_resnet: tuple[Path, str], proxy: BoltProxy, env: dict[str, str], tmp_path: Path) -> None:
    db = neo4j_settings.database
    proxy.cut_on(b"CREATE (x:FidelityResult)")  # the study node is written in the same transaction, just before
    result = CliRunner().invoke(main, ["fidelity", *model_args(random_resnet), "-c", "Samoyed", "--random-draws",
                                       "1", "--out", str(tmp_path / "fidelity"), "--json"], env=env)
    lost_line(result, proxy)
    assert count(clean_graph, db, "MATCH (s:FidelityStudy) RETURN count(s) AS n") == 0
    assert count(clean_graph, db, "MATCH (r:FidelityResult) RETURN count(r) AS n") == 0


def test_fidelity_lost_while_reading_its_circuits(
        resnet_graph: Circuit, random_resnet: tuple[Path, str], proxy: BoltProxy, env: dict[str, str],
        tmp_path: Path) -> None:
    proxy.cut_on(b"r.depth AS depth")  # the core neurons' read, after the circuit was found
    result = CliRunner().invoke(main, ["fidelity", *model_args(random_resnet), "-c", "Samoyed", "--random-draws",
                                       "1", "--out", str(tmp_path / "fidelity"), "--json"], env=env)
    lost_line(result, proxy)
    assert not (tmp_path / "fidelity").exists()
