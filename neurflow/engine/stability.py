"""How sure a circuit is of its parts, without a second build: a bootstrap over the class's images, from the
per-patch attributions and activations a build holds already (docs/coverage.md).

Each resample draws the images of D_c with replacement; a patch then counts as many times as its image was drawn.
Conditional on the concepts V_a (they are not re-chosen: that would need the activations of every patch of every
resample, and V_a is what the attribution is summed over), a resample gives

- each target's core set again (top-tau by the resampled T(a, s)): every lower neuron's **selection frequency**;
- each edge weight w(a, s, V_a,j) again, for the core set the build chose: an **interval** (the central ``level``
  of the resampled weights);
- each concept's semantic grouping again (Ward and silhouette on the patches of the drawn images): its
  **stability**, the mean adjusted Rand index with the build's grouping on those patches.

>>> counts = resample_counts(3, 4, np.random.default_rng(0))   # 4 resamples of 3 images: [4, 3] multiplicities
>>> counts.sum(1).tolist()
[3, 3, 3, 3]
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from neurflow.circuit import Stability

#: The central share of the resampled edge weights reported (the number of resamples is the build's setting,
#: ``BuildConfig.stability_resamples``).
LEVEL = 0.9


def resample_counts(images: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[resamples, images]: how many times each image is drawn in each resample (with replacement)."""
    draws = rng.integers(0, images, size=(resamples, images))
    return np.stack([np.bincount(row, minlength=images) for row in draws]) if resamples else np.zeros((0, images))


def core_frequency(per_patch: np.ndarray, patch_images: np.ndarray, counts: np.ndarray,
                   select: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Per lower neuron, the share of resamples whose core set of this target holds it.

    ``per_patch``: [|V_a|, lower neurons] attributions; ``patch_images``: the image of each row; ``counts``:
    :func:`resample_counts`; ``select``: rows -> the core set, as the build chooses it (e.g.
    ``lambda rows: core_set(rows, tau, ranking)[0]``). A resample repeats each row as often as its image was
    drawn."""
    chosen = np.zeros(per_patch.shape[1])
    for weights in counts[:, patch_images]:
        rows = np.repeat(per_patch, weights.astype(np.int64), axis=0)
        if rows.shape[0]:
            chosen[select(rows)] += 1
    return chosen / max(len(counts), 1)


def edge_weight_intervals(per_patch: np.ndarray, labels: np.ndarray, core: np.ndarray, patch_images: np.ndarray,
                          counts: np.ndarray, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray]:
    """[semantic groups, core neurons] lower and upper ends of the central ``level`` of the resampled edge weights
    w(a, s, V_a,j) = T_b(a, s, V_a,j) / sum over core s' of |T_b(a, s', V_a,j)|; a resample that draws none of a
    group's images leaves that group out (NaN when none draws any)."""
    groups = int(labels.max()) + 1
    low = np.full((groups, len(core)), np.nan)
    high = np.full((groups, len(core)), np.nan)
    weights = counts[:, patch_images].astype(np.float64)  # [resamples, |V_a|]
    tail = (1 - level) / 2 * 100
    for j in range(groups):
        member = labels == j
        scores = weights[:, member] @ per_patch[member][:, core]  # [resamples, core]
        norms = np.abs(scores).sum(1)
        kept = scores[norms > 0] / norms[norms > 0, None]
        if len(kept):
            low[j], high[j] = np.percentile(kept, [tail, 100 - tail], axis=0)
    return low, high


def adjusted_rand(labels: np.ndarray, again: np.ndarray) -> float:
    """The adjusted Rand index of two labelings of the same items (Hubert and Arabie; sklearn's
    ``adjusted_rand_score``, without its input checks, which cost more than the index on a few dozen items)."""
    _, a = np.unique(labels, return_inverse=True)
    _, b = np.unique(again, return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1), dtype=np.int64)
    np.add.at(table, (a, b), 1)

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) // 2).sum())

    index, rows, columns, total = pairs(table), pairs(table.sum(1)), pairs(table.sum(0)), pairs(np.array([len(a)]))
    expected = rows * columns / total if total else 0.0
    top = (rows + columns) / 2
    return 1.0 if top == expected else (index - expected) / (top - expected)


def cluster_jaccard(labels: np.ndarray, again: np.ndarray, clusters: int) -> np.ndarray:
    """Per original cluster (of ``clusters``), the largest Jaccard index of its present members with a cluster
    of ``again`` (the same items clustered again): 1 when it comes back whole; NaN when none of it is present."""
    best = np.full(clusters, np.nan)
    for c in range(clusters):
        members = labels == c
        if members.any():
            best[c] = max((members & (again == d)).sum() / (members | (again == d)).sum() for d in np.unique(again))
    return best


@dataclass(frozen=True)
class GroupingStability:
    """A grouping's stability over resamples: ``ari``, the mean adjusted Rand index with the build's grouping (1:
    the same every time, about 0: no better than chance); ``clusters``, per cluster, the mean over resamples of
    its best Jaccard match (Hennig's clusterwise stability: above 0.75 stable, below 0.5 dissolved)."""

    ari: float
    clusters: np.ndarray


