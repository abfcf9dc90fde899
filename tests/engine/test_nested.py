"""Nested quadrature for steps="auto": the rules against independent expectations (polynomial exactness, weights
from the moment equations, nesting), the running sums of a refinement (each node evaluated once, counted on a real
segment), the completeness axiom, and auto with nested nodes against a high-N reference on a tiny model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurflow.engine.attribution import integrated_gradients, weighted_gradient_sums
from neurflow.engine.nested import NESTED_FAMILIES, NestedSums, level_counts, nested_rule
from tests.engine.test_integration import tiny_build

FULL = {"clenshaw-curtis": (3, 65), "fejer2": (1, 63), "trapezoid": (3, 65)}


def rule_of(family: str):
    first, last = FULL[family]
    return nested_rule(family, level_counts(family, first, last))


def test_levels_double_the_chebyshev_n() -> None:
    assert level_counts("clenshaw-curtis", 3, 65) == (3, 5, 9, 17, 33, 65)
    assert level_counts("fejer2", 3, 63) == (3, 7, 15, 31, 63)
    assert level_counts("fejer2", 3, 40) == (3, 7, 15, 31)
    assert level_counts("trapezoid", 5, 17) == (5, 9, 17)
    for family, bad in (("fejer2", 4), ("clenshaw-curtis", 4), ("trapezoid", 2)):
        with pytest.raises(ValueError, match="nodes"):
            level_counts(family, bad, 65)
    with pytest.raises(ValueError, match="must be one of"):
        level_counts("gauss-legendre", 4, 64)


@pytest.mark.parametrize("family", NESTED_FAMILIES)
def test_every_level_is_nested_in_the_next_and_its_weights_sum_to_one(family: str) -> None:
    rule = rule_of(family)
    assert rule.weights.shape == (len(rule.counts), rule.counts[-1]) and len(set(rule.nodes.round(12))) == len(rule.nodes)
    assert np.all((rule.nodes >= 0) & (rule.nodes <= 1))
    for level, count in enumerate(rule.counts):
        np.testing.assert_allclose(rule.weights[level].sum(), 1.0, rtol=0, atol=1e-14)
        used = np.flatnonzero(rule.weights[level])
        assert used.tolist() == list(range(count))  # level i: the first counts[i] nodes, all with weight
        assert rule.new_nodes(level) == slice(rule.counts[level - 1] if level else 0, count)


@pytest.mark.parametrize("family", ["clenshaw-curtis", "fejer2"])
def test_a_level_of_m_nodes_integrates_polynomials_of_degree_m_exactly_and_not_m_plus_1(family: str) -> None:
    rule = rule_of(family)
    for level, m in enumerate(rule.counts):
        weights, nodes = rule.weights[level], rule.nodes
        for degree in range(m + 1):
            assert weights @ nodes**degree == pytest.approx(1 / (degree + 1), rel=0, abs=1e-13), (m, degree)
        assert abs(weights @ nodes ** (m + 1) - 1 / (m + 2)) > 1e-14 or m > 15  # the next degree is not exact


def test_the_trapezoid_rule_is_exact_for_lines_only() -> None:
    rule = rule_of("trapezoid")
    for level, m in enumerate(rule.counts):
        assert rule.weights[level] @ rule.nodes == pytest.approx(0.5, abs=1e-15)
        assert rule.weights[level] @ rule.nodes**2 == pytest.approx(1 / 3 + 1 / (6 * (m - 1) ** 2), abs=1e-14)


@pytest.mark.parametrize("family", ["clenshaw-curtis", "fejer2"])
def test_the_weights_are_the_interpolatory_weights_of_the_nodes(family: str) -> None:
    """Independent of the cosine formulas: the weights that integrate the Legendre polynomials 0..m-1 on [0, 1]
    exactly at a level's m nodes (the moment equations, solved)."""
    rule = rule_of(family)
    for level, m in enumerate(rule.counts[:4]):
        x = rule.nodes[:m]
        basis = np.polynomial.legendre.legvander(2 * x - 1, m - 1).T  # P_k(2x - 1): integral 1 for k = 0, else 0
        moments = np.zeros(m)
        moments[0] = 1.0
        np.testing.assert_allclose(rule.weights[level, :m], np.linalg.solve(basis, moments), atol=1e-12)


def test_fejer2_nodes_are_the_interior_chebyshev_points() -> None:
    rule = nested_rule("fejer2", (3, 7))
    np.testing.assert_allclose(sorted(rule.nodes), (1 - np.cos(np.arange(1, 8) * np.pi / 8)) / 2)
    assert sorted(rule.nodes[:3]) == pytest.approx([(1 - np.cos(np.pi / 4)) / 2, 0.5, (1 + np.cos(np.pi / 4)) / 2])


# --------------------------------------------------------------------------- running sums


