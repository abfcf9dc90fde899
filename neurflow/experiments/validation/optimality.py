"""Figure 4 of the paper: is a target's core set better at destroying its concept than other sets its size?

For each studied upper layer, its targets a (the circuit's core neurons there, most important first; the class
alone at the logit layer) and each tau (10, 30, 50): the knockout loss L(S, a) (Definition 2, ``knockout.py``:
the share of V_a that survives knocking S out; LOWER = more of the concept destroyed) of

- the core set: a's top-tau lower neurons by the circuit's ranking of the integrated gradients (recomputed
  with the circuit's steps, quadrature and ranking: the same ranking that chose the circuit's tau);
- ``random_sets`` random sets of tau lower neurons (seeded, shared by the layer's targets);
- two cheap baselines a reviewer asks for: the top-tau lower neurons by mean activation over V_a, and by
  |gradient x activation| summed over V_a (d a / d s * s at the real input, summed over positions: one
  backward pass, no integration).

Per layer and tau: the mean over targets of L(random) - L(core) (positive: the core set is better) with a 99 %
t-interval over targets (a single target, as at the logit layer: over its random sets), the cases (target,
random set) where the random set does better (a lower L), and the baselines' mean L.

>>> result = run_optimality(inputs, layers=["_blocks.15"], taus=(10, 30), random_sets=50)   # doctest: +SKIP
>>> plot_optimality(result, "optimality.png")                                              # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from scipy import stats

from neurflow.circuit import neuron_key
from neurflow.engine.layouts import neuron_means
from neurflow.engine.ranking import top_indices
from neurflow.experiments.validation.common import StudySettingsError
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.knockout import (
    LayerPair,
    draw_random_sets,
    layer_rng,
    prepare_pairs,
)
from neurflow.experiments.validation.result import StudyResult
from neurflow.pictures import save_figure

TAUS = (10, 30, 50)
METHODS = ("core", "activation", "gradient_x_activation")
COLUMNS = [
    "layer", "lower_layer", "tau", "target", "loss_core", "loss_random_mean", "loss_random_std", "loss_random_min",
    "random_better", "random_sets", "difference", "loss_activation", "loss_gradient_x_activation", "core",
]
CONFIDENCE = 0.99
RandomLosses = dict[tuple[str, int, str], np.ndarray]


def gradient_times_activation(pair: LayerPair, device: torch.device, batch: int = 64) -> dict[int, np.ndarray]:
    """Per target a: [C] sum over V_a and positions of d a / d h_s * h_s, at the real input (no path integral)."""
    result: dict[int, np.ndarray] = {}
    channels_last = device.type == "cpu" and pair.lower_maps.dim() == 4
    for a in pair.targets:
        total = torch.zeros(pair.channels, dtype=torch.float64)
        concept = pair.concepts[a]
        for start in range(0, len(concept), batch):
            maps = pair.lower_maps[torch.as_tensor(concept[start : start + batch])].to(device)
            if channels_last:
                maps = maps.contiguous(memory_format=torch.channels_last)
            maps.requires_grad_(True)
            with torch.enable_grad():
                output = neuron_means(pair.segment(maps))[:, a].sum()
                (grad,) = torch.autograd.grad(output, maps)
            contribution = (grad * maps).detach()
            if contribution.dim() > 2:
                contribution = contribution.flatten(2).sum(-1)
            total += contribution.sum(0).double().cpu()
        result[a] = total.numpy()
    return result


def baseline_scores(pair: LayerPair, device: torch.device) -> dict[str, dict[int, np.ndarray]]:
    """Per method and target: the score its top-tau is taken by (higher first)."""
    gradients = gradient_times_activation(pair, device)
    return {
        "core": pair.importance,
        "activation": {a: pair.lower_acts[pair.concepts[a]].mean(0) for a in pair.targets},
        "gradient_x_activation": {a: np.abs(gradients[a]) for a in pair.targets},
    }


class SetIndex:
    """Knockout sets without repeats (a baseline often picks the core set): set -> column of the loss matrix."""

    def __init__(self) -> None:
        self.sets: list[list[int]] = []
        self.columns: dict[tuple[int, ...], int] = {}

    def add(self, channels: Sequence[int] | np.ndarray) -> int:
        key = tuple(sorted(int(c) for c in channels))
        if key not in self.columns:
            self.columns[key] = len(self.sets)
            self.sets.append(list(key))
        return self.columns[key]


def check_taus(taus: Sequence[int], random_count: int) -> list[int]:
    ordered = sorted({int(tau) for tau in taus})
    if not ordered or ordered[0] < 1:
        raise StudySettingsError(f"every tau must be at least 1: {list(taus)}")
    if random_count < 2:
        raise StudySettingsError("the comparison needs at least 2 random sets")
    return ordered


def run_optimality(
    inputs: StudyInputs,
    layers: Sequence[str] | None = None,
    taus: Sequence[int] = TAUS,
    random_sets: int = 100,
    targets: int | None = None,
    seed: int = 0,
    batch: int | None = None,
    progress: bool = True,
) -> StudyResult:
    """Figure 4 on one circuit: L(core set, a) against random sets and the baselines, per layer and tau.

    ``layers``: upper layers (default: all but the bottom); ``targets``: at most this many per layer, the
    most important first; ``batch``: (set, patch) inputs per segment call. The ablation is
    ``inputs.ablation``. A tau above the lower layer's width raises :class:`StudySettingsError`.
    """
    ordered = check_taus(taus, random_sets)
    device = inputs.loaded.device
    rows: list[dict[str, Any]] = []
    random_losses: RandomLosses = {}
    studied: list[str] = []
    for pair in prepare_pairs(inputs, layers, targets, progress):
        if ordered[-1] > pair.channels:
            raise StudySettingsError(f"tau = {ordered[-1]} is larger than {pair.lower}'s {pair.channels} channels")
        studied.append(pair.upper)
        rows += pair_rows(pair, ordered, random_sets, seed, batch, device, progress, random_losses)
    config = inputs.config
    return StudyResult.of_circuit(
        inputs.circuit,
        study="optimality",
        layers=studied,
        parameters={"taus": ordered, "random_sets": random_sets, "targets": targets, "seed": seed,
                    "confidence": CONFIDENCE, "circuit_tau": config.tau, "k": config.k, "steps": config.steps,
                    "quadrature": config.quadrature, "ranking": config.ranking, "ablation": inputs.ablation,
                    "images": len(inputs.views), "patches": len(inputs.patches)},
        summary=summarise_optimality(rows, studied, ordered, random_losses),
        columns=list(COLUMNS),
        rows=rows,
    )


def pair_rows(pair: LayerPair, taus: Sequence[int], random_count: int, seed: int, batch: int | None,
              device: torch.device, progress: bool, random_losses: RandomLosses) -> list[dict[str, Any]]:
    """One row per (tau, target) of a layer pair, every set's loss from one batched knockout run; each
    target's random-set losses go to ``random_losses``."""
    scores = baseline_scores(pair, device)
    index = SetIndex()
    chosen: dict[tuple[str, int, int], np.ndarray] = {}
    column: dict[tuple[str, int, int], int] = {}
    randoms: dict[int, list[int]] = {}
    for tau in taus:
        for method in METHODS:
            for a in pair.targets:
                chosen[method, tau, a] = top_indices(scores[method][a], tau)
                column[method, tau, a] = index.add(chosen[method, tau, a])
        drawn = draw_random_sets(layer_rng(seed, pair.upper, f"optimality/tau={tau}"), pair.channels, tau, random_count)
        randoms[tau] = [index.add(s) for s in drawn]
    losses = pair.losses(index.sets, batch, device, progress, f"knockout {pair.upper} <- {pair.lower}")
    rows = []
    for tau in taus:
        for row, a in enumerate(pair.targets):
            core = losses[row, column["core", tau, a]]
            rand = losses[row, randoms[tau]]
            rows.append({
                "layer": pair.upper, "lower_layer": pair.lower, "tau": tau, "target": neuron_key(pair.upper, a),
                "loss_core": float(core), "loss_random_mean": float(rand.mean()), "loss_random_std": float(rand.std()),
                "loss_random_min": float(rand.min()), "random_better": int((rand < core).sum()),
                "random_sets": len(rand), "difference": float(rand.mean() - core),
                "loss_activation": float(losses[row, column["activation", tau, a]]),
                "loss_gradient_x_activation": float(losses[row, column["gradient_x_activation", tau, a]]),
                "core": " ".join(str(int(c)) for c in chosen["core", tau, a]),
            })
            random_losses[pair.upper, tau, neuron_key(pair.upper, a)] = rand
    return rows


