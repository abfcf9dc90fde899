"""Experiments back on the model: masking neuron sets and the paper's fidelity study (its Figure 5).

Everything here is a pure function of a :class:`~neurflow.engine.models.LoadedModel`, a few views and a set of
channels; results are dataclasses (``to_dict()`` for JSON). Channels are zeroed with
:func:`neurflow.engine.segments.channel_hooks` (forward hooks, removed on exit):

- ``mask``: the chosen channels of each layer are zeroed;
- ``retain``: every *other* channel of each listed layer is zeroed.

A :class:`MaskedRunner` computes the model's logits of a fixed set of inputs under many masks. It runs the
whole model once, keeps the output of the lowest masked layer and afterwards only runs the rest of the
model (a segment cut out of the model's torch.fx graph), with the hooks on the same modules. It checks
that the segment reproduces the model's logits and otherwise runs the whole model every time.

>>> from neurflow.engine.models import load_model
>>> loaded = load_model("efficientnet-lite0")                                        # doctest: +SKIP
>>> result = masking_experiment(loaded, target, views, {"_blocks.15": [3, 17]})      # doctest: +SKIP
>>> result.effect.accuracy_after, result.random.accuracy_after_mean                 # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from neurflow.circuit import ClassInfo, ModelInfo
from neurflow.engine.models import LoadedModel, ModelError
from neurflow.engine.patches import PatchSet, ViewImage, normalise
from neurflow.engine.segments import _first_tensor, channel_hooks, extract_segment, trace

Channels = dict[str, list[int]]
"""Channels per layer, e.g. ``{"_blocks.15": [3, 17]}``."""

MODES = ("mask", "retain")
SCOPES = ("single", "cumulative")


# --------------------------------------------------------------------------- neuron sets


def parse_neurons(text: str) -> Channels:
    """``"_blocks.15:3, _blocks.15:17,_blocks.14:5"`` -> ``{"_blocks.15": [3, 17], "_blocks.14": [5]}``."""
    channels: Channels = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        layer, sep, channel = part.rpartition(":")
        if not sep or not layer or not channel.strip().isdigit():
            raise ModelError(f"bad neuron {part!r}: write LAYER:CHANNEL, e.g. _blocks.15:42")
        channels.setdefault(layer.strip(), [])
        if int(channel) not in channels[layer.strip()]:
            channels[layer.strip()].append(int(channel))
    if not channels:
        raise ModelError("no neuron given: write LAYER:CHANNEL,... e.g. _blocks.15:42,_blocks.15:7")
    return channels


def merge_channels(*sets: Channels) -> Channels:
    """Union of channel sets, layers in first-seen order, channels sorted."""
    merged: dict[str, set[int]] = {}
    for channels in sets:
        for layer, chosen in channels.items():
            merged.setdefault(layer, set()).update(int(c) for c in chosen)
    return {layer: sorted(chosen) for layer, chosen in merged.items()}


def _hookable(channels: Channels) -> dict[str, Sequence[int]]:
    """The same channels typed as :func:`channel_hooks` takes them."""
    out: dict[str, Sequence[int]] = dict(channels)
    return out


def neuron_count(channels: Channels) -> int:
    return sum(len(c) for c in channels.values())


def random_channels(chosen: Channels, widths: dict[str, int], rng: np.random.Generator) -> Channels:
    """As many channels per layer as ``chosen`` has there, drawn without replacement from that layer's
    channels that are *not* chosen (all of them when every channel is chosen)."""
    drawn: Channels = {}
    for layer, picked in chosen.items():
        excluded = set(picked)
        pool = np.array([c for c in range(widths[layer]) if c not in excluded], dtype=np.int64)
        if len(pool) < len(picked):
            pool = np.arange(widths[layer], dtype=np.int64)
        drawn[layer] = sorted(int(c) for c in rng.choice(pool, size=len(picked), replace=False))
    return drawn


def check_channels(channels: Channels, widths: dict[str, int]) -> None:
    """A ModelError naming the layer's width when a channel is out of range."""
    for layer, chosen in channels.items():
        bad = [c for c in chosen if not 0 <= c < widths[layer]]
        if bad:
            raise ModelError(f"layer {layer!r} has channels 0..{widths[layer] - 1}; {bad} are out of range")


# --------------------------------------------------------------------------- logits under masks


