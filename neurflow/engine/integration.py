"""``steps="auto"``: how many integration nodes each target of a layer pair gets (docs/integration.md).

Per layer pair (upper -> lower), the integrated gradients of every target a are computed with N nodes, N taking
the levels of a rule: a nested family (:mod:`neurflow.engine.nested`, by default Fejer's second rule with 3, 7,
15, 31, 63 nodes; a level evaluates only the nodes it adds), or the doubling of ``quadrature``'s nodes
``steps_start``, 2 x, ..., ``steps_max`` (each level from scratch; circuits built before nested levels). All
targets get the first two levels; after that only the targets not yet settled get the next one. A target
settles at a level N (never the first) when both hold:

(a) **stable**: its top-tau set at N is the one at the previous level, up to ties: a neuron that entered and one
    that left count as tied when their ranking scores at N differ by at most ``steps_tie`` times the tau-th
    score (their order is then decided by the quadrature, not by the model);
(b) **complete**: its completeness gap at N is at most ``steps_tolerance`` (or undefined: f_a(h_p) = f_a(0) on
    every patch). Exact integrated gradients of a row
    (target a, patch p of V_a) sum to f_a(h_p) - f_a(0) (the completeness axiom); the gap of a target is
    ``sum over p |sum_s IG_s(p) - (f_a(h_p) - f_a(0))| / sum over p |f_a(h_p) - f_a(0)|``, the mean of its
    rows' relative gaps weighted by |f_a(h_p) - f_a(0)| (no cancellation between patches).

A target keeps the attributions of the level it settled at, or of ``steps_max`` (then recorded as unsettled).
What a pair used is a :class:`PairIntegration`, written into the circuit (``Circuit.integration``).
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurflow.engine.ranking import top_indices

PerPatch = dict[int, np.ndarray]


def auto_levels(start: int, maximum: int) -> list[int]:
    """The node counts tried: ``start``, doubled while below ``maximum``, then ``maximum``."""
    levels = [min(start, maximum)]
    while levels[-1] < maximum:
        levels.append(min(2 * levels[-1], maximum))
    return levels


def completeness_gap_ratio(per_patch: np.ndarray, deltas: np.ndarray) -> float:
    """sum over rows |sum of a row's attributions - (f(h) - f(0))| / sum over rows |f(h) - f(0)|.

    ``per_patch``: [rows, lower channels] attributions; ``deltas``: [rows] f(h_p) - f(0). NaN when every
    f(h_p) - f(0) is 0: nothing to be relative to (the target does not move on its concept), and the completeness
    condition does not apply.
    """
    scale = float(np.abs(deltas).sum())
    if scale == 0:
        return float("nan")
    return float(np.abs(per_patch.sum(1) - deltas).sum()) / scale


def top_set(scores: np.ndarray, tau: int) -> set[int]:
    """The tau largest scores' indices (a core set, as a set)."""
    return {int(i) for i in top_indices(scores, tau)}


def set_change(now: np.ndarray, before: np.ndarray, tau: int, tie: float) -> str:
    """How the top-tau set of ``now`` (ranking scores at a level) differs from that of ``before`` (the previous
    level): ``same``, ``tied`` (every neuron that entered is within ``tie`` x the tau-th score of every neuron
    that left) or ``changed``."""
    entered, left = top_set(now, tau) - top_set(before, tau), top_set(before, tau) - top_set(now, tau)
    if not entered:
        return "same"
    cut = float(np.sort(now)[::-1][min(tau, len(now)) - 1])
    if all(abs(float(now[s] - now[o])) <= tie * abs(cut) for s in entered for o in left):
        return "tied"
    return "changed"


