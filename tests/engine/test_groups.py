"""Semantic groups, edge weights, neuron groups and group edges on hand-made inputs."""

from __future__ import annotations

import numpy as np
import pytest

from neurflow.circuit import Edge, NeuronGroup, SemanticGroup
from neurflow.engine.groups import (
    edge_weights,
    group_edges,
    neuron_group_features,
    neuron_groups,
    semantic_group_features,
    ward_clusters,
)


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


# --------------------------------------------------------------------------- the group spaces


def test_semantic_group_features_by_hand() -> None:
    below = np.arange(24, dtype=np.float64).reshape(6, 4)  # 6 patches x 4 channels of the layer below
    concept, core = np.array([4, 1, 3]), np.array([2, 0])
    paper = semantic_group_features(below, concept, core, "paper")
    np.testing.assert_array_equal(paper, [[16, 17, 18, 19], [4, 5, 6, 7], [12, 13, 14, 15]])
    np.testing.assert_array_equal(semantic_group_features(below, concept, core, "core"), [[18, 16], [6, 4], [14, 12]])
    with pytest.raises(ValueError, match="unknown group space"):
        semantic_group_features(below, concept, core, "all")


def test_neuron_group_features_by_hand() -> None:
    below = np.arange(24, dtype=np.float64).reshape(6, 4)
    # channel 0 is +-1 around 0 (std 1), channel 2 is 10/12 around 11 (std 1): their z-scores are easy
    layer = np.array([[1.0, 9.0, 10.0], [-1.0, 9.0, 10.0], [1.0, 9.0, 12.0], [-1.0, 9.0, 12.0]])
    members = [[0, 2], [1]]
    paper = neuron_group_features(below, layer, [2, 0], members, "paper")
    np.testing.assert_allclose(paper, [[4, 5, 6, 7], [4, 5, 6, 7]])  # means of below's rows {0, 2} and {1}
    core = neuron_group_features(below, layer, [2, 0], members, "core")
    np.testing.assert_allclose(core, [[0.0, 1.0], [-1.0, -1.0]], atol=1e-7)
    with pytest.raises(ValueError, match="unknown group space"):
        neuron_group_features(below, layer, [2, 0], members, "all")


def test_the_paper_space_splits_a_concept_on_channels_outside_the_core() -> None:
    """The core channels separate patches {0..5} from {6..11} by 0.1; the other channels separate the even
    from the odd patches by 8, which dominates every distance among all channels. Each space finds its own
    split (the silhouette of the 2-way split beats the 4-way one once the small split is that small)."""
    rng = np.random.default_rng(1)
    patches = np.arange(12)
    core_split = 0.1 * (patches >= 6)
    other_split = 8.0 * (patches % 2)
    below = np.column_stack([core_split, core_split, other_split, other_split, other_split])
    below += 0.003 * rng.standard_normal(below.shape)
    core = np.array([0, 1])
    by_core = ward_clusters(semantic_group_features(below, patches, core, "core"), 5)
    by_paper = ward_clusters(semantic_group_features(below, patches, core, "paper"), 5)
    assert list(by_core) == [0] * 6 + [1] * 6
    assert list(by_paper) == [0, 1] * 6
