"""The parameter rows of every write of one circuit: pure Python, built and checked without a server.

Keys of the shared nodes (``model_key``, ``graph_neuron_key``, ``patch_key``) and :func:`circuit_rows`, which
refuses a circuit whose parts refer to each other inconsistently before anything is written.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurflow.analysis import (
    circuit_influence,
    group_edge_shares,
    group_flow,
    influence_ranks,
    layer_coverage,
    neuron_reach,
)
from neurflow.circuit import Circuit, TargetCoverage, label_matches
from neurflow.format import thumbnail_uri
from neurflow.graph.circuit_vectors import neuron_code
from neurflow.graph.group_vectors import group_vectors
from neurflow.graph.schema import DATA_MODEL_VERSION, StoreError


def model_key(circuit: Circuit) -> str:
    """``efficientnet-lite0@<weights id>``: one Model node per model name and weights."""
    return circuit.model.key


def graph_neuron_key(model: str, neuron: str) -> str:
    """Key of a Neuron node: the model key and the circuit's ``layer:channel`` key, ``model|layer:channel``."""
    return f"{model}|{neuron}"


def scoped_key(circuit_id: str, local: str) -> str:
    """Key of a node scoped to one circuit (NeuronGroup: its group id; SemanticGroup: its neuron's
    ``layer:channel/index``): ``circuitId|local``."""
    return f"{circuit_id}|{local}"


def patch_key(sha256: str, box: Sequence[int]) -> str:
    """Key of a Patch node: its image's sha256 and its box in the image's pixels, ``sha|l,t,r,b``."""
    return f"{sha256}|{','.join(str(int(v)) for v in box)}"


@dataclass
class CircuitRows:
    """The parameter rows of every write of one circuit (pure data, built without a server)."""

    circuit_id: str
    model: dict[str, Any]
    target: dict[str, Any]
    circuit: dict[str, Any]
    logit: str
    layers: list[dict[str, Any]]
    neurons: list[dict[str, Any]]
    core: list[dict[str, Any]]
    images: list[dict[str, Any]]
    patches: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    semantic_groups: list[dict[str, Any]]
    members: list[list[str]]
    flows: list[list[Any]]
    family: dict[str, Any] = field(default_factory=dict)
    group_members: dict[str, tuple[str, set[str]]] = field(default_factory=dict)


def check_consistency(circuit: Circuit) -> None:
    """Raises StoreError when the circuit's parts refer to each other inconsistently."""
    where = f"circuit {circuit.id} ({circuit.target.name})"
    core = {n.key for ns in circuit.neurons.values() for n in ns}
    if circuit.logit_key not in core:
        raise StoreError(f"{where}: the logit neuron {circuit.logit_key} is not among the core neurons")
    sgs = {g.key for g in circuit.semantic_groups}
    if len(sgs) != len(circuit.semantic_groups):
        raise StoreError(f"{where}: duplicate semantic group keys")
    groups = {g.id for g in circuit.neuron_groups}
    if len(groups) != len(circuit.neuron_groups):
        raise StoreError(f"{where}: duplicate neuron group ids")
    layers = set(circuit.layers)
    patches = {p.id for p in circuit.patches}
    for g in circuit.semantic_groups:
        if g.neuron not in core:
            raise StoreError(f"{where}: semantic group {g.key} belongs to no core neuron")
        if len(g.patches) != len(g.activations) or not set(g.patches) <= patches:
            raise StoreError(f"{where}: semantic group {g.key} refers to unknown patches")
    for e in circuit.edges:
        if e.upper_group not in sgs or e.lower not in core:
            raise StoreError(f"{where}: edge {e.upper_group} -> {e.lower} refers to an unknown group or neuron")
    for ng in circuit.neuron_groups:
        if ng.layer not in layers or not set(ng.semantic_groups) <= sgs or not set(ng.neurons) <= core:
            raise StoreError(f"{where}: neuron group {ng.id} refers to unknown layers, groups or neurons")
    for ge in circuit.group_edges:
        if ge.upper not in groups or ge.lower not in groups:
            raise StoreError(f"{where}: group edge {ge.upper} -> {ge.lower} refers to an unknown neuron group")
    for p in circuit.patches:
        if not 0 <= p.image < len(circuit.images):
            raise StoreError(f"{where}: patch {p.id} refers to unknown image {p.image}")


