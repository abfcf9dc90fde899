"""Image debugging with a class circuit: the paper's metric M (Section 5, Appendix F) and false positives.

Metric M of a neuron group G on a crop x::

    M(G, x) = ( prod over n in P(G) of max(a_n(x) / |a_n^max|, eps) ) ^ (1 / |P(G)|)

- ``P(G)``: the 5 neurons of G closest to G's centre, each neuron represented per semantic group by the
  group's representative vector r_{n,j} (l2 distance; see :func:`group_probes`);
- ``a_n(x)``: neuron n's activation on the crop (the spatial mean of its channel, as everywhere here);
- ``|a_n^max|``: the absolute value of n's maximum activation over the class's patch set
  (``CoreNeuron.max_activation``);
- ``eps`` (1e-3): ResNet and GoogLeNet block outputs are ReLU outputs, but EfficientNet-Lite block outputs
  are linear (BatchNorm plus the skip, no activation), so a ratio can be zero or negative there; the
  geometric mean needs positives, so ratios are clamped at ``eps``.

The score of G on an image is the maximum of M over the image's 59 crops (the same crops as the circuit's
patches, :class:`~neurflow.engine.patches.PatchSet`); crops with M at or above G's threshold (0.8 unless set
per group) are outlined in the picture. See docs/experiments.md for how the authors' code differs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from neurflow.circuit import Circuit, ClassInfo, CoreNeuron, NeuronGroup, label_matches
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import DataError, PatchSet, ViewImage, predict_views
from neurflow.experiments.channels import Channels, merge_channels, neuron_count, random_channels
from neurflow.experiments.runner import MaskedRunner, crop_activations, view_inputs
from neurflow.registry import ModelError

EPSILON = 1e-3
PROBE_SIZE = 5
THRESHOLD = 0.8


# --------------------------------------------------------------------------- probes and metric M


@dataclass
class GroupProbe:
    """The neurons whose activations score a group: P(G), up to ``PROBE_SIZE`` distinct members closest to
    its centre, each with the semantic group through which it is closest (``semantic_groups``)."""

    group_id: str
    layer: str
    channels: list[int]
    max_activation: list[float]
    distances: list[float]
    members: int
    skipped: list[int] = field(default_factory=list)
    semantic_groups: list[str] = field(default_factory=list)


def group_probes(circuit: Circuit, vectors: dict[str, np.ndarray], count: int = PROBE_SIZE) -> list[GroupProbe]:
    """P(G) of every neuron group of the circuit.

    Each member neuron s_i is represented per semantic group: r_{s_i,j} is the representative vector of its
    semantic group j (``sg/<layer>`` in vectors.npz: the vectors the layer's neuron groups were clustered
    on). G's centre is the mean of the vectors of G's semantic groups. The semantic groups of G are ranked
    by the l2 distance of r_{s_i,j} to the centre, and P(G) is the first ``count`` *distinct* neurons in
    that ranking: a neuron present through several semantic groups counts once, at its closest one, so
    that no neuron weighs twice in the geometric mean (all members when there are fewer).

    Members whose maximum activation over the class's patches is not positive are left out (listed in
    ``skipped``) and the next closest neuron takes their place: a maximum of 0 gives no ratio, and with a
    negative maximum (possible only on linear outputs such as EfficientNet-Lite's blocks) a_n / |a_n^max|
    is at most -1 on every patch of the class: clamped to eps everywhere, the neuron would cap M whatever
    the image shows.
    """
    probes = []
    for group in circuit.neuron_groups:
        layer = group.layer
        keys = [str(k) for k in vectors.get(f"sgkeys/{layer}", [])]
        if f"sg/{layer}" not in vectors or not keys:
            raise DataError(f"the circuit's vectors.npz has no semantic-group vectors for layer {layer!r}")
        row = {key: i for i, key in enumerate(keys)}
        missing = [k for k in group.semantic_groups if k not in row]
        if missing:
            raise DataError(f"vectors.npz lacks semantic groups {missing[:3]} of group {group.id}")
        rep = vectors[f"sg/{layer}"].astype(np.float64)
        centre = rep[[row[k] for k in group.semantic_groups]].mean(0)
        distance = {key: float(np.linalg.norm(rep[row[key]] - centre)) for key in group.semantic_groups}
        members = set(group.neurons)
        chosen: list[tuple[CoreNeuron, str]] = []
        seen: set[str] = set()
        skipped: list[int] = []
        # sorted() is stable: equal distances keep the group's own order, so probes are reproducible
        for key in sorted(group.semantic_groups, key=lambda k: distance[k]):
            neuron = key.rpartition("/")[0]
            if neuron in seen or neuron not in members:
                continue
            seen.add(neuron)
            core = circuit.neuron(neuron)
            if core.max_activation <= 0:
                skipped.append(core.channel)
            elif len(chosen) < count:
                chosen.append((core, key))
        probes.append(GroupProbe(
            group.id, layer, [c.channel for c, _ in chosen], [c.max_activation for c, _ in chosen],
            [distance[k] for _, k in chosen], len(group.neurons), sorted(skipped), [k for _, k in chosen],
        ))
    return probes


def metric_m(activations: np.ndarray, max_activation: np.ndarray, eps: float = EPSILON) -> np.ndarray:
    """M per crop: the geometric mean over the probe neurons of max(activation / |max activation|, eps).

    ``activations``: [crops, neurons]; ``max_activation``: [neurons], non-zero. Returns [crops]; a probe
    without neurons scores NaN.
    """
    activations = np.asarray(activations, dtype=np.float64)
    maxima = np.asarray(max_activation, dtype=np.float64)
    if activations.ndim != 2 or activations.shape[1] != maxima.shape[0]:
        raise ValueError(f"activations {activations.shape} do not match {maxima.shape[0]} maxima")
    if maxima.size == 0:
        return np.full(activations.shape[0], np.nan)
    if np.any(maxima == 0):
        raise ValueError("maximum activations must be non-zero")
    ratios = np.maximum(activations / np.abs(maxima), eps)
    return np.exp(np.log(ratios).mean(axis=1))


# --------------------------------------------------------------------------- one image


@dataclass
class GroupScore:
    group_id: str
    layer: str
    channels: list[int]
    score: float
    best_crop: int
    crops_above: list[int]
    crop_scores: list[float]
    threshold: float = THRESHOLD
    """The group's own threshold: its crops with M at or above it are its hits."""


@dataclass
class ImageDebug:
    """Metric M of every group of a class circuit on one image's crops (``boxes`` in view pixels)."""

    path: str
    label: str | None
    target: ClassInfo
    predicted: str
    predicted_index: int
    class_prob: float
    class_logit: float
    threshold: float
    """The default threshold (groups may have their own: ``GroupScore.threshold``)."""
    groups: list[GroupScore]
    boxes: list[tuple[int, int, int, int]]

    def to_dict(self, crop_scores: bool = False) -> dict[str, Any]:
        data = asdict(self)
        if not crop_scores:
            for group in data["groups"]:
                group.pop("crop_scores")
        return data

    def high(self, exclude_layer: str | None = None) -> list[GroupScore]:
        """The groups whose score reaches their own threshold (below ``exclude_layer``, e.g. the logit's)."""
        return [g for g in self.groups if g.score >= g.threshold and g.layer != exclude_layer]


@torch.no_grad()
def debug_image(
    loaded: LoadedModel,
    circuit: Circuit,
    view: ViewImage,
    probes: Sequence[GroupProbe],
    threshold: float = THRESHOLD,
    batch_size: int = 64,
    thresholds: Mapping[str, float] | None = None,
) -> ImageDebug:
    """Scores every probed group on the 59 crops of ``view``; groups sorted by score, best first.

    Each group's crops are compared with its own threshold: ``thresholds[group id]`` when given, else
    ``threshold``."""
    unknown = sorted(set(thresholds or {}) - {p.group_id for p in probes})
    if unknown:
        raise DataError(f"thresholds given for groups {unknown} that the circuit does not have")
    patches = PatchSet([view], loaded.preprocessing)
    logit_layer = circuit.layers[0]
    layers = list(dict.fromkeys([logit_layer, *(p.layer for p in probes)]))
    acts = {layer: values.numpy() for layer, values in crop_activations(loaded, patches, layers, batch_size).items()}
    # Crop 0 is the whole view (scale 1), i.e. the image as the model classifies it.
    logits = torch.as_tensor(acts[logit_layer][0])
    if logits.shape[0] != len(loaded.categories):
        raise ModelError(f"the circuit's first layer {logit_layer!r} does not output the class logits")
    scores = []
    for probe in probes:
        crop = metric_m(acts[probe.layer][:, probe.channels], np.array(probe.max_activation))
        best = int(np.nanargmax(crop)) if not np.all(np.isnan(crop)) else 0
        own = float((thresholds or {}).get(probe.group_id, threshold))
        scores.append(GroupScore(
            probe.group_id, probe.layer, probe.channels, float(crop[best]), best,
            [int(i) for i in np.flatnonzero(crop >= own)], [float(v) for v in crop], own,
        ))
    scores.sort(key=lambda s: -s.score if not math.isnan(s.score) else math.inf)
    target = circuit.target
    return ImageDebug(
        path=str(view.file.path), label=view.file.label, target=target,
        predicted=loaded.categories[int(logits.argmax())], predicted_index=int(logits.argmax()),
        class_prob=float(logits.softmax(0)[target.index]), class_logit=float(logits[target.index]),
        threshold=threshold, groups=scores, boxes=[ref.box for ref in patches.refs],
    )


def draw_debug(view: ViewImage, result: ImageDebug, path: str | Path, max_groups: int = 6, dpi: int = 100) -> Path:
    """The image, then one panel per best-scoring group with its crops of M >= its threshold outlined (the
    best crop dashed when none reaches it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    shown = [g for g in result.groups if not math.isnan(g.score)][:max_groups]
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(2.6 * (len(shown) + 1), 3.4), squeeze=False)
    picture = view.view.permute(1, 2, 0).numpy()
    axes[0, 0].imshow(picture)
    axes[0, 0].set_title(
        f"{Path(result.path).name[:28]}\npred: {result.predicted[:22]}\np({result.target.name[:18]})"
        f"={result.class_prob:.2f}", fontsize=7,
    )
    cmap = plt.get_cmap("autumn_r")
    for ax, group in zip(axes[0, 1:], shown, strict=True):
        ax.imshow(picture)
        crops = group.crops_above or [group.best_crop]
        for crop in sorted(crops, key=lambda c: group.crop_scores[c]):
            left, top, right, bottom = result.boxes[crop]
            value = group.crop_scores[crop]
            ax.add_patch(Rectangle(
                (left + 1, top + 1), right - left - 2, bottom - top - 2, fill=False, linewidth=1.8,
                edgecolor=cmap(min(1.0, max(0.0, value))),
                linestyle="-" if group.crops_above else "--",
            ))
        ax.set_title(f"{group.group_id}\nM={group.score:.2f}, {len(group.crops_above)} crop(s) >= "
                     f"{group.threshold:g}", fontsize=7)
    for ax in axes[0]:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- false positives


def group_channels(circuit: Circuit, group_ids: Sequence[str]) -> Channels:
    """The member neurons of the groups, per layer."""
    by_id: dict[str, NeuronGroup] = {g.id: g for g in circuit.neuron_groups}
    sets: list[Channels] = []
    for gid in group_ids:
        group = by_id[gid]
        sets.append({group.layer: [int(n.rpartition(":")[2]) for n in group.neurons]})
    return merge_channels(*sets)


@dataclass
class FalsePositive:
    """An image predicted as the class but labelled otherwise, its high groups and what masking them does."""

    debug: ImageDebug
    masked_groups: list[str]
    above_threshold: bool
    masked_neurons: int
    prob_before: float
    prob_after: float
    predicted_after: str
    random_prob_after: float

    @property
    def prob_change(self) -> float:
        return self.prob_after - self.prob_before

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["debug"] = self.debug.to_dict()
        return data | {"prob_change": self.prob_change}


@dataclass
class FalsePositiveReport:
    target: ClassInfo
    images: int
    predicted_as_class: int
    labelled_as_class: int
    false_positives: list[FalsePositive]

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": asdict(self.target), "images": self.images, "predicted_as_class": self.predicted_as_class,
            "labelled_as_class": self.labelled_as_class,
            "false_positives": [fp.to_dict() for fp in self.false_positives],
        }


def false_positives(
    loaded: LoadedModel,
    circuit: Circuit,
    vectors: dict[str, np.ndarray],
    views: Sequence[ViewImage],
    threshold: float = THRESHOLD,
    draws: int = 3,
    seed: int = 0,
    limit: int | None = None,
    batch_size: int = 32,
    progress: bool = False,
    thresholds: Mapping[str, float] | None = None,
) -> FalsePositiveReport:
    """Images predicted as the circuit's class whose folder label is another class: the groups (below the
    logit layer) scoring M at or above their threshold (``thresholds[group id]``, else ``threshold``) on
    them, masked together to see how much of the prediction they carry (the best group alone when none
    reaches its threshold); ``draws`` random sets of as many neurons per layer give the reference."""
    target = circuit.target
    if not any(v.file.label for v in views):
        raise DataError("finding false positives needs labelled images: an ImageFolder <wnid or class>/<file>")
    logits = predict_views(loaded, views, batch_size, progress)
    predicted = logits.argmax(1)
    chosen = [i for i, v in enumerate(views)
              if int(predicted[i]) == target.index and v.file.label and not label_matches(v.file.label, target)]
    chosen.sort(key=lambda i: -float(logits[i, target.index]))
    chosen = chosen[:limit] if limit else chosen
    probes = group_probes(circuit, vectors)
    rng = np.random.default_rng(seed)
    found = []
    for i in tqdm(chosen, desc="false positives", unit="image", disable=not progress, leave=False):
        debug = debug_image(loaded, circuit, views[i], probes, threshold, max(batch_size, 59), thresholds)
        high = debug.high(exclude_layer=circuit.layers[0])
        above = bool(high)
        if not high:
            high = [g for g in debug.groups if g.layer != circuit.layers[0]][:1]
        ids = [g.group_id for g in high]
        channels = group_channels(circuit, ids)
        runner = MaskedRunner(loaded, view_inputs([views[i]], loaded), list(channels), batch_size)
        after = runner(channels, "mask")[0]
        randoms = [runner(random_channels(channels, runner.widths, rng), "mask")[0] for _ in range(draws)]
        found.append(FalsePositive(
            debug, ids, above, neuron_count(channels),
            float(runner.logits[0].softmax(0)[target.index]), float(after.softmax(0)[target.index]),
            loaded.categories[int(after.argmax())],
            float(np.mean([float(r.softmax(0)[target.index]) for r in randoms])) if randoms else math.nan,
        ))
    return FalsePositiveReport(
        target, len(views), int((predicted == target.index).sum()),
        sum(1 for v in views if label_matches(v.file.label, target)), found,
    )
