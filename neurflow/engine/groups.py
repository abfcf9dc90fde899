"""Clustering and weights: semantic groups, edge weights, neuron groups and group-to-group weights.

May import: numpy, scipy, scikit-learn, ``neurflow.circuit``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from sklearn.metrics import silhouette_score

from neurflow.circuit import Edge, GroupEdge, NeuronGroup, SemanticGroup


def ward_clusters(features: np.ndarray, max_clusters: int) -> np.ndarray:
    """Ward clustering with the number of clusters in 2..max_clusters chosen by silhouette.

    The linkage is computed once and cut at each candidate number. Labels are 0-based, numbered by first
    appearance so that equal inputs give equal labels. Fewer than 3 points, a maximum below 2 or identical
    points give a single cluster.
    """
    n = features.shape[0]
    if n < 3 or max_clusters < 2 or np.allclose(features, features[0]):
        return np.zeros(n, dtype=np.int64)
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
    return np.array([order[label] for label in best_labels], dtype=np.int64)


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
    labels = ward_clusters(vectors, max_groups)
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
