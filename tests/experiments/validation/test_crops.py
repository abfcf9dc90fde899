"""The crops study (Figure 18): hand-computed answers on the tiny uniform-image network, meaning on the real model.

On ``uniform_inputs`` (tests/experiments/validation/test_k_sensitivity.py) every patch of an image is the same
whatever its scale, so a mix only changes how many patches each image has: the red image's patches come first
in every top-k, and the core set (tau = 1) is red (0) unless green patches outweigh it in V_a.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neurflow.engine.patches import PATCH_SCALES
from neurflow.experiments.validation.common import StudySettingsError
from neurflow.experiments.validation.crops import mix_label, plot_crops, run_crops
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.result import write_csv
from tests.experiments.validation.support import uniform_inputs

# mix -> (patches per image, k used, core channel, overlap with the default mix's core set {0}).
# The default mix, k = 50: the red image's first 50 patches -> [50, 0] -> red.
EXPECTED = {
    (1.0,): (1, 4, 1, 0),  # all 4 patches: red 1 against green 3 x 0.5 = 1.5 -> green
    (1.0, 0.5): (10, 40, 1, 0),  # all 40: red 10 against green 30 x 0.5 = 15 -> green
    (0.5, 0.25): (58, 50, 0, 1),  # the red image's first 50 patches
    (1.0, 0.25): (50, 50, 0, 1),  # the red image's 50 patches
    (0.25,): (49, 50, 0, 1),  # red 49 against green 1 x 0.5
    PATCH_SCALES: (59, 50, 0, 1),  # the default mix against itself
}


def test_each_mix_gives_the_hand_computed_core_set_and_scale_shares(tmp_path: Path) -> None:
    result = run_crops(uniform_inputs(), mixes=list(EXPECTED), progress=False)
    assert result.layers == ["head"] and result.parameters["reference"] == [1.0, 0.5, 0.25]
    rows = {row["mix"]: row for row in result.rows}
    assert list(rows) == [mix_label(mix) for mix in EXPECTED]
    for mix, (_, k_used, core, overlap) in EXPECTED.items():
        row = rows[mix_label(mix)]
        assert (row["k_used"], row["core"], row["overlap"], row["reference_core"]) == (k_used, str(core), overlap, "0")
        assert result.summary[f"mean_overlap[mix={mix_label(mix)}]"] == overlap
    # V_a's scales: with 1 + 0.25 the red image's 1 + 49 patches; with the default mix its first 1 + 9 + 40.
    assert (rows["1+0.25"]["share_1"], rows["1+0.25"]["share_0.5"], rows["1+0.25"]["share_0.25"]) == (0.02, 0.0, 0.98)
    assert rows["1"]["share_1"] == 1.0 and rows["0.25"]["share_0.25"] == 1.0
    assert (result.summary["scale_share[head,1]"], result.summary["scale_share[head,0.5]"],
            result.summary["scale_share[head,0.25]"]) == (0.02, 0.18, 0.8)
    assert result.summary["min_mean_overlap"] == 0.0
    csv = write_csv(result, tmp_path / "crops.csv").read_text().splitlines()
    assert csv[0].split(",") == ["mix", "layer", "lower_layer", "target", "k_used", "tau", "overlap", "core",
                                 "reference_core", "share_1", "share_0.5", "share_0.25"]
    assert plot_crops(result, tmp_path / "crops.png").stat().st_size > 0


def test_bad_mixes_are_errors() -> None:
    inputs = uniform_inputs()
    with pytest.raises(StudySettingsError, match=r"scales in \(0, 1\], not \(1.5,\)"):
        run_crops(inputs, mixes=[(1.5,)], progress=False)
    with pytest.raises(StudySettingsError, match="no patch scale mix"):
        run_crops(inputs, mixes=[], progress=False)




def test_on_the_real_model_the_default_mix_reproduces_itself(samoyed3_inputs: StudyInputs) -> None:
    circuit = samoyed3_inputs.circuit
    tau = int(circuit.params["tau"])
    result = run_crops(samoyed3_inputs, layers=["_fc"], mixes=[PATCH_SCALES, (1.0, 0.5)], progress=False)
    rows = {row["mix"]: row for row in result.rows}
    default = rows["1+0.5+0.25"]
    assert default["overlap"] == tau and default["core"] == default["reference_core"]
    # The default mix recomputes the circuit's own core set of the class logit.
    lower = {int(e.lower.rpartition(":")[2]) for e in circuit.edges if e.upper == circuit.logit_key}
    assert {int(c) for c in default["core"].split()} == lower
    # Only 30 whole-image and half-image patches: k = 12 of them, a real change of V_a, yet a core set of
    # the class logit that still shares neurons with the default one.
    assert rows["1+0.5"]["k_used"] == 12 and 0 < rows["1+0.5"]["overlap"] <= tau
    shares = [result.summary[f"scale_share[_fc,{scale:g}]"] for scale in PATCH_SCALES]
    assert sum(shares) == pytest.approx(1.0) and all(0 <= share <= 1 for share in shares)
