"""A real circuit from the pretrained EfficientNet-Lite0 on real images: structure and meaning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neurflow.engine.builder import CircuitBuilder, build_circuits
from neurflow.engine.config import BuildConfig
from neurflow.engine.models import ModelError, load_model
from neurflow.engine.patches import DataError, ImageFile, PatchSet, list_images, load_views, predict_views
from neurflow.engine.segments import channel_hooks
from neurflow.format import load_circuit
from tests.circuit_fixtures import SMALL_IMAGES, small_config


def test_circuit_structure(real_circuit_dirs: list[Path]) -> None:
    circuit = load_circuit(real_circuit_dirs[0])
    cfg = small_config()
    assert circuit.target.name == "Samoyed" and circuit.layers == cfg.layers
    assert [n.key for n in circuit.neurons["_fc"]] == ["_fc:258"]
    assert 1 <= len(circuit.neurons["_blocks.15"]) <= cfg.tau
    assert len(circuit.neurons["_blocks.14"]) <= cfg.tau * len(circuit.neurons["_blocks.15"])
    for layer, neurons in circuit.neurons.items():
        for neuron in neurons:
            assert len(neuron.concept) == cfg.k
            assert neuron.concept_activations == sorted(neuron.concept_activations, reverse=True)
            assert neuron.max_activation == pytest.approx(neuron.concept_activations[0])
            assert layer == "_fc" or neuron.parents
    # every core neuron of a layer is among the top-tau of some target above, and every edge ends on one
    core = {n.key for ns in circuit.neurons.values() for n in ns}
    assert all(e.lower in core and e.upper in core for e in circuit.edges)
    for upper in [n.key for n in circuit.neurons["_blocks.15"]]:
        assert len({e.lower for e in circuit.edges_from(upper)}) <= cfg.tau
    # semantic groups partition each concept; neuron groups partition each layer's semantic groups
    for layer, neurons in circuit.neurons.items():
        for neuron in neurons:
            parts = [g.patches for g in circuit.semantic_groups if g.neuron == neuron.key]
            assert sorted(p for part in parts for p in part) == sorted(neuron.concept)
            assert 1 <= len(parts) <= cfg.max_semantic_groups
        layer_groups = [sg for g in circuit.groups_of_layer(layer) for sg in g.semantic_groups]
        assert sorted(layer_groups) == sorted(g.key for g in circuit.semantic_groups if g.layer == layer)
    assert len(circuit.groups_of_layer("_fc")) == 1
    # group edge weights are sums of member edge weights
    edge = circuit.group_edges[0]
    upper = next(g for g in circuit.neuron_groups if g.id == edge.upper)
    lower = next(g for g in circuit.neuron_groups if g.id == edge.lower)
    expected = sum(e.weight for e in circuit.edges if e.upper_group in upper.semantic_groups and e.lower in lower.neurons)
    assert edge.weight == pytest.approx(expected)


def test_zeroing_core_neurons_lowers_the_class_logit_more_than_random_neurons(real_circuit_dirs: list[Path]) -> None:
    circuit = load_circuit(real_circuit_dirs[0])
    loaded = load_model("efficientnet-lite0", device="cpu")
    views, _ = load_views([ImageFile(Path(r.path), r.label) for r in circuit.images], loaded.preprocessing)
    base = predict_views(loaded, views)[:, circuit.target.index]
    rng = np.random.default_rng(0)
    for layer in ("_blocks.15", "_blocks.14"):
        core = [n.channel for n in circuit.neurons[layer]]
        width = len(circuit.neurons[layer][0].concept) and int(loaded.module.get_submodule(layer)._bn2.num_features)
        with channel_hooks(loaded.module, {layer: core}):
            core_drop = float((base - predict_views(loaded, views)[:, circuit.target.index]).mean())
        random_drops = []
        for _ in range(8):
            others = rng.choice(np.setdiff1d(np.arange(width), core), size=len(core), replace=False)
            with channel_hooks(loaded.module, {layer: others.tolist()}):
                random_drops.append(float((base - predict_views(loaded, views)[:, circuit.target.index]).mean()))
        assert core_drop > np.mean(random_drops), (layer, core_drop, random_drops)
        assert core_drop > 0


def test_unknown_class_fails_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="Closest: Samoyed"):
        build_circuits(small_config(), ["Samoyd"], SMALL_IMAGES, tmp_path, echo=lambda _: None)
    assert not any(tmp_path.iterdir())


def test_class_without_images_names_what_the_model_predicts(tmp_path: Path) -> None:
    messages: list[str] = []
    with pytest.raises(DataError, match="no circuit for tabby"):
        build_circuits(small_config(max_images=1), ["tabby", "Samoyed"], SMALL_IMAGES / "n02111889", tmp_path,
                       echo=messages.append, progress=False)
    assert any("no image is predicted as 'tabby'" in m and "Samoyed" in m for m in messages)
    assert (tmp_path / "0258-samoyed" / "circuit.json").exists()  # the other class is still built


def test_folder_labels_as_the_class_images(tmp_path: Path) -> None:
    folders = build_circuits(small_config(label_source="folder", max_images=2, layers=["_fc", "_blocks.15"]),
                             ["beagle"], SMALL_IMAGES, tmp_path, echo=lambda _: None, progress=False)
    circuit = load_circuit(folders[0])
    assert all(image.label == "n02088364" for image in circuit.images)


def test_runs_on_the_cpu_when_asked() -> None:
    assert load_model("resnet18", random_weights=True, device="cpu").device == torch.device("cpu")


def test_kept_lower_maps_give_the_same_attributions_as_recomputing_them() -> None:
    """The maps kept from the recording pass are the prefix outputs: no budget and a budget agree."""
    layers = ["fc", "layer4.1", "layer4.0"]
    torch.manual_seed(0)
    loaded = load_model("resnet18", random_weights=True, device="cpu", layers=layers)
    views, _ = load_views(list_images(SMALL_IMAGES)[:1], loaded.preprocessing)
    patches = PatchSet(views, loaded.preprocessing)
    concepts = {3: np.array([0, 5, 9]), 7: np.array([5, 9, 40])}
    results = []
    for budget in (0, 512):
        builder = CircuitBuilder(loaded, BuildConfig("resnet18", layers=layers, steps=4, map_cache_mb=budget,
                                                     ig_batch_size=5), progress=False)
        builder.record(patches)
        assert list(builder.maps) == ([] if budget == 0 else ["layer4.1", "layer4.0"])
        results.append(builder.attribute(patches, "layer4.1", "layer4.0", concepts))
    for target in concepts:
        np.testing.assert_allclose(results[0][target], results[1][target], rtol=1e-5, atol=1e-6)
