"""Masking and fidelity: exact hooks on a hand-made module, and the paper's fidelity claim on the real model."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from neurflow.circuit import ClassInfo
from neurflow.engine.models import LoadedModel, ModelError, Preprocessing, load_model
from neurflow.engine.patches import list_images, load_views, normalise
from neurflow.experiments.masking import (
    MaskedRunner,
    effect_of,
    fidelity_study,
    masking_experiment,
    merge_channels,
    parse_neurons,
    plot_fidelity,
    random_channels,
    summarise_fidelity,
    write_fidelity_csv,
)
from tests.circuit_fixtures import SMALL_IMAGES, small_config

SAMOYED = "n02111889"


class Tiny(nn.Module):
    """conv: 1 -> 3 channels with weights 1, 2, 3; head: the spatial means -> 2 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 1, bias=False)
        self.conv.weight.data = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
        self.mix = nn.Conv2d(3, 3, 1, bias=False)
        self.mix.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.head = nn.Linear(3, 2, bias=False)
        self.head.weight.data = torch.tensor([[1.0, 1.0, 1.0], [1.0, -1.0, 0.0]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.mix(self.conv(x)).mean((2, 3)))


def tiny_loaded() -> LoadedModel:
    module = Tiny().eval()
    return LoadedModel("tiny", module, ["head", "mix", "conv"], Preprocessing(), "test", ["a", "b"],
                       torch.device("cpu"))


def all_hooks(module: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules())


# Input of ones: conv gives channel maps 1, 2, 3; mix is the identity; logits = [sum, c0 - c1].
EXPECTED = [
    ({}, "mask", [6.0, -1.0]),
    ({"conv": [1]}, "mask", [4.0, 1.0]),
    ({"conv": [1]}, "retain", [2.0, -2.0]),
    ({"mix": [0, 2]}, "mask", [2.0, -2.0]),
    ({"mix": [0, 2]}, "retain", [4.0, 1.0]),
    ({"conv": [0], "mix": [2]}, "mask", [2.0, -2.0]),
    ({"conv": [0, 1], "mix": [0, 2]}, "retain", [1.0, 1.0]),
    ({"head": [1]}, "mask", [6.0, 0.0]),
]


@pytest.mark.parametrize("reuse", [True, False])
def test_runner_masks_exact_channels_and_leaves_the_module_untouched(reuse: bool) -> None:
    loaded = tiny_loaded()
    state = {k: v.clone() for k, v in loaded.module.state_dict().items()}
    x = torch.ones(2, 1, 2, 2)
    runner = MaskedRunner(loaded, x, ["mix", "conv"], batch_size=1, reuse=reuse)
    assert runner.reusing is reuse
    assert runner.base == "conv"
    assert runner.widths == {"mix": 3, "conv": 3, "head": 2}
    for channels, mode, expected in EXPECTED:
        got = runner(channels, mode)
        assert got.tolist() == [expected, expected], (channels, mode)
        assert all_hooks(loaded.module) == 0
    assert all(torch.equal(state[k], v) for k, v in loaded.module.state_dict().items())
    assert loaded.module(x).tolist() == [[6.0, -1.0], [6.0, -1.0]]


def test_runner_rejects_bad_channels_and_layers() -> None:
    runner = MaskedRunner(tiny_loaded(), torch.ones(1, 1, 2, 2), ["conv"])
    with pytest.raises(ModelError, match="channels 0..2"):
        runner({"conv": [3]})
    with pytest.raises(ValueError, match="not given to the runner"):
        runner({"mix": [0]})
    with pytest.raises(ValueError, match="mode"):
        runner({"conv": [0]}, "zero")


def test_parse_and_merge_neurons() -> None:
    assert parse_neurons("_blocks.15:3, _blocks.15:17,_blocks.14:5,_blocks.15:3") == {
        "_blocks.15": [3, 17], "_blocks.14": [5]}
    for bad in ("", "_blocks.15", "_blocks.15:x", ":4"):
        with pytest.raises(ModelError):
            parse_neurons(bad)
    assert merge_channels({"a": [3, 1]}, {"a": [2, 3], "b": [0]}) == {"a": [1, 2, 3], "b": [0]}


def test_random_channels_avoid_the_chosen_ones_and_are_seeded() -> None:
    chosen = {"a": [0, 1, 2], "b": [5]}
    widths = {"a": 10, "b": 6}
    draws = [random_channels(chosen, widths, np.random.default_rng(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = np.random.default_rng(0)
    for _ in range(20):
        drawn = random_channels(chosen, widths, rng)
        assert {k: len(v) for k, v in drawn.items()} == {"a": 3, "b": 1}
        assert not set(drawn["a"]) & {0, 1, 2} and drawn["b"] != [5]
        assert len(set(drawn["a"])) == 3


def test_effect_of_hand_computed_logits() -> None:
    before = torch.tensor([[2.0, 0.0, 0.0], [3.0, 1.0, 0.0]])
    after = torch.tensor([[0.0, 2.0, 0.0], [3.0, 1.0, 0.0]])
    effect = effect_of(before, after, 0, ["x", "y", "z"], neurons=4)
    p = torch.softmax(torch.tensor([2.0, 0.0, 0.0]), 0)[0].item()
    q = torch.softmax(torch.tensor([0.0, 2.0, 0.0]), 0)[0].item()
    assert effect.accuracy_before == 1.0 and effect.accuracy_after == 0.5
    assert effect.changed == 1 and effect.changed_to == {"y": 1}
    assert effect.mean_logit_change == pytest.approx(-1.0)
    assert effect.mean_prob_change == pytest.approx((q - p) / 2, abs=1e-6)
    assert effect.relative_accuracy == 0.5


# --------------------------------------------------------------------------- the pretrained model


@pytest.fixture(scope="module")
def pretrained() -> LoadedModel:
    return load_model("efficientnet-lite0", device="cpu")


def test_masking_experiment_on_the_pretrained_model_leaves_it_as_it_was(pretrained: LoadedModel) -> None:
    views, _ = load_views([f for f in list_images(SMALL_IMAGES) if f.label == SAMOYED][:3], pretrained.preprocessing)
    target = pretrained.resolve_class("Samoyed")
    x = normalise(torch.stack([v.view for v in views]), pretrained.preprocessing)
    state = {k: v.clone() for k, v in pretrained.module.state_dict().items()}
    hooks = all_hooks(pretrained.module)
    with torch.no_grad():
        before = pretrained.module(x)
    channels = {"_blocks.15": [3, 17, 101], "_blocks.14": [5]}
    result = masking_experiment(pretrained, target, views, channels, draws=2, seed=1, patch_images=1,
                                top_patches=4)
    with torch.no_grad():
        after = pretrained.module(x)
    assert torch.equal(before, after)
    assert all_hooks(pretrained.module) == hooks
    assert all(torch.equal(state[k], v) for k, v in pretrained.module.state_dict().items())
    assert result.runner_reused
    assert result.effect.images == 3 and result.effect.neurons == 4
    assert result.effect.accuracy_before == float((before.argmax(1) == target.index).float().mean())
    assert len(result.random.per_draw) == 2
    for drawn in result.random.channels:
        assert {k: len(v) for k, v in drawn.items()} == {"_blocks.15": 3, "_blocks.14": 1}
        assert not set(drawn["_blocks.15"]) & {3, 17, 101}
    drops = [i.drop for i in result.images]
    assert drops == sorted(drops, reverse=True)
    assert len(result.patches) == 4 and all(p.path == result.images[0].path for p in result.patches)
    # The masked logits are those of the whole model with the same hooks.
    from neurflow.engine.segments import channel_hooks

    with channel_hooks(pretrained.module, channels), torch.no_grad():
        masked = pretrained.module(x)[:, target.index]
    by_path = {i.path: i.logit_after for i in result.images}
    for view, value in zip(views, masked, strict=True):
        assert by_path[str(view.file.path)] == pytest.approx(float(value), abs=1e-4)


@pytest.fixture(scope="module")
def fidelity_setup(pretrained: LoadedModel, shared_images: Path, tmp_path_factory: pytest.TempPathFactory):
    """A Samoyed circuit (tau=16, reduced k/N) built from 12 real validation images; 15 held-out images."""
    from neurflow.engine.builder import build_circuits
    from neurflow.format import load_circuit

    files = sorted((shared_images / SAMOYED).iterdir())
    build_dir = tmp_path_factory.mktemp("fidelity-images")
    (build_dir / SAMOYED).mkdir()
    for f in files[:12]:
        os.symlink(f, build_dir / SAMOYED / f.name)
    folders = build_circuits(small_config(max_images=6, tau=16, k=8, steps=4), ["Samoyed"], build_dir,
                             tmp_path_factory.mktemp("fidelity-circuit"), echo=lambda _: None, progress=False)
    circuit = load_circuit(folders[0])
    views, _ = load_views([f for f in list_images(shared_images / SAMOYED)][12:27], pretrained.preprocessing)
    return circuit, views


def test_core_neurons_are_faithful_the_papers_central_claim(pretrained: LoadedModel, fidelity_setup, tmp_path: Path) -> None:
    circuit, views = fidelity_setup
    core = {layer: [n.channel for n in circuit.neurons[layer]] for layer in circuit.layers}
    rows = fidelity_study(pretrained, circuit.target, views, core, draws=5, seed=0)
    assert len(rows) == 2 * 2 * 2  # 2 layers below the logit x single/cumulative x mask/retain
    by = {(r.layer, r.scope, r.mode): r for r in rows}
    assert rows[0].base_accuracy >= 0.8
    lower = circuit.layers[1:]
    for layer in lower:
        for scope in ("single", "cumulative"):
            m, r = by[layer, scope, "mask"], by[layer, scope, "retain"]
            assert m.neurons == r.neurons
            # Masking the core neurons hurts more than masking as many random ones ...
            assert m.core_prob < m.random_prob_mean
            # ... and retaining them keeps at least as much as retaining as many random ones.
            assert r.core_accuracy >= r.random_accuracy_mean
        assert by[layer, "single", "mask"].neurons == len(core[layer])
        assert by[layer, "single", "retain"].core_accuracy > by[layer, "single", "retain"].random_accuracy_mean
    # In accuracy, over the layers and both settings (as the paper's Figure 5 reads):
    masks = [by[layer, scope, "mask"] for layer in lower for scope in ("single", "cumulative")]
    retains = [by[layer, scope, "retain"] for layer in lower for scope in ("single", "cumulative")]
    assert np.mean([m.random_accuracy_mean - m.core_accuracy for m in masks]) >= 0.1
    assert np.mean([r.core_accuracy - r.random_accuracy_mean for r in retains]) >= 0.2
    # The cumulative setting at the deepest layer masks every layer's core neurons.
    deepest = by[circuit.layers[-1], "cumulative", "mask"]
    assert deepest.neurons == sum(len(core[layer]) for layer in circuit.layers[1:])

    csv_path = write_fidelity_csv(rows, tmp_path / "f.csv")
    with csv_path.open() as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(rows) and float(lines[0]["core_relative"]) == pytest.approx(rows[0].core_relative)
    png = plot_fidelity(rows, tmp_path / "f.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    summary = summarise_fidelity(rows)
    assert {(s.scope, s.mode) for s in summary} == {(a, b) for a in ("single", "cumulative") for b in ("mask", "retain")}


def test_fidelity_needs_a_layer_below_the_logit(pretrained: LoadedModel) -> None:
    views, _ = load_views(list_images(SMALL_IMAGES)[:1], pretrained.preprocessing)
    with pytest.raises(ModelError, match="at least one layer"):
        fidelity_study(pretrained, ClassInfo(258, "Samoyed"), views, {"_fc": [258]})
