"""`neurflow label` when something other than the LLM's wording goes wrong: a truncated circuit.json, a write
that Neo4j refuses, an endpoint whose answers the openai SDK cannot read. Each ends with exit 1 and one line on
stderr that names the problem (no traceback), and writes nothing it should not.

The LLM endpoints are local: the fake of tests/labelling/fake_openai.py, and ``RawEndpoint`` below, which
answers every request with the same raw bytes (what a proxy, a login page or a wrong URL sends back).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, LiteralString

import neo4j
import openai
import pytest
from click.testing import CliRunner, Result

from neurflow.circuit import Circuit
from neurflow.cli.main import main
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.ingestion import write_circuit
from neurflow.labelling.llm import LLMClient, LLMError, RetryPolicy
from tests.labelling.fake_openai import FakeOpenAI
from tests.labelling.support import KEY, TINY_MODEL, tiny_circuit

CAPTIONED: LiteralString = "MATCH (g:NeuronGroup {circuitId: $id}) WHERE g.caption IS NOT NULL RETURN count(g) AS n"
CONSTRAINT = "neurflow_fault_test_unique_caption"


class RawEndpoint:
    """An HTTP server on 127.0.0.1 that answers every POST with ``status``, ``content_type`` and ``body``."""

    def __init__(self, body: bytes, content_type: str = "application/json", status: int = 200):
        reply = (status, content_type, body)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(reply[0])
                self.send_header("Content-Type", reply[1])
                self.send_header("Content-Length", str(len(reply[2])))
                self.send_header("x-should-retry", "false")
                self.end_headers()
                self.wfile.write(reply[2])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __enter__(self) -> RawEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def env_of(settings: ConnectionSettings, base_url: str) -> dict[str, str | None]:
    return {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password or "",
            "NEO4J_DATABASE": settings.database, "NEURFLOW_TEST_LLM_KEY": KEY, "OPENAI_API_KEY": None,
            "OPENAI_BASE_URL": base_url, "NEURFLOW_LLM_MODEL": None}


def label_args(tmp_path: Path, *extra: str) -> list[str]:
    return ["label", "-m", TINY_MODEL, "-c", "Samoyed", "--cache-dir", str(tmp_path / "cache"),
            "--api-key-env", "NEURFLOW_TEST_LLM_KEY", "--max-retries", "0", *extra]


def error_line(result: Result) -> str:
    """The one line on stderr of a command that failed cleanly."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output and KEY not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def captioned(driver: neo4j.Driver, database: str, circuit: Circuit) -> int:
    records, _, _ = driver.execute_query(CAPTIONED, id=circuit.id, database_=database)
    return int(records[0]["n"])


@pytest.fixture
def tiny_in_graph(clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings,
                  tmp_path: Path) -> tuple[Circuit, Path]:
    circuit, folder = tiny_circuit(tmp_path / "tiny")
    write_circuit(clean_graph, circuit, folder, database=neo4j_settings.database)
    return circuit, folder


# --------------------------------------------------------------------------- a truncated circuit.json


def test_a_truncated_circuit_json_is_one_line_naming_the_file(tmp_path: Path) -> None:
    _, folder = tiny_circuit(tmp_path / "tiny")
    path = folder / "circuit.json"
    path.write_text(path.read_text()[:-700])  # cut mid-file, as a full disk or a killed copy leaves it
    result = CliRunner().invoke(main, label_args(tmp_path, "--circuit-dir", str(folder), "--dry-run"),
                                env={"OPENAI_API_KEY": None})
    line = error_line(result)
    assert str(path) in line and "is not valid JSON, truncated or damaged" in line