def test_nested_sums_evaluate_each_node_once_and_combine_them_with_each_levels_weights() -> None:
    """A fake evaluate whose 'gradient' at alpha is alpha^2 per row: level i's sum is its rule applied to x^2
    (1/3 for degree >= 2), each node is asked for once per target, and a settled target is dropped."""
    rule = nested_rule("fejer2", (3, 7, 15))
    asked: list[tuple[tuple[float, ...], tuple[int, ...]]] = []

    def evaluate(alphas: np.ndarray, weights: np.ndarray, targets: list[int]) -> dict[int, np.ndarray]:
        asked.append((tuple(alphas), tuple(targets)))
        assert weights.shape == (len(rule.counts) - len(asked) + 1, len(alphas))
        values = alphas**2
        return {a: (weights @ values).reshape(-1, 1, 1).repeat(2, 1).repeat(4, 2).astype(np.float32) * (a + 1)
                for a in targets}

    sums = NestedSums(rule, evaluate)
    first = sums(3, [0, 1])
    assert first[0].shape == (2, 4) and first[0].dtype == np.float64
    np.testing.assert_allclose(first[1], 2 * rule.weights[0] @ rule.nodes**2, rtol=1e-6)
    assert sums.sums[0].shape == (3, 2, 4)  # one running sum per level not yet returned
    second = sums(7, [1])  # target 0 settled at 3
    assert set(sums.sums) == {1} and sums.sums[1].shape == (2, 2, 4)
    np.testing.assert_allclose(second[1], 2 / 3, rtol=1e-6)
    sums(15, [1])
    evaluated = [alpha for alphas, _ in asked for alpha in alphas]
    assert sorted(evaluated) == sorted(rule.nodes) and len(asked) == 3 and asked[1][1] == (1,)
    assert sums.evaluations == 2 * 3 * 2 + 4 * 2 + 8 * 2  # (target, patch, node) evaluations: 2 patches each
    asked.clear()
    again = NestedSums(rule, evaluate)
    with pytest.raises(ValueError, match="run in order"):
        again(7, [0])
    again(3, [0])
    with pytest.raises(ValueError, match="did not get the levels before"):
        again(7, [0, 5])


class Smooth(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(4, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.conv(x))


def test_a_refinement_on_a_real_segment_evaluates_only_the_new_nodes_and_matches_a_direct_rule() -> None:
    """The segment counts its inputs: levels 3, 7, 15 of two targets on 5 patches cost 15 evaluations per patch
    (not 3 + 7 + 15), one forward input per (patch, node); each level's sums equal integrated gradients computed
    directly with that level's nodes and weights; the 15-node level is complete (the axiom) within 1e-4."""
    segment = Smooth().eval()
    seen = []

    def counting(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        return segment(x)

    rule = nested_rule("fejer2", (3, 7, 15))
    torch.manual_seed(0)
    sources = torch.rand(5, 4, 6, 6)
    index, targets = torch.tensor([0, 0, 1, 2, 3, 4, 4]), torch.tensor([0, 2, 1, 1, 0, 2, 1])

    def evaluate(alphas, weights, chosen):
        sums = weighted_gradient_sums(counting, sources, targets, torch.tensor(alphas, dtype=torch.float32),
                                      torch.tensor(weights, dtype=torch.float32), 8, index)
        return {0: sums.numpy()}

    nested = NestedSums(rule, evaluate)
    levels = [nested(count, [0])[0] for count in rule.counts]
    assert sum(seen) == 5 * 15
    for level, count in enumerate(rule.counts):
        direct = weighted_gradient_sums(segment, sources, targets, torch.tensor(rule.nodes[:count], dtype=torch.float32),
                                        torch.tensor(rule.weights[level:level + 1, :count], dtype=torch.float32),
                                        8, index)[0]
        np.testing.assert_allclose(levels[level], direct.numpy(), rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        change = (segment(sources).mean((2, 3)) - segment(torch.zeros_like(sources)).mean((2, 3)))[index, targets]
    np.testing.assert_allclose(levels[-1].sum(1), change.numpy(), rtol=1e-4, atol=1e-5)
    reference = integrated_gradients(segment, sources, targets, 64, source_index=index).numpy()
    np.testing.assert_allclose(levels[-1], reference, rtol=1e-3, atol=1e-5)


def test_auto_with_nested_nodes_finds_the_core_sets_of_a_high_n_reference() -> None:
    """The tiny model with ReLU kinks: every core set of the auto circuit (Fejer's second rule) is the one of a
    fixed N = 256 Gauss-Legendre build, and each target kept a level whose set repeated the previous level's."""
    auto, _, _ = tiny_build(kinks=True)
    reference, _, _ = tiny_build(kinks=True, steps=256)
    assert {layer: [n.channel for n in neurons] for layer, neurons in auto.neurons.items()} == {
        layer: [n.channel for n in neurons] for layer, neurons in reference.neurons.items()}
    for used in auto.integration:
        assert used["rule"] == "fejer2" and used["converged"] and used["levels"][0] == 3
        assert all(n in used["levels"][1:] for n in used["target_nodes"].values())
        assert used["level_new_nodes"] == [used["levels"][0]] + [b - a for a, b in zip(used["levels"], used["levels"][1:], strict=False)]
