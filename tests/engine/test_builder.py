"""A real circuit from the pretrained EfficientNet-Lite0 on real images: structure and meaning."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from neurflow.analysis import layer_coverage
from neurflow.circuit import Circuit
from neurflow.engine import groups as grouping
from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.config import BuildConfig, group_space_of
from neurflow.engine.models import load_model
from neurflow.engine.patches import DataError, ImageFile, PatchSet, list_images, load_views, predict_views
from neurflow.engine.plans import build_circuits
from neurflow.engine.recording import Recording
from neurflow.engine.segments import channel_hooks
from neurflow.format import load_circuit
from neurflow.registry import ModelError
from tests.circuit_fixtures import SMALL_IMAGES, small_config
from tests.engine.option_parsing import parsing_command


def test_circuit_structure(real_circuit_dirs: list[Path]) -> None:
    circuit = load_circuit(real_circuit_dirs[0])
    cfg = small_config()
    assert circuit.target.name == "Samoyed" and circuit.layers == cfg.layers
    assert circuit.params["group_space"] == "paper"  # the default
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


def test_every_target_records_what_its_core_set_carries(real_circuit_dirs: list[Path]) -> None:
    """Coverage (format 1.2) of every core neuron above the bottom layer, consistent with the edges written
    beside it: the core set's T(a, s) are the sums of a's edge scores over its semantic groups."""
    circuit = load_circuit(real_circuit_dirs[0])
    targets = [n.key for layer in circuit.layers[:-1] for n in circuit.neurons[layer]]
    assert [c.key for c in circuit.coverage] == targets
    for record in circuit.coverage:
        carried: dict[str, float] = {}
        for e in circuit.edges_from(record.key):
            carried[e.lower] = carried.get(e.lower, 0.0) + e.score
        assert 0 < record.core_share <= 1 and record.attribution > 0
        assert record.core_share * record.attribution == pytest.approx(sum(abs(t) for t in carried.values()),
                                                                      rel=1e-9)
        assert record.signed_share * record.output_change == pytest.approx(sum(carried.values()), rel=1e-9)
        # a fixed N records its completeness gap too: small for the pretrained model at the test's N
        assert 0 <= record.completeness_gap < 0.5
    rows = layer_coverage(circuit)
    assert rows[0].reach == pytest.approx(circuit.coverage[0].core_share)
    assert all(0 < low.reach <= high.reach for high, low in zip(rows, rows[1:], strict=False))


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
    assert len(list(tmp_path.glob("0258-samoyed.efficientnet-lite0.*/circuit.json"))) == 1  # the other class is still built


def test_circuits_of_other_settings_do_not_replace_each_other_in_one_out(tmp_path: Path) -> None:
    config = small_config(max_images=1, layers=["_fc", "_blocks.15"])
    first = build_circuits(config, ["Samoyed"], SMALL_IMAGES / "n02111889", tmp_path, echo=lambda _: None,
                           progress=False)
    second = build_circuits(small_config(max_images=1, layers=["_fc", "_blocks.15"], tau=3), ["Samoyed"],
                            SMALL_IMAGES / "n02111889", tmp_path, echo=lambda _: None, progress=False)
    assert first != second
    circuits = [load_circuit(f) for f in (*first, *second)]
    assert circuits[0].id != circuits[1].id and circuits[1].params["tau"] == 3
    assert [f.name for f in (*first, *second)] == [f"0258-samoyed.efficientnet-lite0.{c.id}" for c in circuits]


def test_folder_labels_as_the_class_images(tmp_path: Path) -> None:
    folders = build_circuits(small_config(label_source="folder", max_images=2, layers=["_fc", "_blocks.15"]),
                             ["beagle"], SMALL_IMAGES, tmp_path, echo=lambda _: None, progress=False)
    circuit = load_circuit(folders[0])
    assert all(image.label == "n02088364" for image in circuit.images)


def test_runs_on_the_cpu_when_asked() -> None:
    assert load_model("resnet18", random_weights=True, device="cpu").device == torch.device("cpu")


@pytest.mark.slow  # builds through CircuitBuilder on ResNet18: ~3 s here
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
        recording = builder.record(patches)
        assert list(recording.maps) == ([] if budget == 0 else ["layer4.1", "layer4.0"])
        results.append(builder.step(recording, "layer4.1", "layer4.0", concepts).per_patch)
    for target in concepts:
        np.testing.assert_allclose(results[0][target], results[1][target], rtol=1e-5, atol=1e-6)


def test_default_circuits_group_on_every_channel_of_the_layer_below(real_circuit_dirs: list[Path]) -> None:
    """EfficientNet-Lite0: _blocks.14 has 192 output channels, _blocks.15 has 320. Neuron groups of a layer are
    clustered on each semantic group's mean over all channels of the layer below (the bottom layer: its own)."""
    with np.load(real_circuit_dirs[0] / "vectors.npz") as vectors:
        widths = {layer: vectors[f"sg/{layer}"].shape[1] for layer in ("_fc", "_blocks.15", "_blocks.14")}
    assert widths == {"_fc": 320, "_blocks.15": 192, "_blocks.14": 192}


