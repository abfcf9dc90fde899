"""Nested quadrature rules on alpha in [0, 1] for ``steps="auto"`` (docs/integration.md).

A nested family is a sequence of rules (levels) in which every level's nodes are among the next level's, so a
refinement evaluates only the new nodes. A family is given here as its finest level's nodes listed generation by
generation (level i is the first ``counts[i]`` nodes) and a [levels, nodes] weight matrix (row i: level i's
weights, 0 on the nodes it does not use; each row sums to 1). Every weight of a node at every level is known
before the node is evaluated, so its gradient is folded into every level's sum at once and never kept on its own
(:func:`neurflow.engine.attribution.weighted_gradient_sums`): memory grows with the number of levels, not nodes.

- ``clenshaw-curtis``: the Chebyshev extreme points (1 - cos(j pi / n)) / 2, j = 0..n, for n = 2, 4, 8, ...:
  3, 5, 9, 17, 33, 65 nodes, both ends included (alpha = 0 is the baseline's gradient). A level of m nodes is
  exact for polynomials of degree m (interpolatory on m nodes, and symmetric with m odd).
- ``fejer2``: Fejer's second rule, the interior Chebyshev points of the same n: 1, 3, 7, 15, 31, 63 nodes, no
  end point. A level of m nodes is exact for degree m, as above.
- ``trapezoid``: the composite trapezoidal rule on 2^k + 1 equally spaced nodes: 3, 5, 9, 17, 33, 65, exact for
  degree 1. On a ReLU network the integrand is piecewise constant in alpha, where no rule's degree helps and node
  spacing decides: kept for that comparison (bench/README.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NESTED_FAMILIES = ("clenshaw-curtis", "fejer2", "trapezoid")


@dataclass(frozen=True)
class NestedRule:
    """A nested family's levels from its first (``counts[0]`` nodes) to its last (every node)."""

    family: str
    nodes: np.ndarray  # [nodes] alpha in [0, 1], generation by generation
    counts: tuple[int, ...]  # nodes of each level: level i uses nodes[: counts[i]]
    weights: np.ndarray  # [levels, nodes]

    def new_nodes(self, level: int) -> slice:
        """The nodes level ``level`` adds to the one before it (all of its own for the first)."""
        return slice(self.counts[level - 1] if level else 0, self.counts[level])


def _chebyshev_n(family: str, count: int) -> int:
    """The n of a level with ``count`` nodes (n + 1 closed, n - 1 open, a power of 2)."""
    n = count - 1 if family != "fejer2" else count + 1
    if n < 2 or n & (n - 1):
        raise ValueError(f"{family} levels have {'2^k - 1' if family == 'fejer2' else '2^k + 1'} nodes (k >= 1), "
                         f"not {count}")
    return n


def level_counts(family: str, first: int, maximum: int) -> tuple[int, ...]:
    """The node counts of ``family``'s levels from ``first`` up to the last that is at most ``maximum``."""
    if family not in NESTED_FAMILIES:
        raise ValueError(f"nested quadrature must be one of {NESTED_FAMILIES}, not {family!r}")
    n = _chebyshev_n(family, first)
    counts = []
    while (count := n - 1 if family == "fejer2" else n + 1) <= maximum:
        counts.append(count)
        n *= 2
    return tuple(counts)


def _level(family: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (alpha) and weights (summing to 1) of one level with parameter n."""
    j = np.arange(n + 1)
    theta = j * np.pi / n
    if family == "trapezoid":
        weights = np.full(n + 1, 1.0 / n)
        weights[[0, -1]] /= 2
        return j / n, weights
    k = np.arange(1, n // 2 + 1)
    if family == "clenshaw-curtis":
        # w_j = c_j / n (1 - sum_k b_k / (4 k^2 - 1) cos(2 k theta_j)) on [-1, 1]; c, b halved at the ends.
        b = np.where(k == n // 2, 1.0, 2.0)
        weights = (1 - (b / (4 * k**2 - 1)) @ np.cos(2 * np.outer(k, theta))) / n
        weights[1:-1] *= 2
    else:  # fejer2: w_j = 4 sin(theta_j) / n sum_k sin((2k - 1) theta_j) / (2k - 1), interior j only
        weights = 4 * np.sin(theta) / n * ((1 / (2 * k - 1)) @ np.sin(np.outer(2 * k - 1, theta)))
        j, theta, weights = j[1:-1], theta[1:-1], weights[1:-1]
    return (1 - np.cos(theta)) / 2, weights / 2


def nested_rule(family: str, counts: tuple[int, ...]) -> NestedRule:
    """The levels ``counts`` (from :func:`level_counts`) of ``family``, nodes listed generation by generation."""
    order: list[float] = []
    rows = []
    for count in counts:
        alphas, weights = _level(family, _chebyshev_n(family, count))
        position = {}
        for alpha in alphas:
            found = next((i for i, seen in enumerate(order) if abs(seen - alpha) < 1e-12), None)
            if found is None:
                order.append(float(alpha))
                found = len(order) - 1
            position[float(alpha)] = found
        if len(order) != count:
            raise ValueError(f"{family} levels {counts} are not nested")
        rows.append((np.array([position[float(a)] for a in alphas]), weights))
    matrix = np.zeros((len(counts), len(order)))
    for level, (where, weights) in enumerate(rows):
        matrix[level, where] = weights
    return NestedRule(family, np.array(order), tuple(counts), matrix)


#: ``evaluate(alphas, weights, targets)``: per target, [rules, |V_a|, lower channels] float32 sums of the nodes
#: ``alphas`` weighted by each row of ``weights`` [rules, len(alphas)] (one evaluation per node and patch).
Evaluate = Callable[[np.ndarray, np.ndarray, list[int]], dict[int, np.ndarray]]


class NestedSums:
    """``integrate(count, targets)`` of :func:`neurflow.engine.integration.integrate_until_stable` on a
    :class:`NestedRule`: level i evaluates only the nodes it adds, for ``targets`` (those still pending, who got
    every level before it), and returns their attributions at level i.

    Per pending target it keeps one running sum per level not yet returned ([levels left, |V_a|, lower channels],
    float32): a new node's gradient goes into every finer level's sum with that level's weight, so no node is kept
    on its own and nothing is evaluated twice. A target left out of a call (settled) is dropped.
    ``evaluations`` counts (target, patch, node) gradient evaluations."""

    def __init__(self, rule: NestedRule, evaluate: Evaluate):
        self.rule, self.evaluate = rule, evaluate
        self.sums: dict[int, np.ndarray] = {}
        self.level = -1
        self.evaluations = 0

    def __call__(self, count: int, targets: list[int]) -> dict[int, np.ndarray]:
        level = self.rule.counts.index(count)
        if level != self.level + 1:
            raise ValueError(f"nested levels run in order: level {level} after {self.level}")
        missing = [a for a in targets if level and a not in self.sums]
        if missing:
            raise ValueError(f"targets {missing} did not get the levels before {count} nodes")
        self.level = level
        new = self.rule.new_nodes(level)
        self.sums = {a: self.sums[a][1:] for a in targets if a in self.sums}
        added = self.evaluate(self.rule.nodes[new], self.rule.weights[level:, new], list(targets))
        for a in targets:
            self.sums[a] = self.sums[a] + added[a] if a in self.sums else added[a]
            self.evaluations += added[a].shape[1] * (new.stop - new.start)
        return {a: self.sums[a][0].astype(np.float64) for a in targets}