def _target_coverage_row(coverage: TargetCoverage | None) -> dict[str, float | None]:
    """A target's coverage as HAS_CORE_NEURON properties (None for a bottom-layer neuron or an older circuit)."""
    if coverage is None:
        return {"coreShare": None, "signedShare": None, "completenessGap": None, "attribution": None}
    return {"coreShare": coverage.core_share, "signedShare": coverage.signed_share,
            "completenessGap": coverage.completeness_gap, "attribution": coverage.attribution}


def circuit_rows(circuit: Circuit, folder: str | Path | None = None) -> CircuitRows:
    """Every row written for ``circuit``; ``folder`` (where it was loaded from) gives the thumbnail URIs.

    Only the patches that exemplify a semantic group are written (the concept patches).
    """
    check_consistency(circuit)
    cid = circuit.id
    mkey = model_key(circuit)
    depth = {layer: i for i, layer in enumerate(circuit.layers)}

    def nkey(neuron: str) -> str:
        return graph_neuron_key(mkey, neuron)

    in_weight: dict[str, float] = defaultdict(float)
    for e in circuit.edges:
        in_weight[e.lower] += abs(e.weight)
    influence = circuit_influence(circuit)
    ranks = influence_ranks(circuit, influence)
    # Coverage (format 1.2; None for older circuits): what each target's core set carries of its attribution,
    # and the share of the logit's attribution that reaches each neuron and layer through core paths.
    coverage_of = {c.key: c for c in circuit.coverage}
    reach = neuron_reach(circuit)
    layers_coverage = layer_coverage(circuit, reach) if circuit.coverage else []
    layer_reach = {circuit.layers[0]: 1.0} | {row.layer: row.reach for row in layers_coverage}
    # The bootstrap over images (None for older circuits): how often each part comes back.
    stability = circuit.stability
    frequency: dict[str, float] = {}
    split: dict[str, tuple[float, float]] = {}
    edge_interval: dict[tuple[str, str], tuple[float, float]] = {}
    group_stability: dict[str, float] = {}
    if stability is not None:
        for _, lower, value in stability.core:
            frequency[lower] = max(frequency.get(lower, 0.0), value)
        split = {neuron: (silhouette, ari) for neuron, _, silhouette, ari in stability.semantic_groupings}
        edge_interval = {(group, lower): (low, high) for group, lower, low, high in stability.edges}
        group_stability = dict(stability.semantic_groups) | dict(stability.neuron_groups)
    core_rows = []
    for layer in circuit.layers:
        for n in circuit.neurons.get(layer, []):
            weight = 1.0 if depth[layer] == 0 else in_weight.get(n.key, 0.0)
            core_rows.append({"neuron": nkey(n.key), "layer": layer, "depth": depth[layer], "weight": weight,
                              "influence": influence.neurons[n.key], "influenceBefore": ranks.neurons[n.key],
                              "signedInfluence": influence.signed_neurons.get(n.key),
                              "influenceLabel": f"{influence.neurons[n.key]:.3f}",  # Browser's caption
                              "maxActivation": n.max_activation, "parents": len(n.parents),
                              "reach": reach.get(n.key) if reach else None,
                              "absoluteInfluence": influence.neurons[n.key] * layer_reach[layer]
                              if circuit.coverage else None,
                              **_target_coverage_row(coverage_of.get(n.key)),
                              "selectionFrequency": frequency.get(n.key),
                              "splitSilhouette": split[n.key][0] if n.key in split else None,
                              "splitStability": split[n.key][1] if n.key in split else None})
    neuron_rows = [
        {"key": nkey(n.key), "model": mkey, "layer": n.layer, "channel": n.channel, "layerKey": f"{mkey}|{n.layer}"}
        for layer in circuit.layers for n in circuit.neurons.get(layer, [])
    ]
    lower_core = [r for r in core_rows if r["depth"] > 0]
    channel_of = {r["key"]: r["channel"] for r in neuron_rows}

    images = circuit.images
    patch_by_id = {p.id: p for p in circuit.patches}
    used = sorted({p for g in circuit.semantic_groups for p in g.patches})
    key_of_patch = {p: patch_key(images[patch_by_id[p].image].sha256, patch_by_id[p].box) for p in used}
    patch_rows: dict[str, dict[str, Any]] = {}
    for p in used:
        record = patch_by_id[p]
        patch_rows.setdefault(key_of_patch[p], {
            "key": key_of_patch[p], "image": images[record.image].sha256, "box": list(record.box),
            "scale": record.scale, "thumbnailUri": thumbnail_uri(folder, p) if folder is not None else None,
        })
    image_rows = [
        {"sha256": im.sha256, "path": im.path, "label": im.label, "width": im.width, "height": im.height,
         "predicted": im.predicted, "logit": im.logit}
        for im in images
    ]

    flows = group_flow(circuit, influence)
    label_of_patch = {p: images[patch_by_id[p].image].label for p in used}
    labelled_of_patch = {p: label is not None for p, label in label_of_patch.items()}
    foreign_of_patch = {p: label is not None and not label_matches(label, circuit.target)
                        for p, label in label_of_patch.items()}
    group_rows = []
    lower_groups = [g for g in circuit.neuron_groups if depth[g.layer] > 0]
    group_members: dict[str, tuple[str, set[str]]] = {}
    searchable = group_vectors(circuit, folder)
    for g in circuit.neuron_groups:
        gkey = scoped_key(cid, g.id)
        labelled = sum(labelled_of_patch.get(p, False) for p in g.patches)
        foreign = sum(foreign_of_patch.get(p, False) for p in g.patches)
        flow = flows[g.id]
        group_rows.append({
            "key": gkey, "circuitId": cid, "groupId": g.id, "layer": g.layer, "depth": depth[g.layer],
            "modelKey": mkey, "classIndex": circuit.target.index, "className": circuit.target.name,
            "size": len(g.neurons),
            "semanticGroups": len(g.semantic_groups), "patchCount": len(g.patches), "labelledPatches": labelled,
            "foreignPatches": foreign, "foreignShare": foreign / labelled if labelled else None,
            "influence": flow.influence, "influenceBefore": ranks.groups[g.id],
            "signedInfluence": influence.signed_groups.get(g.id),
            "absoluteInfluence": flow.influence * layer_reach[g.layer] if circuit.coverage else None,
            "stability": group_stability.get(g.id),
            "influenceLabel": f"{flow.influence:.3f}", "upScore": flow.up_score,
            "upNext": scoped_key(cid, flow.up_next) if flow.up_next else None,
            "downScore": flow.down_score, "downNext": scoped_key(cid, flow.down_next) if flow.down_next else None,
            "vectorLayer": searchable[g.id][0] if g.id in searchable else None,
            "vector": searchable[g.id][1] if g.id in searchable else None,
        })
        group_members[gkey] = (g.layer, {nkey(n) for n in g.neurons})
    groups_of_sg: dict[str, list[str]] = defaultdict(list)
    for g in circuit.neuron_groups:
        for sg in g.semantic_groups:
            groups_of_sg[sg].append(scoped_key(cid, g.id))
    edges_of_sg: dict[str, list[list[Any]]] = defaultdict(list)
    for e in circuit.edges:
        low, high = edge_interval.get((e.upper_group, e.lower), (None, None))
        edges_of_sg[e.upper_group].append([nkey(e.lower), e.weight, e.score, low, high])
    sg_rows = [
        {
            "key": scoped_key(cid, g.key), "sgKey": g.key, "layer": g.layer, "channel": g.channel, "index": g.index,
            "depth": depth[g.layer], "size": len(g.patches), "stability": group_stability.get(g.key),
            "neuron": nkey(g.neuron),
            "groups": groups_of_sg.get(g.key, []),
            "in": edges_of_sg.get(g.key, []),
            # rank: 0 for the group's most activating patch
            "patches": [[key_of_patch[p], a, rank] for rank, (p, a) in enumerate(
                sorted(zip(g.patches, g.activations, strict=True), key=lambda pa: (-pa[1], pa[0])))],
        }
        for g in circuit.semantic_groups
    ]
    members = [[scoped_key(cid, g.id), nkey(n), influence.members.get((g.id, n), 0.0)]
               for g in circuit.neuron_groups for n in g.neurons]
    flow_rows = [[scoped_key(cid, e.lower), scoped_key(cid, e.upper), e.weight, share,
                  influence.group_edges.get((e.upper, e.lower), 0.0), ranks.group_edges.get((e.upper, e.lower), 1.0)]
                 for e, share in group_edge_shares(circuit)]
    target = circuit.target
    params = circuit.params
    circuit_props = {
        "id": cid, "complete": False, "modelKey": mkey, "modelName": circuit.model.name,
        "familyKey": circuit.family_key,
        "classIndex": target.index, "className": target.name, "layers": list(circuit.layers),
        "tau": params.get("tau"), "k": params.get("k"), "steps": params.get("steps"),
        "quadrature": params.get("quadrature"), "ranking": params.get("ranking"),
        "labelSource": params.get("label_source"), "paramsJson": json.dumps(params, sort_keys=True),
        "formatVersion": circuit.format_version, "folder": str(Path(folder).resolve()) if folder else None,
        "createdAt": circuit.created or None, "dataModelVersion": DATA_MODEL_VERSION,
        "coreNeurons": len(lower_core), "coreWeight": sum(r["weight"] for r in lower_core),
        "coreInfluence": sum(r["influence"] for r in lower_core),
        # 1.7: the core neurons below the logit as parallel lists (position in `layers`, channel, influence,
        # weight): what a completion reads of every circuit of its family to maintain SIMILAR_TO (one node read,
        # not a traversal of every core link; neurflow.graph.similarity)
        "coreLayerIndex": [circuit.layers.index(r["layer"]) for r in lower_core],
        "coreChannels": [channel_of[r["neuron"]] for r in lower_core],
        "coreInfluences": [r["influence"] for r in lower_core],
        "coreWeights": [r["weight"] for r in lower_core],
        # 1.7: the groups below the logit, their member neurons one group after another as layer position x 2^32
        # + channel: what a completion reads of every other circuit of the model to write its OVERLAPS
        "groupIds": [g.id for g in lower_groups],
        "groupInfluences": [flows[g.id].influence for g in lower_groups],
        "groupSizes": [len(g.neurons) for g in lower_groups],
        "groupMembers": [neuron_code(circuit.layers.index(g.layer), channel_of[nkey(n)])
                         for g in lower_groups for n in g.neurons],
        "images": len(images), "semanticGroups": len(circuit.semantic_groups),
        "neuronGroups": len(circuit.neuron_groups), "edges": len(circuit.edges),
        "coverage": layers_coverage[-1].reach if layers_coverage else None,
        "layerReach": [layer_reach[layer] for layer in circuit.layers] if layers_coverage else None,
        "layerCoreShare": [row.mean_core_share for row in layers_coverage] if layers_coverage else None,
        "stabilityResamples": stability.resamples if stability is not None else None,
        "groupingStability": [ari for _, _, _, ari in stability.neuron_groupings] if stability else None,
        "groupingSilhouette": [sil for _, _, sil, _ in stability.neuron_groupings] if stability else None,
    }
    return CircuitRows(
        circuit_id=cid,
        model={"key": mkey, "name": circuit.model.name, "weightsId": circuit.model.weights_id,
               "inputSize": circuit.model.input_size, "numClasses": circuit.model.num_classes},
        target={"index": target.index, "name": target.name, "wnid": target.wnid},
        circuit=circuit_props,
        logit=nkey(circuit.logit_key),
        layers=[{"key": f"{mkey}|{layer}", "model": mkey, "name": layer, "depth": depth[layer],
                 "layout": circuit.layouts.get(layer, "channels-first")}
                for layer in circuit.layers],
        neurons=neuron_rows,
        core=core_rows,
        images=image_rows,
        patches=list(patch_rows.values()),
        groups=group_rows,
        semantic_groups=sg_rows,
        members=members,
        flows=flow_rows,
        family={"key": circuit.family_key, "modelKey": mkey, "layers": list(circuit.layers),
                "paramsJson": circuit_props["paramsJson"]},
        group_members=group_members,
    )
