"""Shared inputs of the validation-study tests: tiny networks on uniform images whose studies can be computed by
hand, and a real circuit's inputs with its activations recorded once per session."""

from __future__ import annotations

import functools
from pathlib import Path

import torch
from torch import nn

from neurflow.circuit import ClassInfo
from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.config import BuildConfig
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import ImageFile, PatchSet, ViewImage, normalise
from neurflow.engine.recording import Recording
from neurflow.experiments.validation.inputs import StudyInputs, class_recording, study_inputs
from neurflow.registry import Preprocessing

# Inputs are the pixels themselves; a uniform patch resized to 8x8 stays uniform.
THREE_PREP = Preprocessing(resize=8, crop=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
HEAD_WEIGHTS = (1.0, 0.1, 0.5)
"""Class 0 = 1.0 * red + 0.1 * green + 0.5 * blue (spatial means of the ReLU'd colour channels)."""
COLOURS = ((0.5, 1.0, 0.0), (0.0, 0.0, 0.8), (0.25, 0.5, 0.0))
"""Image 0 (orange): class 0 = 0.6; image 1 (blue): 0.4; image 2 (olive): 0.3."""


class ThreeColours(nn.Module):
    """act = ReLU of the red, green and blue inputs (channels 0, 1, 2); head = a linear map of their spatial
    means: class 0 has the weights ``HEAD_WEIGHTS``, class 1 counts green."""

    def __init__(self) -> None:
        super().__init__()
        self.pick = nn.Conv2d(3, 3, 1, bias=False)
        self.pick.weight.data = torch.eye(3).view(3, 3, 1, 1)
        self.act = nn.ReLU()
        self.head = nn.Linear(3, 2, bias=False)
        self.head.weight.data = torch.tensor([HEAD_WEIGHTS, (0.0, 1.0, 0.0)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.pick(x)).mean((2, 3)))


def uniform_rgb_view(name: str, colour: tuple[float, float, float]) -> ViewImage:
    pixels = torch.tensor(colour).view(3, 1, 1).expand(3, 8, 8).clone()
    return ViewImage(ImageFile(Path(f"/nowhere/{name}.png"), None), name, 8, 8, pixels, 1.0, (0.0, 0.0))


def three_colours_inputs(ablation: str = "zero") -> StudyInputs:
    """The circuit of class 0 over the three uniform images (3 x 59 patches, every patch of an image alike),
    with tau = 1 and k = 59: V_a of the class is the 59 patches of image 0 (0.6 > 0.4 > 0.3).

    On V_a the act channels are (0.5, 1.0, 0.0), so the integrated gradients summed over V_a (exact: the head
    is linear) are T = 59 * (1.0 * 0.5, 0.1 * 1.0, 0.5 * 0.0) = (29.5, 5.9, 0): the circuit's core set is {0}.
    Knocking channels out (zero) gives class 0 on images (0, 1, 2):
      {0}: (0.1, 0.4, 0.05) -> V_a^(S) = image 1 -> L = 0;   {1}: (0.5, 0.4, 0.25) -> image 0 -> L = 1;
      {2}: (0.6, 0.0, 0.3) -> L = 1;   {0, 1}: (0, 0.4, 0) -> L = 0;   {0, 2}: (0.1, 0, 0.05) -> L = 1;
      {1, 2}: (0.5, 0, 0.25) -> L = 1;   {0, 1, 2}: all 0, ties by patch index -> image 0 -> L = 1.
    """
    module = ThreeColours().eval()
    loaded = LoadedModel("three-colours", module, ["head", "act"], THREE_PREP, "test", ["class 0", "class 1"],
                         torch.device("cpu"))
    views = [uniform_rgb_view(f"image{i}", colour) for i, colour in enumerate(COLOURS)]
    config = BuildConfig("three-colours", layers=["head", "act"], tau=1, k=59, steps=4, device="cpu")
    with torch.no_grad():
        logits = module(normalise(torch.stack([v.view for v in views]), THREE_PREP))
    circuit = CircuitBuilder(loaded, config, progress=False).build(ClassInfo(0, "class 0"), views, logits).circuit
    return StudyInputs(loaded, circuit, Path("."), views, PatchSet(views, THREE_PREP), config, ablation)



# Exact in float32: the bilinear resize of a uniform 2x2 or 4x4 patch to 8x8 uses dyadic weights.
TWO_PREP = Preprocessing(resize=8, crop=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


class TwoColours(nn.Module):
    """act = ReLU of the red (channel 0) and green (channel 1) inputs; head: 0 = act0 + act1, 1 = act0 - act1
    (on spatial means). Linear above act, so the integrated gradient of head 0 on a patch is exactly
    [mean red, mean green]."""

    def __init__(self) -> None:
        super().__init__()
        self.pick = nn.Conv2d(3, 2, 1, bias=False)
        self.pick.weight.data = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]).view(2, 3, 1, 1)
        self.act = nn.ReLU()
        self.head = nn.Linear(2, 2, bias=False)
        self.head.weight.data = torch.tensor([[1.0, 1.0], [1.0, -1.0]])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.act(self.pick(x)).mean((2, 3)))


def uniform_view(name: str, red: float, green: float) -> ViewImage:
    pixels = torch.zeros(3, 8, 8)
    pixels[0], pixels[1] = red, green
    return ViewImage(ImageFile(Path(f"/nowhere/{name}.png"), None), name, 8, 8, pixels, 1.0, (0.0, 0.0))


def uniform_inputs() -> StudyInputs:
    """Image 0 is red (1.0), images 1-3 are green (0.5): 4 x 59 = 236 patches, every patch of an image the same.

    Target: class 0 (head 0 = mean red + mean green): 1.0 on the red patches, 0.5 on the green ones, so its
    top-k patches are the red image's 59, then the green images' (ties by index). The circuit has tau = 1
    and k = 50. Summed over the top-k, the attribution is [min(k, 59), 0.5 * max(0, k - 59)]: channel 0 (red)
    wins up to k = 176, channel 1 (green) from k = 178 on (0.5 * 119 = 59.5 > 59).
    """
    module = TwoColours().eval()
    loaded = LoadedModel("two-colours", module, ["head", "act"], TWO_PREP, "test", ["red", "green"],
                         torch.device("cpu"))
    views = [uniform_view("red", 1.0, 0.0)] + [uniform_view(f"green{i}", 0.0, 0.5) for i in range(3)]
    config = BuildConfig("two-colours", layers=["head", "act"], tau=1, k=50, steps=4, device="cpu")
    with torch.no_grad():
        logits = module(normalise(torch.stack([v.view for v in views]), TWO_PREP))
    circuit = CircuitBuilder(loaded, config, progress=False).build(ClassInfo(0, "red"), views, logits).circuit
    return StudyInputs(loaded, circuit, Path("."), views, PatchSet(views, TWO_PREP), config)



@functools.cache
def real_recording(folder: Path) -> Recording:
    """A real circuit's class recording: recorded once per test session, for the tests of every study (a plain
    cache: a fixture imported into another test module would be recorded again)."""
    return class_recording(study_inputs(folder, device="cpu", progress=False), progress=False)


def real_inputs(folder: Path) -> StudyInputs:
    """A real circuit's study inputs with the class's recording already made."""
    inputs = study_inputs(folder, device="cpu", progress=False)
    inputs.recorded.append(real_recording(folder))
    return inputs


