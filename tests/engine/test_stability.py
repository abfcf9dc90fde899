"""The bootstrap over images (engine/stability.py) on constructed data whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from neurflow.engine.groups import ward_clusters, ward_clusters_scored
from neurflow.engine.ranking import core_set
from neurflow.engine.stability import (
    Bootstrap,
    adjusted_rand,
    cluster_jaccard,
    core_frequency,
    edge_weight_intervals,
    grouping_stability,
    resample_counts,
)

RNG = np.random.default_rng(0)


def test_resamples_draw_every_image_count_with_replacement() -> None:
    counts = resample_counts(10, 2000, np.random.default_rng(1))
    assert counts.shape == (2000, 10) and (counts.sum(1) == 10).all()
    # each image is left out of a resample with probability (1 - 1/10)^10
    assert (counts == 0).mean() == pytest.approx(0.9**10, abs=0.01)


def test_a_planted_stable_core_set_is_chosen_in_every_resample_and_a_one_image_neuron_is_not() -> None:
    images, per_image = 8, 5
    patch_images = np.repeat(np.arange(images), per_image)
    per_patch = RNG.normal(0, 0.01, (images * per_image, 6))
    per_patch[:, 0] += 1.0                       # neuron 0: strong on every image
    per_patch[:, 1] += 0.5                       # neuron 1: on every image
    per_patch[patch_images == 3, 2] += 10.0      # neuron 2: huge, on image 3 alone
    counts = resample_counts(images, 400, np.random.default_rng(2))
    frequency = core_frequency(per_patch, patch_images, counts, lambda rows: core_set(rows, 2, "sum")[0])
    assert frequency[0] == pytest.approx(1.0)
    # neuron 2 enters the top 2 exactly when image 3 is drawn (it then beats neuron 1): 1 - (7/8)^8 of the time
    drawn = (counts[:, 3] > 0).mean()
    assert frequency[2] == pytest.approx(drawn) and drawn == pytest.approx(1 - (7 / 8) ** 8, abs=0.06)
    assert frequency[1] == pytest.approx(1 - drawn)
    assert frequency[3:].max() == 0


def test_edge_weight_intervals_hold_the_weights_and_shrink_when_images_agree() -> None:
    images = 10
    patch_images = np.arange(images)
    labels = np.zeros(images, dtype=np.int64)
    core = np.array([0, 1])
    counts = resample_counts(images, 300, np.random.default_rng(3))
    agreeing = np.tile([3.0, 1.0], (images, 1))      # w = (0.75, 0.25) on every image
    low, high = edge_weight_intervals(agreeing, labels, core, patch_images, counts)
    assert low[0] == pytest.approx([0.75, 0.25]) and high[0] == pytest.approx([0.75, 0.25])
    varying = np.column_stack([np.linspace(1, 5, images), np.ones(images)])
    low, high = edge_weight_intervals(varying, labels, core, patch_images, counts)
    weight = varying.sum(0) / np.abs(varying.sum(0)).sum()
    assert (low[0] < weight).all() and (weight < high[0]).all() and (high[0] - low[0] > 0.01).all()


def test_well_separated_groups_are_stable_and_noise_is_not() -> None:
    images, per_image = 12, 4
    patch_images = np.repeat(np.arange(images), per_image)
    counts = resample_counts(images, 60, np.random.default_rng(4))
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    separated = centres[np.arange(images * per_image) % 3] + RNG.normal(0, 0.1, (images * per_image, 2))
    labels, silhouette = ward_clusters_scored(separated, 5)
    assert labels.max() == 2 and silhouette > 0.9
    found = grouping_stability(separated, labels, patch_images, counts, lambda f: ward_clusters(f, 5))
    assert found.ari == 1.0 and found.clusters.tolist() == [1.0, 1.0, 1.0]
    noise = RNG.normal(0, 1, (images * per_image, 2))
    labels, silhouette = ward_clusters_scored(noise, 5)
    assert silhouette < 0.6
    found = grouping_stability(noise, labels, patch_images, counts, lambda f: ward_clusters(f, 5))
    assert found.ari < 0.8 and np.nanmean(found.clusters) < 0.9


def test_the_bootstrap_records_every_core_pair_edge_and_grouping() -> None:
    patch_images = np.repeat(np.arange(4), 3)
    bootstrap = Bootstrap(patch_images, 4, resamples=20, seed=0, grouping_resamples=5)
    per_patch = np.abs(RNG.normal(1, 0.2, (12, 5)))
    labels = np.array([0, 1] * 6)
    bootstrap.target("up:0", "low", per_patch, np.arange(12), np.array([0, 1]), labels, ["up:0/0", "up:0/1"],
                     lambda rows: core_set(rows, 2, "sum")[0])
    bootstrap.concept_split("up:0", per_patch, labels, 0.5, np.arange(12), lambda f: ward_clusters(f, 3))
    s = bootstrap.stability
    assert (s.resamples, s.level, s.seed) == (20, 0.9, 0)
    assert [(t, n) for t, n, _ in s.core] == [("up:0", "low:0"), ("up:0", "low:1")]
    assert [(g, n) for g, n, _, _ in s.edges] == [("up:0/0", "low:0"), ("up:0/0", "low:1"), ("up:0/1", "low:0"),
                                                  ("up:0/1", "low:1")]
    assert all(lo <= hi for _, _, lo, hi in s.edges)
    neuron, groups, silhouette, ari = s.semantic_groupings[0]
    assert (neuron, groups, silhouette) == ("up:0", 2, 0.5) and -1 <= ari <= 1  # ARI: 1 same, about 0 chance
    assert [key for key, _ in s.semantic_groups] == ["up:0/0", "up:0/1"]
    assert bootstrap.seconds > 0


def test_the_adjusted_rand_index_is_sklearns() -> None:
    from sklearn.metrics import adjusted_rand_score

    for _ in range(50):
        a, b = RNG.integers(0, 4, 30), RNG.integers(0, 3, 30)
        assert adjusted_rand(a, b) == pytest.approx(adjusted_rand_score(a, b), abs=1e-12)
    assert adjusted_rand(np.zeros(5), np.zeros(5)) == 1.0 and adjusted_rand(np.arange(5), np.arange(5) + 3) == 1.0


def test_clusterwise_jaccard_by_hand() -> None:
    labels = np.array([0, 0, 0, 1, 1, 2])
    again = np.array([5, 5, 7, 7, 7, 7])   # cluster 0 loses one member; 1 and 2 merge into one with it
    assert cluster_jaccard(labels, again, 4).tolist()[:3] == pytest.approx([2 / 3, 2 / 4, 1 / 4])
    assert np.isnan(cluster_jaccard(labels, again, 4)[3])