@dataclass
class PairIntegration:
    """How one layer pair was integrated with ``steps="auto"``: an entry of ``Circuit.integration``.

    ``target_nodes``: per target (channel), the N of the attributions it kept; ``target_gaps``: its
    completeness gap there; ``levels``: every N computed, ``level_targets``: for how many targets, and
    ``level_seconds``: in how long; ``tied``: targets settled with a tie at the boundary of their top-tau set;
    ``unsettled``: targets that reached ``steps_max`` without settling (they keep its attributions);
    ``rule``: the levels' quadrature (``fejer2``, ..., or ``gauss-legendre doubling``); ``level_new_nodes``: the
    nodes each level evaluated per patch (with a nested rule only those it adds to the level before).
    """

    upper: str
    lower: str
    tolerance: float
    tie: float
    rule: str = ""
    target_nodes: dict[int, int] = field(default_factory=dict)
    target_gaps: dict[int, float] = field(default_factory=dict)
    levels: list[int] = field(default_factory=list)
    level_targets: list[int] = field(default_factory=list)
    level_seconds: list[float] = field(default_factory=list)
    level_new_nodes: list[int] = field(default_factory=list)
    tied: list[int] = field(default_factory=list)
    unsettled: list[int] = field(default_factory=list)

    @property
    def nodes(self) -> int:
        """The most nodes any target of the pair kept."""
        return max(self.target_nodes.values())

    @property
    def gap(self) -> float:
        """The largest completeness gap of the pair's targets, at the nodes each kept (NaN: none defined)."""
        defined = [g for g in self.target_gaps.values() if not math.isnan(g)]
        return max(defined) if defined else float("nan")

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``Circuit.integration`` (docs/format.md); target keys are channels as text, an undefined
        gap is null."""
        return {
            "upper": self.upper, "lower": self.lower, "nodes": self.nodes, "gap": _json_float(self.gap),
            "converged": not self.unsettled, "tolerance": self.tolerance, "tie": self.tie, "rule": self.rule,
            "targets_by_nodes": {str(n): c for n, c in sorted(Counter(self.target_nodes.values()).items())},
            "levels": self.levels, "level_targets": self.level_targets, "level_seconds": self.level_seconds,
            "level_new_nodes": self.level_new_nodes,
            "tied": self.tied, "unsettled": self.unsettled,
            "target_nodes": {str(a): n for a, n in self.target_nodes.items()},
            "target_gaps": {str(a): _json_float(g) for a, g in self.target_gaps.items()},
        }

    def summary(self) -> str:
        counts = Counter(self.target_nodes.values())
        used = ", ".join(f"N={n} for {counts[n]}" for n in sorted(counts))
        gap = "undefined" if math.isnan(self.gap) else f"<= {100 * self.gap:.2f} %"
        text = f"{used} target(s), completeness gap {gap}"
        if self.unsettled:
            text += f"; {len(self.unsettled)} target(s) not settled at the maximum {self.levels[-1]}"
        return text


def _json_float(value: float) -> float | None:
    return None if math.isnan(value) else value


def integrate_until_stable(
    integrate: Callable[[int, list[int]], PerPatch],
    deltas: PerPatch,
    scores: Callable[[np.ndarray], np.ndarray],
    tau: int,
    levels: list[int],
    tolerance: float,
    tie: float,
    upper: str = "",
    lower: str = "",
    rule: str = "",
    nested: bool = False,
) -> tuple[PerPatch, PairIntegration]:
    """Runs ``integrate(N, targets)`` (per target, [|V_a|, lower channels] attributions with N nodes) over
    ``levels`` until every target settles (module docstring). ``deltas``: per target, [|V_a|] f_a(h_p) - f_a(0);
    ``scores``: a target's ranking scores from its attributions; ``rule``: the quadrature's name, recorded;
    ``nested``: each level's nodes include the level before's (``integrate`` evaluates only the new ones)."""
    record = PairIntegration(upper, lower, tolerance, tie, rule)
    kept: PerPatch = {}
    previous: dict[int, np.ndarray] = {}
    pending = sorted(deltas)
    for position, nodes in enumerate(levels):
        if not pending:
            break
        clock = time.perf_counter()
        per_patch = integrate(nodes, pending)
        record.levels.append(nodes)
        record.level_targets.append(len(pending))
        record.level_seconds.append(time.perf_counter() - clock)
        record.level_new_nodes.append(nodes - levels[position - 1] if nested and position else nodes)
        still = []
        for a in pending:
            now = scores(per_patch[a])
            kept[a] = per_patch[a]
            record.target_nodes[a] = nodes
            record.target_gaps[a] = completeness_gap_ratio(per_patch[a], deltas[a])
            change = set_change(now, previous[a], tau, tie) if a in previous else "changed"
            gap = record.target_gaps[a]
            if change != "changed" and (gap <= tolerance or math.isnan(gap)):
                if change == "tied":
                    record.tied.append(a)
            elif position + 1 < len(levels):
                still.append(a)
            else:
                record.unsettled.append(a)
            previous[a] = now
        pending = still
    return kept, record
