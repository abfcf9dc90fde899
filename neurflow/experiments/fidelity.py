"""The paper's fidelity study (its Figure 5): mask or retain each layer's core neurons, against as many
random neurons; its summary over classes, CSV and four-panel plot. Masked neurons are zeroed (the paper) or
set to their mean (:class:`~neurflow.experiments.ablation.Ablation`).

Each row says what it was measured on (``evidence``: ``held-out``, the class's images the circuit was not built
on, or ``in-sample``, the circuit's own), on how many images, with a 95 % Wilson interval for the core neurons'
accuracy (a proportion of images), the random draws' range, and a p-value against them (the null: as many
random neurons per layer).

Pure functions of a :class:`~neurflow.engine.models.LoadedModel`, views and core neurons; rows are
dataclasses (``to_dict()`` for JSON).

>>> rows = fidelity_study(loaded, target, views, {"_fc": [258], "_blocks.15": [3, 17]})   # doctest: +SKIP
>>> write_fidelity_csv(rows, "fidelity/fidelity.csv")                                    # doctest: +SKIP
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import stats
from tqdm import tqdm

from neurflow.circuit import ClassInfo
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import ViewImage
from neurflow.experiments.ablation import Ablation
from neurflow.experiments.channels import Channels, neuron_count, random_channels
from neurflow.experiments.effects import effect_of
from neurflow.experiments.held_out import ordered_evidence
from neurflow.experiments.runner import MODES, MaskedRunner, view_inputs
from neurflow.pictures import save_figure
from neurflow.registry import ModelError

SCOPES = ("single", "cumulative")


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
    ablation: str = "zero"
    evidence: str = "in-sample"
    core_accuracy_low: float = math.nan
    core_accuracy_high: float = math.nan
    random_accuracy_min: float = math.nan
    random_accuracy_max: float = math.nan
    #: (1 + draws at least as extreme as the core neurons) / (1 + draws): masking, a random accuracy at or
    #: below the core's; retaining, at or above it.
    p_value: float = math.nan

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
    ablation: Ablation | None = None,
    evidence: str = "in-sample",
) -> list[FidelityRow]:
    """The fidelity study of one class circuit: ``core`` maps its layers, logit layer first, to their core
    neurons. Every layer below the logit layer gets one row per scope and mode. ``ablation`` (default: zero)
    says what masked neurons are set to; mean ablation needs values for every layer below the logit layer.
    ``evidence``: what ``views`` are (``in-sample``: the circuit's own images; ``held-out``: others of the
    class), written on every row."""
    layers = list(core)
    if len(layers) < 2:
        raise ModelError("a fidelity study needs a circuit with at least one layer below the logit layer")
    ablation = ablation or Ablation()
    replacement = ablation.replacement
    if replacement is not None:
        missing = [layer for layer in layers[1:] if layer not in replacement]
        if missing:
            raise ModelError(f"mean ablation has no values for layer(s) {missing}")
    runner = MaskedRunner(loaded, view_inputs(views, loaded), layers, batch_size, replacement=replacement)
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
        accs = np.array([e.accuracy_after for e in randoms])
        core_acc = core_effect.accuracy_after
        low, high = wilson_interval(round(core_acc * len(views)), len(views))
        extreme = (accs <= core_acc) if mode == "mask" else (accs >= core_acc)
        rows.append(FidelityRow(
            target.index, target.name, layers[depth], depth, scope, mode, count, len(views), base_acc,
            core_acc, float(accs.mean()) if len(accs) else math.nan,
            float(accs.std()) if len(accs) else math.nan, core_effect.mean_prob_after,
            float(np.mean([e.mean_prob_after for e in randoms])) if randoms else math.nan, ablation.kind,
            evidence, low, high, float(accs.min()) if len(accs) else math.nan,
            float(accs.max()) if len(accs) else math.nan, float((1 + extreme.sum()) / (1 + len(accs))),
        ))
    return rows


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a proportion (sound at 0 and 1 and for few trials); NaNs without trials."""
    if trials <= 0:
        return math.nan, math.nan
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class FidelitySummary:
    """Relative accuracies averaged over classes, per evidence, layer, scope and mode; ``images``: summed over
    the classes."""

    layer: str
    depth: int
    scope: str
    mode: str
    classes: int
    core_relative: float
    random_relative: float
    random_relative_std: float
    evidence: str = "in-sample"
    images: int = 0


def evidences_of(rows: Sequence[FidelityRow]) -> list[str]:
    """The evidence of the rows, held-out first."""
    return ordered_evidence(r.evidence for r in rows)


def images_per_evidence(rows: Sequence[FidelityRow]) -> dict[str, int]:
    """The images each evidence was measured on, summed over the classes (held-out first)."""
    return {e: sum(r.images for r in rows if r.evidence == e and r.depth == 1 and r.scope == SCOPES[0]
                   and r.mode == MODES[0]) for e in evidences_of(rows)}


