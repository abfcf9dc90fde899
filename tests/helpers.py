"""Test oracles shared by the graph, ingestion and analysis tests: what the graph and the named queries must
hold, computed here from :class:`~neurflow.circuit.Circuit` objects, independently of ``neurflow.graph`` and
``neurflow.analysis``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from neurflow.circuit import Circuit
from neurflow.graph.schema import OVERLAP_MIN_JACCARD
from neurflow.synthetic import synthetic_circuit

SMALL = dict(layers=["_fc", "_blocks.15", "_blocks.14", "_blocks.13"], tau=5, k=10, images=8, max_neuron_groups=3,
             max_semantic_groups=3)


def small_synthetic(index: int, **options: object) -> Circuit:
    """A synthetic circuit of 4 layers, small enough for brute-force oracles."""
    return synthetic_circuit(index, **{**SMALL, **options})  # type: ignore[arg-type]


def neuron_sets(circuit: Circuit) -> dict[str, set[str]]:
    """Member neuron keys of every group below the logit layer."""
    return {g.id: set(g.neurons) for g in circuit.neuron_groups if g.layer != circuit.layers[0]}


def overlap_pairs(circuits: Sequence[Circuit], threshold: float = OVERLAP_MIN_JACCARD) -> list[tuple]:
    """(circuit a, group a, circuit b, group b, jaccard) for groups of different classes, same model and layer."""
    pairs = []
    for a, b in itertools.combinations(circuits, 2):
        if a.target.index == b.target.index or (a.model.name, a.model.weights_id) != (b.model.name, b.model.weights_id):
            continue
        layer_a = {g.id: g.layer for g in a.neuron_groups}
        layer_b = {g.id: g.layer for g in b.neuron_groups}
        for (ga, na), (gb, nb) in itertools.product(neuron_sets(a).items(), neuron_sets(b).items()):
            if layer_a[ga] != layer_b[gb] or not na & nb:
                continue
            jaccard = len(na & nb) / len(na | nb)
            if jaccard >= threshold:
                pairs.append((a, ga, b, gb, jaccard))
    return pairs


def expected_counts(circuits: Sequence[Circuit]) -> dict[str, int]:
    """Nodes per label and relationships per type after ingesting ``circuits`` into an empty graph."""
    models = {(c.model.name, c.model.weights_id) for c in circuits}
    layers = {(c.model.name, c.model.weights_id, layer) for c in circuits for layer in c.layers}
    neurons = {(c.model.name, c.model.weights_id, n.key) for c in circuits for ns in c.neurons.values() for n in ns}
    patches, images = set(), set()
    for c in circuits:
        by_id = {p.id: p for p in c.patches}
        for g in c.semantic_groups:
            for p in g.patches:
                patches.add((c.images[by_id[p].image].sha256, tuple(by_id[p].box)))
        images |= {im.sha256 for im in c.images}
    return {
        "DataModel": 1, "Model": len(models), "Layer": len(layers), "Neuron": len(neurons),
        "Class": len({c.target.index for c in circuits}), "Circuit": len(circuits),
        "SemanticGroup": sum(len(c.semantic_groups) for c in circuits),
        "NeuronGroup": sum(len(c.neuron_groups) for c in circuits), "Patch": len(patches), "Image": len(images),
        "HAS_LAYER": len(layers), "HAS_NEURON": len(neurons), "OF_MODEL": len(circuits), "FOR_CLASS": len(circuits),
        "HAS_LOGIT": len(circuits),
        "HAS_CORE_NEURON": sum(len(ns) for c in circuits for ns in c.neurons.values()),
        "HAS_IMAGE": sum(len(c.images) for c in circuits),
        "HAS_GROUP": sum(len(c.neuron_groups) for c in circuits),
        "HAS_SEMANTIC_GROUP": sum(len(g.semantic_groups) for c in circuits for g in c.neuron_groups),
        "OF_NEURON": sum(len(c.semantic_groups) for c in circuits),
        "HAS_MEMBER": sum(len(g.neurons) for c in circuits for g in c.neuron_groups),
        "CONTRIBUTES_TO": sum(len(c.edges) for c in circuits),
        "FLOWS_TO": sum(len(c.group_edges) for c in circuits),
        "OVERLAPS": len(overlap_pairs(circuits)),
        "EXEMPLIFIES": sum(len(g.patches) for c in circuits for g in c.semantic_groups),
        "CROPPED_FROM": len(patches),
        "CircuitFamily": len({c.family_key for c in circuits}), "IN_FAMILY": len(circuits),
        # one per (family, neuron) that some circuit of the family has as a core neuron
        "FAMILY_INFLUENCE": len({(c.family_key, n.key) for c in circuits for ns in c.neurons.values() for n in ns}),
        # one per pair of circuits of one family and two classes
        "SIMILAR_TO": sum(a.family_key == b.family_key and a.target.index != b.target.index
                          for i, a in enumerate(circuits) for b in circuits[i + 1:]),
    }


def shares(circuit: Circuit) -> dict[tuple[str, str], float]:
    """(upper group, lower group) -> |W| / sum of |W| over the upper group's edges."""
    totals: dict[str, float] = defaultdict(float)
    for e in circuit.group_edges:
        totals[e.upper] += abs(e.weight)
    return {(e.upper, e.lower): abs(e.weight) / totals[e.upper] for e in circuit.group_edges if totals[e.upper] > 0}


