"""The logits of fixed inputs under channel masks: :class:`MaskedRunner`.

Channels are ablated with :func:`neurflow.engine.segments.channel_hooks` (forward hooks, removed on exit):

- ``mask``: the chosen channels of each layer are ablated;
- ``retain``: every *other* channel of each listed layer is ablated.

An ablated channel is zero (the default, as in the paper) or, with per-layer ``replacement`` values (mean
ablation, :mod:`neurflow.experiments.ablation`), its value there at every position.

A :class:`MaskedRunner` computes the model's logits of a fixed set of inputs under many masks. It runs the
whole model once, keeps the output of the lowest masked layer and afterwards only runs the rest of the
model (a segment cut out of the model's torch.fx graph), with the hooks on the same modules. It checks
that the segment reproduces the model's logits and otherwise runs the whole model every time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import torch
from torch import nn

from neurflow.engine.layouts import NeuronLayout, first_tensor, forward_visiting, known_layout
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import PatchSet, ViewImage, normalise
from neurflow.engine.segments import channel_hooks, extract_segment, record_activations, trace
from neurflow.experiments.channels import Channels, check_channels
from neurflow.registry import ModelError

MODES = ("mask", "retain")


def _hookable(channels: Channels) -> dict[str, Sequence[int]]:
    """The same channels typed as :func:`channel_hooks` takes them."""
    out: dict[str, Sequence[int]] = dict(channels)
    return out


class _Entry(nn.Module):
    """Identity through which the cached lowest-layer output passes, so that channel_hooks can mask it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


@torch.no_grad()
def layer_widths(loaded: LoadedModel, layers: Sequence[str], sample: torch.Tensor) -> tuple[dict[str, int], list[str]]:
    """Neurons of each layer (channels, units or hidden units, by its layout) and the layers in the order the
    forward pass runs them (one input)."""
    loaded.check_layers(list(dict.fromkeys(layers)))
    widths: dict[str, int] = {}
    order: list[str] = []

    def visit(name: str, layout: NeuronLayout, value: torch.Tensor) -> None:
        widths[name] = layout.width(value)
        order.append(name)

    forward_visiting(loaded.module, sample[:1].to(loaded.device), layers, visit)
    return widths, order


