"""Exports of a circuit: the graph JSON of circuit-tracer's attribution-graph viewer (the one Neuronpedia serves),
and neurflow's own JSON document that `neurflow-ingest` reads back. No graph, no torch.

Mapping (docs/export.md): every core neuron is a feature node (``feature_type`` "cross layer transcoder", the
viewer's kind for a feature), the class logit a logit node; a circuit layer is a viewer layer, numbered from the
bottom (0) up, the logit at the top (circuit-tracer's num_layers + 1); every node sits at position 0 (an image
classifier has one "token": the class); a link goes from a lower neuron s to an upper neuron a with weight
w(a, s) = sum over a's semantic groups j of |V_a,j| / |V_a| x w(a, s, V_a,j) (signed); a node's ``influence`` is
its share of what the circuit carries from the logit, ``clerp`` its groups' labels; neuron groups are supernodes
(``qParams.supernodes``: [label, node ids ...]) and every node is pinned, so the viewer opens on the grouped
subgraph.

>>> from neurflow.synthetic import synthetic_circuit
>>> graph = circuit_tracer_graph(synthetic_circuit(258))
>>> graph["metadata"]["prompt_tokens"], graph["nodes"][0]["feature_type"]
(['Samoyed'], 'logit')
"""

from __future__ import annotations

import base64
import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from neurflow.analysis import circuit_influence, prune
from neurflow.circuit import Circuit
from neurflow.errors import NeurflowError
from neurflow.format import (
    THUMBNAIL_DIR,
    VECTORS_FILE,
    circuit_folder_name,
    circuit_from_dict,
    circuit_to_dict,
    load_circuit,
    load_vectors,
    save_circuit,
)

FEATURE_TYPE = "cross layer transcoder"
SCHEMA_VERSION = 1


def cantor(x: int, y: int) -> int:
    """circuit-tracer's feature number of (layer, index)."""
    return (x + y) * (x + y + 1) // 2 + y


def neuron_weights(circuit: Circuit) -> dict[tuple[str, str], float]:
    """(upper neuron, lower neuron) -> w(a, s): the semantic groups' weights, each by its share of V_a."""
    size: dict[str, int] = {g.key: len(g.patches) for g in circuit.semantic_groups}
    total: dict[str, int] = defaultdict(int)
    for g in circuit.semantic_groups:
        total[g.neuron] += len(g.patches)
    weights: dict[tuple[str, str], float] = defaultdict(float)
    for e in circuit.edges:
        share = size.get(e.upper_group, 0) / total[e.upper] if total.get(e.upper) else 0.0
        weights[e.upper, e.lower] += share * e.weight
    return dict(weights)


def circuit_tracer_graph(circuit: Circuit, labels: Mapping[str, str] | None = None, share: float = 1.0,
                         slug: str | None = None) -> dict[str, Any]:
    """The viewer's graph JSON of ``circuit`` (``labels``: group id -> label, e.g. from the graph; ``share``:
    keep the neurons carrying that share of each layer's influence, 1 = all)."""
    labels = dict(labels or {})
    influence = circuit_influence(circuit)
    kept = {n for layer in prune(circuit, share, influence).neurons.values() for n in layer}
    bottom_up = list(reversed(circuit.layers))
    number = {layer: i for i, layer in enumerate(bottom_up[:-1])}  # the logit layer is not a feature layer
    logit_layer = str(len(number) + 1)
    target = circuit.target
    groups_of: dict[str, list[str]] = defaultdict(list)
    for g in circuit.neuron_groups:
        for n in g.neurons:
            groups_of[n].append(g.id)

    def node_id(key: str) -> str:
        layer, _, channel = key.rpartition(":")
        if layer == circuit.layers[0]:
            return f"{logit_layer}_{target.index}_0"
        return f"{number[layer]}_{int(channel)}_0"

    # The viewer reads a probability from the logit's clerp "(p=...)"; a circuit keeps none, so p is the share
    # of the circuit's images the model predicts as the class (docs/export.md).
    predicted = sum(im.predicted == target.index for im in circuit.images) / max(1, len(circuit.images))
    nodes = [{
        "node_id": node_id(circuit.logit_key), "jsNodeId": f"L_{target.index}-0", "feature": target.index,
        "layer": logit_layer, "ctx_idx": 0, "reverse_ctx_idx": 0, "run_idx": 0, "feature_type": "logit",
        "token_prob": predicted, "is_target_logit": True, "clerp": f'Output "{target.name}" (p={predicted:.3f})',
        "influence": 1.0, "activation": None,
    }]
    for layer in circuit.layers[1:]:
        for neuron in circuit.neurons.get(layer, []):
            if neuron.key not in kept:
                continue
            words = [labels[g] for g in groups_of.get(neuron.key, []) if labels.get(g)]
            nodes.append({
                "node_id": node_id(neuron.key), "jsNodeId": f"{number[layer]}_{neuron.channel}-0",
                "feature": cantor(number[layer], neuron.channel), "layer": str(number[layer]), "ctx_idx": 0,
                "reverse_ctx_idx": 0, "run_idx": 0, "feature_type": FEATURE_TYPE, "token_prob": 0.0,
                "is_target_logit": False,
                "clerp": f"{layer}:{neuron.channel}" + (f" {'; '.join(words)}" if words else ""),
                "influence": influence.neurons.get(neuron.key, 0.0), "activation": None,
            })
    present = {n["node_id"] for n in nodes}
    links = [{"source": node_id(lower), "target": node_id(upper), "weight": weight}
             for (upper, lower), weight in sorted(neuron_weights(circuit).items())
             if node_id(lower) in present and node_id(upper) in present and weight != 0.0]
    supernodes = []
    for g in circuit.neuron_groups:
        members = [node_id(n) for n in g.neurons if node_id(n) in present]
        if members and g.layer != circuit.layers[0]:
            supernodes.append([labels.get(g.id) or g.id, *members])
    name = slug or f"{target.name.lower().replace(' ', '-')}-{circuit.id}"
    return {
        "metadata": {
            "slug": name, "scan": circuit.model.key, "transcoder_list": [], "prompt_tokens": [target.name],
            "prompt": f"{target.name} ({circuit.model.key}, circuit {circuit.id})",
            "node_threshold": share, "schema_version": SCHEMA_VERSION,
        },
        "qParams": {"pinnedIds": sorted(present), "supernodes": supernodes, "linkType": "both", "clickedId": "",
                    "sg_pos": ""},
        "nodes": nodes,
        "links": links,
    }


