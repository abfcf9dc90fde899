"""Coverage: what a target's core set carries of its attribution (engine/coverage.py), and how much of the logit's
attribution reaches each layer through core paths (analysis.layer_coverage), on hand-computed cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from neurflow.analysis import circuit_coverage, layer_coverage, neuron_reach
from neurflow.circuit import Circuit, ClassInfo, CoreNeuron, Edge, ModelInfo, Stability, TargetCoverage
from neurflow.engine.config import BuildConfig
from neurflow.engine.coverage import target_coverage
from neurflow.engine.ranking import core_set
from neurflow.format import circuit_from_dict, circuit_to_dict
from neurflow.synthetic import synthetic_circuit


def test_a_targets_coverage_by_hand() -> None:
    # 2 patches of V_a, 4 lower neurons: T(a, s) = column sums = [4, -1, 1, 0]; sum |T| = 6
    per_patch = np.array([[3.0, -1.0, 0.5, 0.25], [1.0, 0.0, 0.5, -0.25]])
    deltas = np.array([2.5, 1.0])  # f_a(h_p) - f_a(0); the rows sum to [2.75, 1.25]: a gap of 0.5 in 3.5
    c = target_coverage("up", 7, "low", per_patch, np.array([0, 1]), deltas)
    assert (c.layer, c.channel, c.lower_layer, c.key) == ("up", 7, "low", "up:7")
    assert c.core_share == pytest.approx(5 / 6)
    assert c.signed_share == pytest.approx(3 / 3.5)  # (4 - 1) over the change 3.5: the inhibitor counts against
    assert c.attribution == pytest.approx(6.0) and c.output_change == pytest.approx(3.5)
    assert c.completeness_gap == pytest.approx(0.5 / 3.5)
    everything = target_coverage("up", 7, "low", per_patch, np.arange(4), deltas)
    assert everything.core_share == pytest.approx(1.0)


def test_a_target_that_does_not_move_has_no_share() -> None:
    c = target_coverage("up", 0, "low", np.zeros((3, 2)), np.array([0]), np.zeros(3))
    assert math.isnan(c.core_share) and math.isnan(c.signed_share) and math.isnan(c.completeness_gap)


def hand_circuit() -> Circuit:
    """logit L:0 -> A {1, 2} -> B {5, 6}. T(L, A:1) = 2 + 1 (two semantic groups), T(L, A:2) = -1, sum over all of
    A of |T(L, .)| = 8; T(A:1, B:5) = 2 of 4; T(A:2, B:5) = 1 and T(A:2, B:6) = -1 of 2."""
    def neuron(layer: str, channel: int) -> CoreNeuron:
        return CoreNeuron(layer, channel, [], [], 1.0, [])

    edges = [Edge("L:0/0", "L:0", "A:1", 2.0, 0.5), Edge("L:0/1", "L:0", "A:1", 1.0, 0.5),
             Edge("L:0/0", "L:0", "A:2", -1.0, -0.5),
             Edge("A:1/0", "A:1", "B:5", 2.0, 1.0),
             Edge("A:2/0", "A:2", "B:5", 1.0, 0.5), Edge("A:2/0", "A:2", "B:6", -1.0, -0.5)]
    coverage = [TargetCoverage("L", 0, "A", 0.5, 0.4, 8.0, 5.0, 0.01),
                TargetCoverage("A", 1, "B", 0.5, 0.5, 4.0, 4.0, 0.02),
                TargetCoverage("A", 2, "B", 1.0, float("nan"), 2.0, 0.0, float("nan"))]
    return Circuit(ModelInfo("m", "w", 8, 1), ClassInfo(0, "c"), ["L", "A", "B"], {}, [], [],
                   {"L": [neuron("L", 0)], "A": [neuron("A", 1), neuron("A", 2)],
                    "B": [neuron("B", 5), neuron("B", 6)]},
                   [], edges, [], [], coverage=coverage)


def test_reach_by_hand() -> None:
    circuit = hand_circuit()
    reach = neuron_reach(circuit)
    assert reach == pytest.approx({"L:0": 1.0, "A:1": 3 / 8, "A:2": 1 / 8, "B:5": 3 / 8 * 2 / 4 + 1 / 8 * 1 / 2,
                                   "B:6": 1 / 8 * 1 / 2})
    a, b = layer_coverage(circuit)
    assert (a.layer, a.depth, a.targets, b.layer, b.depth, b.targets) == ("A", 1, 1, "B", 2, 2)
    assert a.reach == pytest.approx(0.5) and b.reach == pytest.approx(0.3125)
    assert (a.mean_core_share, a.min_core_share) == pytest.approx((0.5, 0.5))
    assert (b.mean_core_share, b.min_core_share) == pytest.approx((0.75, 0.5))
    assert b.mean_signed_share == pytest.approx(0.5)  # the NaN of a target that does not move is left out
    assert circuit_coverage(circuit) == pytest.approx(0.3125)


def test_a_circuit_without_coverage_says_so() -> None:
    circuit = hand_circuit()
    circuit.coverage = []
    assert neuron_reach(circuit) == {}
    assert all(math.isnan(row.reach) for row in layer_coverage(circuit))


def test_reach_never_grows_down_the_layers_and_agrees_with_the_edges() -> None:
    circuit = synthetic_circuit(258)
    rows = layer_coverage(circuit)
    assert rows[0].reach == pytest.approx(circuit.coverage[0].core_share)  # the logit alone passes it on
    assert all(0 < low.reach <= high.reach <= 1 for high, low in zip(rows, rows[1:], strict=False))
    carried = {}
    for edge in circuit.edges:
        carried.setdefault(edge.upper, {}).setdefault(edge.lower, 0.0)
        carried[edge.upper][edge.lower] += edge.score
    for record in circuit.coverage:
        kept = sum(abs(t) for t in carried[record.key].values())
        assert record.core_share * record.attribution == pytest.approx(kept)


def test_coverage_round_trips_through_the_file_with_nan_as_null() -> None:
    circuit = hand_circuit()
    text = json.dumps(circuit_to_dict(circuit), allow_nan=False)  # strict JSON: NaN written as null
    data = json.loads(text)
    assert data["formatVersion"] == "1.2" and data["coverage"][2]["signed_share"] is None
    back = circuit_from_dict(data)
    assert back.coverage[:2] == circuit.coverage[:2]
    assert math.isnan(back.coverage[2].signed_share) and back.coverage[2].core_share == 1.0
    older = {k: v for k, v in data.items() if k != "coverage"} | {"formatVersion": "1.1"}
    assert circuit_from_dict(older).coverage == []


def test_a_coverage_driven_core_set_is_the_fewest_neurons_that_carry_the_share() -> None:
    # T(a, s) over two patches = [4, -3, 2, 1, 0]: |T| sums to 10; by |T|: 4, 3, 2, 1
    per_patch = np.array([[3.0, -2.0, 1.0, 0.5, 0.0], [1.0, -1.0, 1.0, 0.5, 0.0]])
    assert core_set(per_patch, 4, "sum")[0].tolist() == [0, 1, 2, 3]
    assert core_set(per_patch, 4, "sum", coverage=0.4)[0].tolist() == [0]
    assert core_set(per_patch, 4, "sum", coverage=0.41)[0].tolist() == [0, 1]
    assert core_set(per_patch, 4, "sum", coverage=0.9)[0].tolist() == [0, 1, 2]
    assert core_set(per_patch, 2, "sum", coverage=0.9)[0].tolist() == [0, 1]  # tau caps it
    assert core_set(per_patch, 5, "sum", coverage=1.0)[0].tolist() == [0, 1, 2, 3]  # the 0 adds nothing
    kept = core_set(per_patch, 4, "sum", coverage=0.8)[0]
    coverage = target_coverage("up", 0, "low", per_patch, kept, per_patch.sum(1))
    assert coverage.core_share >= 0.8 and len(kept) == 3


def test_the_option_is_part_of_a_circuits_identity_only_when_given() -> None:
    assert "tau_coverage" not in BuildConfig("resnet18").circuit_params()
    assert BuildConfig("resnet18", tau_coverage=0.8).circuit_params()["tau_coverage"] == 0.8
    with pytest.raises(ValueError, match="tau_coverage"):
        BuildConfig("resnet18", tau_coverage=1.5)


def test_stability_round_trips_through_the_file() -> None:
    circuit = hand_circuit()
    circuit.stability = Stability(100, 0.9, 0, core=[("L:0", "A:1", 1.0), ("L:0", "A:2", 0.43)],
                                  edges=[("L:0/0", "A:1", 0.4, 0.6)],
                                  semantic_groupings=[("L:0", 2, 0.41, float("nan"))],
                                  neuron_groupings=[("A", 1, float("nan"), 1.0)],
                                  semantic_groups=[("L:0/0", 0.9)], neuron_groups=[("A/g0", 1.0)])
    data = json.loads(json.dumps(circuit_to_dict(circuit), allow_nan=False))
    assert data["stability"]["semantic_groupings"] == [["L:0", 2, 0.41, None]]
    back = circuit_from_dict(data).stability
    assert back is not None and back.core == circuit.stability.core and back.edges == circuit.stability.edges
    assert back.neuron_groups == [("A/g0", 1.0)] and math.isnan(back.semantic_groupings[0][3])
    circuit.stability = None
    assert "stability" not in circuit_to_dict(circuit)