# --------------------------------------------------------------------------- the group spaces in the builder

SPACE_LAYERS = ["fc", "layer4.0", "layer3.1"]  # ResNet18: layer4.0 has 512 channels, layer3.1 has 256
WIDTH = {"fc": 1000, "layer4.0": 512, "layer3.1": 256}


@pytest.fixture(scope="module")
def tiny_resnet() -> tuple[Any, list[Any], torch.Tensor]:
    torch.manual_seed(0)
    loaded = load_model("resnet18", random_weights=True, device="cpu", layers=SPACE_LAYERS)
    views, _ = load_views(list_images(SMALL_IMAGES)[:1], loaded.preprocessing)
    return loaded, views, predict_views(loaded, views)


def build_with_spies(tiny_resnet: tuple[Any, list[Any], torch.Tensor], space: str,
                     monkeypatch: pytest.MonkeyPatch) -> tuple[Circuit, dict[str, np.ndarray], list[tuple]]:
    """Builds a tiny circuit and records every clustering input the builder asks for."""
    loaded, views, logits = tiny_resnet
    calls: list[tuple] = []
    recorded: dict[str, np.ndarray] = {}
    semantic, neuron, record = grouping.semantic_group_features, grouping.neuron_group_features, CircuitBuilder.record

    def spy_semantic(below: np.ndarray, concept: np.ndarray, core: np.ndarray, space: str) -> np.ndarray:
        features = semantic(below, concept, core, space)
        calls.append(("semantic", below, len(core), space, features.shape))
        return features

    def spy_neuron(below: np.ndarray, layer_acts: np.ndarray, core: Any, members: Any, space: str) -> np.ndarray:
        features = neuron(below, layer_acts, core, members, space)
        calls.append(("neuron", below, layer_acts, len(core), space, features.shape))
        return features

    def spy_record(self: CircuitBuilder, patches: PatchSet) -> Recording:
        recording = record(self, patches)
        recorded.update(recording.means)
        return recording

    monkeypatch.setattr(grouping, "semantic_group_features", spy_semantic)
    monkeypatch.setattr(grouping, "neuron_group_features", spy_neuron)
    monkeypatch.setattr(CircuitBuilder, "record", spy_record)
    # Without the bootstrap, which clusters again on resampled patches: the spies see the build's own calls.
    config = BuildConfig("resnet18", layers=SPACE_LAYERS, tau=3, k=6, steps=2, group_space=space, device="cpu",
                         stability_resamples=0)
    builder = CircuitBuilder(loaded, config, progress=False)
    circuit = builder.build(loaded.resolve_class("Samoyed"), views, logits).circuit
    return circuit, recorded, calls


