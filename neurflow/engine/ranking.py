"""How neurons are ranked: the top-k patches of a concept and the top-tau core set of a target, in one order.

>>> top_indices(np.array([0.5, 2.0, 2.0, 1.0]), 3)   # largest first, ties by index
array([1, 2, 3])
"""

from __future__ import annotations

import numpy as np


def top_indices(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest values, largest first, ties by index (stable): the order of every
    top-k concept and top-tau core set, so that a top-k is a prefix of the top-k' for k < k'."""
    return np.argsort(-values, kind="stable")[:count]


def ranking_scores(per_patch: np.ndarray, ranking: str) -> np.ndarray:
    """What lower neurons are ranked by, from a target's [|V_a|, lower channels] attributions: ``sum``:
    |T(a, s)| = |sum over V_a of the attribution| (the paper); ``mean-abs``: mean over V_a of |attribution|
    (the authors' code)."""
    if ranking == "mean-abs":
        return np.abs(per_patch).mean(0)
    return np.abs(per_patch.sum(0))


def core_set(per_patch: np.ndarray, tau: int, ranking: str,
             coverage: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A target's core concept neurons: the top-tau lower neurons by ``ranking`` of its [|V_a|, lower channels]
    attributions, most important first, and their ranking scores.

    ``coverage`` (e.g. 0.8): the fewest of them, in that order, whose |T(a, s)| (T: the sum over V_a) carry that
    share of the sum of |T(a, s)| over every lower neuron, at most tau (tau when even tau do not).

    >>> core_set(np.array([[4.0, -3.0, 2.0, 1.0]]), 3, "sum", coverage=0.6)[0]   # 4 + 3 of 10 reach 0.6
    array([0, 1])
    """
    scores = ranking_scores(per_patch, ranking)
    order = top_indices(scores, tau)
    if coverage is not None:
        carried = np.abs(per_patch.sum(0))
        total = float(carried.sum())
        if total > 0:
            cumulative = np.cumsum(carried[order]) / total
            enough = np.flatnonzero(cumulative >= coverage - 1e-12)
            order = order[: int(enough[0]) + 1] if enough.size else order
    return order, scores[order]