def test_a_truncated_circuit_json_found_through_the_graph_is_one_line(
        tiny_in_graph: tuple[Circuit, Path], neo4j_settings: ConnectionSettings, tmp_path: Path) -> None:
    _, folder = tiny_in_graph
    path = folder / "circuit.json"
    path.write_text(path.read_text()[: len(path.read_text()) // 2])
    with FakeOpenAI() as fake:
        result = CliRunner().invoke(main, label_args(tmp_path), env=env_of(neo4j_settings, fake.base_url))
        assert fake.requests == []
    line = error_line(result)
    assert str(path) in line and "not valid JSON" in line


# --------------------------------------------------------------------------- Neo4j refuses a write


def test_a_write_neo4j_refuses_is_one_line_and_keeps_what_went_in(
        tiny_in_graph: tuple[Circuit, Path], clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings,
        tmp_path: Path) -> None:
    """A uniqueness constraint on captions (as a user might add) refuses the second caption: the fake LLM
    captions every group alike."""
    circuit, _ = tiny_in_graph
    db = neo4j_settings.database
    clean_graph.execute_query(f"CREATE CONSTRAINT {CONSTRAINT} IF NOT EXISTS "
                              "FOR (g:NeuronGroup) REQUIRE g.caption IS UNIQUE", database_=db)
    try:
        with FakeOpenAI() as fake:
            result = CliRunner().invoke(main, label_args(tmp_path), env=env_of(neo4j_settings, fake.base_url))
        line = error_line(result)
    finally:
        clean_graph.execute_query(f"DROP CONSTRAINT {CONSTRAINT} IF EXISTS", database_=db)
    assert "storing the caption of _blocks.15/g0" in line
    assert "Neo4j refused the write (Neo.ClientError.Schema.ConstraintValidationFailed" in line
    assert "1 of 10 answer(s) were stored before" in line and "once that is fixed" in line
    assert captioned(clean_graph, db, circuit) == 1


# --------------------------------------------------------------------------- answers the SDK cannot read


@pytest.mark.parametrize(("body", "content_type", "expected"), [
    (b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "Cap', "application/json", "answered with invalid JSON"),
    (b"<html><body>Please sign in</body></html>", "text/html", "answered with a str ('<html><body>Please sign in"),
    (b'[{"error": "no such route"}]', "application/json", "answered with a list"),
    (b'{"id": "chatcmpl-1", "choices": "none today"}', "application/json", "answered with a malformed chat completion"),
])
def test_an_answer_that_is_no_chat_completion_is_one_line(
        body: bytes, content_type: str, expected: str, tiny_in_graph: tuple[Circuit, Path],
        clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings, tmp_path: Path) -> None:
    circuit, _ = tiny_in_graph
    with RawEndpoint(body, content_type) as endpoint:
        result = CliRunner().invoke(main, label_args(tmp_path), env=env_of(neo4j_settings, endpoint.base_url))
    line = error_line(result)
    assert f"the endpoint {endpoint.base_url} {expected}" in line and "check --base-url" in line
    assert captioned(clean_graph, neo4j_settings.database, circuit) == 0
    assert not any((tmp_path / "cache").rglob("*.json"))  # nothing cached either


def test_an_sdk_error_of_another_type_is_an_llm_error_with_its_message(tmp_path: Path) -> None:
    """An error type of the openai SDK that the client does not handle by name (here the SDK's response
    validation, on a completion without its required fields) becomes one LLMError line with the SDK's words."""
    with RawEndpoint(b'{"choices": [{"index": 0}]}') as endpoint:
        client = LLMClient(model="fake-vision", base_url=endpoint.base_url, api_key=KEY, timeout=5.0,
                           retry=RetryPolicy(max_retries=0), cache=None)
        client._client = openai.OpenAI(base_url=endpoint.base_url, api_key=KEY, max_retries=0, timeout=5.0,
                                       _strict_response_validation=True)
        with pytest.raises(LLMError) as caught:
            client.complete([{"role": "user", "content": "hi"}], prompt_version="test-v1")
    message = str(caught.value)
    assert message.startswith(f"the endpoint {endpoint.base_url} failed: APIResponseValidationError: ")
    assert "\n" not in message and KEY not in message
    assert caught.value.__cause__ is None  # the SDK's traceback is not chained into ours
