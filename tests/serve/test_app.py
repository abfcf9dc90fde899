"""`neurflow serve`'s app against the test Neo4j (Flask's test client): each page answers what its named
queries answer, the graph view holds the pruned subgraph and no more, and no file outside the circuits' own is
ever sent."""

from __future__ import annotations

import io
import re
from pathlib import Path
from urllib.parse import quote

import neo4j
import pytest
from flask import Flask
from PIL import Image

from neurflow.format import load_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.serve.app import create_app
from neurflow.serve.uploads import MAX_UPLOAD_BYTES
from neurflow.workbench import queries
from neurflow.workbench.client import GraphClient
from neurflow.workbench.search import search_image
from tests.serve.conftest import LABEL


@pytest.fixture(scope="module")
def graph(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings) -> GraphClient:
    return GraphClient(neo4j_settings, neo4j_driver)


def test_the_atlas_lists_the_classes_with_circuits_and_finds_one_by_name(app: Flask,
                                                                         atlas_graph: dict[str, Path]) -> None:
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    ids = {name: load_circuit(folder).id for name, folder in atlas_graph.items()}
    assert "2 class circuits" in page
    assert all(f'href="/class/{cid}">{name}</a>' in page for name, cid in ids.items())
    found = client.get("/?q=SAMO").get_data(as_text=True)
    assert f"/class/{ids['Samoyed']}" in found and ids["golden retriever"] not in found
    assert "No complete circuit matches" in client.get("/?q=tabby").get_data(as_text=True)


@pytest.mark.parametrize("prune", [0.3, 0.8, 1.0])
def test_the_graph_view_is_the_pruned_circuit(app: Flask, graph: GraphClient, atlas_graph: dict[str, Path],
                                              prune: float) -> None:
    circuit = load_circuit(atlas_graph["Samoyed"])
    data = app.test_client().get(f"/api/circuit/{circuit.id}?prune={prune}").get_json()
    rows = queries.circuit_view(graph, circuit=circuit.id, prune=prune, raw=True)
    assert {n["data"]["id"] for n in data["nodes"]} == {r["id"] for r in rows if r["kind"] == "group"}
    kept = {g.id for g in circuit.neuron_groups}
    assert {n["data"]["id"] for n in data["nodes"]} <= kept
    assert len(data["edges"]) == sum(r["kind"] == "edge" for r in rows)
    if prune == 1.0:  # nothing pruned: every group and every group edge of the circuit
        assert len(data["nodes"]) == len(circuit.neuron_groups) and len(data["edges"]) == len(circuit.group_edges)
    weights = {(e.lower, e.upper): e.weight for e in circuit.group_edges}
    for edge in data["edges"]:
        d = edge["data"]
        assert d["weight"] == pytest.approx(weights[(d["source"], d["target"])], rel=1e-9)
        assert d["sign"] == ("-" if d["weight"] < 0 else "+")
    depths = {n["data"]["depth"]: n["position"]["y"] for n in data["nodes"]}
    assert sorted(depths) == sorted(depths, key=depths.__getitem__)  # the logit on top, one row per depth


