"""SIMILAR_TO's values of two circuits (neurflow.graph.similarity.pair_values) against hand-computed ones."""

from __future__ import annotations

import pytest

from neurflow.graph.circuit_vectors import CoreVector
from neurflow.graph.similarity import pair_values


def test_pair_values_by_hand() -> None:
    # layer 1: channels 3 and 4; layer 2: channel 3 (the same channel number in another layer is another neuron)
    a = CoreVector.of([1, 1, 2], [3, 4, 3], [0.5, 0.5, 1.0], [1.0, 1.0, 2.0])
    b = CoreVector.of([2, 1], [3, 3], [0.5, 1.0], [1.0, 3.0])  # order of the lists does not matter
    values = pair_values(a, b, 3)
    # shared: 1:3 (min 0.5, weights min 1.0) and 2:3 (min 0.5, weights min 1.0)
    assert values["sharedNeurons"] == 2
    assert values["weightedJaccard"] == pytest.approx(1.0 / (2.0 + 1.5 - 1.0))
    assert values["jaccard"] == pytest.approx(2 / 3)
    assert values["incomingWeightJaccard"] == pytest.approx(2.0 / (4.0 + 4.0 - 2.0))
    # layer 1: smaller 0.5 of 1.0 + 1.0 - 0.5; layer 2: smaller 0.5 of 1.0 + 0.5 - 0.5
    assert values["layerWeightedJaccard"] == pytest.approx([0.5 / 1.5, 0.5 / 1.0])


def test_identical_and_disjoint_circuits() -> None:
    a = CoreVector.of([1, 2], [7, 9], [0.25, 0.75], [1.0, 2.0])
    same = pair_values(a, a, 3)
    assert (same["weightedJaccard"], same["jaccard"], same["incomingWeightJaccard"]) == (1.0, 1.0, 1.0)
    assert same["layerWeightedJaccard"] == [1.0, 1.0]
    other = CoreVector.of([1, 2], [8, 10], [0.5, 0.5], [1.0, 1.0])
    none = pair_values(a, other, 3)
    assert none["sharedNeurons"] == 0 and none["weightedJaccard"] == 0.0 and none["layerWeightedJaccard"] == [0, 0]
    empty = CoreVector.of([], [], [], [])
    assert pair_values(empty, empty, 3)["weightedJaccard"] == 0.0  # nothing to compare: 0, not a division by 0
