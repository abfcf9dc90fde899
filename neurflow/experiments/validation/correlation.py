"""Figure 6 of the paper: does a neuron set's summed importance predict how much of a concept it destroys?

For each studied upper layer, its targets a (the circuit's core neurons there, most important first; the class
alone at the logit layer) and knockout sets S of the layer below: at size 1 every single neuron (or a seeded
sample of ``singles`` of them), at each larger size ``sets_per_size`` random sets (seeded, shared by the
layer's targets). For each target and size, the Pearson correlation r between

    L(S, a)                 the knockout loss of Definition 2 (``knockout.py``: the share of V_a that survives)
    sum over s in S of |T(a, s)|   T = the integrated gradients of a w.r.t. s, summed over V_a

with the circuit's steps, quadrature and ranking (for ``mean-abs`` circuits the importance is the mean over
V_a of |attribution|, the score that circuit ranks by). A faithful importance gives a strongly NEGATIVE r (more
importance knocked out, less of the concept left); the figure is mean |r| per size, per layer. An r is
undefined when L or the importance is constant over the sets (e.g. no set changes the concept): it is left
empty in the CSV and counts as 0 in the means, as the authors' code does.

>>> result = run_correlation(inputs, layers=["_blocks.15"], sizes=(1, 5, 20), targets=8)   # doctest: +SKIP
>>> plot_correlation(result, "correlation.png")                                            # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy.stats import norm, rankdata

from neurflow.circuit import neuron_key
from neurflow.experiments.validation.common import StudySettingsError
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.knockout import LayerPair, draw_random_sets, layer_rng, prepare_pairs
from neurflow.experiments.validation.result import StudyResult
from neurflow.pictures import save_figure

SIZES = (1, 2, 5, 10, 20, 30, 50)
COLUMNS = ["layer", "lower_layer", "target", "size", "r", "r_low", "r_high", "spearman", "p_permutation", "n_sets",
           "mean_loss", "std_loss"]
#: Permutations of the importance over the sets for the null of "no relation" (each r's p-value, and the null
#: distribution of the mean |r| the figure plots).
PERMUTATIONS = 1000


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's r of two samples; NaN when either is constant (r is undefined) or has fewer than 2 values."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(np.corrcoef(x, y)[0, 1])


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (Pearson's r of the ranks, ties averaged); NaN where Pearson's is."""
    return pearson(rankdata(x), rankdata(y))