def top_start(circuit: Circuit) -> dict[str, float]:
    """Share of the logit that each logit-layer group starts with: its semantic groups' share of the logit's
    concept (patches)."""
    logit_sgs = {g.key: len(g.patches) for g in circuit.semantic_groups if g.neuron == circuit.logit_key}
    total = sum(logit_sgs.values())
    top = [g for g in circuit.neuron_groups if g.layer == circuit.layers[0]]
    return {g.id: sum(logit_sgs.get(sg, 0) for sg in g.semantic_groups) / total for g in top}


def neuron_influence(circuit: Circuit) -> dict[str, float]:
    """Influence of every core neuron as a product of layer-to-layer matrices M[a, s] = sum over a's semantic
    groups j of (patches of j / patches of a's concept) x |w(a, s, j)| / (j's total |w|); the logit row is 1."""
    keys = {layer: [n.key for n in circuit.neurons[layer]] for layer in circuit.layers}
    concept: dict[str, int] = defaultdict(int)
    for sg in circuit.semantic_groups:
        concept[sg.neuron] += len(sg.patches)
    sizes = {sg.key: len(sg.patches) for sg in circuit.semantic_groups}
    totals: dict[str, float] = defaultdict(float)
    for e in circuit.edges:
        totals[e.upper_group] += abs(e.weight)
    vector = np.array([1.0 if k == circuit.logit_key else 0.0 for k in keys[circuit.layers[0]]])
    result = dict(zip(keys[circuit.layers[0]], vector.tolist(), strict=True))
    for upper, lower in zip(circuit.layers, circuit.layers[1:], strict=False):
        row = {k: i for i, k in enumerate(keys[upper])}
        col = {k: i for i, k in enumerate(keys[lower])}
        matrix = np.zeros((len(row), len(col)))
        for e in circuit.edges:
            if e.upper in row and e.lower in col and totals[e.upper_group] > 0:
                matrix[row[e.upper], col[e.lower]] += (sizes[e.upper_group] / concept[e.upper]
                                                       * abs(e.weight) / totals[e.upper_group])
        vector = vector @ matrix
        result.update(zip(keys[lower], vector.tolist(), strict=True))
    return result


def neuron_paths(circuit: Circuit, signed: bool = False) -> list[tuple[list[str], float]]:
    """Every path logit -> semantic group -> core neuron -> semantic group -> ... with its strength: the
    product of (patches of the semantic group / patches of its neuron's concept) x (|w| / the semantic group's
    total |w|) along it; with ``signed``, w in place of |w| in the numerator. Brute force: only for small
    circuits."""
    sgs: dict[str, list] = defaultdict(list)
    for g in circuit.semantic_groups:
        sgs[g.neuron].append(g)
    result = []

    def walk(path: list[str], strength: float) -> None:
        result.append((path, strength))
        concept = sum(len(g.patches) for g in sgs[path[-1]])
        for g in sgs[path[-1]]:
            edges = [e for e in circuit.edges if e.upper_group == g.key]
            total = sum(abs(e.weight) for e in edges)
            for e in edges:
                weight = e.weight if signed else abs(e.weight)
                walk([*path, g.key, e.lower], strength * len(g.patches) / concept * weight / total)

    walk([circuit.logit_key], 1.0)
    return result


def all_paths(circuit: Circuit) -> list[tuple[list[str], float]]:
    """Every path from a logit-layer group down through adjacent layers (any length >= 1 group), with its
    strength: start share x product of shares. Brute force: only for small circuits."""
    layer_of = {g.id: g.layer for g in circuit.neuron_groups}
    depth = {layer: i for i, layer in enumerate(circuit.layers)}
    share = shares(circuit)
    children: dict[str, list[str]] = defaultdict(list)
    for (u, low) in share:
        if depth[layer_of[low]] == depth[layer_of[u]] + 1:
            children[u].append(low)
    result = []

    def walk(path: list[str], strength: float) -> None:
        result.append((path, strength))
        for low in children[path[-1]]:
            walk([*path, low], strength * share[path[-1], low])

    for g, start in top_start(circuit).items():
        walk([g], start)
    return result
