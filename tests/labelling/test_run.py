"""Concept labelling: prompts, patch images, request shape, parsing, token estimate, graph writes, the CLI.

The LLM is the local fake endpoint of tests/fake_openai.py (loopback only); the graph is the real Neo4j server.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, LiteralString, cast

import neo4j
import pytest
from click.testing import CliRunner
from PIL import Image, ImageChops, ImageStat

from neurflow.circuit import (
    Circuit,
    ClassInfo,
    CoreNeuron,
    Edge,
    GroupEdge,
    ImageRecord,
    ModelInfo,
    NeuronGroup,
    PatchRecord,
    SemanticGroup,
)
from neurflow.cli.label import label
from neurflow.engine.models import file_sha256
from neurflow.format import THUMBNAIL_DIR, load_circuit, save_circuit
from neurflow.labelling import run as lb
from neurflow.labelling.llm import LLMClient, ResponseCache, RetryPolicy
from neurflow.pictures import central_patches
from tests.labelling.fake_openai import FakeOpenAI, Reply, fixture, user_parts

TESTS = Path(__file__).parents[1]
SAMOYEDS = sorted((TESTS / "data" / "imagewoof" / "n02111889").glob("*.JPEG"))[:3]
QUERY = TESTS.parent / "queries" / "explained-chain.cypher"
KEY = "sk-test-SECRET-labelling-7d31e0"  # recognisable: must never be printed or logged
TINY_MODEL = "tiny-test-net"


def answer_text(name: str) -> str:
    return fixture(name)["choices"][0]["message"]["content"]


# --------------------------------------------------------------------------- a tiny real-image circuit


def tiny_circuit(root: Path) -> tuple[Circuit, Path]:
    """A hand-made three-layer circuit of 3 real Samoyed images: 1 + 3 + 2 neuron groups, saved with thumbnails.

    Images are copied under ``root`` so tests may delete or change them.
    """
    images_dir = root / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    images, patches, thumbs = [], [], {}
    for i, source in enumerate(SAMOYEDS):
        path = images_dir / source.name
        shutil.copy(source, path)
        with Image.open(path) as im:
            w, h = im.size
            side = min(w, h)
            boxes = [(0, 0, side, side), (0, 0, side // 2, side // 2), (w - side // 2, h - side // 2, w, h)]
            for j, box in enumerate(boxes):
                pid = 3 * i + j
                patches.append(PatchRecord(pid, i, box, [1.0, 0.5, 0.5][j]))
                thumbs[pid] = im.convert("RGB").crop(box).resize((96, 96))
        images.append(ImageRecord(str(path), file_sha256(path), w, h, "n02111889", 258, 10.0 - i))

    def sg(layer: str, channel: int, pids: list[int]) -> SemanticGroup:
        return SemanticGroup(layer, channel, 0, pids, [1.0 - 0.1 * k for k in range(len(pids))])

    sgs = [sg("_fc", 258, [0, 1, 2, 3, 4, 5]), sg("_blocks.15", 10, [0, 1, 2, 3]), sg("_blocks.15", 11, [4, 5, 6, 7, 8]),
           sg("_blocks.15", 12, [6, 7, 8]), sg("_blocks.14", 20, [0, 2, 4, 6]), sg("_blocks.14", 21, [1, 3, 5, 7])]

    def core(layer: str, channel: int, parents: list[str]) -> CoreNeuron:
        return CoreNeuron(layer, channel, list(range(9)), [1.0] * 9, 1.0, parents)

    neurons = {
        "_fc": [core("_fc", 258, [])],
        "_blocks.15": [core("_blocks.15", c, ["_fc:258"]) for c in (10, 11, 12)],
        "_blocks.14": [core("_blocks.14", c, ["_blocks.15:10", "_blocks.15:11", "_blocks.15:12"]) for c in (20, 21)],
    }
    edges = [
        Edge("_fc:258/0", "_fc:258", "_blocks.15:10", 0.5, 0.5),
        Edge("_fc:258/0", "_fc:258", "_blocks.15:11", 0.3, 0.3),
        Edge("_fc:258/0", "_fc:258", "_blocks.15:12", -0.2, -0.2),
        Edge("_blocks.15:10/0", "_blocks.15:10", "_blocks.14:20", 0.6, 0.6),
        Edge("_blocks.15:10/0", "_blocks.15:10", "_blocks.14:21", 0.4, 0.4),
        Edge("_blocks.15:11/0", "_blocks.15:11", "_blocks.14:20", 0.2, 0.2),
        Edge("_blocks.15:11/0", "_blocks.15:11", "_blocks.14:21", 0.8, 0.8),
        Edge("_blocks.15:12/0", "_blocks.15:12", "_blocks.14:20", 1.0, 1.0),
    ]
    groups = [
        NeuronGroup("_fc/g0", "_fc", ["_fc:258/0"], ["_fc:258"], [0, 1, 2, 3, 4, 5]),
        NeuronGroup("_blocks.15/g0", "_blocks.15", ["_blocks.15:10/0"], ["_blocks.15:10"], [0, 1, 2, 3]),
        NeuronGroup("_blocks.15/g1", "_blocks.15", ["_blocks.15:11/0"], ["_blocks.15:11"], [4, 5, 6, 7, 8]),
        NeuronGroup("_blocks.15/g2", "_blocks.15", ["_blocks.15:12/0"], ["_blocks.15:12"], [6, 7, 8]),
        NeuronGroup("_blocks.14/g0", "_blocks.14", ["_blocks.14:20/0"], ["_blocks.14:20"], [0, 2, 4, 6]),
        NeuronGroup("_blocks.14/g1", "_blocks.14", ["_blocks.14:21/0"], ["_blocks.14:21"], [1, 3, 5, 7]),
    ]
    group_edges = [
        GroupEdge("_fc/g0", "_blocks.15/g0", 0.5), GroupEdge("_fc/g0", "_blocks.15/g1", 0.3),
        GroupEdge("_fc/g0", "_blocks.15/g2", -0.2),
        GroupEdge("_blocks.15/g0", "_blocks.14/g0", 0.6), GroupEdge("_blocks.15/g0", "_blocks.14/g1", 0.4),
        GroupEdge("_blocks.15/g1", "_blocks.14/g0", 0.2), GroupEdge("_blocks.15/g1", "_blocks.14/g1", 0.8),
        GroupEdge("_blocks.15/g2", "_blocks.14/g0", 1.0),
    ]
    circuit = Circuit(
        model=ModelInfo(TINY_MODEL, "tiny-weights", 224, 1000), target=ClassInfo(258, "Samoyed", "n02111889"),
        layers=["_fc", "_blocks.15", "_blocks.14"], params={"tiny": True}, images=images, patches=patches,
        neurons=neurons, semantic_groups=sgs, edges=edges, neuron_groups=groups, group_edges=group_edges,
        created="2025-01-01T00:00:00+00:00",
    )
    folder = save_circuit(circuit, root / "0258-samoyed", thumbnails=thumbs)
    return circuit, folder


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Circuit, Path]:
    return tiny_circuit(tmp_path / "tiny")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _client(fake: FakeOpenAI, cache: Path | None, **kwargs: Any) -> LLMClient:
    options: dict[str, Any] = dict(model="fake-vision", base_url=fake.base_url, api_key=KEY, timeout=10.0,
                                   retry=RetryPolicy(max_retries=2, base_delay=0.01),
                                   cache=ResponseCache(cache) if cache else None)
    options.update(kwargs)
    return LLMClient(**options)


def _group(circuit: Circuit, group_id: str) -> NeuronGroup:
    return next(g for g in circuit.neuron_groups if g.id == group_id)


def _decode(url: str) -> tuple[str, Image.Image]:
    match = re.fullmatch(r"data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)", url)
    assert match, url[:60]
    image = Image.open(io.BytesIO(base64.b64decode(match.group(2))))
    return match.group(1), image


# --------------------------------------------------------------------------- prompts


@pytest.mark.parametrize("name", [lb.CAPTION_PROMPT, lb.EVOLUTION_PROMPT])
def test_prompt_files_are_versioned_three_part_prompts(name: str) -> None:
    path = lb.prompt_path(name)
    assert path.name == f"{name}-v1.txt"
    text = path.read_text()
    assert f"# neurflow prompt: {name}\n# version: v1\n" in text
    prompt = lb.load_prompt(name)
    assert prompt.id == f"{name}-v1"
    assert "image captioning model" in prompt.role
    assert "outliers" in prompt.instructions and "objective visual features" in prompt.instructions
    assert "context" in prompt.instructions and "opinions" in prompt.instructions
    assert "one or two sentences" in prompt.instructions or "one or two sentences" in prompt.answer_form
    assert "Caption: <" in prompt.answer_form
    assert "{count}" not in prompt.user_text(5)
    # Hard-wrapped paragraphs are joined; items and answer-form lines keep their own lines.
    assert all(line.endswith((".", ":", '"no match".')) for line in prompt.instructions.splitlines())
    assert "\n" not in prompt.role
    if name == lb.CAPTION_PROMPT:
        assert "\n" not in prompt.instructions
        assert [line.split(":")[0] for line in prompt.answer_form.splitlines()[1:]] == [
            "Common features", "Label", "Caption"]
    else:
        assert "Group 1 comes from a higher layer" in prompt.instructions
        assert '"no match"' in prompt.instructions and "angle" in prompt.instructions
        assert "Features:" in prompt.answer_form and "Matches:" in prompt.answer_form
        assert [line[:2] for line in prompt.instructions.splitlines()] == ["Be", "1.", "2.", "3."]


def test_prompt_format_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing answer form"):
        lb.parse_prompt("# neurflow prompt: x\n# version: v1\n[role]\nr\n[instructions]\ni\n")
    with pytest.raises(ValueError, match="unknown part"):
        lb.parse_prompt("# neurflow prompt: x\n# version: v1\n[rolle]\nr\n")
    wrong = tmp_path / "group-caption-v1.txt"
    wrong.write_text(lb.prompt_path(lb.CAPTION_PROMPT).read_text().replace("# version: v1", "# version: v2"))
    monkeypatch.setattr(lb, "prompt_path", lambda name, version="v1": wrong)
    with pytest.raises(lb.LabellingError, match="declares group-caption-v2"):
        lb.load_prompt(lb.CAPTION_PROMPT)


# --------------------------------------------------------------------------- parsing


def test_parse_caption_answers() -> None:
    ok = lb.parse_caption(answer_text("caption-ok"))
    assert ok.parsed and ok.label == "white fluffy fur"
    assert ok.common_features == ["dense white fur", "soft, fluffy texture", "pale cream highlights"]
    assert ok.caption is not None and ok.caption.startswith("Close-up areas of dense, fluffy white fur")

    markdown = lb.parse_caption(answer_text("caption-markdown"))
    assert markdown.parsed
    assert markdown.common_features == ["dark round eye", "white fur around the eye", "black rim of the eyelid"]
    assert markdown.caption == "A dark, round eye set in white fur, with a thin black rim."
    assert markdown.label == "dark round eye"  # no Label line: the first common feature

    bad = lb.parse_caption(answer_text("caption-malformed"))
    assert not bad.parsed and bad.caption is None and bad.raw.startswith("I'm sorry")
    assert not lb.parse_caption("").parsed and not lb.parse_caption("Caption:   ").parsed


def test_parse_evolution_answers() -> None:
    ok = lb.parse_evolution(answer_text("evolution-ok"), 4)
    assert ok.parsed and set(ok.features) == {1, 2, 3, 4} and set(ok.matches) == {2, 3, 4}
    assert ok.features[1] == "white dog face with dark eyes and a black nose"
    assert ok.matches[2] == "provides the eyes of group 1's face"
    assert lb.is_no_match(ok.matches[4]) and not lb.is_no_match(ok.matches[3])
    assert ok.caption is not None and ok.caption.startswith("The white dog face of group 1 forms")

    fewer = lb.parse_evolution(answer_text("evolution-ok"), 3)  # groups beyond the request are ignored
    assert set(fewer.features) == {1, 2, 3} and set(fewer.matches) == {2, 3}

    decorated = lb.parse_evolution(
        "**Features:**\n- **Group 1:** pointed ear\n- Group 2 (lower): a diagonal edge\n  that continues\n"
        "## Matches\nMatches:\n* Group 2 -> Group 1: two such edges meet to form the ear's tip\n"
        "**Caption:** Two diagonal edges\nmeet at an angle to form a pointed ear.", 2)
    assert decorated.parsed and decorated.features == {1: "pointed ear", 2: "a diagonal edge that continues"}
    assert decorated.matches == {2: "two such edges meet to form the ear's tip"}
    assert decorated.caption == "Two diagonal edges meet at an angle to form a pointed ear."

    bad = lb.parse_evolution(answer_text("evolution-malformed"), 3)
    assert not bad.parsed and bad.raw == answer_text("evolution-malformed")


# --------------------------------------------------------------------------- patch images


def test_patch_images_are_crops_of_the_original(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    images = lb.PatchImages(circuit, folder, size=224)
    for patch in circuit.patches:
        encoded = images.get(patch.id)
        assert encoded is not None and encoded.source == "original" and encoded.mime == "image/jpeg"
        mime, decoded = _decode(encoded.data_url)
        assert mime == "image/jpeg" and decoded.format == "JPEG" and max(decoded.size) == 224
        with Image.open(circuit.images[patch.image].path) as original:
            reference = original.convert("RGB").crop(patch.box).resize(decoded.size)
        difference = ImageStat.Stat(ImageChops.difference(reference, decoded.convert("RGB"))).mean
        assert max(difference) < 12  # JPEG noise only
    assert images.fallbacks == []


def test_patch_images_fall_back_to_thumbnails(tiny: tuple[Circuit, Path], caplog: pytest.LogCaptureFixture) -> None:
    circuit, folder = tiny
    Path(circuit.images[0].path).unlink()  # patches 0, 1, 2
    Path(circuit.images[1].path).write_bytes(Path(SAMOYEDS[2]).read_bytes())  # changed file: patches 3, 4, 5
    with Image.open(folder / THUMBNAIL_DIR / "1.jpg") as thumb:  # a PNG under a .jpg name
        thumb.save(folder / THUMBNAIL_DIR / "1.jpg", format="PNG")
    (folder / THUMBNAIL_DIR / "2.jpg").unlink()
    images = lb.PatchImages(circuit, folder)
    zero, one, four, seven = images.get(0), images.get(1), images.get(4), images.get(7)
    assert zero is not None and zero.source == "thumbnail" and zero.mime == "image/jpeg"
    assert one is not None and one.source == "thumbnail" and one.mime == "image/png"
    assert _decode(one.data_url)[1].format == "PNG"
    assert four is not None and four.source == "thumbnail"
    assert "sha256 differs" in caplog.text
    assert seven is not None and seven.source == "original"
    with pytest.warns(UserWarning, match="patch 2: neither the original image nor a thumbnail"):
        assert images.get(2) is None
    assert images.of([0, 2, 7]) == [zero, seven]


# --------------------------------------------------------------------------- requests


def test_caption_request_shape(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    prompt = lb.load_prompt(lb.CAPTION_PROMPT)
    group = _group(circuit, "_blocks.15/g1")
    request = lb.caption_request(circuit, group, lb.PatchImages(circuit, folder), prompt, max_images=3)
    assert request is not None and request.kind == "caption" and request.group == "_blocks.15/g1"
    system, user = request.messages
    assert system == {"role": "system", "content": prompt.role}
    assert user["role"] == "user"
    text, *images = user["content"]
    assert text == {"type": "text", "text": prompt.user_text(3)} and "The 3 images" in text["text"]
    assert [im.patch for im in request.images] == central_patches(circuit, group, 3) == [4, 5, 6]
    for part, encoded in zip(images, request.images, strict=True):
        assert part["type"] == "image_url" and part["image_url"]["detail"] == "low"
        assert part["image_url"]["url"] == encoded.data_url
        assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_lower_groups_and_evolution_request_shape(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    top = _group(circuit, "_fc/g0")
    # Positive weights only, largest first; the strongest path's next group is always included.
    assert [e.lower for e in lb.lower_groups(circuit, top, 3)] == ["_blocks.15/g0", "_blocks.15/g1"]
    assert [e.lower for e in lb.lower_groups(circuit, top, 1)] == ["_blocks.15/g0"]
    assert [e.lower for e in lb.lower_groups(circuit, top, 1, strongest="_blocks.15/g1")] == \
        ["_blocks.15/g0", "_blocks.15/g1"]
    prompt = lb.load_prompt(lb.EVOLUTION_PROMPT)
    edges = lb.lower_groups(circuit, top, 3)
    request = lb.evolution_request(circuit, top, edges, lb.PatchImages(circuit, folder), prompt, per_group=2)
    assert request is not None and request.groups == ["_fc/g0", "_blocks.15/g0", "_blocks.15/g1"]
    assert request.weights == [0.5, 0.3] and request.images_per_group == [2, 2, 2]
    system, user = request.messages
    assert system["role"] == "system" and system["content"] == prompt.role
    kinds = [p["type"] if p["type"] == "image_url" else p["text"] for p in user["content"]]
    assert kinds[0] == prompt.user_text(3) and "Below are 3 groups" in kinds[0]
    assert kinds[1:] == ["Group 1 (higher layer):", "image_url", "image_url", "Group 2 (lower layer):", "image_url",
                         "image_url", "Group 3 (lower layer):", "image_url", "image_url"]


def test_plan_requests(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    requests = lb.plan_requests(circuit, folder, lb.LabelSettings())
    assert [(r.kind, r.group) for r in requests] == [
        ("caption", "_fc/g0"), ("caption", "_blocks.15/g0"), ("caption", "_blocks.15/g1"),
        ("caption", "_blocks.15/g2"), ("caption", "_blocks.14/g0"), ("caption", "_blocks.14/g1"),
        ("evolution", "_fc/g0"), ("evolution", "_blocks.15/g0"), ("evolution", "_blocks.15/g1"),
        ("evolution", "_blocks.15/g2"),
    ]
    only = lb.plan_requests(circuit, folder, lb.LabelSettings(layers=["_blocks.15"], captions=False, max_lower=1))
    assert [(r.group, r.lower) for r in only] == [
        ("_blocks.15/g0", ["_blocks.14/g0"]), ("_blocks.15/g1", ["_blocks.14/g1"]), ("_blocks.15/g2", ["_blocks.14/g0"])]
    with pytest.raises(lb.LabellingError, match="no layer 'layer4'"):
        lb.plan_requests(circuit, folder, lb.LabelSettings(layers=["layer4"]))


def test_image_token_formula() -> None:
    assert lb.image_tokens(224, 224, "low") == 85
    assert lb.image_tokens(224, 224, "high") == 85 + 170  # one tile
    assert lb.image_tokens(1024, 1024, "high") == 765  # OpenAI's worked example: 768x768, 4 tiles
    assert lb.image_tokens(2048, 4096, "high") == 1105  # 1024x2048 -> 768x1536, 6 tiles
    assert lb.image_tokens(2048, 4096, "auto") == 1105  # counted as high


def test_token_estimate(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    request = lb.plan_requests(circuit, folder, lb.LabelSettings(max_images=4))[0]
    text, images = lb.estimate_tokens(request, "low")
    assert images == 4 * 85
    assert text == -(-len(request.text) // 4) and request.prompt.role in request.text


# --------------------------------------------------------------------------- answers through the fake endpoint


def _script_responder(bodies: dict[int, str]) -> Callable[[dict[str, Any]], Reply]:
    """Answers the n-th request (from 0) with ``bodies[n]``, else with the default fixture for its kind."""
    count = {"n": 0}

    def respond(request: dict[str, Any]) -> Reply:
        n = count["n"]
        count["n"] += 1
        evolution = any(p.get("text", "").startswith("Group 2") for p in user_parts(request))
        return Reply(body=bodies.get(n, "evolution-ok" if evolution else "caption-ok"))

    return respond


def test_run_requests_parses_and_never_crashes_on_bad_answers(tiny: tuple[Circuit, Path], tmp_path: Path) -> None:
    circuit, folder = tiny
    settings = lb.LabelSettings()
    requests = lb.plan_requests(circuit, folder, settings)
    with FakeOpenAI(_script_responder({1: "caption-malformed", 7: "evolution-malformed"})) as server:
        client = _client(server, tmp_path / "cache")
        lines: list[str] = []
        with pytest.warns(UserWarning, match="does not follow the answer form; stored raw") as caught:
            report = lb.run_requests(requests, client, settings, echo=lines.append)
        assert len(caught) == 2
        assert (report.requests, report.sent, report.cached, report.parsed, report.unparsed) == (10, 10, 0, 8, 2)
        assert len(server.chat_requests) == 10
        for body, request in zip(server.chat_requests, requests, strict=True):
            assert body["model"] == "fake-vision" and body["messages"] == request.messages
        assert "UNPARSED, stored raw" in lines[1] and "(sent)" in lines[0]
        with pytest.warns(UserWarning, match="stored raw"):
            again = lb.run_requests(requests, client, settings)
        assert (again.sent, again.cached, again.unparsed) == (0, 10, 2) and len(server.chat_requests) == 10


def test_a_cut_answer_is_reported(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    settings = lb.LabelSettings(evolution=False, max_tokens=5)
    requests = lb.plan_requests(circuit, folder, settings)[:1]
    cut = fixture("caption-ok")
    cut["choices"][0]["finish_reason"] = "length"
    cut["choices"][0]["message"]["content"] = "Common features: dense white"
    with FakeOpenAI(lambda request: Reply(body=cut)) as server:
        with pytest.warns(UserWarning) as caught:
            report = lb.run_requests(requests, _client(server, None), settings)
    messages = [str(w.message) for w in caught]
    assert any("cut at max-tokens (5)" in m for m in messages) and any("stored raw" in m for m in messages)
    assert report.unparsed == 1


# --------------------------------------------------------------------------- graph


def _ingest(driver: neo4j.Driver, database: str, circuit: Circuit, folder: Path) -> None:
    from neurflow.graph.store import write_circuit

    write_circuit(driver, circuit, folder, database=database)


def _chain(driver: neo4j.Driver, database: str, **params: Any) -> list[dict[str, Any]]:
    values = {"class": "Samoyed", "model": None, "circuit": None, **params}
    # The project's own query file, never user text; parameters are bound.
    records, _, _ = driver.execute_query(cast(LiteralString, QUERY.read_text()), values, database_=database,
                                         routing_=neo4j.RoutingControl.READ)
    return [r.data() for r in records]


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
    _ingest(clean_graph, database, circuit, folder)
    settings = lb.LabelSettings()
    requests = lb.plan_requests(circuit, folder, settings)
    with FakeOpenAI(_script_responder({3: "caption-malformed", 9: "evolution-malformed"})) as server:
        with pytest.warns(UserWarning, match="stored raw"):
            report = lb.run_requests(requests, _client(server, tmp_path / "cache"), settings, driver=clean_graph,
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
    assert good["labelModel"] == "fake-vision" and good["labelPromptVersion"] == "group-caption-v1"
    assert isinstance(good["labelledAt"], neo4j.time.DateTime) and good.get("labelRaw") is None
    bad = groups["_blocks.15/g2"]
    assert bad.get("label") is None and bad.get("caption") is None
    assert bad["labelRaw"] == answer_text("caption-malformed") and bad["labelPromptVersion"] == "group-caption-v1"

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

    chain = _chain(clean_graph, database)
    assert [(row["step"], row["group"]) for row in chain] == [
        (1, "_blocks.14/g0"), (2, "_blocks.15/g0"), (3, "_fc/g0")]  # low to high, the strongest path
    assert [row["upGroup"] for row in chain] == ["_blocks.15/g0", "_fc/g0", None]
    assert all(row["caption"] for row in chain) and all(row["label"] for row in chain)
    assert chain[0]["evolutionCaption"] and chain[1]["evolutionCaption"] and chain[2]["evolutionCaption"] is None
    assert chain[0]["weight"] == 0.6 and not any(row["unparsed"] for row in chain)
    assert _chain(clean_graph, database, model=TINY_MODEL, circuit=circuit.id) == chain
    from neurflow.graph.named_queries import run_query

    columns, rows = run_query(clean_graph, "explained-chain", {"class": "258"}, database, QUERY.parent)
    assert columns[:6] == ["class", "step", "layer", "depth", "group", "label"]
    assert [row["caption"] for row in rows] == [row["caption"] for row in chain]
    assert _chain(clean_graph, database, model="resnet50") == []


@pytest.mark.neo4j
def test_a_group_missing_from_the_graph_is_an_error(clean_graph: neo4j.Driver, neo4j_settings: Any,
                                                    tiny: tuple[Circuit, Path], fake: FakeOpenAI,
                                                    tmp_path: Path) -> None:
    circuit, folder = tiny  # not ingested
    settings = lb.LabelSettings(evolution=False)
    requests = lb.plan_requests(circuit, folder, settings)[:1]
    with pytest.raises(lb.LabellingError, match="not in the graph; ingest the circuit first"):
        lb.run_requests(requests, _client(fake, None), settings, driver=clean_graph,
                        database=neo4j_settings.database)


# --------------------------------------------------------------------------- the CLI


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
    assert "prompt group-caption-v1: The 4 images that follow are patches" in out
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
    _ingest(clean_graph, neo4j_settings.database, circuit, folder)
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
        _ingest(clean_graph, database, load_circuit(folder), folder)
    folder = next(f for f in real_circuit_dirs if load_circuit(f).target.name == "Samoyed")
    samoyed = load_circuit(folder)
    planned = lb.plan_requests(samoyed, folder, lb.LabelSettings(max_images=5))
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
            assert urls and all(_decode(url)[0] == "image/jpeg" for url in urls)
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
    chain = _chain(clean_graph, database, model="efficientnet-lite0")
    assert [row["layer"] for row in chain] == list(reversed(samoyed.layers))
    assert all(row["caption"] for row in chain)
    assert all(row["evolutionCaption"] for row in chain[:-1]) and chain[-1]["evolutionCaption"] is None
    records, _, _ = clean_graph.execute_query(  # the golden retriever circuit was not labelled
        "MATCH (g:NeuronGroup) WHERE g.circuitId <> $id RETURN count(g.caption) AS n", id=samoyed.id,
        database_=database)
    assert records[0]["n"] == 0