def fisher_interval(r: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """The ``level`` interval of a Pearson r from n pairs by Fisher's z (atanh r +- z_q / sqrt(n - 3)); NaN
    for an undefined r or fewer than 4 pairs."""
    if math.isnan(r) or n < 4:
        return math.nan, math.nan
    z, half = math.atanh(max(min(r, 1 - 1e-12), -1 + 1e-12)), float(norm.ppf(0.5 + level / 2)) / math.sqrt(n - 3)
    return math.tanh(z - half), math.tanh(z + half)


def permuted_abs_r(x: np.ndarray, y: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """|r| of x against y shuffled by each row of ``orders`` ([permutations, n] indices): the null of no
    relation; 0 where r is undefined (as in the means)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return np.zeros(len(orders))
    xs = (x - x.mean()) / x.std()
    ys = (y - y.mean()) / y.std()
    return np.abs((ys[orders] * xs).mean(1))


def permutation_p(observed: float, null: np.ndarray) -> float:
    """One-sided p of an observed |r| (or mean |r|) against its permutation null, counting the observed one."""
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + len(null)))


def knockout_sets(pair: LayerPair, sizes: Sequence[int], sets_per_size: int, singles: int | None,
                  seed: int) -> list[tuple[int, list[int]]]:
    """(size, set) for every knockout set of the pair: every single neuron (or ``singles`` of them), then
    ``sets_per_size`` random sets of each larger size; seeded per layer and size."""
    chosen: list[tuple[int, list[int]]] = []
    for size in sizes:
        rng = layer_rng(seed, pair.upper, f"correlation/size={size}")
        if size == 1:
            neurons = range(pair.channels) if singles is None else sorted(
                rng.choice(pair.channels, size=min(singles, pair.channels), replace=False).tolist())
            chosen += [(1, [int(s)]) for s in neurons]
        else:
            chosen += [(size, s) for s in draw_random_sets(rng, pair.channels, size, sets_per_size)]
    return chosen


def check_settings(sizes: Sequence[int], sets_per_size: int, singles: int | None) -> list[int]:
    ordered = sorted({int(size) for size in sizes})
    if not ordered or ordered[0] < 1:
        raise StudySettingsError(f"set sizes must be at least 1: {list(sizes)}")
    if sets_per_size < 2 and ordered[-1] > 1:
        raise StudySettingsError("a correlation needs at least 2 sets per size (--sets-per-size)")
    if singles is not None and singles < 2:
        raise StudySettingsError("a correlation at size 1 needs at least 2 single neurons")
    return ordered


def run_correlation(
    inputs: StudyInputs,
    layers: Sequence[str] | None = None,
    sizes: Sequence[int] = SIZES,
    sets_per_size: int = 20,
    targets: int | None = None,
    seed: int = 0,
    singles: int | None = None,
    batch: int | None = None,
    progress: bool = True,
    permutations: int = PERMUTATIONS,
) -> StudyResult:
    """Figure 6 on one circuit: r(L(S, a), sum of |T(a, s)| over S) per target and set size; mean |r| per
    size and layer in the summary, with what no relation would give: per r, Spearman's rho, a 95 % Fisher-z
    interval and a permutation p-value (``permutations`` shuffles of the importance over the sets); per size and
    layer, the permutation null of the mean |r| (its mean and 95th percentile) and the mean |r|'s p-value.

    ``layers``: upper layers (default: all but the bottom); ``targets``: at most this many per layer, the
    most important first; ``singles``: None = every neuron of the lower layer at size 1 (the paper), else a
    seeded sample of that many; ``batch``: (set, patch) inputs per segment call. The ablation is
    ``inputs.ablation``. A size above the lower layer's width raises :class:`StudySettingsError`.
    """
    ordered = check_settings(sizes, sets_per_size, singles)
    device = inputs.loaded.device
    if permutations < 1:
        raise StudySettingsError("a permutation null needs at least 1 permutation")
    rows: list[dict[str, Any]] = []
    nulls: dict[str, float] = {}
    studied: list[str] = []
    for pair in prepare_pairs(inputs, layers, targets, progress):
        if ordered[-1] > pair.channels:
            raise StudySettingsError(
                f"set size {ordered[-1]} is larger than {pair.lower}'s {pair.channels} channels")
        studied.append(pair.upper)
        drawn = knockout_sets(pair, ordered, sets_per_size, singles, seed)
        losses = pair.losses([s for _, s in drawn], batch, device, progress, f"knockout {pair.upper} <- {pair.lower}")
        size_of = np.array([size for size, _ in drawn])
        # One set of shuffles per size, shared by the layer's targets, so that their mean |r| has a null too.
        orders = {size: np.argsort(layer_rng(seed, pair.upper, f"correlation/null/size={size}").random(
            (permutations, int((size_of == size).sum()))), axis=1) for size in ordered}
        null_sums = {size: np.zeros(permutations) for size in ordered}
        for row, a in enumerate(pair.targets):
            importance = np.array([pair.importance[a][s].sum() for _, s in drawn])
            for size in ordered:
                cells = size_of == size
                loss, score = losses[row, cells], importance[cells]
                r = pearson(loss, score)
                null = permuted_abs_r(loss, score, orders[size])
                null_sums[size] += null
                low, high = fisher_interval(r, int(cells.sum()))
                rows.append({
                    "layer": pair.upper, "lower_layer": pair.lower, "target": neuron_key(pair.upper, a),
                    "size": size, "r": r, "r_low": low, "r_high": high, "spearman": spearman(loss, score),
                    "p_permutation": math.nan if math.isnan(r) else permutation_p(abs(r), null),
                    "n_sets": int(cells.sum()),
                    "mean_loss": float(loss.mean()), "std_loss": float(loss.std()),
                })
        for size in ordered:
            null_mean = null_sums[size] / max(len(pair.targets), 1)
            observed = mean_abs_r([r for r in rows if r["layer"] == pair.upper and r["size"] == size])
            nulls[f"null_mean_abs_r[{pair.upper},size={size}]"] = float(null_mean.mean())
            nulls[f"null_p95_abs_r[{pair.upper},size={size}]"] = float(np.percentile(null_mean, 95))
            nulls[f"p_mean_abs_r[{pair.upper},size={size}]"] = permutation_p(observed, null_mean)
    config = inputs.config
    return StudyResult.of_circuit(
        inputs.circuit,
        study="correlation",
        layers=studied,
        parameters={"sizes": ordered, "sets_per_size": sets_per_size, "singles": singles, "targets": targets,
                    "seed": seed, "permutations": permutations, "tau": config.tau, "k": config.k, "steps": config.steps,
                    "quadrature": config.quadrature, "ranking": config.ranking, "ablation": inputs.ablation,
                    "images": len(inputs.views), "patches": len(inputs.patches)},
        summary=summarise_correlation(rows, ordered) | nulls,
        columns=list(COLUMNS),
        rows=rows,
    )


def mean_abs_r(rows: Sequence[dict[str, Any]]) -> float:
    """Mean |r| of the rows, an undefined r counting as 0 (the authors' code replaces NaN by 0)."""
    values = [0.0 if math.isnan(float(row["r"])) else abs(float(row["r"])) for row in rows]
    return float(np.mean(values)) if values else math.nan


def summarise_correlation(rows: Sequence[dict[str, Any]], sizes: Sequence[int]) -> dict[str, float]:
    """Per size: mean |r| per layer (``mean_abs_r[<layer>,size=n]``), their mean over layers
    (``mean_abs_r[size=n]``) and the mean signed r over all targets; targets per layer; undefined r's."""
    summary: dict[str, float] = {}
    layers = list(dict.fromkeys(str(row["layer"]) for row in rows))
    for layer in layers:
        summary[f"targets[{layer}]"] = float(len({row["target"] for row in rows if row["layer"] == layer}))
    for size in sizes:
        per_layer = []
        for layer in layers:
            value = mean_abs_r([row for row in rows if row["layer"] == layer and row["size"] == size])
            summary[f"mean_abs_r[{layer},size={size}]"] = value
            per_layer.append(value)
        summary[f"mean_abs_r[size={size}]"] = float(np.mean(per_layer)) if per_layer else math.nan
        signed = [float(row["r"]) for row in rows if row["size"] == size and not math.isnan(float(row["r"]))]
        summary[f"mean_r[size={size}]"] = float(np.mean(signed)) if signed else math.nan
    summary["undefined_r"] = float(sum(math.isnan(float(row["r"])) for row in rows))
    return summary


def figure_correlation(result: StudyResult) -> Figure:
    """Mean |r| against the knockout set's size, one line per layer and their mean (as the paper's Figure 6),
    each layer with the 95th percentile of its permutation null (dotted: what no relation reaches 1 time in 20)."""
    sizes = list(result.parameters["sizes"])
    positions = list(range(len(sizes)))
    lower_of = {row["layer"]: row["lower_layer"] for row in result.rows}
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    for layer in result.layers:
        values = [result.summary.get(f"mean_abs_r[{layer},size={size}]", math.nan) for size in sizes]
        targets = int(result.summary.get(f"targets[{layer}]", 0))
        line, = ax.plot(positions, values, marker="o",
                        # Not starting with the layer's name: matplotlib hides labels that start with "_" (_fc).
                        label=f"a in {layer} ({targets} target{'s' if targets != 1 else ''}), "
                              f"S in {lower_of.get(layer, '?')}")
        null = [result.summary.get(f"null_p95_abs_r[{layer},size={size}]", math.nan) for size in sizes]
        if not all(math.isnan(v) for v in null):
            ax.plot(positions, null, linestyle=":", color=line.get_color(), linewidth=1.2,
                    label=f"  no relation, 95th percentile ({result.parameters.get('permutations')} permutations)")
    overall = [result.summary.get(f"mean_abs_r[size={size}]", math.nan) for size in sizes]
    ax.plot(positions, overall, "k--", linewidth=1.5, label="mean over layers")
    ax.set_xticks(positions, [str(size) for size in sizes])
    ax.set_xlabel("knockout set size |S|")
    ax.set_ylabel("mean |r|  (L(S, a) vs sum of |T(a, s)| over S)")
    ax.set_ylim(0, 1.02)
    ax.grid(True, axis="y", linestyle="--", alpha=0.6)
    ablation = result.parameters.get("ablation", "zero")
    ax.set_title(f"Knockout loss vs integrated gradients: {result.class_name}\n({result.model_key}, {ablation} ablation)",
                 fontsize=9)
    ax.legend(fontsize=8, loc="upper right")  # the curves stay below 0.6: the top is free
    fig.tight_layout()
    return fig


def plot_correlation(result: StudyResult, path: str | Path) -> Path:
    """:func:`figure_correlation` saved as a PNG at ``path``."""
    return save_figure(figure_correlation(result), path, dpi=120)