@pytest.mark.slow  # builds two ResNet18 circuits through CircuitBuilder: ~3 s here
def test_the_builder_clusters_in_the_configured_space(tiny_resnet: tuple[Any, list[Any], torch.Tensor],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    circuits = {}
    for space in ("paper", "core"):
        circuit, acts, calls = build_with_spies(tiny_resnet, space, monkeypatch)
        circuits[space] = circuit
        semantic = [c for c in calls if c[0] == "semantic"]
        neuron = [c for c in calls if c[0] == "neuron"]
        # one split per core neuron of every layer, one neuron-group clustering per layer
        assert len(semantic) == sum(len(n) for n in circuit.neurons.values())
        assert len(neuron) == len(SPACE_LAYERS)
        assert {c[3] for c in semantic} | {c[4] for c in neuron} == {space}
        # concepts of fc and layer4.0 are split in the layer below; the bottom layer's in its own channels
        below_of = {"fc": "layer4.0", "layer4.0": "layer3.1", "layer3.1": "layer3.1"}
        targets = [layer for layer in SPACE_LAYERS for _ in circuit.neurons[layer]]
        for (_, below, core, _, shape), layer in zip(semantic, targets, strict=True):
            assert below is acts[below_of[layer]]
            assert shape == (6, WIDTH[below_of[layer]] if space == "paper" else core)
        for (_, below, layer_acts, core, _, shape), layer in zip(neuron, SPACE_LAYERS, strict=True):
            groups = len([g for g in circuit.semantic_groups if g.layer == layer])
            assert below is acts[below_of[layer]] and layer_acts is acts[layer]
            assert core == len(circuit.neurons[layer])
            assert shape == (groups, WIDTH[below_of[layer]] if space == "paper" else core)
    paper, core = circuits["paper"], circuits["core"]
    assert group_space_of(paper.params) == "paper" and "group_space" not in core.params
    assert group_space_of(core.params) == "core" and paper.id != core.id
    # the space changes how concepts are split, never which neurons are core nor their total attribution
    assert {k: [n.key for n in v] for k, v in paper.neurons.items()} == {
        k: [n.key for n in v] for k, v in core.neurons.items()}
    paper_totals, core_totals = attribution_totals(paper), attribution_totals(core)
    assert paper_totals.keys() == core_totals.keys()
    for pair, total in paper_totals.items():
        assert total == pytest.approx(core_totals[pair], rel=1e-6, abs=1e-9)


def attribution_totals(circuit: Circuit) -> dict[tuple[str, str], float]:
    """T(a, s) over all of V_a: the sum of the edge scores T(a, s, V_a,j) over a's semantic groups."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for edge in circuit.edges:
        totals[edge.upper, edge.lower] += edge.score
    return dict(totals)


def test_group_space_setting_and_option() -> None:
    assert "group_space" not in BuildConfig("m", group_space="core").circuit_params()
    assert BuildConfig("m").circuit_params()["group_space"] == "paper"
    assert group_space_of({"tau": 16}) == "core"  # circuits from before the setting
    with pytest.raises(ValueError, match="group space must be one of"):
        BuildConfig("m", group_space="all")

    command, seen = parsing_command()
    runner = CliRunner()
    assert runner.invoke(command, ["-m", "resnet18"]).exit_code == 0
    assert runner.invoke(command, ["-m", "resnet18", "--group-space", "core"]).exit_code == 0
    assert [c.group_space for c in seen] == ["paper", "core"]
    result = runner.invoke(command, ["-m", "resnet18", "--group-space", "all"])
    assert result.exit_code == 2 and "'paper', 'core'" in result.output


@pytest.mark.slow  # builds two small EfficientNet-Lite0 circuits: ~10 s here
def test_a_fixed_n_too_small_is_reported_with_its_completeness_gap(tmp_path: Path) -> None:
    """With a fixed N nothing checks the integration while it runs: the build says when its recorded completeness
    gap is beyond what --steps auto accepts (and --steps auto, which checks it, says nothing)."""
    def build(steps: int | str) -> tuple[list[str], Circuit]:
        lines: list[str] = []
        config = small_config(max_images=1, layers=["_fc", "_blocks.15"], tau=4, steps=steps,
                              stability_resamples=0)
        [folder] = build_circuits(config, ["Samoyed"], SMALL_IMAGES, tmp_path / str(steps), echo=lines.append,
                                  progress=False)
        return [line for line in lines if "warning" in line], load_circuit(folder)

    warnings, circuit = build(1)
    gap = max(c.completeness_gap for c in circuit.coverage)
    assert gap > 0.05 and warnings == [
        f"  warning: with N = 1 the integration of _fc is off by up to {gap:.0%} of f(h) - f(0) (completeness gap; "
        "5% is accepted by --steps auto): use more steps or --steps auto"]
    warnings, circuit = build("auto")
    assert warnings == []
