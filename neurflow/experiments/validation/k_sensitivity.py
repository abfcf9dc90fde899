"""Table 5 of the paper: how much a target's core set depends on k, the size of its concept V_a.

For each studied upper layer, its targets a (the circuit's core neurons there, the class alone at the logit
layer) get a core set for every k (30, 50, ..., 190 by default): the top-tau lower neurons by the circuit's
ranking of the integrated gradients summed over V_a = a's top-k patches. Each is compared with the core set at
the reference k (50): the overlap |core_k ∩ core_50| out of tau, averaged over targets per k and layer. The
paper reports at least 14/16 for every k.

The attribution of a on one patch does not depend on k, and the top-k patches are the first k of the top-190
(the same stable order as the builder), so each target's top-max(k) patches are attributed once and every k
ranks a prefix of those rows: one integrated-gradients pass per layer pair, whatever the number of k.

Nothing is knocked out, so the inputs' ``ablation`` plays no part. The small helpers here (layer pairs,
targets, the builder, the recorded activations, core sets per k) are shared with the other studies.

>>> result = run_k_sensitivity(inputs, layers=["_blocks.15"], targets=8)   # doctest: +SKIP
>>> plot_k_sensitivity(result, "k-sensitivity.png")                         # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy import stats
from tqdm import tqdm

from neurflow.circuit import neuron_key
from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.patches import PatchSet
from neurflow.engine.ranking import core_set, top_indices
from neurflow.engine.recording import Recording
from neurflow.experiments.validation.common import (
    StudySettingsError,
    layer_pairs,
    mean_interval,
    study_builder,
    study_recording,
    study_targets,
)
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.result import StudyResult
from neurflow.pictures import save_figure

K_VALUES = tuple(range(30, 191, 20))
REFERENCE_K = 50
PAPER_MIN_OVERLAP = 14 / 16
"""Table 5: the mean overlap with k = 50 is at least 14 of tau = 16 for every k."""

COLUMNS = ["layer", "lower_layer", "target", "k", "reference_k", "tau", "overlap", "core", "reference_core"]


def core_sets_by_k(
    builder: CircuitBuilder,
    recording: Recording,
    upper: str,
    lower: str,
    targets: Sequence[int],
    ks: Sequence[int],
) -> tuple[dict[int, np.ndarray], dict[int, dict[int, np.ndarray]]]:
    """Per target: its top-max(ks) patches, and its core set (top-tau lower channels) for every k in ``ks``.

    The top-max(ks) patches are attributed once; each k ranks the first k rows."""
    largest = max(ks)
    require_patches(largest, recording.patches)
    concepts = {a: top_indices(recording.means[upper][:, a], largest) for a in targets}
    step = builder.step(recording, upper, lower, concepts)
    cfg = builder.config
    cores = {a: {k: core_set(step.per_patch[a][:k], cfg.tau, cfg.ranking, cfg.tau_coverage)[0] for k in ks}
             for a in targets}
    return concepts, cores


def require_patches(k: int, patches: PatchSet) -> None:
    """A concept of k patches needs at least k patches: otherwise a StudySettingsError naming both numbers."""
    if k > len(patches):
        raise StudySettingsError(
            f"k = {k} is larger than the {len(patches)} patches of the class's {len(patches.views)} images: "
            "use a smaller k or more images"
        )


def overlap_count(core: np.ndarray, reference: np.ndarray) -> int:
    """|core ∩ reference|: how many neurons two core sets share."""
    return len(set(core.tolist()) & set(reference.tolist()))


def channels_text(core: np.ndarray) -> str:
    """A core set in a CSV cell: channels in rank order, space separated."""
    return " ".join(str(int(c)) for c in core)


def run_k_sensitivity(
    inputs: StudyInputs,
    layers: Sequence[str] | None = None,
    ks: Sequence[int] | None = None,
    reference_k: int = REFERENCE_K,
    targets: int | None = None,
    progress: bool = True,
) -> StudyResult:
    """Table 5: mean overlap of each k's core sets with the reference k's, per k and upper layer.

    ``layers``: upper layers (targets there, core sets one layer down), by default every layer but the bottom;
    ``targets``: at most this many targets per layer, the most important first (:func:`study_targets`).
    Tau, the number of steps, the quadrature and the ranking are the circuit's. ``ks`` default: 30, 50, ...,
    190, those no larger than the class's patches; a k given larger than the patches raises
    :class:`StudySettingsError`.
    """
    if ks is None:  # the paper's ks, those the class's patches allow (a small circuit has fewer than 190)
        ks = [k for k in K_VALUES if k <= len(inputs.patches)] or [min(K_VALUES[0], len(inputs.patches))]
    ks, reference_k = sorted({int(k) for k in ks}), int(reference_k)
    every_k = sorted(set(ks) | {reference_k})
    if not ks or every_k[0] < 1:
        raise StudySettingsError(f"every k must be at least 1: ks {ks}, reference k {reference_k}")
    require_patches(every_k[-1], inputs.patches)
    pairs = layer_pairs(inputs.circuit, layers)
    builder = study_builder(inputs, progress)
    tau = builder.config.tau
    recording = study_recording(inputs, builder)
    rows: list[dict[str, Any]] = []
    widths = {lower: int(recording.means[lower].shape[1]) for _, lower in pairs}
    for upper, lower in tqdm(pairs, desc="k-sensitivity", unit="layer", disable=not progress):
        chosen = study_targets(inputs.circuit, upper, targets)
        _, cores = core_sets_by_k(builder, recording, upper, lower, chosen, every_k)
        for a in chosen:
            reference = cores[a][reference_k]
            rows += [
                {"layer": upper, "lower_layer": lower, "target": neuron_key(upper, a), "k": k,
                 "reference_k": reference_k, "tau": tau, "overlap": overlap_count(cores[a][k], reference),
                 "core": channels_text(cores[a][k]), "reference_core": channels_text(reference)}
                for k in ks
            ]
    return StudyResult.of_circuit(
        inputs.circuit,
        study="k-sensitivity",
        layers=[upper for upper, _ in pairs],
        parameters={"ks": ks, "reference_k": reference_k, "tau": tau, "targets": targets,
                    "steps": builder.config.steps, "quadrature": builder.config.quadrature,
                    "ranking": builder.config.ranking, "images": len(inputs.views), "patches": len(inputs.patches)},
        summary=summarise_overlaps(rows, "k", ks, reference_k, widths),
        columns=list(COLUMNS),
        rows=rows,
    )


def summarise_overlaps(rows: Sequence[dict[str, Any]], key: str, values: Sequence[Any], reference: Any,
                       widths: dict[str, int] | None = None) -> dict[str, float]:
    """Mean overlap per value of ``key`` (all layers, then per layer, with a 95 % t-interval over the targets,
    NaN for a single target) and the smallest mean away from the reference; ``tau`` and the number of targets
    per layer for reading them.
    ``widths``: each lower layer's channels, for the null (``null_overlap``: the overlap two random core sets of
    those sizes share on average, |core| x |reference| / channels; ``null_p95_overlap``: one target's 95th
    percentile, hypergeometric)."""
    summary: dict[str, float] = {}
    if not rows:
        return summary
    summary["tau"] = float(rows[0]["tau"])
    layers = list(dict.fromkeys(str(row["layer"]) for row in rows))
    lower_of = {str(row["layer"]): str(row["lower_layer"]) for row in rows}
    width_of = {layer: (widths or {}).get(lower_of[layer]) for layer in layers}
    for layer in layers:
        summary[f"targets[{layer}]"] = float(len({row["target"] for row in rows if row["layer"] == layer}))
        width = width_of[layer]
        if width:
            tau = int(rows[0]["tau"])
            summary[f"null_p95_overlap[{layer}]"] = float(stats.hypergeom.ppf(0.95, width, tau, tau))
    means = {}
    for value in values:
        chosen = [float(row["overlap"]) for row in rows if row[key] == value]
        means[value] = float(np.mean(chosen))
        summary[f"mean_overlap[{key}={value}]"] = means[value]
        for layer in layers:
            picked = [row for row in rows if row[key] == value and row["layer"] == layer]
            mean, low, high = mean_interval(np.array([float(row["overlap"]) for row in picked]), 0.95)
            if len(picked) < 2:  # one target (the logit layer): no interval over targets
                low = high = math.nan
            summary[f"mean_overlap[{layer},{key}={value}]"] = mean
            summary[f"ci95_low[{layer},{key}={value}]"] = low
            summary[f"ci95_high[{layer},{key}={value}]"] = high
            width = width_of[layer]
            if width:
                summary[f"null_overlap[{layer},{key}={value}]"] = float(np.mean(
                    [len(str(row["core"]).split()) * len(str(row["reference_core"]).split()) / width
                     for row in picked]))
    others = [mean for value, mean in means.items() if value != reference]
    if others:
        summary["min_mean_overlap"] = min(others)
    return summary


def figure_k_sensitivity(result: StudyResult) -> Figure:
    """Mean overlap with the reference k against k, one line per layer (with +-1 std over targets), the
    study's tau and the paper's Table 5 bound (14/16 of tau)."""


    tau = float(result.parameters["tau"])
    ks = list(result.parameters["ks"])
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for layer in result.layers:
        values = [[float(r["overlap"]) for r in result.rows if r["layer"] == layer and r["k"] == k] for k in ks]
        mean = np.array([np.mean(v) for v in values])
        std = np.array([np.std(v) for v in values])
        count = len(values[0])
        # "layer ..." because matplotlib leaves labels that start with "_" (_fc) out of the legend.
        ax.plot(ks, mean, marker="o", label=f"layer {layer} ({count} target{'' if count == 1 else 's'})")
        ax.fill_between(ks, mean - std, mean + std, alpha=0.15)
    ax.axhline(tau, color="grey", linewidth=0.8)
    ax.axhline(PAPER_MIN_OVERLAP * tau, color="black", linestyle=":", label="paper, Table 5: >= 14/16 of tau")
    ax.axvline(float(result.parameters["reference_k"]), color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel("k (patches per concept)")
    ax.set_ylabel(f"mean |core_k ∩ core_{result.parameters['reference_k']}| (tau = {tau:g})")
    ax.set_ylim(0, tau + 0.5)
    ax.set_title(f"k-sensitivity: {result.class_name} ({result.model_key})")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_k_sensitivity(result: StudyResult, path: str | Path) -> Path:
    """:func:`figure_k_sensitivity` saved as a PNG at ``path``."""
    return save_figure(figure_k_sensitivity(result), path, dpi=120)