def _summarise(scores: list[float], jaccards: list[np.ndarray], clusters: int) -> GroupingStability:
    if not scores:
        return GroupingStability(float("nan"), np.full(clusters, np.nan))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a cluster absent from every resample: NaN
        per_cluster = np.nanmean(np.stack(jaccards), axis=0)
    return GroupingStability(float(np.mean(scores)), per_cluster)


def grouping_stability(features: np.ndarray, labels: np.ndarray, patch_images: np.ndarray, counts: np.ndarray,
                       cluster: Callable[[np.ndarray], np.ndarray]) -> GroupingStability:
    """The build's grouping ``labels`` of a concept's patches against ``cluster`` run again on the patches of
    each resample's drawn images (each patch once); resamples with fewer than 3 such patches are left out (NaN
    when all are)."""
    clusters = int(labels.max()) + 1
    scores, jaccards = [], []
    for drawn in counts > 0:
        kept = drawn[patch_images]
        if kept.sum() >= 3:
            again = cluster(features[kept])
            scores.append(adjusted_rand(labels[kept], again))
            jaccards.append(cluster_jaccard(labels[kept], again, clusters))
    return _summarise(scores, jaccards, clusters)


def neuron_grouping_stability(members: list[list[int]], labels: np.ndarray,
                              features_of: Callable[[list[list[int]]], np.ndarray], patch_images: np.ndarray,
                              counts: np.ndarray, cluster: Callable[[np.ndarray], np.ndarray]) -> GroupingStability:
    """A layer's neuron grouping (``labels``, one per semantic group) against ``cluster`` run again on the
    semantic groups' representative vectors recomputed from each resample's patches (``features_of``: patch
    lists -> vectors; a patch repeated as often as its image was drawn). Groups none of whose images were drawn
    are left out; resamples with fewer than 3 groups left are skipped."""
    clusters = int(labels.max()) + 1 if len(labels) else 0
    scores, jaccards = [], []
    for row in counts:
        resampled = [[p for p in patches for _ in range(int(row[patch_images[p]]))] for patches in members]
        kept = np.array([bool(patches) for patches in resampled])
        if kept.sum() >= 3:
            again = cluster(features_of([patches for patches in resampled if patches]))
            scores.append(adjusted_rand(labels[kept], again))
            jaccards.append(cluster_jaccard(labels[kept], again, clusters))
    return _summarise(scores, jaccards, clusters)


class Bootstrap:
    """Collects a circuit's :class:`~neurflow.circuit.Stability` while it is built: one set of resamples of the
    images for the whole circuit (the same draws for every target and layer), ``grouping_resamples`` of them for
    the re-clustering (the costly part)."""

    def __init__(self, patch_images: np.ndarray, images: int, resamples: int, level: float = LEVEL,
                 seed: int = 0, grouping_resamples: int = 20):
        self.patch_images = patch_images
        self.counts = resample_counts(images, resamples, np.random.default_rng(seed))
        self.grouping_counts = self.counts[:grouping_resamples]
        self.stability = Stability(resamples, level, seed)
        self.seconds = 0.0  # what the bootstrap added to the build

    @contextmanager
    def _timed(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds += time.perf_counter() - start

    def target(self, target: str, lower_layer: str, per_patch: np.ndarray, concept: np.ndarray, core: np.ndarray,
               labels: np.ndarray, group_keys: list[str], select: Callable[[np.ndarray], np.ndarray]) -> None:
        """One target's core set (``select``: per_patch rows -> its core set, as the build chooses it) and edge
        weights (``labels``: its concept's semantic groups, keyed ``group_keys``)."""
        images = self.patch_images[concept]
        with self._timed():
            frequency = core_frequency(per_patch, images, self.counts, select)
            low, high = edge_weight_intervals(per_patch, labels, core, images, self.counts, self.stability.level)
        self.stability.core += [(target, f"{lower_layer}:{int(s)}", float(frequency[s])) for s in core]
        self.stability.edges += [(group_keys[j], f"{lower_layer}:{int(s)}", float(low[j, i]), float(high[j, i]))
                                 for j in range(len(group_keys)) for i, s in enumerate(core)]

    def concept_split(self, neuron: str, features: np.ndarray, labels: np.ndarray, silhouette: float,
                      concept: np.ndarray, cluster: Callable[[np.ndarray], np.ndarray]) -> None:
        """A concept's semantic grouping (its groups are ``neuron/j``)."""
        with self._timed():
            found = grouping_stability(features, labels, self.patch_images[concept], self.grouping_counts, cluster)
        self.stability.semantic_groupings.append((neuron, int(labels.max()) + 1, silhouette, found.ari))
        self.stability.semantic_groups += [(f"{neuron}/{j}", float(v)) for j, v in enumerate(found.clusters)]

    def layer_grouping(self, layer: str, members: list[list[int]], labels: np.ndarray, silhouette: float,
                       features_of: Callable[[list[list[int]]], np.ndarray],
                       cluster: Callable[[np.ndarray], np.ndarray]) -> None:
        """A layer's neuron grouping (its groups are ``layer/gN``)."""
        with self._timed():
            found = neuron_grouping_stability(members, labels, features_of, self.patch_images,
                                              self.grouping_counts, cluster)
        self.stability.neuron_groupings.append((layer, len(found.clusters), silhouette, found.ari))
        self.stability.neuron_groups += [(f"{layer}/g{j}", float(v)) for j, v in enumerate(found.clusters)]
