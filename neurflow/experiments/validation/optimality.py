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
random set) where the random set does better (a lower L), each target's p-value against its random sets (the
null: sets of the same size drawn at random), and the baselines' mean L.

Every set is chosen on the circuit's own images (the core set, the baselines); L is measured on the class's
held-out images (``held-out``: images of the class the circuit was not built on, with V_a = a's top-k patches
among theirs) when the inputs have some (:func:`~neurflow.experiments.validation.inputs.with_held_out`), and on
the circuit's own images (``in-sample``), the rows and figures labelled with their evidence.

>>> result = run_optimality(inputs, layers=["_blocks.15"], taus=(10, 30), random_sets=50)   # doctest: +SKIP
>>> plot_optimality(result, "optimality.png")                                              # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from neurflow.circuit import neuron_key
from neurflow.engine.layouts import neuron_means
from neurflow.engine.ranking import top_indices
from neurflow.engine.recording import Recording
from neurflow.experiments.held_out import ordered_evidence
from neurflow.experiments.validation.common import StudySettingsError, mean_interval
from neurflow.experiments.validation.inputs import StudyInputs, held_out_recording
from neurflow.experiments.validation.knockout import (
    LayerPair,
    draw_random_sets,
    knockout_losses,
    layer_rng,
    prepare_pairs,
)
from neurflow.experiments.validation.result import StudyResult
from neurflow.pictures import save_figure

TAUS = (10, 30, 50)
METHODS = ("core", "activation", "gradient_x_activation")
COLUMNS = [
    "evidence", "layer", "lower_layer", "tau", "target", "loss_core", "loss_random_mean", "loss_random_std",
    "loss_random_min", "random_better", "random_sets", "p_value", "difference", "loss_activation",
    "loss_gradient_x_activation", "images", "patches", "k", "core",
]
CONFIDENCE = 0.99
RandomLosses = dict[tuple[str, str, int, str], np.ndarray]


@dataclass
class Evidence:
    """The patches L is measured on: ``name`` (``held-out`` or ``in-sample``), the lower layer's maps of every
    patch, and each target's V_a among them."""

    name: str
    lower_maps: torch.Tensor
    concepts: dict[int, np.ndarray]
    images: int


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
    held = held_out_recording(inputs, progress)
    for pair in prepare_pairs(inputs, layers, targets, progress):
        if ordered[-1] > pair.channels:
            raise StudySettingsError(f"tau = {ordered[-1]} is larger than {pair.lower}'s {pair.channels} channels")
        studied.append(pair.upper)
        evidence = [Evidence("in-sample", pair.lower_maps, pair.concepts, len(inputs.views))]
        if held is not None:
            evidence.insert(0, held_out_evidence(inputs, held, pair))
        rows += pair_rows(pair, evidence, ordered, random_sets, seed, batch, device, progress, random_losses)
    config = inputs.config
    held_images = len(inputs.held_out.views) if inputs.held_out is not None else 0
    return StudyResult.of_circuit(
        inputs.circuit,
        study="optimality",
        layers=studied,
        parameters={"taus": ordered, "random_sets": random_sets, "targets": targets, "seed": seed,
                    "confidence": CONFIDENCE, "circuit_tau": config.tau, "k": config.k, "steps": config.steps,
                    "quadrature": config.quadrature, "ranking": config.ranking, "ablation": inputs.ablation,
                    "images": len(inputs.views), "patches": len(inputs.patches), "held_out_images": held_images,
                    "held_out_folder": held_folder(inputs), "held_out_note": held_note(inputs)},
        summary=summarise_optimality(rows, studied, ordered, random_losses),
        columns=list(COLUMNS),
        rows=rows,
    )


def held_out_evidence(inputs: StudyInputs, held: Recording, pair: LayerPair) -> Evidence:
    """The held-out images' patches as evidence for a pair: their lower maps, and each target's V_a = its top-k
    patches among them (k = the circuit's, at most the held-out patches)."""
    maps = held.layer_maps(inputs.loaded, pair.lower, inputs.config.patches_per_pass(inputs.loaded.device))
    acts = np.asarray(held.means[pair.upper])
    k = min(inputs.config.k, acts.shape[0])
    views = inputs.held_out.views if inputs.held_out is not None else []
    return Evidence("held-out", maps, {a: top_indices(acts[:, a], k) for a in pair.targets}, len(views))