class MaskedRunner:
    """The logits of fixed inputs under channel masks of ``layers`` (any subset of them per call).

    ``inputs`` are normalised model inputs. The unmasked logits are computed at construction; when
    ``reuse`` is set (default) the output of the lowest of ``layers`` is kept and later calls only run the
    model above it, which gives the same logits (checked here) far faster. ``replacement``: per layer, a
    ``[C]`` tensor of the values ablated channels take (mean ablation); layers without one are zeroed.
    """

    def __init__(self, loaded: LoadedModel, inputs: torch.Tensor, layers: Sequence[str], batch_size: int = 32,
                 reuse: bool = True, replacement: Mapping[str, torch.Tensor] | None = None):
        if len(inputs) == 0:
            raise ValueError("no inputs")
        self.loaded = loaded
        self.inputs = inputs.cpu()
        self.batch_size = max(1, batch_size)
        logit_layer = loaded.layers[0]
        self.layers = list(dict.fromkeys([*layers, logit_layer]))
        self.widths, order = layer_widths(loaded, self.layers, self.inputs)
        self.replacement = _checked_replacement(replacement, self.widths)
        self.base = order[0]
        self.logits, cached = self._full_pass(keep=self.base if reuse else None)
        self.segment: nn.Module | None = None
        self.cached: list[torch.Tensor] = []
        self._entry = nn.ModuleDict({"entry": _Entry()})
        if reuse and cached:
            self.segment = self._segment(logit_layer)
            self.cached = cached
            if self.segment is not None:
                with torch.no_grad():
                    first = self.segment(cached[0].to(loaded.device)).float().cpu()
                if first.shape != self.logits[: len(first)].shape or not torch.allclose(
                    first, self.logits[: len(first)], rtol=1e-4, atol=1e-4
                ):
                    self.segment, self.cached = None, []

    @property
    def reusing(self) -> bool:
        """Whether calls run only the model above the cached layer."""
        return self.segment is not None

    def _segment(self, logit_layer: str) -> nn.Module | None:
        if self.base == logit_layer:
            return nn.Identity()
        try:
            traced = trace(self.loaded.module, self.layers)
            return extract_segment(traced, self.base, logit_layer)
        except ModelError:
            return None

    def _batches(self) -> Iterator[slice]:
        for start in range(0, len(self.inputs), self.batch_size):
            yield slice(start, start + self.batch_size)

    @torch.no_grad()
    def _full_pass(self, keep: str | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        kept: list[torch.Tensor] = []
        handle = None
        if keep is not None:
            def hook(_m: nn.Module, _a: object, output: object) -> None:
                kept.append(first_tensor(output).detach().cpu())
            handle = self.loaded.module.get_submodule(keep).register_forward_hook(hook)
        try:
            logits = [self.loaded.module(self.inputs[b].to(self.loaded.device)).float().cpu() for b in self._batches()]
        finally:
            if handle is not None:
                handle.remove()
        return torch.cat(logits), kept

    @torch.no_grad()
    def __call__(self, channels: Channels | None = None, mode: str = "mask") -> torch.Tensor:
        """Logits [inputs, classes] with ``channels`` masked (``mode`` mask) or retained (``retain``)."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        if not channels:
            return self.logits.clone()
        unknown = [layer for layer in channels if layer not in self.widths]
        if unknown:
            raise ValueError(f"layers {unknown} were not given to the runner ({self.layers})")
        check_channels(channels, self.widths)
        device = self.loaded.device
        values = self.replacement
        if self.segment is None:
            with channel_hooks(self.loaded.module, _hookable(channels), mode, values):
                return torch.cat([self.loaded.module(self.inputs[b].to(device)).float().cpu() for b in self._batches()])
        above = {layer: chosen for layer, chosen in channels.items() if layer != self.base}
        entry = {"entry": channels[self.base]} if self.base in channels else {}
        entry_values = {"entry": values[self.base]} if self.base in values else {}
        with channel_hooks(self.loaded.module, _hookable(above), mode, values), \
                channel_hooks(self._entry, _hookable(entry), mode, entry_values,
                              {"entry": known_layout(self.loaded.module, self.base)}):
            return torch.cat([self.segment(self._entry["entry"](part.to(device))).float().cpu() for part in self.cached])


def _checked_replacement(replacement: Mapping[str, torch.Tensor] | None,
                         widths: dict[str, int]) -> dict[str, torch.Tensor]:
    """The replacement values as ``[C]`` float tensors on the CPU, one per known layer of the right width."""
    checked: dict[str, torch.Tensor] = {}
    for layer, value in (replacement or {}).items():
        if layer not in widths:
            continue  # values for layers this runner never masks (e.g. a whole circuit's means) are harmless
        flat = value.detach().float().cpu().reshape(-1)
        if flat.numel() != widths[layer]:
            raise ModelError(f"layer {layer!r} has {widths[layer]} channels but {flat.numel()} ablation values")
        checked[layer] = flat
    return checked


def crop_activations(loaded: LoadedModel, patches: PatchSet, layers: Sequence[str],
                     batch_size: int = 64) -> dict[str, torch.Tensor]:
    """The neuron activations [crops, neurons] of ``layers`` on every crop of ``patches``, in batches."""
    chunks: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    for batch in patches.batches(batch_size):
        for layer, values in record_activations(loaded.module, patches.inputs(batch, loaded.device), layers).items():
            chunks[layer].append(values)
    return {layer: torch.cat(values) for layer, values in chunks.items()}


def view_inputs(views: Sequence[ViewImage], loaded: LoadedModel) -> torch.Tensor:
    """Normalised inputs [images, 3, crop, crop] of whole views (on the CPU)."""
    if not views:
        raise ValueError("no images")
    return normalise(torch.stack([v.view for v in views]), loaded.preprocessing)