def test_fewer_groups_are_kept_at_a_smaller_share(app: Flask, atlas_graph: dict[str, Path]) -> None:
    cid = load_circuit(atlas_graph["Samoyed"]).id
    sizes = [len(app.test_client().get(f"/api/circuit/{cid}?prune={p}").get_json()["nodes"]) for p in (0.2, 0.6, 1)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_the_class_page_shows_each_section_of_its_named_queries(app: Flask, atlas_graph: dict[str, Path]) -> None:
    cid = load_circuit(atlas_graph["Samoyed"]).id
    page = app.test_client().get(f"/class/{cid}").get_data(as_text=True)
    for section in ("class-similarity", "class-specific", "circuit-coverage", "group-stability", "bias-paths",
                    "explained-chain", "masking-experiments", "validation-summary", "fidelity-summary"):
        assert f'id="{section}"' in page
    assert "golden retriever" in page  # the most similar class


def test_the_group_page_shows_every_concept_patch_and_its_members(app: Flask, graph: GraphClient,
                                                                  atlas_graph: dict[str, Path]) -> None:
    circuit = load_circuit(atlas_graph["Samoyed"])
    group = circuit.groups_of_layer(circuit.layers[1])[0]
    client = app.test_client()
    page = client.get(f"/group/{circuit.id}/{group.id}").get_data(as_text=True)
    assert LABEL in page
    [row] = queries.group_detail(graph, circuit=circuit.id, group=group.id, raw=True)
    assert len(row["patches"]) == len(set(group.patches)) and page.count('<a class="patch"') == len(row["patches"])
    assert {m["neuron"] for m in row["members"]} == set(group.neurons)
    first = row["patches"][0]
    thumb = client.get(f"/files/{circuit.id}/patches/{quote(first['key'], safe='')}.jpg")
    assert thumb.status_code == 200 and thumb.data[:3] == b"\xff\xd8\xff"  # a JPEG from the circuit's folder
    boxed = client.get(f"/files/{circuit.id}/images/{first['image']}.png?box={','.join(map(str, first['box']))}")
    assert boxed.status_code == 200 and boxed.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_neuron_page_and_search_by_words_answer_as_their_queries(app: Flask, atlas_graph: dict[str, Path]) -> None:
    circuit = load_circuit(atlas_graph["Samoyed"])
    neuron = circuit.groups_of_layer(circuit.layers[1])[0].neurons[0]
    client = app.test_client()
    assert "Samoyed" in client.get(f"/neuron/{neuron}").get_data(as_text=True)
    found = client.get("/search?q=fluffy").get_data(as_text=True)
    assert LABEL in found and "Samoyed" in found
    assert "no concept matches" in client.get("/search?q=zebra").get_data(as_text=True)


def test_nothing_outside_the_circuits_files_is_sent(app: Flask, atlas_graph: dict[str, Path], tmp_path: Path) -> None:
    cid = load_circuit(atlas_graph["Samoyed"]).id
    client = app.test_client()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(b"\xff\xd8\xffsecret")
    for url in (f"/files/{cid}/patches/..%2F..%2Fcircuit.json.jpg", f"/files/{cid}/patches/{quote(str(secret), safe='')}.jpg",
                f"/files/{cid}/images/{'0' * 64}.png", "/files/no-such-circuit/patches/x.jpg",
                f"/files/{cid}/../../etc/passwd", "/static/../app.py"):
        reply = client.get(url)
        assert reply.status_code == 404, url
        assert b"secret" not in reply.data and b"root:" not in reply.data
    assert client.get(f"/api/circuit/{cid}?prune=2").status_code == 400
    assert client.get(f"/api/circuit/{cid}?prune=abc").status_code == 400
    assert client.get(f"/files/{cid}/images/{'0' * 64}.png?box=1,2").status_code in (400, 404)
    assert client.get("/class/no-such-circuit").status_code == 404
    assert client.post("/").status_code == 405  # read-only: no method writes


def upload(client, data: bytes, model: str, name: str = "photo.jpg"):  # noqa: ANN001, ANN201 - Flask's types
    return client.post("/search/image", data={"model": model, "image": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_search_by_image_on_the_page_answers_as_the_api(app: Flask, graph: GraphClient,
                                                       atlas_graph: dict[str, Path]) -> None:
    samoyed = load_circuit(atlas_graph["Samoyed"])
    image = Path(samoyed.images[0].path)
    client = app.test_client()
    form = client.get("/search/image").get_data(as_text=True)
    assert f'<option value="{samoyed.model.key}"' in form
    reply = upload(client, image.read_bytes(), samoyed.model.key)
    assert reply.status_code == 200
    page = reply.get_data(as_text=True)
    expected = search_image(graph, image, model="efficientnet-lite0", device="cpu", limit=30, raw=True)
    rows = re.findall(r'<a href="/group/([0-9a-f]+)/([^"]+)">', page)
    assert rows == [(m.circuit, m.group) for m in expected]
    assert expected[0].class_name == "Samoyed" and 'src="data:image/png;base64,' in page


def test_an_upload_that_is_no_image_or_too_large_gets_one_clear_message(app: Flask,
                                                                       atlas_graph: dict[str, Path]) -> None:
    key = load_circuit(atlas_graph["Samoyed"]).model.key
    client = app.test_client()
    junk = upload(client, b"not an image at all" * 100, key)
    assert junk.status_code == 400 and "not an image neurflow can read" in junk.get_data(as_text=True)
    bomb = io.BytesIO()
    Image.new("1", (8000, 8000)).save(bomb, format="PNG")  # 64 M pixels in a few kB
    refused = upload(client, bomb.getvalue(), key, "bomb.png")
    assert refused.status_code == 400 and "8000 x 8000 pixels" in refused.get_data(as_text=True)
    huge = upload(client, b"\0" * (MAX_UPLOAD_BYTES + 1), key)
    assert huge.status_code == 413 and "larger than 16 MiB" in huge.get_data(as_text=True)
    other = upload(client, bomb.getvalue(), "resnet50@sha256:nothing")
    assert other.status_code == 400 and "no circuits of model" in other.get_data(as_text=True)


def test_the_atlas_similarity_matrix_is_class_similaritys_weighted_jaccard(app: Flask, graph: GraphClient,
                                                                          atlas_graph: dict[str, Path]) -> None:
    samoyed, golden = (load_circuit(atlas_graph[name]) for name in ("Samoyed", "golden retriever"))
    [pair] = queries.similarity_matrix(graph, circuits=f"{samoyed.id},{golden.id}", raw=True)
    [row] = [r for r in queries.class_similarity(graph, class_="Samoyed", raw=True) if r["class"] == "golden retriever"]
    assert pair["weightedJaccard"] == pytest.approx(row["weightedJaccard"], rel=1e-9) and pair["weightedJaccard"] > 0
    page = app.test_client().get("/").get_data(as_text=True)
    src = re.search(r'<img src="(/atlas/similarity\.png\?[^"]+)"', page)
    assert src
    picture = app.test_client().get(src.group(1).replace("&amp;", "&"))
    assert picture.status_code == 200 and picture.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_image_of_the_offered_folder_is_searched_and_no_other_file(atlas_graph: dict[str, Path], graph: GraphClient,
                                                                     tmp_path: Path) -> None:
    samoyed = load_circuit(atlas_graph["Samoyed"])
    folder = tmp_path / "offered"
    (folder / "dogs").mkdir(parents=True)
    (folder / "dogs" / "photo.jpg").write_bytes(Path(samoyed.images[0].path).read_bytes())
    (folder / "outside.jpg").symlink_to(Path(samoyed.images[0].path))  # a link out of the folder: not offered
    client = create_app(graph, images=folder).test_client()
    form = client.get("/search/image").get_data(as_text=True)
    assert '<option value="dogs/photo.jpg">' in form and "outside.jpg" not in form
    found = client.post("/search/image", data={"model": samoyed.model.key, "pick": "dogs/photo.jpg"})
    assert found.status_code == 200 and "Samoyed" in found.get_data(as_text=True)
    for name in ("../offered/dogs/photo.jpg", "outside.jpg", "/etc/passwd"):
        refused = client.post("/search/image", data={"model": samoyed.model.key, "pick": name})
        assert refused.status_code == 400 and "is not one of the offered images" in refused.get_data(as_text=True)
