"""Segments cut from the fx graph compute exactly what the model computes between two layers."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurflow.engine.models import ModelError, load_model
from neurflow.engine.segments import (
    channel_hooks,
    extract_segment,
    layer_output,
    record_activations,
    spatial_mean,
    trace,
)

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
