"""Segments cut from the fx graph compute exactly what the model computes between two layers."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import nn

from neurflow.engine.models import load_model
from neurflow.engine.segments import (
    channel_hooks,
    extract_segment,
    layer_output,
    record_activations,
    spatial_mean,
    trace,
)
from neurflow.registry import ModelError

PAIRS = {
    # skip connections with a downsampling branch, and the pooling + flatten before the classifier
    "resnet18": [("layer3.1", "layer4.0"), ("layer4.1", "fc")],
    # parallel branches, and a max-pool between two inception blocks
    "googlenet": [("inception4e", "inception5a"), ("maxpool2", "inception3a"), ("inception5b", "fc")],
    # squeeze-free MBConv blocks with identity skips, `x.view(bs, -1)` before the classifier
    "efficientnet-lite0": [("_blocks.14", "_blocks.15"), ("_blocks.15", "_fc")],
}


@pytest.mark.parametrize("name", list(PAIRS))
def test_segment_reproduces_the_model_between_layers(name: str) -> None:
    torch.manual_seed(0)
    loaded = load_model(name, random_weights=True, device="cpu")
    layers = sorted({layer for pair in PAIRS[name] for layer in pair})
    traced = trace(loaded.module, layers)
    x = torch.randn(2, 3, 224, 224)
    for lower, upper in PAIRS[name]:
        segment = extract_segment(traced, lower, upper)
        with torch.no_grad():
            expected = layer_output(loaded.module, x, upper)
            got = segment(layer_output(loaded.module, x, lower))
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_record_activations_is_the_spatial_mean_of_each_layer() -> None:
    torch.manual_seed(0)
    loaded = load_model("resnet18", random_weights=True, device="cpu")
    x = torch.randn(2, 3, 224, 224)
    recorded = record_activations(loaded.module, x, ["fc", "layer4.1", "layer3.0"])
    with torch.no_grad():
        logits = loaded.module(x)
        torch.testing.assert_close(recorded["fc"], logits)
        torch.testing.assert_close(recorded["layer3.0"], layer_output(loaded.module, x, "layer3.0").mean((2, 3)))
    assert recorded["layer4.1"].shape == (2, 512)


def test_segment_rejects_layers_in_the_wrong_order() -> None:
    loaded = load_model("resnet18", random_weights=True, device="cpu")
    traced = trace(loaded.module, ["layer4.0", "layer4.1"])
    with pytest.raises(ModelError, match="does not depend"):
        extract_segment(traced, "layer4.1", "layer4.0")


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Conv2d(1, 3, 1, bias=False)
        self.features.weight.data = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
        self.head = nn.Linear(3, 1, bias=False)
        self.head.weight.data = torch.ones(1, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(spatial_mean(self.features(x)))


@pytest.mark.parametrize("mode,expected", [("mask", 1.0 + 3.0), ("retain", 2.0)])
def test_channel_hooks_zero_channels_and_leave_the_model_as_it_was(mode: str, expected: float) -> None:
    model = Tiny()
    x = torch.ones(1, 1, 2, 2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with channel_hooks(model, {"features": [1]}, mode=mode):
        assert model(x).item() == expected
    assert model(x).item() == 6.0
    assert not model.features._forward_hooks
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


# Channel maps of Tiny on ones: 1, 2, 3; the head sums them. Replacement values 10, 5, 30.
@pytest.mark.parametrize("mode,expected", [("mask", 1.0 + 5.0 + 3.0), ("retain", 10.0 + 2.0 + 30.0)])
def test_channel_hooks_set_ablated_channels_to_their_replacement_values(mode: str, expected: float) -> None:
    model = Tiny()
    x = torch.ones(1, 1, 2, 2)
    values = {"features": torch.tensor([10.0, 5.0, 30.0])}
    with channel_hooks(model, {"features": [1]}, mode=mode, replacement=values):
        assert model(x).item() == expected
    assert model(x).item() == 6.0 and not model.features._forward_hooks


def test_a_mean_ablated_channel_is_its_value_everywhere_and_the_others_are_untouched() -> None:
    model = Tiny()
    x = torch.arange(8.0).view(2, 1, 2, 2)  # maps vary over positions and images
    with torch.no_grad():
        clean = model.features(x)
        with channel_hooks(model, {"features": [0, 2]}, replacement={"features": torch.tensor([0.5, 9.0, -2.5])}):
            ablated = layer_output(model, x, "features")
    assert torch.equal(ablated[:, 0], torch.full((2, 2, 2), 0.5))
    assert torch.equal(ablated[:, 2], torch.full((2, 2, 2), -2.5))
    assert torch.equal(ablated[:, 1], clean[:, 1])


def test_channel_hooks_zero_layers_without_values_and_check_the_values_width() -> None:
    model = Tiny()
    x = torch.ones(1, 1, 2, 2)
    with channel_hooks(model, {"features": [2]}, replacement={"other": torch.zeros(4)}):
        assert model(x).item() == 3.0
    with pytest.raises(ModelError, match="3 neurons but its ablation values have shape \\[2\\]"):
        with channel_hooks(model, {"features": [2]}, replacement={"features": torch.zeros(2)}):
            model(x)
    assert not model.features._forward_hooks


class Tokens(nn.Module):
    """A layer whose output is a sequence of tokens [batch, tokens, dim], like a transformer block's."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 4)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x.flatten(2).transpose(1, 2))  # [B, 5, 4]
        return self.head(tokens.mean(1))


def test_token_outputs_are_read_as_hidden_units_and_other_shapes_get_an_error_naming_them() -> None:
    model = Tokens().eval()
    x = torch.randn(2, 4, 1, 5)
    with torch.no_grad():
        tokens = model.embed(x.flatten(2).transpose(1, 2))  # [2, 5, 4]: 1 leading token + a 2 x 2 grid
    # A neuron is a hidden unit; its activation the mean over the patch tokens (the leading token left out).
    torch.testing.assert_close(record_activations(model, x, ["embed"])["embed"], tokens[:, 1:].mean(1))
    torch.testing.assert_close(layer_output(model, x, "embed"), tokens.transpose(1, 2))
    with channel_hooks(model, {"embed": [0]}):
        masked = model(x)
    torch.testing.assert_close(masked, model.head((tokens * torch.tensor([0.0, 1, 1, 1])).mean(1)))

    class Video(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.view(1, 2, 2, 5, 1)

    with pytest.raises(ModelError, match=r"layer 'clip' outputs a tensor of shape \[1, 2, 2, 5, 1\]"):
        record_activations(nn.Sequential(OrderedDict(clip=Video())), x[:1], ["clip"])
    with pytest.raises(ModelError, match=r"shape \[3, 2, 2, 2, 2\]"):
        spatial_mean(torch.zeros(3, 2, 2, 2, 2))
    # Channel maps and linear units are neurons as before.
    assert record_activations(model, x, ["head"])["head"].shape == (2, 2)
    maps = torch.arange(24.0).view(1, 2, 3, 4)
    assert spatial_mean(maps).tolist() == [[5.5, 17.5]]
    assert torch.equal(spatial_mean(torch.ones(3, 7)), torch.ones(3, 7))