def held_folder(inputs: StudyInputs) -> str | None:
    held = inputs.held_out
    return None if held is None or held.folder is None else str(held.folder)


def held_note(inputs: StudyInputs) -> str:
    """Why a study has no held-out evidence (empty when it has some)."""
    if inputs.held_out is None:
        return "not asked for (in-sample only)"
    return inputs.held_out.reason


def pair_rows(pair: LayerPair, evidence: Sequence[Evidence], taus: Sequence[int], random_count: int, seed: int,
              batch: int | None, device: torch.device, progress: bool,
              random_losses: RandomLosses) -> list[dict[str, Any]]:
    """One row per (evidence, tau, target) of a layer pair: the sets chosen on the circuit's images, every set's
    loss on each evidence's patches from one batched knockout run; each target's random-set losses go to
    ``random_losses``."""
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
    rows = []
    for source in evidence:
        losses = knockout_losses(pair.segment, source.lower_maps, pair.targets, source.concepts, index.sets,
                                 pair.replacement, batch, device, progress,
                                 f"knockout {pair.upper} <- {pair.lower} ({source.name})")
        for tau in taus:
            for row, a in enumerate(pair.targets):
                core = losses[row, column["core", tau, a]]
                rand = losses[row, randoms[tau]]
                rows.append({
                    "evidence": source.name, "layer": pair.upper, "lower_layer": pair.lower, "tau": tau,
                    "target": neuron_key(pair.upper, a), "loss_core": float(core),
                    "loss_random_mean": float(rand.mean()), "loss_random_std": float(rand.std()),
                    "loss_random_min": float(rand.min()), "random_better": int((rand < core).sum()),
                    "random_sets": len(rand), "p_value": float((1 + (rand <= core).sum()) / (1 + len(rand))),
                    "difference": float(rand.mean() - core),
                    "loss_activation": float(losses[row, column["activation", tau, a]]),
                    "loss_gradient_x_activation": float(losses[row, column["gradient_x_activation", tau, a]]),
                    "images": source.images, "patches": int(source.lower_maps.shape[0]),
                    "k": len(source.concepts[a]), "core": " ".join(str(int(c)) for c in chosen["core", tau, a]),
                })
                random_losses[source.name, pair.upper, tau, neuron_key(pair.upper, a)] = rand
    return rows


def summarise_optimality(rows: Sequence[dict[str, Any]], layers: Sequence[str], taus: Sequence[int],
                         random_losses: RandomLosses) -> dict[str, float]:
    """Per evidence, layer and tau (key ``<layer>,tau=<t>,<evidence>``): ``mean_difference`` (L(random) -
    L(core), mean over targets) with ``ci99_low`` and ``ci99_high``, ``random_better_cases`` (target x random
    set pairs where L(random) < L(core)) and their share, ``median_p`` and ``targets_p_below_0.05`` (each
    target's p-value against its random sets), and the mean L of the core set, the random sets and the
    baselines; per evidence ``images[<evidence>]`` and ``patches[<evidence>]``. ``random_losses``: per
    (evidence, layer, tau, target) the random sets' L, over which the interval of a single target is taken."""
    summary: dict[str, float] = {}
    for evidence in dict.fromkeys(row["evidence"] for row in rows):
        first = next(row for row in rows if row["evidence"] == evidence)
        summary[f"images[{evidence}]"] = float(first["images"])
        summary[f"patches[{evidence}]"] = float(first["patches"])
        for layer in layers:
            for tau in taus:
                chosen = [row for row in rows
                          if row["evidence"] == evidence and row["layer"] == layer and row["tau"] == tau]
                if not chosen:
                    continue
                key = f"{layer},tau={tau},{evidence}"
                if len(chosen) == 1:  # one target (the logit layer): the uncertainty is that of its random sets
                    only = chosen[0]
                    differences = random_losses[evidence, layer, tau, only["target"]] - only["loss_core"]
                else:
                    differences = np.array([row["difference"] for row in chosen])
                mean, low, high = mean_interval(differences)
                cases = sum(row["random_better"] for row in chosen)
                p_values = np.array([row["p_value"] for row in chosen])
                summary[f"targets[{key}]"] = float(len(chosen))
                summary[f"mean_difference[{key}]"] = mean
                summary[f"ci99_low[{key}]"] = low
                summary[f"ci99_high[{key}]"] = high
                summary[f"random_better_cases[{key}]"] = float(cases)
                summary[f"random_better_share[{key}]"] = cases / sum(row["random_sets"] for row in chosen)
                summary[f"median_p[{key}]"] = float(np.median(p_values))
                summary[f"targets_p_below_0.05[{key}]"] = float((p_values < 0.05).sum())
                for name, column in (("core", "loss_core"), ("random", "loss_random_mean"),
                                     ("activation", "loss_activation"),
                                     ("gradient_x_activation", "loss_gradient_x_activation")):
                    summary[f"loss_{name}[{key}]"] = float(np.mean([row[column] for row in chosen]))
    return summary


