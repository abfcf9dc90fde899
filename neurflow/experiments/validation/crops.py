"""The crops study (the paper's Figure 18 and its appendix on multiple crop sizes): does the mix of patch
scales change the core sets?

The circuit's patches are squares of 100, 50 and 25 % of each image's side (1 + 9 + 49). For every other mix
of scales (by default (1,), (1, 0.5), (0.5, 0.25), (1, 0.25), (0.25,)), the class's images are cut at those
scales only, every layer is recorded over them, each target a (a core neuron of the circuit; the class alone at
the logit layer) gets V_a = its top-k patches of that mix, and its core set (top-tau lower neurons by the
circuit's ranking). The overlap with the core set of the reference mix (1, 0.5, 0.25), recomputed the same way,
is counted out of tau. A mix with fewer patches than k uses all of them (``k_used`` in the CSV).

It also reports, for every mix, the share of each scale among the targets' V_a, per layer: which crop sizes
the concepts of each layer are made of. The paper's Figure 18 shows a percentage per crop size and layer
(from the authors' scores per size); these are the plain counts. Nothing is knocked out, so the inputs'
``ablation`` plays no part.

>>> result = run_crops(inputs, layers=["_blocks.15"], targets=8)   # doctest: +SKIP
>>> plot_crops(result, "crops.png")                                 # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from tqdm import tqdm

from neurflow.circuit import neuron_key
from neurflow.engine.patches import PATCH_SCALES, PatchSet
from neurflow.experiments.validation.common import (
    StudySettingsError,
    layer_pairs,
    study_builder,
    study_recording,
    study_targets,
)
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.k_sensitivity import (
    channels_text,
    core_sets_by_k,
    overlap_count,
    summarise_overlaps,
)
from neurflow.experiments.validation.result import StudyResult
from neurflow.pictures import save_figure

Mix = tuple[float, ...]
DEFAULT_MIXES: tuple[Mix, ...] = ((1.0,), (1.0, 0.5), (0.5, 0.25), (1.0, 0.25), (0.25,))


def mix_label(mix: Sequence[float]) -> str:
    """``1+0.5+0.25`` for (1.0, 0.5, 0.25)."""
    return "+".join(f"{scale:g}" for scale in mix)


def check_mix(mix: Sequence[float]) -> Mix:
    """A mix of distinct scales in (0, 1], largest first; a StudySettingsError otherwise."""
    scales = tuple(sorted({float(scale) for scale in mix}, reverse=True))
    if not scales or any(not 0 < scale <= 1 for scale in scales):
        raise StudySettingsError(f"a patch scale mix needs scales in (0, 1], not {tuple(mix)}")
    return scales


def scales_of(patches: PatchSet) -> Mix:
    return tuple(sorted({ref.scale for ref in patches.refs}, reverse=True))


def run_crops(
    inputs: StudyInputs,
    layers: Sequence[str] | None = None,
    mixes: Sequence[Sequence[float]] = DEFAULT_MIXES,
    targets: int | None = None,
    progress: bool = True,
    reference: Sequence[float] = PATCH_SCALES,
) -> StudyResult:
    """Mean overlap of each mix's core sets with the reference mix's, per mix and upper layer.

    ``layers``/``targets`` as in :func:`~neurflow.experiments.validation.k_sensitivity.run_k_sensitivity`
    (targets: the most important first); k, tau, steps, quadrature and ranking are the circuit's. Each mix
    costs one recording pass over its patches and one integrated-gradients pass per layer pair.
    """
    reference_mix = check_mix(reference)
    others = list(dict.fromkeys(check_mix(mix) for mix in mixes))
    if not others:
        raise StudySettingsError("no patch scale mix to compare")
    pairs = layer_pairs(inputs.circuit, layers)
    builder = study_builder(inputs, progress)
    cfg = builder.config
    chosen = {upper: study_targets(inputs.circuit, upper, targets) for upper, _ in pairs}
    widths: dict[str, int] = {}  # each lower layer's channels, read from the first mix's recording

    def core_sets(mix: Mix) -> tuple[int, dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]]:
        """For one mix: k used, and per layer and target, V_a's scales and the core set."""
        if mix == reference_mix and scales_of(inputs.patches) == reference_mix:
            recording = study_recording(inputs, builder)
        else:
            recording = builder.record(PatchSet(inputs.views, inputs.loaded.preprocessing, scales=mix))
        patches = recording.patches
        widths.update({lower: int(recording.means[lower].shape[1]) for _, lower in pairs if lower not in widths})
        k = min(cfg.k, len(patches))
        result: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        for upper, lower in pairs:
            concepts, cores = core_sets_by_k(builder, recording, upper, lower, chosen[upper], [k])
            scales = {a: np.array([patches.refs[int(p)].scale for p in concepts[a]]) for a in chosen[upper]}
            result[upper] = {a: (scales[a], cores[a][k]) for a in chosen[upper]}
        return k, result

    mixes_run = [reference_mix] + [mix for mix in others if mix != reference_mix]
    found: dict[Mix, tuple[int, dict[str, dict[int, tuple[np.ndarray, np.ndarray]]]]] = {}
    for mix in tqdm(mixes_run, desc="crops", unit="mix", disable=not progress):
        found[mix] = core_sets(mix)
    scale_columns = [f"share_{scale:g}" for scale in sorted({s for mix in mixes_run for s in mix}, reverse=True)]
    rows: list[dict[str, Any]] = []
    for mix in others:
        k_used, per_layer = found[mix]
        for upper, lower in pairs:
            for a in chosen[upper]:
                scales, core = per_layer[upper][a]
                reference_core = found[reference_mix][1][upper][a][1]
                shares = {f"share_{scale:g}": float(np.mean(scales == scale)) for scale in mix}
                rows.append({"mix": mix_label(mix), "layer": upper, "lower_layer": lower,
                             "target": neuron_key(upper, a), "k_used": k_used, "tau": cfg.tau,
                             "overlap": overlap_count(core, reference_core), "core": channels_text(core),
                             "reference_core": channels_text(reference_core)}
                            | {column: shares.get(column, 0.0) for column in scale_columns})
    summary = summarise_overlaps(rows, "mix", [mix_label(mix) for mix in others], mix_label(reference_mix), widths)
    summary |= _reference_shares(found[reference_mix][1], reference_mix)
    return StudyResult.of_circuit(
        inputs.circuit,
        study="crops",
        layers=[upper for upper, _ in pairs],
        parameters={"mixes": [list(mix) for mix in others], "reference": list(reference_mix), "k": cfg.k,
                    "tau": cfg.tau, "targets": targets, "steps": cfg.steps, "quadrature": cfg.quadrature,
                    "ranking": cfg.ranking, "images": len(inputs.views)},
        summary=summary,
        columns=["mix", "layer", "lower_layer", "target", "k_used", "tau", "overlap", "core", "reference_core",
                 *scale_columns],
        rows=rows,
    )


