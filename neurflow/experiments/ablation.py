"""What an ablated ("knocked out", masked) channel is set to: zero, or its mean activation.

The paper, like the authors' code, ablates by zeroing. That is "off" after a ReLU (ResNet and GoogLeNet block
outputs), but EfficientNet-Lite block outputs are linear (BatchNorm, plus the skip connection, no activation):
there zero is an arbitrary point of the channel's range, and zeroing a channel can push the next block harder
than any real input does. **Mean ablation** sets the channel to its mean activation instead, i.e. to what the
layer carries on average, so that only the information the channel adds is removed.

- ``zero``: the channel is 0 at every position (the default, as in the paper);
- ``mean``: the channel is, at every position, its mean over a set of inputs and over the positions of its
  map: the class's patches (the circuit's data), or a reference image set.

:func:`channel_means` is the one computation: a recording pass over the given inputs returning one ``[C]``
float tensor per layer, the value :func:`neurflow.engine.segments.channel_hooks` (through
:class:`~neurflow.experiments.runner.MaskedRunner`) and the validation studies' knockout put in place of a
channel. Every input has the model's input size, so every map of a layer has the same number of positions and
the mean of the per-input spatial means is the mean over inputs and positions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import DataError, PatchSet, ViewImage, normalise
from neurflow.engine.segments import record_layers

ABLATIONS = ("zero", "mean")


@torch.no_grad()
def channel_means(module: torch.nn.Module, batches: Iterable[torch.Tensor], layers: Sequence[str],
                  progress: bool = False, total: int | None = None) -> dict[str, torch.Tensor]:
    """Each layer's per-channel mean activation over every input of ``batches`` and every position.

    ``batches`` are normalised model inputs (on the model's device). One forward pass per batch records the
    spatial means; they are summed in float64 so that the result does not depend on the batch size. Returns
    ``{layer: tensor[C]}`` (float32, on the CPU).
    """
    layers = list(dict.fromkeys(layers))
    sums: dict[str, torch.Tensor] = {}
    count = 0
    for batch in tqdm(batches, desc="channel means", unit="batch", total=total, disable=not progress, leave=False):
        means, _ = record_layers(module, batch, layers)
        for layer, values in means.items():
            total_values = values.double().sum(0)
            sums[layer] = sums[layer] + total_values if layer in sums else total_values
        count += len(batch)
    if count == 0:
        raise ValueError("no inputs to average over")
    return {layer: (sums[layer] / count).float() for layer in layers}


def patch_means(loaded: LoadedModel, patches: PatchSet, layers: Sequence[str], batch_size: int = 32,
                progress: bool = False) -> dict[str, torch.Tensor]:
    """Per-channel means over the patches of a :class:`PatchSet` (by default the 59 crops of each image, as
    circuits use them)."""
    if len(patches) == 0:
        raise ValueError("no patches to average over")
    chunks = list(patches.batches(max(1, batch_size)))
    return channel_means(loaded.module, (patches.inputs(c, loaded.device) for c in chunks), layers, progress,
                         len(chunks))


def view_means(loaded: LoadedModel, views: Sequence[ViewImage], layers: Sequence[str], batch_size: int = 32,
               progress: bool = False) -> dict[str, torch.Tensor]:
    """Per-channel means over whole images (a reference set), one input per image."""
    if not views:
        raise ValueError("no images to average over")
    size = max(1, batch_size)
    starts = range(0, len(views), size)

    def batches() -> Iterable[torch.Tensor]:
        for start in starts:
            chunk = torch.stack([v.view for v in views[start:start + size]])
            yield normalise(chunk, loaded.preprocessing).to(loaded.device)

    return channel_means(loaded.module, batches(), layers, progress, len(starts))


@dataclass
class Ablation:
    """How an experiment ablates channels: ``kind`` (``zero`` or ``mean``), the inputs the means come from
    (``reference``, in words, e.g. ``class patches`` or a folder) and the values per layer."""

    kind: str = "zero"
    reference: str | None = None
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    inputs: int = 0
    """How many inputs (patches or images) the means were taken over."""

    def __post_init__(self) -> None:
        if self.kind not in ABLATIONS:
            raise ValueError(f"ablation must be one of {ABLATIONS}, not {self.kind!r}")
        if self.kind == "zero" and self.values:
            raise ValueError("zero ablation takes no values")

    @property
    def replacement(self) -> dict[str, torch.Tensor] | None:
        """What :func:`~neurflow.engine.segments.channel_hooks` takes: None for zero ablation."""
        return dict(self.values) if self.kind == "mean" else None

    def describe(self) -> str:
        if self.kind == "zero":
            return "zero ablation (ablated channels set to 0)"
        return f"mean ablation (ablated channels set to their mean over {self.inputs} {self.reference})"


def mean_ablation(loaded: LoadedModel, layers: Sequence[str], class_views: Sequence[ViewImage],
                  reference_views: Sequence[ViewImage] | None = None, reference_name: str | None = None,
                  batch_size: int = 32, progress: bool = False) -> Ablation:
    """Mean ablation for ``layers``: the means over the class's patches (the 59 crops of each of
    ``class_views``), or over the whole images of ``reference_views`` when given (``reference_name``: the
    set in words, e.g. its folder)."""
    layers = list(dict.fromkeys(layers))
    if reference_views is not None:
        if not reference_views:
            raise DataError(f"the reference image set {reference_name or ''} has no readable image")
        values = view_means(loaded, reference_views, layers, batch_size, progress)
        where = f"reference images ({reference_name})" if reference_name else "reference images"
        return Ablation("mean", where, values, len(reference_views))
    patches = PatchSet(list(class_views), loaded.preprocessing)
    return Ablation("mean", "class patches", patch_means(loaded, patches, layers, batch_size, progress), len(patches))