def evidences(result: StudyResult) -> list[str]:
    """The evidence of a result's rows, held-out first."""
    return ordered_evidence(row.get("evidence", "in-sample") for row in result.rows)


def figure_optimality(result: StudyResult) -> Figure:
    """One panel per tau, one group of bars per layer (as the paper's Figure 4), measured on the held-out images
    when there are some: L(random) - L(core) with its 99 % interval, the best random set's margin, the
    baselines' L - L(core), and L(random) - L(core) on the circuit's own images (in-sample, hatched). Above 0:
    the core set destroys more of the concept than the other set."""
    taus = list(result.parameters["taus"])
    layers = result.layers
    shown = evidences(result)
    main = shown[0]
    fig = Figure(figsize=(4.4 * len(taus), 4.4))
    axes = fig.subplots(1, len(taus), sharey=True, squeeze=False)
    width = 0.2 if len(shown) > 1 else 0.26
    x = np.arange(len(layers))
    lower_of = {row["layer"]: row["lower_layer"] for row in result.rows}
    for ax, tau in zip(axes[0], taus, strict=True):
        def per_layer(name: str, evidence: str = main, tau: int = tau) -> np.ndarray:
            return np.array([result.summary.get(f"{name}[{layer},tau={tau},{evidence}]", math.nan)
                             for layer in layers])

        mean, low, high = per_layer("mean_difference"), per_layer("ci99_low"), per_layer("ci99_high")
        core = per_layer("loss_core")
        offsets = np.arange(len(shown) + 2) - (len(shown) + 1) / 2
        ax.bar(x + offsets[0] * width, mean, width, color="tab:purple", label=f"random - core, {main} (99 % CI)",
               yerr=np.vstack([mean - low, high - mean]), capsize=3)
        ax.bar(x + offsets[1] * width, per_layer("loss_activation") - core, width, color="tab:orange",
               label=f"mean activation - core, {main}")
        ax.bar(x + offsets[2] * width, per_layer("loss_gradient_x_activation") - core, width, color="tab:blue",
               label=f"gradient x activation - core, {main}")
        if len(shown) > 1:
            inside = per_layer("mean_difference", "in-sample")
            ax.bar(x + offsets[3] * width, inside, width, color="white", edgecolor="tab:purple", hatch="//",
                   yerr=np.vstack([inside - per_layer("ci99_low", "in-sample"),
                                   per_layer("ci99_high", "in-sample") - inside]), capsize=3,
                   label="random - core, in-sample (the circuit's images)")
        best = [np.mean([r["loss_random_min"] - r["loss_core"] for r in result.rows
                         if r["layer"] == layer and r["tau"] == tau and r.get("evidence", "in-sample") == main])
                for layer in layers]
        ax.scatter(x + offsets[0] * width, best, color="black", marker="v", zorder=3,
                   label=f"best random set - core, {main}")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xticks(x, [f"{layer}\n(S in {lower_of.get(layer, '?')})" for layer in layers], fontsize=8)
        ax.set_title(f"tau = {tau}")
        ax.grid(True, axis="y", linestyle="--", alpha=0.6)
    axes[0][0].set_ylabel("L(set) - L(core set)   (> 0: the core set is better)")
    axes[0][0].legend(fontsize=7, loc="best")
    ablation = result.parameters.get("ablation", "zero")
    images = result.summary.get(f"images[{main}]", math.nan)
    fig.suptitle(f"Optimality of core sets: {result.class_name} ({result.model_key}, {ablation} ablation); "
                 f"measured on {images:.0f} {main} images", fontsize=10)
    fig.tight_layout()
    return fig


def plot_optimality(result: StudyResult, path: str | Path) -> Path:
    """:func:`figure_optimality` saved as a PNG at ``path``."""
    return save_figure(figure_optimality(result), path, dpi=120)
