"""Metric M (by hand and on the real model), probe neurons, the debug picture, and false positives."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest

from neurflow.circuit import Circuit, ClassInfo, CoreNeuron, ModelInfo, NeuronGroup, SemanticGroup
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import DataError, ImageFile, PatchSet, list_images, load_views
from neurflow.engine.segments import record_activations
from neurflow.experiments.debugging import (
    EPSILON,
    debug_image,
    draw_debug,
    false_positives,
    group_channels,
    group_probes,
    metric_m,
)
from neurflow.format import load_circuit, load_vectors
from tests.experiments.support import BEAGLE, SAMOYED


def test_metric_m_is_the_geometric_mean_of_clamped_ratios() -> None:
    acts = np.array([[2.0, 8.0], [-1.0, 4.0], [4.0, 8.0], [8.0, 16.0]])
    maxima = np.array([4.0, 8.0])
    got = metric_m(acts, maxima)
    assert got[0] == pytest.approx(math.sqrt(0.5 * 1.0))
    assert got[1] == pytest.approx(math.sqrt(EPSILON * 0.5))  # a negative activation is clamped at eps
    assert got[2] == pytest.approx(1.0)
    assert got[3] == pytest.approx(2.0)  # above the patch set's maximum: not capped
    assert metric_m(np.array([[0.0]]), np.array([1.0]), eps=0.01)[0] == pytest.approx(0.01)
    assert np.isnan(metric_m(np.zeros((3, 0)), np.zeros(0))).all()
    # |a^max|: the absolute value of the maximum divides (Section 3.2's |.|).
    assert metric_m(np.array([[1.0, 4.0], [-1.0, 4.0]]), np.array([-2.0, 4.0])) == pytest.approx(
        [math.sqrt(0.5 * 1.0), math.sqrt(EPSILON * 1.0)])
    with pytest.raises(ValueError, match="non-zero"):
        metric_m(acts, np.array([4.0, 0.0]))
    with pytest.raises(ValueError, match="do not match"):
        metric_m(acts, np.array([1.0]))


def _hand_circuit() -> tuple[Circuit, dict[str, np.ndarray]]:
    """One group of 7 neurons in layer L (+ the logit group); semantic-group vectors on a line."""
    layer = "L"
    neurons = {"fc": [CoreNeuron("fc", 0, [0], [1.0], 1.0)]}
    neurons[layer] = [CoreNeuron(layer, c, [0], [1.0], float(c + 1) if c != 6 else -1.0) for c in range(7)]
    sgs = [SemanticGroup("fc", 0, 0, [0], [1.0])]
    positions = {0: [0.0], 1: [1.0], 2: [-1.5], 3: [3.0], 4: [-4.0, 4.5], 5: [10.0], 6: [0.1]}
    rep = []
    for c, xs in positions.items():
        for i, x in enumerate(xs):
            sgs.append(SemanticGroup(layer, c, i, [0], [1.0]))
            rep.append([x, 0.0])
    keys = [g.key for g in sgs if g.layer == layer]
    group = NeuronGroup("L/g0", layer, keys, [f"{layer}:{c}" for c in range(7)], [0])
    logit = NeuronGroup("fc/g0", "fc", ["fc:0/0"], ["fc:0"], [0])
    circuit = Circuit(ModelInfo("m", "w", 224, 1), ClassInfo(0, "zero"), ["fc", layer], {}, [], [], neurons, sgs,
                      [], [logit, group], [])
    vectors = {"sg/L": np.array(rep, dtype=np.float32), "sgkeys/L": np.array(keys),
               "sg/fc": np.zeros((1, 1), dtype=np.float32), "sgkeys/fc": np.array(["fc:0/0"])}
    return circuit, vectors


def test_probe_neurons_are_the_members_nearest_the_group_centre() -> None:
    circuit, vectors = _hand_circuit()
    probes = {p.group_id: p for p in group_probes(circuit, vectors)}
    probe = probes["L/g0"]
    # centre = mean of the 8 semantic-group vectors = (0 + 1 - 1.5 + 3 - 4 + 4.5 + 10 + 0.1) / 8 = 1.6375;
    # neuron 4 enters through its semantic group at 4.5 (distance 2.8625, not 5.6375); neuron 6 has no
    # positive maximum.
    assert probe.skipped == [6]
    assert probe.channels == [1, 3, 0, 4, 2]
    assert probe.distances == pytest.approx([0.6375, 1.3625, 1.6375, 2.8625, 3.1375])
    assert probe.semantic_groups == ["L:1/0", "L:3/0", "L:0/0", "L:4/1", "L:2/0"]
    assert probe.max_activation == [2.0, 4.0, 1.0, 5.0, 3.0]
    assert probe.members == 7
    assert probes["fc/g0"].channels == [0]
    assert group_channels(circuit, ["L/g0", "fc/g0"]) == {"L": list(range(7)), "fc": [0]}
    assert [p.channels for p in group_probes(circuit, vectors, count=2) if p.group_id == "L/g0"] == [[1, 3]]


def _plane_circuit() -> tuple[Circuit, dict[str, np.ndarray]]:
    """One group of 8 neurons whose semantic-group vectors lie in a plane around the origin (their mean)."""
    layer = "L"
    vectors = {0: [(0, 1), (1, 0)], 1: [(0, -3)], 2: [(-2, 0)], 3: [(3, 4)], 4: [(-2, -2)], 5: [(0, 0.5)],
               6: [(0, -0.5)], 7: [(0, 6), (0, -6)]}
    maxima = {0: 1.0, 1: 2.0, 2: -1.0, 3: 4.0, 4: 5.0, 5: 0.0, 6: 7.0, 7: 8.0}
    neurons = {"fc": [CoreNeuron("fc", 0, [0], [1.0], 1.0)],
               layer: [CoreNeuron(layer, c, [0], [1.0], maxima[c]) for c in vectors]}
    sgs = [SemanticGroup(layer, c, i, [0], [1.0]) for c, points in vectors.items() for i in range(len(points))]
    rep = np.array([p for points in vectors.values() for p in points], dtype=np.float32)
    assert np.allclose(rep.mean(0), 0.0)
    keys = [g.key for g in sgs]
    group = NeuronGroup("L/g0", layer, keys, [f"{layer}:{c}" for c in vectors], [0])
    logit = NeuronGroup("fc/g0", "fc", ["fc:0/0"], ["fc:0"], [0])
    circuit = Circuit(ModelInfo("m", "w", 224, 1), ClassInfo(0, "zero"), ["fc", layer], {}, [], [], neurons,
                      [SemanticGroup("fc", 0, 0, [0], [1.0]), *sgs], [], [logit, group], [])
    return circuit, {"sg/L": rep, "sgkeys/L": np.array(keys), "sg/fc": np.zeros((1, 1), dtype=np.float32),
                     "sgkeys/fc": np.array(["fc:0/0"])}


def test_probe_neurons_are_represented_per_semantic_group_and_counted_once() -> None:
    circuit, vectors = _plane_circuit()
    probe = next(p for p in group_probes(circuit, vectors) if p.group_id == "L/g0")
    # Distances to the centre (0, 0): 5 and 6 at 0.5 (5 is dead: maximum 0), 0 at 1 through both of its
    # semantic groups (it counts once), 2 at 2 (negative maximum), 4 at 2.83, 1 at 3, 3 at 5, 7 at 6 through
    # both of its groups. The mean of neuron 7's groups is the centre itself: a neuron is not its mean.
    assert probe.skipped == [2, 5]
    assert probe.channels == [6, 0, 4, 1, 3]
    assert probe.distances == pytest.approx([0.5, 1.0, math.sqrt(8), 3.0, 5.0])
    assert probe.semantic_groups == ["L:6/0", "L:0/0", "L:4/0", "L:1/0", "L:3/0"]
    assert probe.max_activation == [7.0, 1.0, 5.0, 2.0, 4.0]
    assert probe.members == 8


@pytest.fixture(scope="module")
def samoyed(real_circuit_dirs: list[Path]) -> tuple[Circuit, dict[str, np.ndarray]]:
    folder = next(f for f in real_circuit_dirs if "samoyed" in f.name)
    return load_circuit(folder), load_vectors(folder)


def test_debug_image_scores_every_group_on_the_59_crops(pretrained: LoadedModel, samoyed, small_images: Path,
                                                        tmp_path: Path) -> None:
    circuit, vectors = samoyed
    file = next(f for f in list_images(small_images) if f.label == SAMOYED)
    views, _ = load_views([file], pretrained.preprocessing)
    probes = group_probes(circuit, vectors)
    low = circuit.groups_of_layer(circuit.layers[-1])[0].id  # a group with its own, tiny threshold
    result = debug_image(pretrained, circuit, views[0], probes, threshold=0.5, thresholds={low: 1e-9})
    assert len(result.boxes) == 59
    assert {g.group_id for g in result.groups} == {g.id for g in circuit.neuron_groups}
    scores = [g.score for g in result.groups]
    assert scores == sorted(scores, reverse=True)
    assert result.predicted == "Samoyed" and 0.5 < result.class_prob <= 1.0
    # Recompute one group's M on its best crop independently.
    patches = PatchSet(views, pretrained.preprocessing)
    best = next(g for g in result.groups if g.layer != circuit.layers[0])
    probe = next(p for p in probes if p.group_id == best.group_id)
    acts = record_activations(pretrained.module, patches.inputs([best.best_crop]), [best.layer])[best.layer][0]
    ratios = [max(float(acts[c]) / m, EPSILON) for c, m in zip(probe.channels, probe.max_activation, strict=True)]
    assert best.score == pytest.approx(float(np.exp(np.mean(np.log(ratios)))), rel=1e-4)
    # Each group's crops are compared with its own threshold.
    for group in result.groups:
        assert group.threshold == (1e-9 if group.group_id == low else 0.5)
        assert group.crops_above == [i for i, v in enumerate(group.crop_scores) if v >= group.threshold]
    assert len(next(g for g in result.groups if g.group_id == low).crops_above) == 59  # M >= eps > 1e-9
    assert low in {g.group_id for g in result.high()}
    with pytest.raises(DataError, match="_blocks.99/g0"):
        debug_image(pretrained, circuit, views[0], probes, thresholds={"_blocks.99/g0": 0.5})
    png = draw_debug(views[0], result, tmp_path / "debug.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert result.to_dict()["groups"][0].keys() >= {"group_id", "score", "crops_above"}


def test_false_positives_are_found_and_checked_by_masking(pretrained: LoadedModel, samoyed, small_images: Path,
                                                          tmp_path: Path) -> None:
    circuit, vectors = samoyed
    # A labelled folder in which a Samoyed photo sits under the beagle label: predicted Samoyed, labelled
    # otherwise. One correctly labelled Samoyed and one real beagle complete it.
    samoyeds = [f for f in list_images(small_images) if f.label == SAMOYED]
    beagle = next(f for f in list_images(small_images) if f.label == BEAGLE)
    for label, files in ((BEAGLE, samoyeds[:1] + [beagle]), (SAMOYED, samoyeds[2:3])):
        (tmp_path / label).mkdir()
        for f in files:
            os.symlink(f.path, tmp_path / label / f.path.name)
    views, _ = load_views(list_images(tmp_path), pretrained.preprocessing)
    report = false_positives(pretrained, circuit, vectors, views, threshold=0.6, draws=2)
    assert report.images == 3 and report.labelled_as_class == 1
    assert report.predicted_as_class >= 2
    found = {Path(fp.debug.path).name for fp in report.false_positives}
    assert found == {samoyeds[0].path.name}
    for fp in report.false_positives:
        assert fp.debug.label == BEAGLE
        assert fp.masked_groups and all(not g.startswith(circuit.layers[0]) for g in fp.masked_groups)
        high = {g.group_id for g in fp.debug.groups if g.score >= 0.6 and g.layer != circuit.layers[0]}
        assert set(fp.masked_groups) == high if fp.above_threshold else len(fp.masked_groups) == 1
        # The groups carry the prediction: masking them lowers the class probability.
        assert fp.prob_after < fp.prob_before
        assert fp.masked_neurons == sum(len(c) for c in group_channels(circuit, fp.masked_groups).values())
    unlabelled = [type(v)(ImageFile(v.file.path, None), v.sha256, v.width, v.height, v.view, v.scale, v.offset)
                  for v in views]
    with pytest.raises(DataError, match="labelled"):
        false_positives(pretrained, circuit, vectors, unlabelled)
