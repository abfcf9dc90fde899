"""Each group's representative vector (neurflow.graph.group_vectors), written at ingestion and searched by image
(neurflow.experiments.search_image): the centre of its semantic groups' vectors, in the next layer's space;
the scores the vector index returns are the cosines numpy computes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import neo4j
import numpy as np
import pytest

from neurflow.engine.models import load_model
from neurflow.experiments.search_image import NothingToSearchError, crop_queries, search_image
from neurflow.format import CIRCUIT_FILE, load_circuit, load_vectors
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.deletion import clear_graph
from neurflow.graph.group_vectors import group_vectors
from neurflow.graph.ingestion import write_circuit
from tests.circuit_fixtures import SMALL_IMAGES


def test_a_group_vector_is_the_centre_of_its_semantic_groups(real_circuit_dirs: list[Path]) -> None:
    folder = real_circuit_dirs[0]
    circuit, vectors = load_circuit(folder), load_vectors(folder)
    found = group_vectors(circuit, folder)
    assert set(found) == {g.id for g in circuit.neuron_groups}
    for group in circuit.neuron_groups:
        layer, vector = found[group.id]
        keys = [str(k) for k in vectors[f"sgkeys/{group.layer}"]]
        rows = vectors[f"sg/{group.layer}"][[keys.index(k) for k in group.semantic_groups]]
        np.testing.assert_allclose(vector, rows.astype(np.float64).mean(0), rtol=1e-12)
        depth = circuit.layers.index(group.layer)
        assert layer == circuit.layers[min(depth + 1, len(circuit.layers) - 1)]
        assert len(vector) == rows.shape[1]


def test_circuits_grouped_elsewhere_or_without_vectors_get_none(real_circuit_dirs: list[Path], tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(real_circuit_dirs[0], copy)
    data = json.loads((copy / CIRCUIT_FILE).read_text())
    data["params"]["group_space"] = "core"
    (copy / CIRCUIT_FILE).write_text(json.dumps(data))
    assert group_vectors(load_circuit(copy), copy) == {}
    assert group_vectors(load_circuit(real_circuit_dirs[0]), None) == {}


def test_search_by_image_scores_are_the_cosines_and_a_circuit_image_finds_its_class(
        neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings, real_circuit_dirs: list[Path]) -> None:
    db = neo4j_settings.database
    clear_graph(neo4j_driver, db)
    loaded = load_model("efficientnet-lite0", device="cpu")
    samoyed = next(load_circuit(f) for f in real_circuit_dirs if load_circuit(f).target.name == "Samoyed")
    image = Path(samoyed.images[0].path)
    assert image.is_file() and image.is_relative_to(SMALL_IMAGES.resolve())
    with pytest.raises(NothingToSearchError, match="neurflow-ingest --from DIR --force"):
        search_image(neo4j_driver, loaded, image, database=db)
    vectors = {}
    for folder in real_circuit_dirs:
        circuit = load_circuit(folder)
        write_circuit(neo4j_driver, circuit, folder, database=db)
        vectors |= {(circuit.id, g): v for g, v in group_vectors(circuit, folder).items()}
    matches = search_image(neo4j_driver, loaded, image, limit=50, database=db)
    assert len(matches) == len(vectors)  # every group of the two circuits is scored (a small graph)
    assert [m.score for m in matches] == sorted((m.score for m in matches), reverse=True)
    queries, boxes = crop_queries(loaded, image, sorted({layer for layer, _ in vectors.values()}))
    assert len(boxes) == 59
    for match in matches:  # the index's answer is the best crop's cosine, computed here independently
        layer, vector = vectors[(match.circuit, match.group)]
        g = np.array(vector)
        cosines = [float(np.dot(q["vector"], g) / np.linalg.norm(q["vector"]) / np.linalg.norm(g))
                   for q in queries if q["layer"] == layer]
        assert match.score == pytest.approx(max(cosines), abs=1e-5)  # float32 in the index, not quantized
        assert match.box == boxes[match.crop]
    assert matches[0].class_name == "Samoyed"  # one of the Samoyed circuit's own images
