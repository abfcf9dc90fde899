"""The circuit of one class: a plain dataclass graph and pure helpers over it.

A circuit is built top-down from the class logit. Every layer holds its core concept neurons; each neuron's
concept (its top-k patches) is split into semantic groups; weighted edges go from a semantic group of an upper
neuron to the core neurons one layer down; neuron groups cluster the semantic groups of a layer, and group edges
sum the member edge weights. ``neurflow.format`` writes it to disk, ``ingest`` writes it into Neo4j.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = "1.2"
#: Format versions whose circuit id leaves the images out (read as they are: their ids stay what they were).
IMAGELESS_ID_VERSIONS = ("1.0",)


def neuron_key(layer: str, channel: int) -> str:
    """Stable text key of a neuron, e.g. ``"layer4.2:1093"``."""
    return f"{layer}:{channel}"


def semantic_group_key(layer: str, channel: int, index: int) -> str:
    """Stable text key of the ``index``-th semantic group of a neuron, e.g. ``"layer4.2:1093/0"``."""
    return f"{layer}:{channel}/{index}"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    weights_id: str
    input_size: int
    num_classes: int

    @property
    def key(self) -> str:
        """``efficientnet-lite0@<weights id>``: the model and its weights (one Model node in the graph)."""
        return f"{self.name}@{self.weights_id}"


@dataclass(frozen=True)
class ClassInfo:
    index: int
    name: str
    wnid: str | None = None


@dataclass(frozen=True)
class ImageRecord:
    """One image of D_c. ``label`` is the folder label (wnid or class name) when the folder has one."""

    path: str
    sha256: str
    width: int
    height: int
    label: str | None
    predicted: int
    logit: float


@dataclass(frozen=True)
class PatchRecord:
    """One patch: ``box`` is (left, top, right, bottom) in the original image's pixels."""

    id: int
    image: int
    box: tuple[int, int, int, int]
    scale: float


@dataclass
class CoreNeuron:
    """A core concept neuron of a layer (the top layer holds the class logit alone)."""

    layer: str
    channel: int
    concept: list[int]
    concept_activations: list[float]
    max_activation: float
    parents: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return neuron_key(self.layer, self.channel)


@dataclass
class SemanticGroup:
    layer: str
    channel: int
    index: int
    patches: list[int]
    activations: list[float]

    @property
    def key(self) -> str:
        return semantic_group_key(self.layer, self.channel, self.index)

    @property
    def neuron(self) -> str:
        return neuron_key(self.layer, self.channel)


@dataclass(frozen=True)
class Edge:
    """w(a, s, V_a,j): from semantic group ``upper_group`` of neuron a to core neuron s one layer down."""

    upper_group: str
    upper: str
    lower: str
    score: float
    weight: float


@dataclass
class NeuronGroup:
    id: str
    layer: str
    semantic_groups: list[str]
    neurons: list[str]
    patches: list[int]


@dataclass(frozen=True)
class GroupEdge:
    upper: str
    lower: str
    weight: float


@dataclass(frozen=True)
class TargetCoverage:
    """How much of one target's attribution its core set carries (format 1.2; docs/coverage.md).

    ``layer``/``channel``: the target a; ``lower_layer``: where its core set is. ``core_share``: sum over core s of
    |T(a, s)| over the sum over every lower neuron; ``signed_share``: sum over core s of T(a, s) over the change
    sum over V_a of f_a(h_p) - f_a(0) (signs kept); ``attribution``: the sum over every lower neuron of |T(a, s)|;
    ``output_change``: that change; ``completeness_gap``: sum over V_a of |sum_s IG - (f_a(h_p) - f_a(0))| over
    sum over V_a of |f_a(h_p) - f_a(0)| (NaN where a does not move). NaN where a share has nothing to divide by.
    """

    layer: str
    channel: int
    lower_layer: str
    core_share: float
    signed_share: float
    attribution: float
    output_change: float
    completeness_gap: float

    @property
    def key(self) -> str:
        return neuron_key(self.layer, self.channel)


