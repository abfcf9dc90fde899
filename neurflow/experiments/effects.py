"""What a mask does to a class: logits before and after compared (:class:`Effect`), and the spread of the
same mask with random neurons (:class:`RandomEffects`).

Pure functions of logit tensors.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from neurflow.experiments.channels import Channels


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
