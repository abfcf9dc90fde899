"""MaskedRunner: exact masks on a hand-made module, which it leaves as it was."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurflow.engine.models import LoadedModel
from neurflow.experiments.runner import MaskedRunner
from neurflow.registry import ModelError, Preprocessing
from tests.experiments.support import all_hooks


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
