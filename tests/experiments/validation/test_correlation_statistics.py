"""The correlation study's statistics (Figure 6 with its null): on constructed data where the answer is known."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from neurflow.experiments.validation.correlation import (
    fisher_interval,
    pearson,
    permutation_p,
    permuted_abs_r,
    spearman,
)

RNG = np.random.default_rng(0)


def test_spearman_is_scipys_and_sees_a_monotone_relation_whole() -> None:
    x = RNG.normal(size=30)
    y = np.exp(3 * x) + RNG.normal(0, 0.01, 30)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert spearman(x, np.exp(3 * x)) == pytest.approx(1.0) and pearson(x, np.exp(3 * x)) < 0.9
    assert math.isnan(spearman(x, np.ones(30)))


def test_the_fisher_interval_by_hand() -> None:
    low, high = fisher_interval(0.5, 28)  # z = atanh(0.5) = 0.5493, se = 1/5
    assert (low, high) == pytest.approx((math.tanh(0.5493061 - 1.959964 / 5), math.tanh(0.5493061 + 1.959964 / 5)))
    assert all(math.isnan(v) for v in fisher_interval(0.5, 3)) and all(math.isnan(v) for v in fisher_interval(math.nan, 20))
    # the 95 % interval holds the true correlation about 95 % of the time
    held = 0
    for _ in range(400):
        x = RNG.normal(size=20)
        y = 0.6 * x + 0.8 * RNG.normal(size=20)     # true r = 0.6
        low, high = fisher_interval(pearson(x, y), 20)
        held += low <= 0.6 <= high
    assert held / 400 == pytest.approx(0.95, abs=0.04)


def test_a_planted_correlation_is_found_and_no_correlation_is_not() -> None:
    orders = np.argsort(RNG.random((2000, 20)), axis=1)
    x = RNG.normal(size=20)
    planted = -x + RNG.normal(0, 0.3, 20)
    r = pearson(x, planted)
    null = permuted_abs_r(x, planted, orders)
    assert r == pytest.approx(pearsonr(x, planted).statistic) and r < -0.8
    assert permutation_p(abs(r), null) == pytest.approx(1 / 2001)  # nothing in the null comes near
    # with 20 sets, mean |r| under no relation is about sqrt(2 / (pi (n - 1))) = 0.183: what a figure must beat
    assert null.mean() == pytest.approx(math.sqrt(2 / (math.pi * 19)), abs=0.01)
    p_values = []
    for _ in range(300):
        a, b = RNG.normal(size=20), RNG.normal(size=20)
        p_values.append(permutation_p(abs(pearson(a, b)), permuted_abs_r(a, b, orders[:200])))
    # under no relation the p-values are uniform: about 5 % fall below 0.05
    assert np.mean(np.array(p_values) < 0.05) == pytest.approx(0.05, abs=0.035)
    assert (permuted_abs_r(x, np.ones(20), orders) == 0).all()  # undefined r counts as 0, as in the means
