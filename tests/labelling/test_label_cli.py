"""`neurflow label` end to end: dry run, missing key, unreachable endpoint, the real test circuits.

The LLM is the local fake endpoint of tests/labelling/fake_openai.py (loopback only); the graph is the real
Neo4j server.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import neo4j
import pytest
from click.testing import CliRunner

from neurflow.circuit import Circuit
from neurflow.cli.label import label
from neurflow.format import load_circuit
from neurflow.labelling.run import LabelSettings, plan_requests
from tests.labelling.fake_openai import FakeOpenAI, Reply
from tests.labelling.support import KEY, TINY_MODEL, decode_data_url, explained_chain, ingest


def _invoke(args: list[str], env: dict[str, str | None] | None = None) -> Any:
    return CliRunner().invoke(label, args, env={"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None,
                                                "NEURFLOW_LLM_MODEL": None, **(env or {})})


def test_cli_dry_run_needs_no_key_and_sends_nothing(tiny: tuple[Circuit, Path], fake: FakeOpenAI,
                                                   tmp_path: Path) -> None:
    _, folder = tiny
    result = _invoke(["-m", TINY_MODEL, "-c", "Samoyed", "--circuit-dir", str(folder.parent), "--dry-run",
                      "--base-url", fake.base_url, "--cache-dir", str(tmp_path / "cache"), "--max-images", "4"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "10 request(s) to gpt-4o at " + fake.base_url in out
    assert re.search(r"\[1/10\] caption   _fc/g0: 4 images, ~\d+ input tokens \(\d+ text \+ 340 image\); "
                     r"cached: no", out)
    assert re.search(r"\[7/10\] evolution _fc/g0 <- _blocks.15/g0, _blocks.15/g1: 12 images \(4\+4\+4\)", out)
    assert "prompt group-caption-v2: The 4 images that follow are patches" in out
    assert "prompt feature-evolution-v1: Below are 3 groups of image patches" in out
    assert "detail=low: 85 tokens per image" in out and "characters/4" in out
    assert "Dry run: nothing sent, nothing written." in out
    assert fake.requests == []


def test_cli_without_key_names_the_variable(tiny: tuple[Circuit, Path]) -> None:
    _, folder = tiny
    result = _invoke(["-m", TINY_MODEL, "-c", "Samoyed", "--circuit-dir", str(folder)])
    assert result.exit_code != 0 and "OPENAI_API_KEY is not set" in result.output
    result = _invoke(["-m", TINY_MODEL, "-c", "Samoyed", "--circuit-dir", str(folder), "--api-key-env", "MY_VLLM_KEY"],
                     env={"OPENAI_API_KEY": KEY, "MY_VLLM_KEY": None})
    assert result.exit_code != 0 and "MY_VLLM_KEY is not set" in result.output


@pytest.mark.neo4j
def test_cli_unreachable_endpoint_names_the_base_url(clean_graph: neo4j.Driver, neo4j_settings: Any,
                                                    tiny: tuple[Circuit, Path], tmp_path: Path) -> None:
    import socket

    circuit, folder = tiny
    ingest(clean_graph, neo4j_settings.database, circuit, folder)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{s.getsockname()[1]}/v1"
    result = _invoke(["-m", TINY_MODEL, "-c", "258", "--base-url", base_url, "--max-retries", "0", "--no-cache"],
                     env={"OPENAI_API_KEY": KEY})
    assert result.exit_code != 0
    assert f"the LLM endpoint {base_url} cannot be reached" in result.output and KEY not in result.output


@pytest.mark.neo4j
def test_cli_labels_real_circuits_end_to_end(clean_graph: neo4j.Driver, neo4j_settings: Any,
                                            real_circuit_dirs: list[Path], tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    database = neo4j_settings.database
    for folder in real_circuit_dirs:
        ingest(clean_graph, database, load_circuit(folder), folder)
    folder = next(f for f in real_circuit_dirs if load_circuit(f).target.name == "Samoyed")
    samoyed = load_circuit(folder)
    planned = plan_requests(samoyed, folder, LabelSettings(max_images=5))
    caplog.set_level(logging.DEBUG)
    args = ["--model", "efficientnet-lite0", "--class", "Samoyed", "--llm-model", "fake-vision", "--max-images", "5",
            "--cache-dir", str(tmp_path / "cache"), "--api-key-env", "NEURFLOW_TEST_LLM_KEY"]
    with FakeOpenAI() as server:
        env = {"NEURFLOW_TEST_LLM_KEY": KEY, "OPENAI_API_KEY": None}
        server.script.append(Reply(429, "error-429", {"Retry-After": "0"}))  # retried, not fatal
        result = _invoke([*args, "--base-url", server.base_url], env)
        assert result.exit_code == 0, result.output
        bodies = server.chat_requests
        assert len(bodies) == len(planned) + 1  # the first one twice: after the 429
        assert bodies[0] == bodies[1] and [b["messages"] for b in bodies[1:]] == [r.messages for r in planned]
        assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)
        for body in bodies:
            assert body["model"] == "fake-vision" and [m["role"] for m in body["messages"]] == ["system", "user"]
            urls = [p["image_url"]["url"] for p in body["messages"][1]["content"] if p["type"] == "image_url"]
            assert urls and all(decode_data_url(url)[0] == "image/jpeg" for url in urls)
        sent = len(bodies)
        assert f"Done: {len(planned)} request(s), {len(planned)} sent, 0 from the cache" in result.output
        # Re-running costs nothing: every answer comes from the cache.
        again = _invoke([*args, "--base-url", server.base_url], env)
        assert again.exit_code == 0, again.output
        assert len(server.chat_requests) == sent
        assert f"0 sent, {len(planned)} from the cache" in again.output
    for text in (result.output, again.output, caplog.text):
        assert KEY not in text
    assert not any(KEY in p.read_text() for p in (tmp_path / "cache").rglob("*.json"))

    records, _, _ = clean_graph.execute_query(
        "MATCH (g:NeuronGroup {circuitId: $id}) RETURN count(g) AS groups, count(g.caption) AS captions, "
        "collect(DISTINCT g.labelModel) AS models", id=samoyed.id, database_=database)
    assert records[0]["groups"] == records[0]["captions"] == len(samoyed.neuron_groups)
    assert records[0]["models"] == ["fake-vision"]
    chain = explained_chain(clean_graph, database, model="efficientnet-lite0")
    assert [row["layer"] for row in chain] == list(reversed(samoyed.layers))
    assert all(row["caption"] for row in chain)
    assert all(row["evolutionCaption"] for row in chain[:-1]) and chain[-1]["evolutionCaption"] is None
    records, _, _ = clean_graph.execute_query(  # the golden retriever circuit was not labelled
        "MATCH (g:NeuronGroup) WHERE g.circuitId <> $id RETURN count(g.caption) AS n", id=samoyed.id,
        database_=database)
    assert records[0]["n"] == 0