@dataclass
class Stability:
    """How sure the circuit is of its parts: a bootstrap over its images (format 1.2; docs/coverage.md).

    ``core``: (target, lower neuron, frequency) for every core pair: the share of resamples whose core set of the
    target holds the neuron; ``edges``: (semantic group, lower neuron, low, high): the central ``level`` of the
    resampled edge weight; ``semantic_groupings``: (neuron, groups, silhouette, stability) per concept split, the
    silhouette it was chosen with and the mean adjusted Rand index of the resampled splits (1: always the same);
    ``neuron_groupings``: (layer, groups, silhouette, stability) per layer; ``semantic_groups`` and
    ``neuron_groups``: (group key or id, stability) per group, the mean over resamples of its best Jaccard match
    (1: it comes back whole). Concepts are not re-chosen.
    """

    resamples: int
    level: float
    seed: int
    core: list[tuple[str, str, float]] = field(default_factory=list)
    edges: list[tuple[str, str, float, float]] = field(default_factory=list)
    semantic_groupings: list[tuple[str, int, float, float]] = field(default_factory=list)
    neuron_groupings: list[tuple[str, int, float, float]] = field(default_factory=list)
    semantic_groups: list[tuple[str, float]] = field(default_factory=list)
    neuron_groups: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class Circuit:
    model: ModelInfo
    target: ClassInfo
    layers: list[str]
    params: dict[str, Any]
    images: list[ImageRecord]
    patches: list[PatchRecord]
    neurons: dict[str, list[CoreNeuron]]
    semantic_groups: list[SemanticGroup]
    edges: list[Edge]
    neuron_groups: list[NeuronGroup]
    group_edges: list[GroupEdge]
    timings: dict[str, float] = field(default_factory=dict)
    # Per layer pair, how its integrated gradients were integrated with steps="auto" (docs/format.md): the
    # nodes used, the levels tried, the completeness gap at each. Empty for a fixed N (and then not written).
    integration: list[dict[str, Any]] = field(default_factory=list)
    # Per layer, where its output keeps its neurons (channels-first, channels-last, tokens: docs/layouts.md).
    # Empty when every layer is channels-first (and then not written): circuits of CNNs stay as they were.
    layouts: dict[str, str] = field(default_factory=dict)
    # Per target (every core neuron above the bottom layer), how much of its attribution its core set carries
    # (format 1.2). Empty for circuits built before neurflow recorded it (and then not written).
    coverage: list[TargetCoverage] = field(default_factory=list)
    # The bootstrap over images (format 1.2): None when not computed (older circuits, --stability-resamples 0).
    stability: Stability | None = None
    created: str = ""
    format_version: str = FORMAT_VERSION

    @property
    def id(self) -> str:
        """One circuit per model, weights, class, parameters and image set D_c (format 1.1 on; a circuit of
        format 1.0 keeps its id without the images)."""
        images = None if self.format_version in IMAGELESS_ID_VERSIONS else [im.sha256 for im in self.images]
        return circuit_id(self.model, self.target, self.params, images)

    @property
    def family_key(self) -> str:
        """The circuits that compare like with like: same model, weights and build parameters, any class."""
        return family_key(self.model, self.params)

    @property
    def logit_key(self) -> str:
        return neuron_key(self.layers[0], self.target.index)

    def neuron(self, key: str) -> CoreNeuron:
        layer, _, channel = key.rpartition(":")
        for neuron in self.neurons.get(layer, []):
            if neuron.channel == int(channel):
                return neuron
        raise KeyError(key)

    def groups_of_layer(self, layer: str) -> list[NeuronGroup]:
        return [g for g in self.neuron_groups if g.layer == layer]

    def edges_from(self, upper: str) -> list[Edge]:
        return [e for e in self.edges if e.upper == upper]


def space_layer(layers: Sequence[str], layer: str) -> str:
    """The layer whose channels span r(v) for the concepts of ``layer`` (and so its groups' representative
    vectors): the next circuit layer down, or the bottom layer itself (nothing below it is recorded)."""
    depth = list(layers).index(layer)
    return layers[min(depth + 1, len(layers) - 1)]


def image_set_hash(image_sha256s: Sequence[str]) -> str:
    """sha256 of the sorted sha256 of the images (D_c as a set: order and duplicates do not count)."""
    return hashlib.sha256("\n".join(sorted(set(image_sha256s))).encode()).hexdigest()


def circuit_id(model: ModelInfo, target: ClassInfo, params: dict[str, Any],
               image_sha256s: Sequence[str] | None = None) -> str:
    """16 hex digits: hash of the model, its weights, the class, the build parameters and (format 1.1 on) the
    image set, so a rebuild from other images is another circuit. ``image_sha256s=None``: the format 1.0 id."""
    identity: dict[str, Any] = {"model": model.name, "weights": model.weights_id, "class": target.index,
                                "params": params}
    if image_sha256s is not None:
        identity["images"] = image_set_hash(image_sha256s)
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def family_key(model: ModelInfo, params: dict[str, Any]) -> str:
    """16 hex digits: hash of the model, its weights and the build parameters (the circuit id without the class)."""
    payload = json.dumps({"model": model.name, "weights": model.weights_id, "params": params}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def semantic_group_weight_sums(circuit: Circuit) -> dict[str, float]:
    """Sum of |w| over the edges of each semantic group: 1 for every group with edges."""
    sums: dict[str, float] = defaultdict(float)
    for edge in circuit.edges:
        sums[edge.upper_group] += abs(edge.weight)
    return dict(sums)


def label_matches(label: str | None, target: ClassInfo) -> bool:
    """Whether an image's folder label names ``target`` (its wnid, name or index)."""
    if label is None:
        return False
    return label == target.wnid or label.lower() == target.name.lower() or label == str(target.index)