def mean_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """Mean and its two-sided t-interval; (mean, mean, mean) when the values do not vary, NaNs when empty."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    mean = float(values.mean())
    if len(values) < 2 or np.ptp(values) == 0:
        return mean, mean, mean
    low, high = stats.t.interval(confidence, len(values) - 1, loc=mean, scale=stats.sem(values))
    return mean, float(low), float(high)


def summarise_optimality(rows: Sequence[dict[str, Any]], layers: Sequence[str], taus: Sequence[int],
                         random_losses: RandomLosses) -> dict[str, float]:
    """Per layer and tau: ``mean_difference`` (L(random) - L(core), mean over targets) with ``ci99_low`` and
    ``ci99_high``, ``random_better_cases`` (target x random set pairs where L(random) < L(core)) and their
    share, and the mean L of the core set, the random sets and the baselines. ``random_losses``: per (layer,
    tau, target) the random sets' L, over which the interval of a single target is taken."""
    summary: dict[str, float] = {}
    for layer in layers:
        for tau in taus:
            chosen = [row for row in rows if row["layer"] == layer and row["tau"] == tau]
            if not chosen:
                continue
            key = f"{layer},tau={tau}"
            if len(chosen) == 1:  # one target (the logit layer): the uncertainty is that of its random sets
                only = chosen[0]
                differences = random_losses[layer, tau, only["target"]] - only["loss_core"]
            else:
                differences = np.array([row["difference"] for row in chosen])
            mean, low, high = mean_interval(differences)
            cases = sum(row["random_better"] for row in chosen)
            summary[f"targets[{key}]"] = float(len(chosen))
            summary[f"mean_difference[{key}]"] = mean
            summary[f"ci99_low[{key}]"] = low
            summary[f"ci99_high[{key}]"] = high
            summary[f"random_better_cases[{key}]"] = float(cases)
            summary[f"random_better_share[{key}]"] = cases / sum(row["random_sets"] for row in chosen)
            for name, column in (("core", "loss_core"), ("random", "loss_random_mean"),
                                 ("activation", "loss_activation"),
                                 ("gradient_x_activation", "loss_gradient_x_activation")):
                summary[f"loss_{name}[{key}]"] = float(np.mean([row[column] for row in chosen]))
    return summary


