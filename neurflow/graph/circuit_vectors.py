"""What a completing circuit compares with every other circuit of its model: their core neurons and groups as
arrays, read from the Circuit nodes and kept by the writing process.

Graph model 1.7 writes on each Circuit its core neurons below the logit (``coreLayerIndex``, ``coreChannels``,
``coreInfluences``, ``coreWeights``) and its neuron groups below the logit (``groupIds``, ``groupInfluences``,
``groupSizes``, ``groupMembers``: the member neurons of every group one after another). A completion reads one
node per other circuit instead of traversing every core and member link they share (469 k member links for one
class at 1,000 classes), and a process keeps what it has read (keyed by circuit id and write id, which every
rewrite changes): a long ingestion reads only the circuits completed since its previous completion. Circuits
written before 1.7 are read from their links.

A neuron is coded as its layer's position in the circuit's ``layers`` x 2^32 + its channel (circuits compared
share their model, and those of one family their layers).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import neo4j
import numpy as np

from neurflow.graph.statements import statement

#: Circuits a process keeps between completions (about 10 KB each at 283 core neurons and 25 groups).
CACHE_SIZE = 5000

_CHANNELS = np.int64(1) << 32


def neuron_code(layer: int, channel: int) -> int:
    """The code of one neuron: its layer's position in the circuit's ``layers`` x 2^32 + its channel."""
    return layer * int(_CHANNELS) + channel


def neuron_codes(layers: list[int], channels: list[int]) -> np.ndarray:
    """Codes of neurons given by layer position and channel (:func:`neuron_code`, as an array)."""
    return np.asarray(layers, dtype=np.int64) * _CHANNELS + np.asarray(channels, dtype=np.int64)


@dataclass(frozen=True)
class CoreVector:
    """A circuit's core neurons below the logit: sorted codes with their influence, incoming weight and layer
    position."""

    codes: np.ndarray
    influence: np.ndarray
    weight: np.ndarray
    layer: np.ndarray

    @classmethod
    def of(cls, layers: list[int], channels: list[int], influences: list[float],
           weights: list[float]) -> CoreVector:
        codes = neuron_codes(layers, channels)
        order = np.argsort(codes, kind="stable")
        return cls(codes[order], np.asarray(influences, dtype=float)[order],
                   np.asarray(weights, dtype=float)[order], np.asarray(layers, dtype=np.int64)[order])


@dataclass(frozen=True)
class GroupLists:
    """A circuit's neuron groups below the logit: ids, influence, sizes and the member codes of each, in order."""

    ids: list[str]
    influence: np.ndarray
    sizes: np.ndarray
    members: np.ndarray


@dataclass(frozen=True)
class CircuitVectors:
    """What another circuit brings to a completion: its family, class, core vector and groups, and the write that
    made them (every rewrite changes it)."""

    family: str
    class_index: int
    core: CoreVector
    groups: GroupLists
    write_id: str = ""


def circuit_vectors(props: dict[str, Any]) -> CircuitVectors:
    """The vectors of a circuit from its Circuit node's properties (1.7)."""
    return CircuitVectors(
        props["familyKey"], props["classIndex"],
        CoreVector.of(props["coreLayerIndex"], props["coreChannels"], props["coreInfluences"], props["coreWeights"]),
        GroupLists(list(props["groupIds"]), np.asarray(props["groupInfluences"], dtype=float),
                   np.asarray(props["groupSizes"], dtype=np.int64), np.asarray(props["groupMembers"], dtype=np.int64)),
        props.get("writeId") or "")


def _from_links(record: Any) -> CircuitVectors:
    """A circuit written before 1.7, from its core and member links."""
    layers = list(record["layers"])
    core = record["core"]
    groups = record["groups"]
    members = [(layers.index(layer), channel) for g in groups for layer, channel in g[3]]
    return CircuitVectors(
        record["props"]["familyKey"], record["props"]["classIndex"],
        CoreVector.of([layers.index(x[0]) for x in core], [x[1] for x in core], [x[2] for x in core],
                      [x[3] for x in core]),
        GroupLists([g[0] for g in groups], np.asarray([g[1] for g in groups], dtype=float),
                   np.asarray([g[2] for g in groups], dtype=np.int64),
                   neuron_codes([m[0] for m in members], [m[1] for m in members])),
        record["props"].get("writeId") or "")


_cache: OrderedDict[tuple[str, str], CircuitVectors] = OrderedDict()
_cache_lock = threading.Lock()  # writer threads of several models may complete at once


def forget_vectors() -> None:
    """Empties this process's cache (benchmarks of a first write in a new process)."""
    with _cache_lock:
        _cache.clear()


def model_vectors(tx: neo4j.ManagedTransaction, model: str, class_index: int) -> dict[str, CircuitVectors]:
    """The vectors of the complete circuits of the other classes of ``model``, by circuit id: read from the
    graph for those this process has not read before (in ``tx``, the completing transaction)."""
    found = {r["id"]: r["writeId"] or "" for r in tx.run(statement("similarity/model-circuits"), model=model,
                                                           classIndex=class_index)}
    out: dict[str, CircuitVectors] = {}
    with _cache_lock:
        for cid, write_id in found.items():
            if (cid, write_id) in _cache:
                _cache.move_to_end((cid, write_id))
                out[cid] = _cache[(cid, write_id)]
    missing = [cid for cid in found if cid not in out]
    if missing:
        read = {}
        for record in tx.run(statement("similarity/vectors"), ids=missing):
            props = record["props"]
            vectors = circuit_vectors(props) if props.get("groupMembers") is not None else _from_links(record)
            read[record["id"]] = ((record["id"], props.get("writeId") or ""), vectors)
        out.update({cid: vectors for cid, (_, vectors) in read.items()})
        with _cache_lock:
            _cache.update(read.values())
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
    return out

