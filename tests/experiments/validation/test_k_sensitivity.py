"""The k-sensitivity study (Table 5): a hand-computed answer on a tiny network, and its meaning on the real model.

The tiny network (``TwoColours``) sees uniform images, so that every patch of an image is the same and the
attributions can be added up by hand: see :func:`uniform_inputs`.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from neurflow.circuit import Circuit, ClassInfo, CoreNeuron, Edge, ModelInfo
from neurflow.engine.patches import PatchSet
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.k_sensitivity import (
    StudySettingsError,
    overlap_count,
    plot_k_sensitivity,
    run_k_sensitivity,
    study_targets,
    summarise_overlaps,
)
from neurflow.experiments.validation.result import write_csv
from tests.experiments.validation.support import uniform_inputs


def test_overlap_with_k_50_follows_the_hand_computed_sums(tmp_path: Path) -> None:
    inputs = uniform_inputs()
    assert [n.channel for n in inputs.circuit.neurons["act"]] == [0]  # the circuit's own core set, k = 50
    result = run_k_sensitivity(inputs, progress=False)
    assert result.layers == ["head"] and result.parameters["ks"] == [30, 50, 70, 90, 110, 130, 150, 170, 190]
    by_k = {row["k"]: row for row in result.rows}
    assert {k: row["overlap"] for k, row in by_k.items()} == {30: 1, 50: 1, 70: 1, 90: 1, 110: 1, 130: 1,
                                                             150: 1, 170: 1, 190: 0}
    assert by_k[170]["core"] == "0" and by_k[190]["core"] == "1" and by_k[190]["reference_core"] == "0"
    assert all(row["target"] == "head:0" and row["lower_layer"] == "act" and row["tau"] == 1 for row in result.rows)
    assert result.summary["mean_overlap[k=190]"] == 0.0 and result.summary["mean_overlap[head,k=170]"] == 1.0
    assert result.summary["min_mean_overlap"] == 0.0 and result.summary["targets[head]"] == 1.0

    # Around the turning point, and another reference: the study compares with the k it is given.
    near = run_k_sensitivity(inputs, ks=(176, 178), reference_k=178, progress=False)
    assert [(row["core"], row["overlap"]) for row in near.rows] == [("0", 0), ("1", 1)]

    csv = write_csv(result, tmp_path / "k.csv").read_text().splitlines()
    assert csv[0].split(",")[:4] == ["layer", "lower_layer", "target", "k"] and len(csv) == 1 + 9
    assert plot_k_sensitivity(result, tmp_path / "k.png").stat().st_size > 0


def test_a_k_above_the_patches_and_unknown_layers_are_errors() -> None:
    inputs = uniform_inputs()
    with pytest.raises(StudySettingsError, match=r"k = 250 is larger than the 236 patches of the class's 4 images"):
        run_k_sensitivity(inputs, ks=(30, 250), progress=False)
    with pytest.raises(StudySettingsError, match="k = 300 is larger than the 236"):
        run_k_sensitivity(inputs, ks=(30,), reference_k=300, progress=False)
    with pytest.raises(StudySettingsError, match="every k must be at least 1"):
        run_k_sensitivity(inputs, ks=(30,), reference_k=0, progress=False)
    with pytest.raises(StudySettingsError, match="act cannot be studied.*: head"):
        run_k_sensitivity(inputs, layers=["act"], progress=False)
    with pytest.raises(StudySettingsError, match="targets must be at least 1"):
        run_k_sensitivity(inputs, targets=0, progress=False)


def test_the_default_ks_are_those_the_patches_allow() -> None:
    # 236 patches: the paper's 30, 50, ..., 190 all fit; 2 images (118 patches) keep 30, 50, 70, 90, 110.
    inputs = uniform_inputs()
    assert run_k_sensitivity(inputs, progress=False).parameters["ks"] == list(range(30, 191, 20))
    small = replace(inputs, views=inputs.views[:2], patches=PatchSet(inputs.views[:2], inputs.loaded.preprocessing),
                    recorded=[])
    assert run_k_sensitivity(small, progress=False).parameters["ks"] == [30, 50, 70, 90, 110]


def test_targets_are_the_most_important_core_neurons_and_overlaps_count_shared_channels() -> None:
    """Importance: summed |edge weight| from the layer above; ties by channel."""
    neurons = {"top": [CoreNeuron("top", 0, [], [], 1.0)],
               "mid": [CoreNeuron("mid", c, [], [], 1.0) for c in (2, 5, 7, 9)], "low": []}
    edges = [Edge("top:0/0", "top:0", "mid:2", 0.1, 0.1), Edge("top:0/0", "top:0", "mid:9", -0.6, -0.6),
             Edge("top:0/0", "top:0", "mid:5", 0.3, 0.3), Edge("top:0/1", "top:0", "mid:2", 0.5, 0.5),
             Edge("top:0/1", "top:0", "mid:7", -0.5, -0.5)]
    circuit = Circuit(ModelInfo("m", "w", 8, 1), ClassInfo(0, "c"), ["top", "mid", "low"], {}, [], [], neurons,
                      [], edges, [], [])
    assert study_targets(circuit, "mid", None) == [2, 9, 7, 5]  # 0.6, 0.6 (tie: channel 2 first), 0.5, 0.3
    assert study_targets(circuit, "mid", 2) == [2, 9]
    assert study_targets(circuit, "top", 3) == [0]
    assert overlap_count(np.array([4, 1, 9]), np.array([9, 3, 4])) == 2
    assert overlap_count(np.array([1, 2]), np.array([3, 4])) == 0




def test_on_the_real_model_the_reference_k_reproduces_the_circuits_core_sets(samoyed3_inputs: StudyInputs) -> None:
    circuit = samoyed3_inputs.circuit
    tau, k = int(circuit.params["tau"]), int(circuit.params["k"])
    result = run_k_sensitivity(samoyed3_inputs, ks=(k - 4, k, k + 4), reference_k=k, targets=2, progress=False)
    assert result.layers == ["_fc", "_blocks.15"]
    at_reference = [row for row in result.rows if row["k"] == k]
    assert len(at_reference) == 1 + 2 and all(row["overlap"] == tau for row in at_reference)
    for row in at_reference:
        # The same k, tau, steps and ranking as the circuit: the same core set as its edges say.
        lower = {int(e.lower.rpartition(":")[2]) for e in circuit.edges if e.upper == row["target"]}
        assert {int(c) for c in row["reference_core"].split()} == lower, row["target"]
    # Core sets move little with k (the paper's point): far more shared neurons than two random sets of tau
    # among 192 or 112 channels (tau^2 / C < 0.4).
    assert result.summary["min_mean_overlap"] >= tau / 2


def test_overlap_summaries_carry_a_null_an_interval_and_the_sample_size() -> None:
    # 4 targets whose core sets of 10 share (10, 8, 9, 9) channels with the reference, in a lower layer of 100.
    rows = [{"layer": "U", "lower_layer": "L", "target": f"U:{i}", "k": 30, "tau": 10, "overlap": overlap,
             "core": " ".join(map(str, range(10))), "reference_core": " ".join(map(str, range(10)))}
            for i, overlap in enumerate((10, 8, 9, 9))]
    summary = summarise_overlaps(rows, "k", [30], 50, {"L": 100})
    assert summary["mean_overlap[U,k=30]"] == 9.0 and summary["targets[U]"] == 4
    # t-interval over the 4 targets: sd = sqrt(2/3), t(0.975, 3) = 3.1824 (a printed table).
    half = 3.1824 * math.sqrt(2 / 3) / 2
    assert summary["ci95_low[U,k=30]"] == pytest.approx(9 - half, abs=1e-3)
    assert summary["ci95_high[U,k=30]"] == pytest.approx(9 + half, abs=1e-3)
    # Two random sets of 10 among 100 channels share 10 * 10 / 100 = 1 on average; one target's 95th
    # percentile from the hypergeometric probabilities written out: P(X <= 2) < 0.95 <= P(X <= 3).
    assert summary["null_overlap[U,k=30]"] == pytest.approx(1.0)

    def cdf(x: int) -> float:
        return sum(math.comb(10, i) * math.comb(90, 10 - i) for i in range(x + 1)) / math.comb(100, 10)

    assert cdf(2) < 0.95 <= cdf(3) and summary["null_p95_overlap[U]"] == 3
