"""SIMILAR_TO's values (neurflow.graph.similarity) against hand-computed ones and a brute force over neuron sets."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from neurflow.graph.circuit_vectors import CircuitVectors, CoreVector, GroupLists
from neurflow.graph.similarity import pair_values, similarity_rows

_NO_GROUPS = GroupLists([], np.array([]), np.array([], dtype=np.int64), np.array([], dtype=np.int64))


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


def _random_core(rng: np.random.Generator) -> tuple[CoreVector, dict[tuple[int, int], tuple[float, float]]]:
    neurons = {(int(rng.integers(1, 4)), int(rng.integers(0, 9))) for _ in range(int(rng.integers(0, 12)))}
    values = {n: (float(rng.random()), float(rng.random() * 3)) for n in sorted(neurons)}
    core = CoreVector.of([n[0] for n in values], [n[1] for n in values], [v[0] for v in values.values()],
                         [v[1] for v in values.values()])
    return core, values


def _brute_force(a: dict[tuple[int, int], tuple[float, float]], b: dict[tuple[int, int], tuple[float, float]],
                 layer_count: int) -> dict[str, Any]:
    def weighted(keys_a: list[tuple[int, int]], keys_b: list[tuple[int, int]], slot: int) -> float:
        common = sum(min(a[n][slot], b[n][slot]) for n in set(keys_a) & set(keys_b))
        whole = sum(a[n][slot] for n in keys_a) + sum(b[n][slot] for n in keys_b) - common
        return common / whole if whole > 0 else 0.0

    shared = set(a) & set(b)
    union = set(a) | set(b)
    return {
        "weightedJaccard": weighted(list(a), list(b), 0),
        "jaccard": len(shared) / len(union) if union else 0.0,
        "incomingWeightJaccard": weighted(list(a), list(b), 1),
        "sharedNeurons": len(shared),
        "layerWeightedJaccard": [weighted([n for n in a if n[0] == p], [n for n in b if n[0] == p], 0)
                                 for p in range(1, layer_count)],
    }


@pytest.mark.parametrize("seed", range(4))
def test_similarity_rows_equal_a_brute_force_per_pair(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mine_core, mine_values = _random_core(rng)
    mine = CircuitVectors("family-a", 0, mine_core, _NO_GROUPS)
    others, values = {}, {}
    for i in range(1, 9):
        core, values[f"c{i}"] = _random_core(rng)
        others[f"c{i}"] = CircuitVectors("family-a" if i % 4 else "family-b", i, core, _NO_GROUPS)
    rows = similarity_rows(mine, 4, others)
    assert [r["other"] for r in rows] == [f"c{i}" for i in range(1, 9) if i % 4]  # only its family, by id
    for row in rows:
        expected = _brute_force(mine_values, values[row["other"]], 4)
        per_layer, expected_per_layer = row["props"].pop("layerWeightedJaccard"), expected.pop("layerWeightedJaccard")
        assert row["props"] == pytest.approx(expected, rel=1e-12, abs=1e-15)
        assert per_layer == pytest.approx(expected_per_layer, rel=1e-12, abs=1e-15)