# --------------------------------------------------------------------------- neurflow's own JSON (docs/export.md)

DOCUMENT_KIND = "neurflow-circuit"
DOCUMENT_VERSION = 1


def circuit_document(folder: str | Path, labels: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Everything the graph holds of the circuit in ``folder``, as one JSON document: circuit.json, vectors.npz
    (each array's dtype, shape and bytes in base64), the thumbnails (JPEG bytes in base64) and ``labels``
    (:func:`neurflow.graph.labels.circuit_labels`). :func:`unpack_document` makes the folder again."""
    folder = Path(folder)
    circuit = load_circuit(folder)
    vectors = load_vectors(folder) if (folder / VECTORS_FILE).is_file() else {}
    thumbnails = {p.name.removesuffix(".jpg"): base64.b64encode(p.read_bytes()).decode()
                  for p in sorted((folder / THUMBNAIL_DIR).glob("*.jpg"))}
    return {
        "kind": DOCUMENT_KIND, "version": DOCUMENT_VERSION, "circuit": circuit_to_dict(circuit),
        "vectors": {key: {"dtype": str(array.dtype), "shape": list(array.shape),
                          "data": base64.b64encode(np.ascontiguousarray(array).tobytes()).decode()}
                    for key, array in vectors.items()},
        "thumbnails": thumbnails, "labels": [dict(r) for r in labels],
    }


class DocumentError(NeurflowError, ValueError):
    """A JSON file that is not a neurflow circuit document."""


def read_document(path: str | Path) -> dict[str, Any]:
    """The document in ``path``, checked to be one :func:`circuit_document` wrote."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise DocumentError(f"{path}: not a readable JSON file ({error})") from error
    if not isinstance(data, dict) or data.get("kind") != DOCUMENT_KIND:
        raise DocumentError(f"{path}: not a neurflow circuit export (`neurflow export --format json` writes them)")
    if int(data.get("version", 0)) > DOCUMENT_VERSION:
        raise DocumentError(f"{path}: export version {data['version']} is newer than this neurflow reads "
                            f"({DOCUMENT_VERSION}); upgrade neurflow")
    return data


def unpack_document(document: Mapping[str, Any], out: str | Path) -> Path:
    """The circuit folder of ``document`` under ``out`` (``<index>-<name>.<model>.<id>``), as it was exported."""
    circuit = circuit_from_dict(dict(document["circuit"]))
    folder = Path(out) / circuit_folder_name(circuit)
    vectors = {key: np.frombuffer(base64.b64decode(v["data"]), dtype=np.dtype(v["dtype"])).reshape(v["shape"])
               for key, v in dict(document.get("vectors", {})).items()}
    (folder / THUMBNAIL_DIR).mkdir(parents=True, exist_ok=True)
    for name, data in dict(document.get("thumbnails", {})).items():
        if not str(name).isdigit():
            raise DocumentError(f"a thumbnail named {name!r}: thumbnails are <patch id>.jpg")
        (folder / THUMBNAIL_DIR / f"{int(name)}.jpg").write_bytes(base64.b64decode(data))
    return save_circuit(circuit, folder, vectors or None)
