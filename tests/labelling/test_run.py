"""A labelling run: the plan, answers through the fake endpoint, and what is written to the real Neo4j.

The LLM is the local fake endpoint of tests/labelling/fake_openai.py (loopback only).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import neo4j
import pytest

from neurflow.circuit import Circuit
from neurflow.labelling.errors import LabellingError
from neurflow.labelling.run import LabelSettings, plan_requests, run_requests
from tests.labelling.fake_openai import FakeOpenAI, Reply, fixture
from tests.labelling.support import (
    QUERY,
    TINY_MODEL,
    answer_text,
    explained_chain,
    ingest,
    llm_client,
    script_responder,
)


def test_plan_requests(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    requests = plan_requests(circuit, folder, LabelSettings())
    assert [(r.kind, r.group) for r in requests] == [
        ("caption", "_fc/g0"), ("caption", "_blocks.15/g0"), ("caption", "_blocks.15/g1"),
        ("caption", "_blocks.15/g2"), ("caption", "_blocks.14/g0"), ("caption", "_blocks.14/g1"),
        ("evolution", "_fc/g0"), ("evolution", "_blocks.15/g0"), ("evolution", "_blocks.15/g1"),
        ("evolution", "_blocks.15/g2"),
    ]
    only = plan_requests(circuit, folder, LabelSettings(layers=["_blocks.15"], captions=False, max_lower=1))
    assert [(r.group, r.lower) for r in only] == [
        ("_blocks.15/g0", ["_blocks.14/g0"]), ("_blocks.15/g1", ["_blocks.14/g1"]), ("_blocks.15/g2", ["_blocks.14/g0"])]
    with pytest.raises(LabellingError, match="no layer 'layer4'"):
        plan_requests(circuit, folder, LabelSettings(layers=["layer4"]))


def test_run_requests_parses_and_never_crashes_on_bad_answers(tiny: tuple[Circuit, Path], tmp_path: Path) -> None:
    circuit, folder = tiny
    settings = LabelSettings()
    requests = plan_requests(circuit, folder, settings)
    with FakeOpenAI(script_responder({1: "caption-malformed", 7: "evolution-malformed"})) as server:
        client = llm_client(server, tmp_path / "cache")
        lines: list[str] = []
        with pytest.warns(UserWarning, match="does not follow the answer form; stored raw") as caught:
            report = run_requests(requests, client, settings, echo=lines.append)
        assert len(caught) == 2
        assert (report.requests, report.sent, report.cached, report.parsed, report.unparsed) == (10, 10, 0, 8, 2)
        assert len(server.chat_requests) == 10
        for body, request in zip(server.chat_requests, requests, strict=True):
            assert body["model"] == "fake-vision" and body["messages"] == request.messages
        assert "UNPARSED, stored raw" in lines[1] and "(sent)" in lines[0]
        with pytest.warns(UserWarning, match="stored raw"):
            again = run_requests(requests, client, settings)
        assert (again.sent, again.cached, again.unparsed) == (0, 10, 2) and len(server.chat_requests) == 10


def test_a_cut_answer_is_reported(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    settings = LabelSettings(evolution=False, max_tokens=5)
    requests = plan_requests(circuit, folder, settings)[:1]
    cut = fixture("caption-ok")
    cut["choices"][0]["finish_reason"] = "length"
    cut["choices"][0]["message"]["content"] = "Common features: dense white"
    with FakeOpenAI(lambda request: Reply(body=cut)) as server:
        with pytest.warns(UserWarning) as caught:
            report = run_requests(requests, llm_client(server, None), settings)
    messages = [str(w.message) for w in caught]
    assert any("cut at max-tokens (5)" in m for m in messages) and any("stored raw" in m for m in messages)
    assert report.unparsed == 1


def test_explained_chain_query_header() -> None:
    header = [line for line in QUERY.read_text().splitlines() if line.startswith("//")]
    assert header[0] == "// name: explained-chain" and header[1].startswith("// description: ")
    params = [line for line in header if line.startswith("// param: ")]
    assert [p.split()[2] for p in params] == ["class", "model", "circuit"]
    for line in params:
        assert re.match(r"// param: \w+ \((string|int|float|bool), (required|default \S+)\) \S", line), line
    from neurflow.graph.named_queries import load_query

    info = load_query("explained-chain", QUERY.parent)  # the project's reader of named queries
    assert [(p.name, p.required) for p in info.params] == [("class", True), ("model", False), ("circuit", False)]


@pytest.mark.neo4j
def test_labels_and_evolution_are_written_to_the_graph(clean_graph: neo4j.Driver, neo4j_settings: Any,
                                                       tiny: tuple[Circuit, Path], tmp_path: Path) -> None:
    database = neo4j_settings.database
    circuit, folder = tiny
    ingest(clean_graph, database, circuit, folder)
    settings = LabelSettings()
    requests = plan_requests(circuit, folder, settings)
    with FakeOpenAI(script_responder({3: "caption-malformed", 9: "evolution-malformed"})) as server:
        with pytest.warns(UserWarning, match="stored raw"):
            report = run_requests(requests, llm_client(server, tmp_path / "cache"), settings, driver=clean_graph,
                                     database=database)
    assert report.written == 6 + 2 + 2 + 2 + 1  # 6 groups, then the FLOWS_TO edges of each evolution

    records, _, _ = clean_graph.execute_query(
        "MATCH (g:NeuronGroup {circuitId: $id}) RETURN g ORDER BY g.depth, g.groupId", id=circuit.id,
        database_=database)
    groups = {r["g"]["groupId"]: r["g"] for r in records}
    assert len(groups) == 6
    good = groups["_fc/g0"]
    assert good["label"] == "white fluffy fur" and good["caption"].startswith("Close-up areas")
    assert list(good["commonFeatures"]) == ["dense white fur", "soft, fluffy texture", "pale cream highlights"]
    assert good["labelModel"] == "fake-vision" and good["labelPromptVersion"] == "group-caption-v2"
    assert isinstance(good["labelledAt"], neo4j.time.DateTime) and good.get("labelRaw") is None
    bad = groups["_blocks.15/g2"]
    assert bad.get("label") is None and bad.get("caption") is None
    assert bad["labelRaw"] == answer_text("caption-malformed") and bad["labelPromptVersion"] == "group-caption-v2"

    records, _, _ = clean_graph.execute_query(
        "MATCH (l:NeuronGroup)-[f:FLOWS_TO {circuitId: $id}]->(u:NeuronGroup) "
        "RETURN l.groupId AS lower, u.groupId AS upper, f ORDER BY upper, lower", id=circuit.id, database_=database)
    flows = {(r["lower"], r["upper"]): r["f"] for r in records}
    assert len(flows) == 8
    eye = flows[("_blocks.15/g0", "_fc/g0")]
    assert eye["evolutionCaption"].startswith("The white dog face of group 1 forms")
    assert eye["evolutionMatch"] == "provides the eyes of group 1's face" and eye["evolutionMatched"] is True
    assert eye["evolutionUpperFeatures"] == "white dog face with dark eyes and a black nose"
    assert eye["evolutionLowerFeatures"] == "dark round eyes surrounded by white fur"
    assert json.loads(eye["evolutionFeatures"]) == {
        "_fc/g0": "white dog face with dark eyes and a black nose",
        "_blocks.15/g0": "dark round eyes surrounded by white fur", "_blocks.15/g1": "dense white fluffy fur texture"}
    assert set(json.loads(eye["evolutionMatches"])) == {"_blocks.15/g0", "_blocks.15/g1"}
    assert list(eye["evolutionGroups"]) == ["_fc/g0", "_blocks.15/g0", "_blocks.15/g1"]
    assert eye["evolutionModel"] == "fake-vision" and eye["evolutionPromptVersion"] == "feature-evolution-v1"
    assert isinstance(eye["evolutionAt"], neo4j.time.DateTime)
    assert "evolutionCaption" not in flows[("_blocks.15/g2", "_fc/g0")]  # negative weight: not explained
    raw = flows[("_blocks.14/g0", "_blocks.15/g2")]
    assert raw.get("evolutionCaption") is None and raw["evolutionRaw"] == answer_text("evolution-malformed")

    chain = explained_chain(clean_graph, database)
    assert [(row["step"], row["group"]) for row in chain] == [
        (1, "_blocks.14/g0"), (2, "_blocks.15/g0"), (3, "_fc/g0")]  # low to high, the strongest path
    assert [row["upGroup"] for row in chain] == ["_blocks.15/g0", "_fc/g0", None]
    assert all(row["caption"] for row in chain) and all(row["label"] for row in chain)
    assert chain[0]["evolutionCaption"] and chain[1]["evolutionCaption"] and chain[2]["evolutionCaption"] is None
    assert chain[0]["weight"] == 0.6 and not any(row["unparsed"] for row in chain)
    assert explained_chain(clean_graph, database, model=TINY_MODEL, circuit=circuit.id) == chain
    from neurflow.graph.named_queries import run_query

    columns, rows = run_query(clean_graph, "explained-chain", {"class": "258"}, database, QUERY.parent)
    assert columns[:6] == ["class", "step", "layer", "depth", "group", "label"]
    assert [row["caption"] for row in rows] == [row["caption"] for row in chain]
    assert explained_chain(clean_graph, database, model="resnet50") == []


@pytest.mark.neo4j
def test_a_group_missing_from_the_graph_is_an_error(clean_graph: neo4j.Driver, neo4j_settings: Any,
                                                    tiny: tuple[Circuit, Path], fake: FakeOpenAI,
                                                    tmp_path: Path) -> None:
    circuit, folder = tiny  # not ingested
    settings = LabelSettings(evolution=False)
    requests = plan_requests(circuit, folder, settings)[:1]
    with pytest.raises(LabellingError, match="not in the graph; ingest the circuit first"):
        run_requests(requests, llm_client(fake, None), settings, driver=clean_graph,
                        database=neo4j_settings.database)
