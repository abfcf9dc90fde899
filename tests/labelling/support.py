"""Shared by the labelling tests: a tiny real-image circuit, the fake endpoint's answers, an LLM client on it,
and the graph helpers (ingest a circuit, read the explained chain).

The LLM is the local fake endpoint of tests/labelling/fake_openai.py (loopback only).
"""

from __future__ import annotations

import base64
import io
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, LiteralString, cast

import neo4j
from PIL import Image

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
from neurflow.format import file_sha256, save_circuit
from neurflow.graph.ingestion import write_circuit
from neurflow.labelling.llm import LLMClient, ResponseCache, RetryPolicy
from tests.labelling.fake_openai import FakeOpenAI, Reply, fixture, user_parts

TESTS = Path(__file__).parents[1]
SAMOYEDS = sorted((TESTS / "data" / "imagewoof" / "n02111889").glob("*.JPEG"))[:3]
QUERY = TESTS.parent / "queries" / "explained-chain.cypher"
KEY = "sk-test-SECRET-labelling-7d31e0"  # recognisable: must never be printed or logged
TINY_MODEL = "tiny-test-net"


def answer_text(name: str) -> str:
    return fixture(name)["choices"][0]["message"]["content"]


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


def llm_client(fake: FakeOpenAI, cache: Path | None, **kwargs: Any) -> LLMClient:
    options: dict[str, Any] = dict(model="fake-vision", base_url=fake.base_url, api_key=KEY, timeout=10.0,
                                   retry=RetryPolicy(max_retries=2, base_delay=0.01),
                                   cache=ResponseCache(cache) if cache else None)
    options.update(kwargs)
    return LLMClient(**options)


def group_of(circuit: Circuit, group_id: str) -> NeuronGroup:
    return next(g for g in circuit.neuron_groups if g.id == group_id)


def decode_data_url(url: str) -> tuple[str, Image.Image]:
    match = re.fullmatch(r"data:(image/[a-z]+);base64,([A-Za-z0-9+/=]+)", url)
    assert match, url[:60]
    image = Image.open(io.BytesIO(base64.b64decode(match.group(2))))
    return match.group(1), image


def script_responder(bodies: dict[int, str]) -> Callable[[dict[str, Any]], Reply]:
    """Answers the n-th request (from 0) with ``bodies[n]``, else with the default fixture for its kind."""
    count = {"n": 0}

    def respond(request: dict[str, Any]) -> Reply:
        n = count["n"]
        count["n"] += 1
        evolution = any(p.get("text", "").startswith("Group 2") for p in user_parts(request))
        return Reply(body=bodies.get(n, "evolution-ok" if evolution else "caption-ok"))

    return respond


def ingest(driver: neo4j.Driver, database: str, circuit: Circuit, folder: Path) -> None:
    write_circuit(driver, circuit, folder, database=database)


def explained_chain(driver: neo4j.Driver, database: str, **params: Any) -> list[dict[str, Any]]:
    values = {"class": "Samoyed", "model": None, "circuit": None, **params}
    # The project's own query file, never user text; parameters are bound.
    records, _, _ = driver.execute_query(cast(LiteralString, QUERY.read_text()), values, database_=database,
                                         routing_=neo4j.RoutingControl.READ)
    return [r.data() for r in records]
