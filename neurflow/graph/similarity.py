"""SIMILAR_TO: how alike two class circuits of one family are, written when the later one completes.

class-similarity ranks the classes of a family by the weighted Jaccard of their core neurons' influence below
the logit; computed at query time that is one pass over every core link the class shares with every other class
(230 k links per class at 1,000 classes). It is computed once instead, in the transaction that completes a
circuit (which holds its model's lock, so every circuit completed before it is seen and none is missed), against
the complete circuits of the other classes of its family, and written as one ``SIMILAR_TO`` relationship per pair
(from the later circuit to the earlier); deleting a circuit deletes its relationships with it. The other
circuits' core neurons come from :mod:`neurflow.graph.circuit_vectors` (one node read per circuit, and only for
the circuits the writing process has not read before).

>>> a = CoreVector.of([1, 1, 2], [3, 4, 3], [0.5, 0.5, 1.0], [1.0, 1.0, 2.0])
>>> b = CoreVector.of([1, 2], [3, 3], [1.0, 0.5], [1.0, 1.0])
>>> round(pair_values(a, b, 3)["weightedJaccard"], 4)   # (0.5 + 0.5) / (2.0 + 1.5 - 1.0)
0.4
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurflow.graph.circuit_vectors import CircuitVectors, CoreVector


def _ratio(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    return np.divide(part, whole, out=np.zeros(len(part)), where=whole > 0)


def pair_table(a: CoreVector, others: list[CoreVector], layer_count: int) -> list[dict[str, Any]]:
    """The SIMILAR_TO properties of circuit ``a`` with each of ``others`` (class-similarity's measures,
    docs/cross-class.md): weightedJaccard (sum over shared neurons of the smaller influence over the sum of the
    larger), jaccard (of the neuron sets), incomingWeightJaccard (weighted Jaccard of the incoming |w|),
    sharedNeurons, and layerWeightedJaccard (the weighted Jaccard per layer position 1 .. ``layer_count`` - 1).
    Every pair at once, on a table of the others' values at ``a``'s neurons (at 1,000 classes one intersection
    per pair took 50 ms, inside the model's lock)."""
    count = len(others)
    if count == 0:
        return []
    row = np.repeat(np.arange(count), [len(o.codes) for o in others])
    codes = np.concatenate([o.codes for o in others])
    influence = np.concatenate([o.influence for o in others])
    weight = np.concatenate([o.weight for o in others])
    layer = np.concatenate([o.layer for o in others])
    at = np.searchsorted(a.codes, codes).clip(max=max(len(a.codes) - 1, 0))
    known = a.codes[at] == codes if len(a.codes) else np.zeros(len(codes), dtype=bool)
    shared = np.zeros((count, len(a.codes)), dtype=bool)
    shared[row[known], at[known]] = True
    theirs_influence = np.zeros(shared.shape)
    theirs_influence[row[known], at[known]] = influence[known]
    theirs_weight = np.zeros(shared.shape)
    theirs_weight[row[known], at[known]] = weight[known]
    smaller = np.where(shared, np.minimum(theirs_influence, a.influence), 0.0)
    smaller_weight = np.where(shared, np.minimum(theirs_weight, a.weight), 0.0).sum(axis=1)
    common = smaller.sum(axis=1)
    shared_count = shared.sum(axis=1)
    total = np.bincount(row, weights=influence, minlength=count)
    total_weight = np.bincount(row, weights=weight, minlength=count)
    sizes = np.bincount(row, minlength=count)
    per_layer = []
    for position in range(1, layer_count):
        mine = float(a.influence[a.layer == position].sum())
        theirs = np.bincount(row, weights=np.where(layer == position, influence, 0.0), minlength=count)
        here = smaller[:, a.layer == position].sum(axis=1)
        per_layer.append(_ratio(here, mine + theirs - here))
    weighted = _ratio(common, float(a.influence.sum()) + total - common)
    jaccard = _ratio(shared_count.astype(float), (len(a.codes) + sizes - shared_count).astype(float))
    incoming = _ratio(smaller_weight, float(a.weight.sum()) + total_weight - smaller_weight)
    layers = np.stack(per_layer, axis=1).tolist() if per_layer else [[] for _ in range(count)]
    return [{"weightedJaccard": w, "jaccard": j, "incomingWeightJaccard": i, "sharedNeurons": n,
             "layerWeightedJaccard": per}
            for w, j, i, n, per in zip(weighted.tolist(), jaccard.tolist(), incoming.tolist(),
                                       shared_count.tolist(), layers, strict=True)]


def pair_values(a: CoreVector, b: CoreVector, layer_count: int) -> dict[str, Any]:
    """The SIMILAR_TO properties of circuits ``a`` and ``b`` (:func:`pair_table` of one pair)."""
    return pair_table(a, [b], layer_count)[0]


def similarity_rows(mine: CircuitVectors, layer_count: int, others: dict[str, CircuitVectors]
                    ) -> list[dict[str, Any]]:
    """SIMILAR_TO rows ``{other, props}`` from a circuit (``mine``; ``layer_count``: its layers, the logit's
    included) to the circuits of ``others`` (complete, of other classes of its model) that are of its family."""
    ids = [cid for cid, theirs in sorted(others.items()) if theirs.family == mine.family]
    table = pair_table(mine.core, [others[cid].core for cid in ids], layer_count)
    return [{"other": cid, "props": props} for cid, props in zip(ids, table, strict=True)]
