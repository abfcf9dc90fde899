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


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def pair_values(a: CoreVector, b: CoreVector, layer_count: int) -> dict[str, Any]:
    """The SIMILAR_TO properties of circuits ``a`` and ``b`` (class-similarity's measures, docs/cross-class.md):
    weightedJaccard (sum over shared neurons of the smaller influence over the sum of the larger), jaccard (of the
    neuron sets), incomingWeightJaccard (weighted Jaccard of the incoming |w|), sharedNeurons, and
    layerWeightedJaccard (the weighted Jaccard per layer position 1 .. ``layer_count`` - 1)."""
    _, ia, ib = np.intersect1d(a.codes, b.codes, assume_unique=True, return_indices=True)
    smaller = np.minimum(a.influence[ia], b.influence[ib])
    smaller_weight = float(np.minimum(a.weight[ia], b.weight[ib]).sum())
    total_a, total_b, common = float(a.influence.sum()), float(b.influence.sum()), float(smaller.sum())
    per_layer = []
    for position in range(1, layer_count):
        mine = float(a.influence[a.layer == position].sum())
        theirs = float(b.influence[b.layer == position].sum())
        shared_here = float(smaller[a.layer[ia] == position].sum())
        per_layer.append(_ratio(shared_here, mine + theirs - shared_here))
    shared = len(ia)
    return {
        "weightedJaccard": _ratio(common, total_a + total_b - common),
        "jaccard": _ratio(float(shared), float(len(a.codes) + len(b.codes) - shared)),
        "incomingWeightJaccard": _ratio(smaller_weight,
                                        float(a.weight.sum()) + float(b.weight.sum()) - smaller_weight),
        "sharedNeurons": shared,
        "layerWeightedJaccard": per_layer,
    }


def similarity_rows(mine: CircuitVectors, layer_count: int, others: dict[str, CircuitVectors]
                    ) -> list[dict[str, Any]]:
    """SIMILAR_TO rows ``{other, props}`` from a circuit (``mine``; ``layer_count``: its layers, the logit's
    included) to the circuits of ``others`` (complete, of other classes of its model) that are of its family."""
    return [{"other": cid, "props": pair_values(mine.core, theirs.core, layer_count)}
            for cid, theirs in sorted(others.items()) if theirs.family == mine.family]