def figure_optimality(result: StudyResult) -> Figure:
    """One panel per tau, one group of bars per layer (as the paper's Figure 4): L(random) - L(core) with its
    99 % interval, the best random set's margin, and the baselines' L - L(core). Above 0: the core set destroys
    more of the concept than the other set."""


    taus = list(result.parameters["taus"])
    layers = result.layers
    fig = Figure(figsize=(4.2 * len(taus), 4.2))
    axes = fig.subplots(1, len(taus), sharey=True, squeeze=False)
    width = 0.26
    x = np.arange(len(layers))
    lower_of = {row["layer"]: row["lower_layer"] for row in result.rows}
    for ax, tau in zip(axes[0], taus, strict=True):
        def per_layer(name: str, tau: int = tau) -> np.ndarray:
            return np.array([result.summary.get(f"{name}[{layer},tau={tau}]", math.nan) for layer in layers])

        mean, low, high = per_layer("mean_difference"), per_layer("ci99_low"), per_layer("ci99_high")
        core = per_layer("loss_core")
        ax.bar(x - width, mean, width, color="tab:purple", label="random - core (99 % CI)",
               yerr=np.vstack([mean - low, high - mean]), capsize=3)
        ax.bar(x, per_layer("loss_activation") - core, width, color="tab:orange", label="mean activation - core")
        ax.bar(x + width, per_layer("loss_gradient_x_activation") - core, width, color="tab:blue",
               label="gradient x activation - core")
        best = [np.mean([r["loss_random_min"] - r["loss_core"] for r in result.rows
                         if r["layer"] == layer and r["tau"] == tau]) for layer in layers]
        ax.scatter(x - width, best, color="black", marker="v", zorder=3, label="best random set - core")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xticks(x, [f"{layer}\n(S in {lower_of.get(layer, '?')})" for layer in layers], fontsize=8)
        ax.set_title(f"tau = {tau}")
        ax.grid(True, axis="y", linestyle="--", alpha=0.6)
    axes[0][0].set_ylabel("L(set) - L(core set)   (> 0: the core set is better)")
    axes[0][0].legend(fontsize=7, loc="best")
    ablation = result.parameters.get("ablation", "zero")
    fig.suptitle(f"Optimality of core sets: {result.class_name} ({result.model_key}, {ablation} ablation)", fontsize=10)
    fig.tight_layout()
    return fig


def plot_optimality(result: StudyResult, path: str | Path) -> Path:
    """:func:`figure_optimality` saved as a PNG at ``path``."""
    return save_figure(figure_optimality(result), path, dpi=120)
