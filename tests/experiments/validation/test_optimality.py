"""The optimality study (Figure 4): hand-computed losses of the core set and the baselines on the tiny
three-colour circuit, the summary's interval against a t-table, and on the real model: core sets destroy more
of a concept than random sets of their size."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from neurflow.experiments.held_out import HeldOut
from neurflow.experiments.validation.common import StudySettingsError
from neurflow.experiments.validation.inputs import StudyInputs, with_held_out
from neurflow.experiments.validation.knockout import prepare_pairs
from neurflow.experiments.validation.optimality import (
    evidences,
    figure_optimality,
    gradient_times_activation,
    mean_interval,
    plot_optimality,
    run_optimality,
    summarise_optimality,
)
from neurflow.experiments.validation.result import write_csv
from tests.circuit_fixtures import SMALL_IMAGES
from tests.experiments.validation.support import COLOURS, uniform_rgb_view

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
    key = "head,tau=1,in-sample"
    assert summary[f"random_better_cases[{key}]"] == 0 and summary[f"loss_activation[{key}]"] == 1.0
    # One target: the interval is over its random sets.
    assert summary[f"ci99_low[{key}]"] <= summary[f"mean_difference[{key}]"] <= summary[f"ci99_high[{key}]"]
    assert result.parameters["taus"] == [1, 2] and result.parameters["random_sets"] == 6
    # The null: each random single or pair has L in {0, 1}, L(core) = 0, so every random set with L = 0 ties it.
    assert one["p_value"] == pytest.approx((1 + 6 * (1 - one["loss_random_mean"])) / 7)
    assert (one["evidence"], one["images"], one["patches"], one["k"]) == ("in-sample", 3, 177, 59)
    assert result.parameters["held_out_images"] == 0

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
        {"evidence": "held-out", "layer": "L", "tau": 3, "target": f"L:{i}", "loss_core": core,
         "loss_random_mean": core + diff, "difference": diff, "random_better": better, "random_sets": 10,
         "p_value": p, "loss_activation": 0.5, "loss_gradient_x_activation": 0.25, "images": 4, "patches": 236}
        for i, (core, diff, better, p) in enumerate([(0.2, 0.1, 2, 0.3), (0.4, 0.3, 0, 0.01), (0.3, 0.2, 1, 0.02)])
    ]
    summary = summarise_optimality(rows, ["L"], [3], {})
    # Differences (0.1, 0.3, 0.2): mean 0.2, standard deviation 0.1, standard error 0.1 / sqrt(3).
    half = T_995_DF2 * 0.1 / np.sqrt(3)
    key = "L,tau=3,held-out"
    assert summary[f"mean_difference[{key}]"] == pytest.approx(0.2)
    assert summary[f"ci99_low[{key}]"] == pytest.approx(0.2 - half, abs=1e-4)
    assert summary[f"ci99_high[{key}]"] == pytest.approx(0.2 + half, abs=1e-4)
    assert summary[f"random_better_cases[{key}]"] == 3 and summary[f"random_better_share[{key}]"] == pytest.approx(0.1)
    assert summary[f"loss_core[{key}]"] == pytest.approx(0.3) and summary[f"loss_random[{key}]"] == pytest.approx(0.5)
    assert summary[f"median_p[{key}]"] == pytest.approx(0.02) and summary[f"targets_p_below_0.05[{key}]"] == 2
    assert (summary["images[held-out]"], summary["patches[held-out]"]) == (4, 236)
    assert mean_interval(np.array([0.5, 0.5])) == (0.5, 0.5, 0.5)


def test_held_out_images_measure_the_sets_chosen_on_the_circuits_own(three_colours: StudyInputs) -> None:
    # Sets are chosen on the circuit's three images; L is measured on two held-out images of colours 0 and 2
    # (no image of colour 1): V_a = the 59 patches of the colour-0 image. Knocking {0} out leaves class 0 at
    # (0.1, 0.05) on them: the colour-0 image stays on top, L = 1 (in-sample, the colour-1 image took its place:
    # L = 0). Every other set leaves it on top as well ({0, 1}: (0, 0), ties by patch index), so L = 1 throughout.
    held = HeldOut([uniform_rgb_view("held0", COLOURS[0]), uniform_rgb_view("held2", COLOURS[2])], None)
    result = run_optimality(replace(three_colours, held_out=held), taus=(1, 2), random_sets=6, progress=False)
    rows = {(row["evidence"], row["tau"]): row for row in result.rows}
    assert rows["in-sample", 1]["loss_core"] == 0.0 and rows["held-out", 1]["loss_core"] == 1.0
    for tau in (1, 2):
        row = rows["held-out", tau]
        assert (row["loss_random_mean"], row["loss_activation"], row["loss_gradient_x_activation"]) == (1.0, 1.0, 1.0)
        assert (row["images"], row["patches"], row["k"], row["p_value"]) == (2, 118, 59, 1.0)
        assert row["core"] == rows["in-sample", tau]["core"]  # the same set, chosen on the circuit's images
    assert result.summary["mean_difference[head,tau=1,held-out]"] == 0.0
    assert result.parameters["held_out_images"] == 2 and result.parameters["held_out_note"] == ""
    assert evidences(result) == ["held-out", "in-sample"]
    assert figure_optimality(result).axes  # held-out bars with the in-sample ones beside them


def test_bad_taus_are_refused(three_colours: StudyInputs) -> None:
    with pytest.raises(StudySettingsError, match="larger than act's 3 channels"):
        run_optimality(three_colours, taus=(4,), random_sets=3, progress=False)
    with pytest.raises(StudySettingsError, match="at least 2 random sets"):
        run_optimality(three_colours, taus=(1,), random_sets=1, progress=False)


def test_core_sets_beat_random_sets_on_held_out_images_of_the_real_model(samoyed_inputs: StudyInputs) -> None:
    # The circuit is built on 2 Samoyed images of tests/data/imagewoof; the folder holds more Samoyeds, which
    # the circuit never saw: the core sets chosen on the 2 must still destroy more of the concept on those
    # (measured: L(random) - L(core) = 0.14 at _fc and 0.35 at _blocks.15, against 0.10 and 0.35 in-sample).
    inputs = with_held_out(samoyed_inputs, SMALL_IMAGES, max_images=8)
    # 9 of the folder's images are predicted Samoyed: the circuit's 2 and 7 it never saw.
    assert inputs.held_out is not None and (len(inputs.held_out.views), inputs.held_out.candidates) == (7, 9)
    own = {record.sha256 for record in samoyed_inputs.circuit.images}
    assert not own & {view.sha256 for view in inputs.held_out.views}
    result = run_optimality(inputs, taus=(5,), random_sets=12, targets=3, progress=False)
    assert result.layers == ["_fc", "_blocks.15"]
    for evidence in ("held-out", "in-sample"):
        for layer in result.layers:
            # Knocking out the core set leaves less of the concept than knocking out random sets of its size ...
            assert result.summary[f"mean_difference[{layer},tau=5,{evidence}]"] > 0.05
            # ... and few random sets do better.
            assert result.summary[f"random_better_share[{layer},tau=5,{evidence}]"] < 0.1
    rows = [row for row in result.rows if row["layer"] == "_blocks.15" and row["evidence"] == "held-out"]
    assert len(rows) == 3 and all(row["loss_core"] < row["loss_random_mean"] for row in rows)
