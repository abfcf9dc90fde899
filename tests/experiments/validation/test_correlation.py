"""The correlation study (Figure 6): a hand-computed r on the tiny three-colour circuit, and its meaning on the
real model (a neuron's importance predicts how much of a concept knocking it out destroys)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from neurflow.experiments.validation.common import StudySettingsError
from neurflow.experiments.validation.correlation import pearson, plot_correlation, run_correlation
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.result import write_csv

# Three-colour circuit (conftest): single neurons give L = (0, 1, 1) and |T| = (29.5, 5.9, 0). With the means
# 2/3 and 11.8: sum dL dT = -17.7, sum dL^2 = 2/3, sum dT^2 = 17.7^2 + 5.9^2 + 11.8^2 = 487.34.
R_SINGLES = -17.7 / math.sqrt(2 / 3 * 487.34)  # -0.98198


def test_size_one_correlation_is_the_hand_computed_r(three_colours: StudyInputs, tmp_path: Path) -> None:
    result = run_correlation(three_colours, sizes=(1, 3), sets_per_size=4, progress=False)
    assert result.study == "correlation" and result.layers == ["head"]
    rows = {row["size"]: row for row in result.rows}
    assert rows[1]["n_sets"] == 3  # every single neuron of the layer below
    assert rows[1]["r"] == pytest.approx(R_SINGLES, rel=1e-5)
    assert rows[1]["mean_loss"] == pytest.approx(2 / 3)
    # Size 3 is the whole layer: L = 1 for every draw (the tie-broken top-k is image 0 again), r is undefined.
    assert rows[3]["n_sets"] == 4 and math.isnan(rows[3]["r"]) and rows[3]["mean_loss"] == 1.0
    assert result.summary["mean_abs_r[head,size=1]"] == pytest.approx(-R_SINGLES, rel=1e-5)
    assert result.summary["mean_abs_r[size=1]"] == pytest.approx(-R_SINGLES, rel=1e-5)
    assert result.summary["mean_r[size=1]"] == pytest.approx(R_SINGLES, rel=1e-5)
    assert result.summary["mean_abs_r[size=3]"] == 0.0  # undefined counts as 0, as in the authors' code
    assert result.summary["undefined_r"] == 1.0
    assert result.parameters["sizes"] == [1, 3] and result.parameters["ablation"] == "zero"

    with write_csv(result, tmp_path / "c.csv").open() as handle:
        lines = list(csv.DictReader(handle))
    assert [line["size"] for line in lines] == ["1", "3"] and float(lines[0]["r"]) == pytest.approx(R_SINGLES, rel=1e-5)
    assert plot_correlation(result, tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_a_sample_of_single_neurons_and_bad_settings(three_colours: StudyInputs) -> None:
    result = run_correlation(three_colours, sizes=(1,), singles=2, progress=False)
    assert result.rows[0]["n_sets"] == 2
    with pytest.raises(StudySettingsError, match="larger than act's 3 channels"):
        run_correlation(three_colours, sizes=(1, 4), progress=False)
    with pytest.raises(StudySettingsError, match="at least 2 sets per size"):
        run_correlation(three_colours, sizes=(1, 2), sets_per_size=1, progress=False)
    with pytest.raises(StudySettingsError, match="at least 1"):
        run_correlation(three_colours, sizes=(0, 2), progress=False)


def test_pearson_is_undefined_on_constant_samples() -> None:
    assert pearson(np.array([1.0, 2.0, 3.0]), np.array([2.0, 4.0, 7.0])) == pytest.approx(0.9934, abs=1e-4)
    assert math.isnan(pearson(np.array([1.0, 1.0]), np.array([0.0, 1.0])))
    assert math.isnan(pearson(np.array([1.0]), np.array([0.0])))


def test_importance_predicts_the_knockout_loss_on_the_real_model(samoyed_inputs: StudyInputs) -> None:
    result = run_correlation(samoyed_inputs, layers=["_blocks.15"], sizes=(1, 10), sets_per_size=8, singles=32,
                             targets=3, progress=False)
    assert {row["size"] for row in result.rows} == {1, 10} and len(result.rows) == 2 * 3
    # Knocking out important neurons leaves less of the concept: r is negative, clearly away from 0
    # (measured: mean |r| 0.45 at size 1 with 48 single neurons).
    assert result.summary["mean_r[size=1]"] < -0.2
    assert result.summary["mean_abs_r[_blocks.15,size=1]"] > 0.25
    assert result.summary["mean_r[size=10]"] < 0
