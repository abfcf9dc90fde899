"""Semantic groups, edge weights, neuron groups and group edges on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from neurflow.circuit import Edge, NeuronGroup, SemanticGroup
from neurflow.engine.groups import edge_weights, group_edges, neuron_groups, ward_clusters


def blobs(centres: list[list[float]], per: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([np.array(c) + 0.01 * rng.standard_normal((per, len(c))) for c in centres])


@pytest.mark.parametrize("count", [2, 3, 4])
def test_ward_finds_well_separated_clusters(count: int) -> None:
    centres = [[10.0 * i, -5.0 * i, float(i % 2)] for i in range(count)]
    labels = ward_clusters(blobs(centres, per=6), max_clusters=5)
    assert len(set(labels)) == count
    # members of one blob share a label, and labels are numbered by first appearance
    assert [labels[i * 6] for i in range(count)] == list(range(count))
    assert all(len(set(labels[i * 6 : (i + 1) * 6])) == 1 for i in range(count))


def test_ward_caps_the_number_and_handles_degenerate_input() -> None:
    features = blobs([[0, 0], [10, 0], [0, 10], [10, 10]], per=3)
    assert len(set(ward_clusters(features, max_clusters=2))) == 2
    assert set(ward_clusters(np.ones((5, 3)), 5)) == {0}
    assert list(ward_clusters(np.zeros((2, 3)), 5)) == [0, 0]
    assert set(ward_clusters(features, max_clusters=1)) == {0}


def test_edge_weights_are_normalised_by_the_sum_of_absolute_scores() -> None:
    scores = np.array([[2.0, -1.0, 1.0], [0.0, 0.0, 0.0], [-3.0, 1.0, 0.0]])
    weights = edge_weights(scores)
    np.testing.assert_allclose(weights[0], [0.5, -0.25, 0.25])
    np.testing.assert_allclose(weights[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(weights[2], [-0.75, 0.25, 0.0])
    np.testing.assert_allclose(np.abs(weights[[0, 2]]).sum(1), 1.0)


def test_neuron_groups_and_group_edges_by_hand() -> None:
    sgs = [SemanticGroup("up", 1, 0, [0, 1], [1.0, 1.0]), SemanticGroup("up", 1, 1, [2], [1.0]),
           SemanticGroup("up", 2, 0, [1, 3], [1.0, 1.0]), SemanticGroup("up", 2, 1, [4], [1.0])]
    vectors = np.array([[0.0, 0.0], [10.0, 10.0], [0.1, 0.0], [10.0, 10.1]])
    groups = neuron_groups("up", sgs, vectors, max_groups=3, prefix="")
    assert [g.semantic_groups for g in groups] == [["up:1/0", "up:2/0"], ["up:1/1", "up:2/1"]]
    assert groups[0].neurons == ["up:1", "up:2"]
    assert groups[0].patches == [0, 1, 3]
    lower = [NeuronGroup("low/g0", "low", ["low:5/0"], ["low:5"], []),
             NeuronGroup("low/g1", "low", ["low:6/0", "low:5/1"], ["low:6", "low:5"], [])]
    edges = [Edge("up:1/0", "up:1", "low:5", 1.0, 0.6), Edge("up:1/0", "up:1", "low:6", -1.0, -0.4),
             Edge("up:2/1", "up:2", "low:6", 1.0, 1.0)]
    got = {(e.upper, e.lower): e.weight for e in group_edges(groups, lower, edges)}
    # low:5 belongs to both lower groups, so its edge counts in both.
    assert got == pytest.approx({("up/g0", "low/g0"): 0.6, ("up/g0", "low/g1"): 0.2, ("up/g1", "low/g1"): 1.0})
