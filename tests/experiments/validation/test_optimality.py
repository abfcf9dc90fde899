"""The optimality study (Figure 4): hand-computed losses of the core set and the baselines on the tiny
three-colour circuit, the summary's interval against a t-table, and on the real model: core sets destroy more
of a concept than random sets of their size."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from neurflow.experiments.validation.common import StudySettingsError
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.knockout import prepare_pairs
from neurflow.experiments.validation.optimality import (
    gradient_times_activation,
    mean_interval,
    plot_optimality,
    run_optimality,
    summarise_optimality,
)
from neurflow.experiments.validation.result import write_csv

T_995_DF2 = 9.9248  # Student's t, 0.995 quantile, 2 degrees of freedom (a printed table)


def test_core_set_and_baselines_on_the_tiny_circuit(three_colours: StudyInputs, tmp_path: Path) -> None:
    # Over V_a (image 0) the act channels are (0.5, 1.0, 0): by mean activation channel 1 (green) comes first,
    # but its head weight is 0.1: knocking it out leaves image 0 on top (L = 1). The integrated gradients
    # (29.5, 5.9, 0) and gradient x activation (the same, the head is linear) pick red: L({0}) = 0.
    result = run_optimality(three_colours, taus=(1, 2), random_sets=6, progress=False)
    rows = {row["tau"]: row for row in result.rows}
    one, two = rows[1], rows[2]
    assert (one["loss_core"], one["loss_activation"], one["loss_gradient_x_activation"]) == (0.0, 1.0, 0.0)
    assert one["core"] == "0"
    # tau = 2: core {0, 1}, activation {1, 0}, gradient x activation {0, 1}: all L = 0 (red and its weight gone).
    assert (two["loss_core"], two["loss_activation"], two["loss_gradient_x_activation"]) == (0.0, 0.0, 0.0)
    # Random singles: L({0}) = 0, L({1}) = L({2}) = 1; pairs: {0, 1} -> 0, {0, 2}, {1, 2} -> 1. Never below 0.
    for row in (one, two):
        assert row["random_better"] == 0 and row["random_sets"] == 6
        assert round(row["loss_random_mean"] * 6) == pytest.approx(row["loss_random_mean"] * 6)
        assert row["difference"] == pytest.approx(row["loss_random_mean"] - row["loss_core"])
    summary = result.summary
    assert summary["random_better_cases[head,tau=1]"] == 0 and summary["loss_activation[head,tau=1]"] == 1.0
    # One target: the interval is over its random sets.
    assert summary["ci99_low[head,tau=1]"] <= summary["mean_difference[head,tau=1]"] <= summary["ci99_high[head,tau=1]"]
    assert result.parameters["taus"] == [1, 2] and result.parameters["random_sets"] == 6

    with write_csv(result, tmp_path / "o.csv").open() as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == 2 and lines[0]["core"] == "0"
    assert plot_optimality(result, tmp_path / "o.png").read_bytes()[:4] == b"\x89PNG"


def test_gradient_times_activation_is_the_linear_heads_contribution(three_colours: StudyInputs) -> None:
    (pair,) = prepare_pairs(three_colours, None, None, progress=False)
    # d a / d act_s = w_s (spatial mean, then linear); times act_s, summed over V_a: 59 * w_s * act_s.
    scores = gradient_times_activation(pair, three_colours.loaded.device, batch=7)
    np.testing.assert_allclose(scores[0], [29.5, 5.9, 0.0], rtol=1e-5)


def test_summary_interval_and_cases_by_hand() -> None:
    rows = [
        {"layer": "L", "tau": 3, "target": f"L:{i}", "loss_core": core, "loss_random_mean": core + diff,
         "difference": diff, "random_better": better, "random_sets": 10, "loss_activation": 0.5,
         "loss_gradient_x_activation": 0.25}
        for i, (core, diff, better) in enumerate([(0.2, 0.1, 2), (0.4, 0.3, 0), (0.3, 0.2, 1)])
    ]
    summary = summarise_optimality(rows, ["L"], [3], {})
    # Differences (0.1, 0.3, 0.2): mean 0.2, standard deviation 0.1, standard error 0.1 / sqrt(3).
    half = T_995_DF2 * 0.1 / np.sqrt(3)
    assert summary["mean_difference[L,tau=3]"] == pytest.approx(0.2)
    assert summary["ci99_low[L,tau=3]"] == pytest.approx(0.2 - half, abs=1e-4)
    assert summary["ci99_high[L,tau=3]"] == pytest.approx(0.2 + half, abs=1e-4)
    assert summary["random_better_cases[L,tau=3]"] == 3 and summary["random_better_share[L,tau=3]"] == pytest.approx(0.1)
    assert summary["loss_core[L,tau=3]"] == pytest.approx(0.3) and summary["loss_random[L,tau=3]"] == pytest.approx(0.5)
    assert mean_interval(np.array([0.5, 0.5])) == (0.5, 0.5, 0.5)


def test_bad_taus_are_refused(three_colours: StudyInputs) -> None:
    with pytest.raises(StudySettingsError, match="larger than act's 3 channels"):
        run_optimality(three_colours, taus=(4,), random_sets=3, progress=False)
    with pytest.raises(StudySettingsError, match="at least 2 random sets"):
        run_optimality(three_colours, taus=(1,), random_sets=1, progress=False)


def test_core_sets_beat_random_sets_on_the_real_model(samoyed_inputs: StudyInputs) -> None:
    result = run_optimality(samoyed_inputs, taus=(5,), random_sets=12, targets=3, progress=False)
    assert result.layers == ["_fc", "_blocks.15"]
    for layer in result.layers:
        # Knocking out the core set leaves less of the concept than knocking out random sets of its size ...
        assert result.summary[f"mean_difference[{layer},tau=5]"] > 0.05
        # ... and few random sets do better.
        assert result.summary[f"random_better_share[{layer},tau=5]"] < 0.1
    rows = [row for row in result.rows if row["layer"] == "_blocks.15"]
    assert len(rows) == 3 and all(row["loss_core"] < row["loss_random_mean"] for row in rows)
