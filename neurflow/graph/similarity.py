"""SIMILAR_TO: how alike two class circuits of one family are, written when the later one completes.

class-similarity ranks the classes of a family by the weighted Jaccard of their core neurons' influence below
the logit; computed at query time that is one pass over every core link the class shares with every other class
(230 k links per class at 1,000 classes). It is computed once instead, in the transaction that completes a
circuit (which holds its model's lock, so every circuit completed before it is seen and none is missed), against
the complete circuits of the other classes of its family, and written as one ``SIMILAR_TO`` relationship per pair
(from the later circuit to the earlier); deleting a circuit deletes its relationships with it.

Each circuit carries its core neurons below the logit as parallel lists (graph model 1.7: ``coreLayerIndex``,
``coreChannels``, ``coreInfluences``, ``coreWeights``), so a completion reads one node per other circuit, and a
writing process keeps those it has read (:data:`_vectors`, keyed by circuit id and write id, which every rewrite
changes): a completion in a long ingestion reads only the circuits completed since its last one.

>>> a = CoreVector.of([1, 1, 2], [3, 4, 3], [0.5, 0.5, 1.0], [1.0, 1.0, 2.0])
>>> b = CoreVector.of([1, 2], [3, 3], [1.0, 0.5], [1.0, 1.0])
>>> round(pair_values(a, b, 3)["weightedJaccard"], 4)   # (0.5 + 0.5) / (2.0 + 1.5 - 1.0)
0.4
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import neo4j
import numpy as np

from neurflow.graph.statements import statement

#: Circuits' core vectors a process keeps between completions (about 7 KB each at 283 core neurons).
CACHE_SIZE = 5000

_CHANNELS = np.int64(1) << 32


@dataclass(frozen=True)
class CoreVector:
    """A circuit's core neurons below the logit: sorted codes (layer position x 2^32 + channel) with their
    influence, incoming weight and layer position."""

    codes: np.ndarray
    influence: np.ndarray
    weight: np.ndarray
    layer: np.ndarray

    @classmethod
    def of(cls, layers: list[int], channels: list[int], influences: list[float],
           weights: list[float]) -> CoreVector:
        layer = np.asarray(layers, dtype=np.int64)
        codes = layer * _CHANNELS + np.asarray(channels, dtype=np.int64)
        order = np.argsort(codes, kind="stable")
        return cls(codes[order], np.asarray(influences, dtype=float)[order],
                   np.asarray(weights, dtype=float)[order], layer[order])


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


_vectors: OrderedDict[tuple[str, str], CoreVector] = OrderedDict()
_vectors_lock = threading.Lock()  # writer threads of several models may complete at once


def forget_vectors() -> None:
    """Empties this process's cache of core vectors (benchmarks of a first write in a new process)."""
    with _vectors_lock:
        _vectors.clear()


def _vector_of(record: Any) -> CoreVector:
    if record["channels"] is not None:
        return CoreVector.of(record["layerIndex"], record["channels"], record["influences"], record["weights"])
    # a circuit written before graph model 1.7: its core links
    layers = list(record["layers"])
    links = record["links"]
    return CoreVector.of([layers.index(x[0]) for x in links], [x[1] for x in links], [x[2] for x in links],
                         [x[3] for x in links])


def family_vectors(tx: neo4j.ManagedTransaction, family: str, class_index: int) -> dict[str, CoreVector]:
    """The core vectors of the complete circuits of the other classes of ``family``, by circuit id: read from
    the graph for those this process has not read before."""
    found = {r["id"]: r["writeId"] for r in tx.run(statement("similarity/family-circuits"), family=family,
                                                      classIndex=class_index)}
    out: dict[str, CoreVector] = {}
    with _vectors_lock:
        for cid, write_id in found.items():
            key = (cid, write_id or "")
            if key in _vectors:
                _vectors.move_to_end(key)
                out[cid] = _vectors[key]
    missing = [cid for cid in found if cid not in out]
    if missing:
        read = {r["id"]: ((r["id"], r["writeId"] or ""), _vector_of(r))
                for r in tx.run(statement("similarity/vectors"), ids=missing)}
        out.update({cid: vector for cid, (_, vector) in read.items()})
        with _vectors_lock:
            _vectors.update(read.values())
            while len(_vectors) > CACHE_SIZE:
                _vectors.popitem(last=False)
    return out


def similarity_rows(tx: neo4j.ManagedTransaction, circuit: dict[str, Any], family: str) -> list[dict[str, Any]]:
    """SIMILAR_TO rows ``{other, props}`` from the circuit (``circuit``: its Circuit node's properties, as
    written) to every complete circuit of another class of its family, read in ``tx`` (the completing one)."""
    mine = CoreVector.of(circuit["coreLayerIndex"], circuit["coreChannels"], circuit["coreInfluences"],
                         circuit["coreWeights"])
    layer_count = len(circuit["layers"])
    return [{"other": cid, "props": pair_values(mine, theirs, layer_count)}
            for cid, theirs in sorted(family_vectors(tx, family, circuit["classIndex"]).items())]