def summarise_fidelity(rows: Sequence[FidelityRow]) -> list[FidelitySummary]:
    keys = list(dict.fromkeys((r.evidence, r.layer, r.depth, r.scope, r.mode) for r in rows))
    order = evidences_of(rows)
    keys.sort(key=lambda key: order.index(key[0]))
    out = []
    for evidence, layer, depth, scope, mode in keys:
        chosen = [r for r in rows if (r.evidence, r.layer, r.depth, r.scope, r.mode) == (evidence, layer, depth, scope, mode)]
        core = [r.core_relative for r in chosen if not math.isnan(r.core_relative)]
        rand = [r.random_relative for r in chosen if not math.isnan(r.random_relative)]
        spread = [r.random_relative_std for r in chosen if not math.isnan(r.random_relative_std)]
        out.append(FidelitySummary(
            layer, depth, scope, mode, len(chosen),
            float(np.mean(core)) if core else math.nan,
            float(np.mean(rand)) if rand else math.nan,
            float(np.mean(spread)) if spread else math.nan,
            evidence, sum(r.images for r in chosen),
        ))
    return out


def mean_neurons(rows: Sequence[FidelityRow], summary: FidelitySummary) -> int:
    """The neurons masked at the summary's layer and setting, averaged over classes (rounded)."""
    key = (summary.evidence, summary.layer, summary.scope, summary.mode)
    return round(np.mean([r.neurons for r in rows if (r.evidence, r.layer, r.scope, r.mode) == key]))


CSV_FIELDS = (
    "class_index", "class_name", "layer", "depth", "scope", "mode", "neurons", "images", "base_accuracy",
    "core_accuracy", "random_accuracy_mean", "random_accuracy_std", "core_relative", "random_relative",
    "random_relative_std", "core_prob", "random_prob_mean", "ablation", "evidence", "core_accuracy_low",
    "core_accuracy_high", "random_accuracy_min", "random_accuracy_max", "p_value",
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


def figure_fidelity(rows: Sequence[FidelityRow], title: str = "") -> Figure:
    """Four panels as in the paper's Figure 5 (single/multi-layer, masking/retaining): relative accuracy of
    the core neurons (solid) and of random neurons (dashed, +- the spread over draws), mean over classes, on
    the held-out images when there are some; the core neurons on the circuits' own images dotted beside."""
    summary = summarise_fidelity(rows)
    shown = evidences_of(rows)
    layers = list(dict.fromkeys(s.layer for s in sorted(summary, key=lambda s: s.depth)))
    fig = Figure(figsize=(16, 4.4))
    axes = fig.subplots(1, 4, sharey=True)
    panels = [(scope, mode) for scope in SCOPES for mode in MODES]
    for ax, (scope, mode) in zip(axes, panels, strict=True):
        for evidence in shown:
            main = evidence == shown[0]
            chosen = {s.layer: s for s in summary if s.scope == scope and s.mode == mode and s.evidence == evidence}
            xs = [i for i, layer in enumerate(layers) if layer in chosen]
            core = [chosen[layers[i]].core_relative for i in xs]
            if not main:
                ax.plot(xs, core, "s:", color="tab:green", alpha=0.6, label=f"core neurons, {evidence}")
                continue
            rand = np.array([chosen[layers[i]].random_relative for i in xs])
            spread = np.array([chosen[layers[i]].random_relative_std for i in xs])
            ax.plot(xs, core, "s-", color="tab:green", label=f"core neurons, {evidence}")
            ax.plot(xs, rand, "o--", color="tab:purple", label=f"random neurons, {evidence}")
            ax.fill_between(xs, rand - spread, rand + spread, color="tab:purple", alpha=0.15)
        ax.set_title(f"{'single layer' if scope == 'single' else 'multi-layer'} {'masking' if mode == 'mask' else 'retaining'}")
        ax.set_xticks(range(len(layers)), layers, rotation=45, ha="right", fontsize=8)
        ax.set_ylim(-0.05, 1.1)
        ax.grid(True, axis="y", linestyle="--", alpha=0.6)
    axes[0].set_ylabel("accuracy / unmasked accuracy")
    axes[0].legend(loc="lower left", fontsize=8)
    classes = sorted({r.class_name for r in rows})
    counts = ", ".join(f"{n} {e} images" for e, n in images_per_evidence(rows).items())
    fig.suptitle(title or f"Fidelity of core neurons ({len(classes)} class(es): {', '.join(classes)[:80]}; {counts})")
    fig.tight_layout()
    return fig


def plot_fidelity(rows: Sequence[FidelityRow], path: str | Path, title: str = "") -> Path:
    """:func:`figure_fidelity` saved as a PNG at ``path``."""
    return save_figure(figure_fidelity(rows, title), path, dpi=110)