def _reference_shares(per_layer: dict[str, dict[int, tuple[np.ndarray, np.ndarray]]], mix: Mix) -> dict[str, float]:
    """Per layer and scale of the reference mix: the share of the targets' V_a patches at that scale."""
    shares: dict[str, float] = {}
    for layer, targets in per_layer.items():
        scales = np.concatenate([found_scales for found_scales, _ in targets.values()])
        for scale in mix:
            shares[f"scale_share[{layer},{scale:g}]"] = float(np.mean(scales == scale))
    return shares


def figure_crops(result: StudyResult) -> Figure:
    """Left: mean overlap with the reference mix's core sets, bars per mix and layer. Right: the share of each
    scale among the targets' concepts V_a with the reference mix, per layer (as the paper's Figure 18)."""


    tau = float(result.parameters["tau"])
    mixes = [mix_label(mix) for mix in result.parameters["mixes"]]
    reference = [float(scale) for scale in result.parameters["reference"]]
    fig = Figure(figsize=(13, 4.4))
    (left, right) = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.4, 1]})
    width = 0.8 / max(1, len(result.layers))
    for i, layer in enumerate(result.layers):
        means = [result.summary.get(f"mean_overlap[{layer},mix={mix}]", np.nan) for mix in mixes]
        left.bar(np.arange(len(mixes)) + (i - (len(result.layers) - 1) / 2) * width, means, width,
                 label=f"layer {layer}")  # "layer ...": matplotlib leaves labels starting with "_" out
    left.axhline(tau, color="grey", linewidth=0.8)
    k_used = {row["mix"]: row["k_used"] for row in result.rows}
    left.set_xticks(np.arange(len(mixes)), [f"{mix}\n(k = {k_used.get(mix, '?')})" for mix in mixes])
    left.set_xlabel("patch scales")
    left.set_ylabel(f"mean overlap with {mix_label(reference)} (tau = {tau:g})")
    left.set_ylim(0, tau + 0.5)
    left.legend(fontsize=8)
    for scale in reference:
        shares = [100 * result.summary.get(f"scale_share[{layer},{scale:g}]", np.nan) for layer in result.layers]
        right.plot(result.layers, shares, marker="o", label=f"scale {scale:g}")
    right.set_ylabel(f"% of V_a patches ({mix_label(reference)})")
    right.set_ylim(0, 100)
    right.tick_params(axis="x", labelrotation=30)
    right.legend(fontsize=8)
    fig.suptitle(f"crops: {result.class_name} ({result.model_key})")
    fig.tight_layout()
    return fig


def plot_crops(result: StudyResult, path: str | Path) -> Path:
    """:func:`figure_crops` saved as a PNG at ``path``."""
    return save_figure(figure_crops(result), path, dpi=120)
