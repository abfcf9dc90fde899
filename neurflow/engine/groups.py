"""Clustering and weights: semantic groups, edge weights, neuron groups and group-to-group weights.

What is clustered depends on the group space (``BuildConfig.group_space``, docs/grouping.md):
:func:`semantic_group_features` and :func:`neuron_group_features` give the clustering inputs of both spaces.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import silhouette_score

from neurflow.circuit import Edge, GroupEdge, NeuronGroup, SemanticGroup


def semantic_group_features(below: np.ndarray, concept: np.ndarray, core: np.ndarray, space: str) -> np.ndarray:
    """The points a target's concept V_a is split on: one row per patch of ``concept``.

    ``below``: [patches, channels] spatial means of the layer below the target's layer (for the circuit's
    bottom layer, which has none recorded, the layer's own channels); ``core``: the target's core channels
    in ``below``. ``paper``: r(v) in R^m, every channel of ``below`` (Eq. 3, Algorithm 2); ``core``: only the
    core channels.
    """
    rows = below[concept]
    if space == "paper":
        return rows
    if space == "core":
        return rows[:, core]
    raise ValueError(f"unknown group space {space!r}")


def neuron_group_features(
    below: np.ndarray, layer_acts: np.ndarray, core: Sequence[int], members: Sequence[Sequence[int]], space: str
) -> np.ndarray:
    """The representative vector of each semantic group of a layer: what its neuron groups are clustered on.

    ``members``: the patch ids of each semantic group (rows of the result, in order); ``below``: as in
    :func:`semantic_group_features` (the space the layer's concepts were split in); ``layer_acts``: [patches,
    channels] of the layer itself, ``core`` its core channels.
    ``paper``: the mean of r(v) over the group's patches, unscaled: the group's centre in the space it was
    found in (Section 3.5; the authors' code takes the same means). ``core``: the mean over the group's
    patches of the layer's core-neuron activations, each z-scored over all the class's patches.
    """
    if space == "paper":
        return np.stack([below[list(patches)].astype(np.float64).mean(0) for patches in members])
    if space == "core":
        values = layer_acts[:, list(core)]
        # z-scoring keeps one high-variance channel from deciding the distances alone
        scaled = (values - values.mean(0)) / (values.std(0) + 1e-8)
        return np.stack([scaled[list(patches)].mean(0) for patches in members])
    raise ValueError(f"unknown group space {space!r}")


def ward_clusters(features: np.ndarray, max_clusters: int) -> np.ndarray:
    """Ward clustering with the number of clusters in 2..max_clusters chosen by silhouette.

    The linkage is computed once and cut at each candidate number. Labels are 0-based, numbered by first
    appearance so that equal inputs give equal labels. Fewer than 3 points, a maximum below 2 or identical
    points give a single cluster.
    """
    return ward_clusters_scored(features, max_clusters)[0]


def ward_clusters_scored(features: np.ndarray, max_clusters: int) -> tuple[np.ndarray, float]:
    """:func:`ward_clusters` and the silhouette the number of clusters was chosen with (NaN: one cluster)."""
    n = features.shape[0]
    if n < 3 or max_clusters < 2 or np.allclose(features, features[0]):
        return np.zeros(n, dtype=np.int64), float("nan")
    tree = linkage(features.astype(np.float64), method="ward")
    best_labels, best_score = np.zeros(n, dtype=np.int64), -np.inf
    for count in range(2, min(max_clusters, n - 1) + 1):
        labels = fcluster(tree, t=count, criterion="maxclust")
        if len(np.unique(labels)) < 2:
            continue
        score = silhouette_score(features, labels)
        if score > best_score + 1e-12:
            best_labels, best_score = labels, score
    _, first = np.unique(best_labels, return_index=True)
    order = {label: rank for rank, label in enumerate(best_labels[np.sort(first)])}
    return np.array([order[label] for label in best_labels], dtype=np.int64), float(best_score)


def edge_weights(scores: np.ndarray) -> np.ndarray:
    """w(a, s, V_a,j) = T(a, s, V_a,j) / sum over core s' of |T(a, s', V_a,j)|: per row, sum of |w| is 1.

    ``scores``: [groups, core neurons] of T. A row of zeros stays zero.
    """
    norms = np.abs(scores).sum(axis=1, keepdims=True)
    return np.divide(scores, norms, out=np.zeros_like(scores, dtype=np.float64), where=norms > 0)


def neuron_groups(
    layer: str,
    groups: Sequence[SemanticGroup],
    vectors: np.ndarray,
    max_groups: int,
    prefix: str,
) -> list[NeuronGroup]:
    """Clusters a layer's semantic groups by their representative vectors into neuron groups.

    A neuron group's members are the neurons of its semantic groups; its concept is the union of their
    patches. Ids are ``{prefix}{layer}/g{n}``.
    """
    return groups_of_labels(layer, groups, ward_clusters(vectors, max_groups), prefix)


def groups_of_labels(layer: str, groups: Sequence[SemanticGroup], labels: np.ndarray,
                     prefix: str) -> list[NeuronGroup]:
    """The neuron groups of a layer's semantic groups clustered as ``labels`` (one per semantic group)."""
    result = []
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        members = [g for g, lab in zip(groups, labels, strict=True) if lab == label]
        result.append(
            NeuronGroup(
                id=f"{prefix}{layer}/g{label}",
                layer=layer,
                semantic_groups=[g.key for g in members],
                neurons=list(dict.fromkeys(g.neuron for g in members)),
                patches=sorted({p for g in members for p in g.patches}),
            )
        )
    return result


def group_edges(upper: Sequence[NeuronGroup], lower: Sequence[NeuronGroup], edges: Sequence[Edge]) -> list[GroupEdge]:
    """W(G, H) = sum of w(a, s, V_a,j) over semantic groups (a, j) of G and member neurons s of H."""
    group_of_sg = {sg: g.id for g in upper for sg in g.semantic_groups}
    groups_of_neuron: dict[str, list[str]] = defaultdict(list)
    for group in lower:
        for neuron in group.neurons:
            groups_of_neuron[neuron].append(group.id)
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for edge in edges:
        upper_group = group_of_sg.get(edge.upper_group)
        if upper_group is None:
            continue
        for lower_group in groups_of_neuron.get(edge.lower, []):
            totals[upper_group, lower_group] += edge.weight
    return [GroupEdge(u, low, w) for (u, low), w in sorted(totals.items())]
