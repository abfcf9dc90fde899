"""Masking experiments: mask (or retain) a set of channels on a class's images and compare with random
channels of the same count per layer; rank the images and patches by how much the class logit drops.
Masked channels are zeroed, or set to their mean (:class:`~neurflow.experiments.ablation.Ablation`).

Everything here is a pure function of a :class:`~neurflow.engine.models.LoadedModel`, a few views and a set of
channels; results are dataclasses (``to_dict()`` for JSON). Logits under masks come from
:class:`~neurflow.experiments.runner.MaskedRunner`.

>>> from neurflow.engine.models import load_model
>>> loaded = load_model("efficientnet-lite0")                                        # doctest: +SKIP
>>> result = masking_experiment(loaded, target, views, {"_blocks.15": [3, 17]})      # doctest: +SKIP
>>> result.effect.accuracy_after, result.random.accuracy_after_mean                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from neurflow.circuit import ClassInfo, ModelInfo
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import PatchSet, ViewImage
from neurflow.experiments.ablation import Ablation
from neurflow.experiments.channels import Channels, check_channels, neuron_count, random_channels
from neurflow.experiments.effects import Effect, RandomEffects, effect_of, summarise_random
from neurflow.experiments.runner import MODES, MaskedRunner, view_inputs
from neurflow.registry import ModelError


@dataclass
class ImageDrop:
    """One image's class logit and probability, and its prediction, before and after the mask."""

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
    ablation: str = "zero"
    ablation_reference: str | None = None
    """The inputs mean ablation averaged over, in words (None for zero ablation)."""
    ablation_inputs: int = 0

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
    ablation: Ablation | None = None,
) -> MaskingResult:
    """Mask (or retain) ``channels`` on ``views``; compare with ``draws`` random sets of the same size per layer.

    Images are ranked by their class-logit drop; the patches (59 per image, :class:`PatchSet`) of the
    ``patch_images`` images with the largest drop are ranked too, ``top_patches`` of them kept. ``ablation``
    (default: zero) says what masked channels are set to; mean ablation needs values for every masked layer
    (random draws use the same layers).
    """
    ablation = ablation or Ablation()
    replacement = ablation.replacement
    if replacement is not None:
        missing = [layer for layer in channels if layer not in replacement]
        if missing:
            raise ModelError(f"mean ablation has no values for layer(s) {missing}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    if neuron_count(channels) == 0:
        raise ModelError("no neuron to mask")
    runner = MaskedRunner(loaded, view_inputs(views, loaded), list(channels), batch_size, replacement=replacement)
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
        patch_runner = MaskedRunner(loaded, patch_set.inputs(range(len(patch_set))), list(channels), batch_size,
                                    replacement=replacement)
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
        ablation=ablation.kind,
        ablation_reference=ablation.reference,
        ablation_inputs=ablation.inputs,
    )
