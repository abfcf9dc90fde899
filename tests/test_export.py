"""neurflow.export: circuit-tracer's graph JSON (invariants checked by hand on a synthetic circuit) and neurflow's
JSON document (a folder round trip, byte for byte where it can be)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from neurflow.analysis import circuit_influence
from neurflow.export import (
    DocumentError,
    circuit_document,
    circuit_tracer_graph,
    neuron_weights,
    read_document,
    unpack_document,
)
from neurflow.format import load_circuit, load_vectors, save_circuit
from neurflow.synthetic import synthetic_circuit


def test_the_viewer_graph_has_a_node_per_neuron_a_link_per_pair_and_a_supernode_per_group() -> None:
    circuit = synthetic_circuit(258)
    graph = circuit_tracer_graph(circuit, labels={circuit.neuron_groups[1].id: "fluffy fur"})
    nodes = {n["node_id"]: n for n in graph["nodes"]}
    core = [n for layer in circuit.layers[1:] for n in circuit.neurons[layer]]
    assert len(nodes) == 1 + len(core)  # the logit and every core neuron, each once
    [logit] = [n for n in graph["nodes"] if n["feature_type"] == "logit"]
    assert logit["is_target_logit"] and "(p=" in logit["clerp"] and int(logit["layer"]) == len(circuit.layers)
    assert {n["layer"] for n in graph["nodes"]} == {str(i) for i in range(len(circuit.layers) + 1)} - {
        str(len(circuit.layers) - 1)}  # 0 .. n-2 for the feature layers, n for the logit (circuit-tracer's numbering)
    influence = circuit_influence(circuit).neurons
    by_key = {f"{n.layer}:{n.channel}": n for n in core}
    for node in graph["nodes"]:
        if node["feature_type"] != "logit":
            key = node["clerp"].split(" ")[0]
            assert node["influence"] == pytest.approx(influence[by_key[key].key])
    weights = neuron_weights(circuit)
    assert len(graph["links"]) == sum(1 for w in weights.values() if w != 0)
    # w(a, s): a's semantic groups' weights, each by its share of a's concept patches (independent recount)
    sizes = defaultdict(int)
    for g in circuit.semantic_groups:
        sizes[g.neuron] += len(g.patches)
    edge = circuit.edges[0]
    expected = sum(e.weight * len(next(g for g in circuit.semantic_groups if g.key == e.upper_group).patches)
                   / sizes[e.upper] for e in circuit.edges if (e.upper, e.lower) == (edge.upper, edge.lower))
    assert weights[edge.upper, edge.lower] == pytest.approx(expected)
    supernodes = graph["qParams"]["supernodes"]
    assert len(supernodes) == len([g for g in circuit.neuron_groups if g.layer != circuit.layers[0]])
    labelled = circuit.neuron_groups[1]
    [fluffy] = [s for s in supernodes if s[0] == "fluffy fur"]  # a labelled group is named by its label
    assert sorted(nodes[m]["clerp"].split(" ")[0] for m in fluffy[1:]) == sorted(labelled.neurons)
    assert set(graph["qParams"]["pinnedIds"]) == set(nodes)
    assert all(member in nodes for node in supernodes for member in node[1:])
    pruned = circuit_tracer_graph(circuit, share=0.5)
    assert 1 < len(pruned["nodes"]) < len(graph["nodes"])


def test_the_json_document_unpacks_to_the_same_folder(real_circuit_dirs: list[Path], tmp_path: Path) -> None:
    folder = real_circuit_dirs[0]
    labels = [{"kind": "group", "group": "_blocks.15/g0", "upper": None, "props": {"label": "fur"}, "at": None}]
    document = circuit_document(folder, labels)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(document))
    again = read_document(path)
    out = unpack_document(again, tmp_path / "out")
    assert out.name == folder.name and again["labels"] == labels
    assert (out / "circuit.json").read_text() == (folder / "circuit.json").read_text()
    before, after = load_vectors(folder), load_vectors(out)
    assert before.keys() == after.keys() and all(np.array_equal(before[k], after[k]) for k in before)
    assert sorted(p.name for p in (out / "thumbnails").iterdir()) == sorted(p.name for p in (folder / "thumbnails").iterdir())
    assert all((out / "thumbnails" / p.name).read_bytes() == p.read_bytes() for p in (folder / "thumbnails").iterdir())
    assert load_circuit(out).id == load_circuit(folder).id


def test_a_file_that_is_no_export_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "other.json").write_text('{"nodes": []}')
    with pytest.raises(DocumentError, match="not a neurflow circuit export"):
        read_document(tmp_path / "other.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(DocumentError, match="not a readable JSON file"):
        read_document(tmp_path / "broken.json")
    with pytest.raises(DocumentError, match="newer than this neurflow reads"):
        (tmp_path / "new.json").write_text('{"kind": "neurflow-circuit", "version": 99}')
        read_document(tmp_path / "new.json")
    circuit = synthetic_circuit(258)
    save_circuit(circuit, tmp_path / "c")
    document = circuit_document(tmp_path / "c") | {"thumbnails": {"../x": ""}}
    with pytest.raises(DocumentError, match="thumbnails are <patch id>.jpg"):
        unpack_document(document, tmp_path / "u")