class _Entry(nn.Module):
    """Identity through which the cached lowest-layer output passes, so that channel_hooks can mask it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@torch.no_grad()
def layer_widths(loaded: LoadedModel, layers: Sequence[str], sample: torch.Tensor) -> tuple[dict[str, int], list[str]]:
    """Channels of each layer and the layers in the order the forward pass runs them (one input)."""
    loaded.check_layers(list(dict.fromkeys(layers)))
    widths: dict[str, int] = {}
    order: list[str] = []
    handles = []
    for name in dict.fromkeys(layers):
        def hook(_m: nn.Module, _a: object, output: object, name: str = name) -> None:
            if name in widths:
                raise ModelError(f"module {name!r} runs more than once per forward pass; pick another layer")
            widths[name] = int(_first_tensor(output).shape[1])
            order.append(name)
        handles.append(loaded.module.get_submodule(name).register_forward_hook(hook))
    try:
        loaded.module(sample[:1].to(loaded.device))
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer in layers if layer not in widths]
    if missing:
        raise ModelError(f"layer(s) {missing} did not run in the forward pass")
    return widths, order


class MaskedRunner:
    """The logits of fixed inputs under channel masks of ``layers`` (any subset of them per call).

    ``inputs`` are normalised model inputs. The unmasked logits are computed at construction; when
    ``reuse`` is set (default) the output of the lowest of ``layers`` is kept and later calls only run the
    model above it, which gives the same logits (checked here) far faster.
    """

    def __init__(self, loaded: LoadedModel, inputs: torch.Tensor, layers: Sequence[str], batch_size: int = 32,
                 reuse: bool = True):
        if len(inputs) == 0:
            raise ValueError("no inputs")
        self.loaded = loaded
        self.inputs = inputs.cpu()
        self.batch_size = max(1, batch_size)
        logit_layer = loaded.layers[0]
        self.layers = list(dict.fromkeys([*layers, logit_layer]))
        self.widths, order = layer_widths(loaded, self.layers, self.inputs)
        self.base = order[0]
        self.logits, cached = self._full_pass(keep=self.base if reuse else None)
        self.segment: nn.Module | None = None
        self.cached: list[torch.Tensor] = []
        self._entry = nn.ModuleDict({"entry": _Entry()})
        if reuse and cached:
            self.segment = self._segment(logit_layer)
            self.cached = cached
            if self.segment is not None:
                with torch.no_grad():
                    first = self.segment(cached[0].to(loaded.device)).float().cpu()
                if first.shape != self.logits[: len(first)].shape or not torch.allclose(
                    first, self.logits[: len(first)], rtol=1e-4, atol=1e-4
                ):
                    self.segment, self.cached = None, []

    @property
    def reusing(self) -> bool:
        """Whether calls run only the model above the cached layer."""
        return self.segment is not None

    def _segment(self, logit_layer: str) -> nn.Module | None:
        if self.base == logit_layer:
            return nn.Identity()
        try:
            traced = trace(self.loaded.module, self.layers)
            return extract_segment(traced, self.base, logit_layer)
        except ModelError:
            return None

    def _batches(self) -> Iterator[slice]:
        for start in range(0, len(self.inputs), self.batch_size):
            yield slice(start, start + self.batch_size)

    @torch.no_grad()
    def _full_pass(self, keep: str | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        kept: list[torch.Tensor] = []
        handle = None
        if keep is not None:
            def hook(_m: nn.Module, _a: object, output: object) -> None:
                kept.append(_first_tensor(output).detach().cpu())
            handle = self.loaded.module.get_submodule(keep).register_forward_hook(hook)
        try:
            logits = [self.loaded.module(self.inputs[b].to(self.loaded.device)).float().cpu() for b in self._batches()]
        finally:
            if handle is not None:
                handle.remove()
        return torch.cat(logits), kept

    @torch.no_grad()
    def __call__(self, channels: Channels | None = None, mode: str = "mask") -> torch.Tensor:
        """Logits [inputs, classes] with ``channels`` masked (``mode`` mask) or retained (``retain``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if not channels:
            return self.logits.clone()
        unknown = [layer for layer in channels if layer not in self.widths]
        if unknown:
            raise ValueError(f"layers {unknown} were not given to the runner ({self.layers})")
        check_channels(channels, self.widths)
        device = self.loaded.device
        if self.segment is None:
            with channel_hooks(self.loaded.module, _hookable(channels), mode):
                return torch.cat([self.loaded.module(self.inputs[b].to(device)).float().cpu() for b in self._batches()])
        above = {layer: chosen for layer, chosen in channels.items() if layer != self.base}
        entry = {"entry": channels[self.base]} if self.base in channels else {}
        with channel_hooks(self.loaded.module, _hookable(above), mode), channel_hooks(self._entry, _hookable(entry), mode):
            return torch.cat([self.segment(self._entry["entry"](part.to(device))).float().cpu() for part in self.cached])


def view_inputs(views: Sequence[ViewImage], loaded: LoadedModel) -> torch.Tensor:
    """Normalised inputs [images, 3, crop, crop] of whole views (on the CPU)."""
    if not views:
        raise ValueError("no images")
    return normalise(torch.stack([v.view for v in views]), loaded.preprocessing)


# --------------------------------------------------------------------------- effects


@dataclass
class Effect:
    """What a mask does to the class on a set of images (changes are after - before, means over images)."""

    neurons: int
    images: int
    accuracy_before: float
    accuracy_after: float
    mean_prob_before: float
    mean_prob_after: float
    mean_prob_change: float
    mean_logit_change: float
    changed: int
    changed_to: dict[str, int] = field(default_factory=dict)

    @property
    def relative_accuracy(self) -> float:
        """Accuracy after / accuracy before (NaN when no image was right before)."""
        return self.accuracy_after / self.accuracy_before if self.accuracy_before > 0 else math.nan


def effect_of(before: torch.Tensor, after: torch.Tensor, class_index: int, categories: Sequence[str],
              neurons: int) -> Effect:
    """Compare logits before/after a mask: class probability, logit, top-1 accuracy, where predictions went."""
    prob_before = before.softmax(1)[:, class_index]
    prob_after = after.softmax(1)[:, class_index]
    pred_before, pred_after = before.argmax(1), after.argmax(1)
    changed = pred_before != pred_after
    to = Counter(categories[int(c)] for c in pred_after[changed])
    return Effect(
        neurons=neurons,
        images=len(before),
        accuracy_before=float((pred_before == class_index).float().mean()),
        accuracy_after=float((pred_after == class_index).float().mean()),
        mean_prob_before=float(prob_before.mean()),
        mean_prob_after=float(prob_after.mean()),
        mean_prob_change=float((prob_after - prob_before).mean()),
        mean_logit_change=float((after[:, class_index] - before[:, class_index]).mean()),
        changed=int(changed.sum()),
        changed_to=dict(to.most_common()),
    )


@dataclass
class RandomEffects:
    """The same mask with random neurons (same count per layer), over several seeded draws."""

    draws: int
    seed: int
    accuracy_after_mean: float
    accuracy_after_std: float
    prob_change_mean: float
    prob_change_std: float
    logit_change_mean: float
    logit_change_std: float
    per_draw: list[Effect]
    channels: list[Channels]


def summarise_random(effects: list[Effect], channels: list[Channels], seed: int) -> RandomEffects:
    def stats(values: list[float]) -> tuple[float, float]:
        return (float(np.mean(values)), float(np.std(values))) if values else (math.nan, math.nan)

    acc = stats([e.accuracy_after for e in effects])
    prob = stats([e.mean_prob_change for e in effects])
    logit = stats([e.mean_logit_change for e in effects])
    return RandomEffects(len(effects), seed, *acc, *prob, *logit, effects, channels)


@dataclass
class ImageDrop:
    path: str
    label: str | None
    logit_before: float
    logit_after: float
    prob_before: float
    prob_after: float
    predicted_before: str
    predicted_after: str

    @property
    def drop(self) -> float:
        return self.logit_before - self.logit_after


@dataclass
class PatchDrop:
    """A patch of an image: ``box`` (left, top, right, bottom) in the original image's pixels."""

    path: str
    box: tuple[int, int, int, int]
    scale: float
    logit_before: float
    logit_after: float

    @property
    def drop(self) -> float:
        return self.logit_before - self.logit_after


@dataclass
class MaskingResult:
    model: ModelInfo
    target: ClassInfo
    mode: str
    channels: Channels
    effect: Effect
    random: RandomEffects
    images: list[ImageDrop]
    patches: list[PatchDrop]
    runner_reused: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["images"] = [asdict(i) | {"drop": i.drop} for i in self.images]
        data["patches"] = [asdict(p) | {"drop": p.drop} for p in self.patches]
        return data


def masking_experiment(
    loaded: LoadedModel,
    target: ClassInfo,
    views: Sequence[ViewImage],
    channels: Channels,
    mode: str = "mask",
    draws: int = 10,
    seed: int = 0,
    patch_images: int = 2,
    top_patches: int = 10,
    batch_size: int = 32,
    progress: bool = False,
) -> MaskingResult:
    """Mask (or retain) ``channels`` on ``views``; compare with ``draws`` random sets of the same size per layer.

    Images are ranked by their class-logit drop; the patches (59 per image, :class:`PatchSet`) of the
    ``patch_images`` images with the largest drop are ranked too, ``top_patches`` of them kept.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if neuron_count(channels) == 0:
        raise ModelError("no neuron to mask")
    runner = MaskedRunner(loaded, view_inputs(views, loaded), list(channels), batch_size)
    check_channels(channels, runner.widths)
    count = neuron_count(channels)
    after = runner(channels, mode)
    effect = effect_of(runner.logits, after, target.index, loaded.categories, count)

    rng = np.random.default_rng(seed)
    random_effects, random_sets = [], []
    for _ in tqdm(range(draws), desc="random draws", unit="draw", disable=not progress, leave=False):
        drawn = random_channels(channels, runner.widths, rng)
        random_sets.append(drawn)
        random_effects.append(effect_of(runner.logits, runner(drawn, mode), target.index, loaded.categories, count))

    c, cats = target.index, loaded.categories
    before_prob, after_prob = runner.logits.softmax(1)[:, c], after.softmax(1)[:, c]
    images = [
        ImageDrop(str(v.file.path), v.file.label, float(runner.logits[i, c]), float(after[i, c]),
                  float(before_prob[i]), float(after_prob[i]), cats[int(runner.logits[i].argmax())],
                  cats[int(after[i].argmax())])
        for i, v in enumerate(views)
    ]
    order = sorted(range(len(images)), key=lambda i: -images[i].drop)
    patches: list[PatchDrop] = []
    if patch_images > 0 and top_patches > 0:
        worst = [views[i] for i in order[:patch_images]]
        patch_set = PatchSet(list(worst), loaded.preprocessing)
        patch_runner = MaskedRunner(loaded, patch_set.inputs(range(len(patch_set))), list(channels), batch_size)
        masked = patch_runner(channels, mode)
        for p in range(len(patch_set)):
            patches.append(PatchDrop(str(worst[patch_set.refs[p].image].file.path), patch_set.original_box(p),
                                     patch_set.refs[p].scale, float(patch_runner.logits[p, c]), float(masked[p, c])))
        patches.sort(key=lambda p: -p.drop)
        patches = patches[:top_patches]
    return MaskingResult(
        model=loaded.info,
        target=target,
        mode=mode,
        channels={layer: sorted(chosen) for layer, chosen in channels.items()},
        effect=effect,
        random=summarise_random(random_effects, random_sets, seed),
        images=[images[i] for i in order],
        patches=patches,
        runner_reused=runner.reusing,
    )


# --------------------------------------------------------------------------- fidelity (Figure 5)


@dataclass
class FidelityRow:
    """Accuracy after masking/retaining the core neurons of one layer (``single``) or of every layer from
    the logit down to it (``cumulative``), against as many random neurons per layer."""

    class_index: int
    class_name: str
    layer: str
    depth: int
    scope: str
    mode: str
    neurons: int
    images: int
    base_accuracy: float
    core_accuracy: float
    random_accuracy_mean: float
    random_accuracy_std: float
    core_prob: float
    random_prob_mean: float

    @property
    def core_relative(self) -> float:
        return self.core_accuracy / self.base_accuracy if self.base_accuracy > 0 else math.nan

    @property
    def random_relative(self) -> float:
        return self.random_accuracy_mean / self.base_accuracy if self.base_accuracy > 0 else math.nan

    @property
    def random_relative_std(self) -> float:
        return self.random_accuracy_std / self.base_accuracy if self.base_accuracy > 0 else math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"core_relative": self.core_relative, "random_relative": self.random_relative,
                               "random_relative_std": self.random_relative_std}


def fidelity_study(
    loaded: LoadedModel,
    target: ClassInfo,
    views: Sequence[ViewImage],
    core: Channels,
    draws: int = 5,
    seed: int = 0,
    modes: Sequence[str] = MODES,
    scopes: Sequence[str] = SCOPES,
    batch_size: int = 32,
    progress: bool = False,
) -> list[FidelityRow]:
    """The fidelity study of one class circuit: ``core`` maps its layers, logit layer first, to their core
    neurons. Every layer below the logit layer gets one row per scope and mode."""
    layers = list(core)
    if len(layers) < 2:
        raise ModelError("a fidelity study needs a circuit with at least one layer below the logit layer")
    runner = MaskedRunner(loaded, view_inputs(views, loaded), layers, batch_size)
    rng = np.random.default_rng(seed)
    base_acc = float((runner.logits.argmax(1) == target.index).float().mean())
    rows: list[FidelityRow] = []
    jobs = [(d, scope, mode) for d in range(1, len(layers)) for scope in scopes for mode in modes]
    for depth, scope, mode in tqdm(jobs, desc=f"fidelity {target.name}", unit="mask", disable=not progress,
                                   leave=False):
        chosen = {layers[depth]: core[layers[depth]]} if scope == "single" else {
            layer: core[layer] for layer in layers[1 : depth + 1]
        }
        count = neuron_count(chosen)
        core_effect = effect_of(runner.logits, runner(chosen, mode), target.index, loaded.categories, count)
        randoms = [
            effect_of(runner.logits, runner(random_channels(chosen, runner.widths, rng), mode), target.index,
                      loaded.categories, count)
            for _ in range(draws)
        ]
        accs = [e.accuracy_after for e in randoms]
        rows.append(FidelityRow(
            target.index, target.name, layers[depth], depth, scope, mode, count, len(views), base_acc,
            core_effect.accuracy_after, float(np.mean(accs)) if accs else math.nan,
            float(np.std(accs)) if accs else math.nan, core_effect.mean_prob_after,
            float(np.mean([e.mean_prob_after for e in randoms])) if randoms else math.nan,
        ))
    return rows


@dataclass
class FidelitySummary:
    """Relative accuracies averaged over classes, per layer, scope and mode."""

    layer: str
    depth: int
    scope: str
    mode: str
    classes: int
    core_relative: float
    random_relative: float
    random_relative_std: float


def summarise_fidelity(rows: Sequence[FidelityRow]) -> list[FidelitySummary]:
    keys = list(dict.fromkeys((r.layer, r.depth, r.scope, r.mode) for r in rows))
    out = []
    for layer, depth, scope, mode in keys:
        chosen = [r for r in rows if (r.layer, r.depth, r.scope, r.mode) == (layer, depth, scope, mode)]
        core = [r.core_relative for r in chosen if not math.isnan(r.core_relative)]
        rand = [r.random_relative for r in chosen if not math.isnan(r.random_relative)]
        spread = [r.random_relative_std for r in chosen if not math.isnan(r.random_relative_std)]
        out.append(FidelitySummary(
            layer, depth, scope, mode, len(chosen),
            float(np.mean(core)) if core else math.nan,
            float(np.mean(rand)) if rand else math.nan,
            float(np.mean(spread)) if spread else math.nan,
        ))
    return out


CSV_FIELDS = (
    "class_index", "class_name", "layer", "depth", "scope", "mode", "neurons", "images", "base_accuracy",
    "core_accuracy", "random_accuracy_mean", "random_accuracy_std", "core_relative", "random_relative",
    "random_relative_std", "core_prob", "random_prob_mean",
)


def write_fidelity_csv(rows: Sequence[FidelityRow], path: str | Path) -> Path:
    """One line per class, layer, scope and mode."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_FIELDS))
        writer.writeheader()
        for row in rows:
            data = row.to_dict()
            writer.writerow({name: data[name] for name in CSV_FIELDS})
    return path


def plot_fidelity(rows: Sequence[FidelityRow], path: str | Path, title: str = "") -> Path:
    """Four panels as in the paper's Figure 5 (single/multi-layer, masking/retaining): relative accuracy of
    the core neurons (solid) and of random neurons (dashed, +- the spread over draws), mean over classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary = summarise_fidelity(rows)
    layers = list(dict.fromkeys(s.layer for s in sorted(summary, key=lambda s: s.depth)))
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), sharey=True)
    panels = [(scope, mode) for scope in SCOPES for mode in MODES]
    for ax, (scope, mode) in zip(axes, panels, strict=True):
        chosen = {s.layer: s for s in summary if s.scope == scope and s.mode == mode}
        xs = [i for i, layer in enumerate(layers) if layer in chosen]
        core = [chosen[layers[i]].core_relative for i in xs]
        rand = np.array([chosen[layers[i]].random_relative for i in xs])
        spread = np.array([chosen[layers[i]].random_relative_std for i in xs])
        ax.plot(xs, core, "s-", color="tab:green", label="core neurons")
        ax.plot(xs, rand, "o--", color="tab:purple", label="random neurons")
        ax.fill_between(xs, rand - spread, rand + spread, color="tab:purple", alpha=0.15)
        ax.set_title(f"{'single layer' if scope == 'single' else 'multi-layer'} {'masking' if mode == 'mask' else 'retaining'}")
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(-0.05, 1.1)
        ax.grid(True, axis="y", linestyle="--", alpha=0.6)
    axes[0].set_ylabel("accuracy / unmasked accuracy")
    axes[0].legend(loc="lower left", fontsize=8)
    classes = sorted({r.class_name for r in rows})
    fig.suptitle(title or f"Fidelity of core neurons ({len(classes)} class(es): {', '.join(classes)[:90]})")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
