"""Where a layer's output keeps its neurons: the one place that defines it (docs/layouts.md).

- ``channels-first``: ``[B, C, H, W]`` maps, ``[B, C, L]`` sequences or ``[B, C]`` units (CNNs, linear heads);
  neuron = channel c, activation = its mean over the positions.
- ``channels-last``: ``[B, H, W, C]`` (torchvision's Swin blocks, ConvNeXt's inner linears); neuron = unit c of
  the last dimension, activation = its mean over H and W.
- ``tokens``: ``[B, T, D]`` (ViT encoder blocks); neuron = hidden unit d, activation = its mean over the patch
  tokens. The leading non-patch tokens (ViT's class token) are left out of the mean (``class_token``
  ``exclude``), averaged too (``include``) or are the activation alone (``only``: for a layer whose upper layer
  reads nothing but its class token, as a ViT's head reads its last block). Attributions and masks still cover the
  unit at *every* token, class token included: integrated gradients stay complete (they sum to f(h) - f(0)) and a
  masked unit is gone from the layer.

The engine works on the *canonical* form of an output, ``[B, neurons, positions...]`` (neurons on dimension 1),
so that integrated gradients, knock-outs and groups are written once: :meth:`NeuronLayout.to_canonical` and
:meth:`NeuronLayout.to_native` convert, :func:`neuron_means` reduces a canonical output to ``[B, neurons]``.

A layer's layout is found from the shape of its output and the type of its module (:func:`detect_layout`),
overridable per layer (:func:`assign_layouts`, ``--layout LAYER=KIND``), and remembered on the layer's module so
that every hook and segment of the process reads the same one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from neurflow.engine.config import LAYOUTS, TOKEN_ACTIVATIONS
from neurflow.registry import ModelError

SUPPORTED_SHAPES = ("[batch, channels, height, width], [batch, channels, length] or [batch, units] "
                    "(channels-first), [batch, height, width, channels] (channels-last) or [batch, tokens, dim] "
                    "(tokens)")
# The attributes a layer's module carries: its layout once known, and what was asked for it.
_LAYOUT = "_neurflow_layout"
_CHOICE = "_neurflow_layout_choice"
# Modules whose 4-d outputs keep channels last (their features on the last dimension).
_LAST_DIM_MODULES = (nn.Linear, nn.LayerNorm)
_LAST_DIM_TYPE_NAMES = {"SwinTransformerBlock", "SwinTransformerBlockV2", "PatchMerging", "PatchMergingV2"}
# Modules whose 3-d outputs are [batch, channels, length] rather than tokens.
_CHANNEL_SEQUENCE_MODULES = (nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d, nn.AvgPool1d, nn.AdaptiveAvgPool1d)


@dataclass(frozen=True)
class NeuronLayout:
    """How one layer's output holds its neurons (see the module's docstring)."""

    kind: str = "channels-first"
    #: tokens: leading tokens that are not image patches (ViT's class token), left out of the activation's mean.
    prefix_tokens: int = 0
    #: tokens: what the activation averages: the patch tokens (``exclude``), every token (``include``) or the
    #: prefix tokens alone (``only``).
    class_token: str = "exclude"

    def __post_init__(self) -> None:
        if self.kind not in LAYOUTS:
            raise ModelError(f"unknown neuron layout {self.kind!r}; one of {', '.join(LAYOUTS)}")
        if self.class_token not in TOKEN_ACTIVATIONS:
            raise ModelError(f"unknown class-token choice {self.class_token!r}; one of {', '.join(TOKEN_ACTIVATIONS)}")

    def check(self, output: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """``output`` when it has a shape this layout reads; otherwise a ModelError naming the shape."""
        expected = {"channels-first": (2, 3, 4), "channels-last": (4,), "tokens": (3,)}[self.kind]
        if output.dim() not in expected:
            where = f"layer {layer!r}" if layer is not None else "a layer"
            raise ModelError(f"{where} outputs a tensor of shape {list(output.shape)}, which the {self.kind} layout "
                             f"cannot read; neurflow reads {SUPPORTED_SHAPES}: pick another layer or --layout")
        return output

    def to_canonical(self, output: torch.Tensor) -> torch.Tensor:
        """``[B, neurons, positions...]``: channels-last and token outputs get their neurons on dimension 1."""
        if self.kind == "channels-last":
            return output.permute(0, 3, 1, 2)
        if self.kind == "tokens":
            return output.transpose(1, 2)
        return output

    def to_native(self, canonical: torch.Tensor) -> torch.Tensor:
        """The inverse of :meth:`to_canonical`: what the model's next module takes."""
        if self.kind == "channels-last":
            return canonical.permute(0, 2, 3, 1)
        if self.kind == "tokens":
            return canonical.transpose(1, 2)
        return canonical

    def for_means(self, canonical: torch.Tensor) -> torch.Tensor:
        """The canonical positions the activation averages (the class token dropped, kept, or alone)."""
        if self.kind != "tokens" or not self.prefix_tokens or self.class_token == "include":
            return canonical
        if self.class_token == "only":
            return canonical[:, :, : self.prefix_tokens]
        return canonical[:, :, self.prefix_tokens :]

    def activations(self, output: torch.Tensor, layer: str | None = None) -> torch.Tensor:
        """``[B, neurons]``: each neuron's activation from the layer's (native) output."""
        return neuron_means(self.for_means(self.to_canonical(self.check(output, layer))))

    def width(self, output: torch.Tensor) -> int:
        """The number of neurons of an output of this layout."""
        return int(output.shape[-1] if self.kind in ("channels-last", "tokens") else output.shape[1])

    def unit_shape(self, output: torch.Tensor) -> tuple[int, ...]:
        """The view that broadcasts a per-neuron ``[N]`` vector onto the native output (for masks)."""
        if self.kind == "channels-first":
            return (1, -1, *([1] * (output.dim() - 2)))
        return (*([1] * (output.dim() - 1)), -1)


def neuron_means(canonical: torch.Tensor) -> torch.Tensor:
    """``[B, neurons]`` from a canonical output: the mean over its positions (units as they are)."""
    return canonical.flatten(2).mean(-1) if canonical.dim() > 2 else canonical


def _last_leaf(module: nn.Module) -> nn.Module:
    """The module that produces a Sequential's output (the last child, recursively); ``module`` otherwise."""
    while isinstance(module, nn.Sequential) and len(module) > 0:
        module = module[-1]
    return module


def _prefix_tokens(tokens: int) -> int:
    """Leading non-patch tokens of a ViT-like sequence: what is left over from the largest square grid (one class
    token of 197 = 1 + 14 x 14); none when the rest is not a few tokens."""
    extra = tokens - math.isqrt(tokens) ** 2
    return extra if extra <= 8 else 0


def detect_layout(module: nn.Module, output: torch.Tensor, layer: str | None = None, kind: str | None = None,
                  class_token: str = "exclude") -> NeuronLayout:
    """The layout of ``output``, produced by ``module``: ``kind`` when given, else from the shape and the type.

    4-d outputs: ``[B, C, S, S]`` is channels-first and ``[B, S, S, C]`` channels-last (square positions, the
    crop is square); when the shape cannot tell, a Linear, LayerNorm or Swin block means channels-last.
    3-d outputs are tokens unless a 1-d convolution, norm or pooling made them.
    """
    dims = output.dim()
    if kind is None:
        leaf = _last_leaf(module)
        if dims == 2:
            kind = "channels-first"
        elif dims == 3:
            kind = "channels-first" if isinstance(leaf, _CHANNEL_SEQUENCE_MODULES) else "tokens"
        elif dims == 4:
            _, a, b, c = output.shape
            if b == c and a != b:
                kind = "channels-first"
            elif a == b and c != a:
                kind = "channels-last"
            else:
                last_dim = isinstance(leaf, _LAST_DIM_MODULES) or type(leaf).__name__ in _LAST_DIM_TYPE_NAMES
                kind = "channels-last" if last_dim else "channels-first"
        else:
            where = f"layer {layer!r}" if layer is not None else "a layer"
            raise ModelError(f"{where} outputs a tensor of shape {list(output.shape)}; neurflow reads neurons from "
                             f"{SUPPORTED_SHAPES} only: pick another layer")
    prefix = _prefix_tokens(int(output.shape[1])) if kind == "tokens" and dims == 3 else 0
    layout = NeuronLayout(kind, prefix, class_token)
    layout.check(output, layer)
    return layout


def layout_of(module: nn.Module, output: torch.Tensor, layer: str | None = None) -> NeuronLayout:
    """The layout of the layer ``module`` whose output is ``output``: the one remembered on the module, else
    detected now (with what :func:`assign_layouts` asked for it) and remembered."""
    known = getattr(module, _LAYOUT, None)
    if isinstance(known, NeuronLayout):
        return known
    kind, class_token = getattr(module, _CHOICE, (None, "exclude"))
    layout = detect_layout(module, output, layer, kind, class_token)
    object.__setattr__(module, _LAYOUT, layout)
    return layout


def has_layout(model: nn.Module, layer: str) -> bool:
    """Whether the layout of ``layer`` is known (a forward pass went through it since it was assigned)."""
    return isinstance(getattr(model.get_submodule(layer), _LAYOUT, None), NeuronLayout)


def known_layout(model: nn.Module, layer: str) -> NeuronLayout:
    """The layout of ``layer`` found by an earlier forward pass (recording or :func:`probe_layouts`)."""
    known = getattr(model.get_submodule(layer), _LAYOUT, None)
    if not isinstance(known, NeuronLayout):
        raise ModelError(f"the neuron layout of layer {layer!r} is not known yet: run a forward pass through it "
                         "first (neurflow.engine.layouts.probe_layouts)")
    return known


def assign_layouts(model: nn.Module, layers: Iterable[str], overrides: Mapping[str, str] | None = None,
                   class_token: str | Mapping[str, str] = "exclude") -> None:
    """Forget what ``layers`` knew and record what is asked for them (a kind per layer; what a token layer's
    activation averages, for all layers or per layer: ``exclude``, ``include``, ``only``); their layouts are
    detected again by the next forward pass through them."""
    overrides = dict(overrides or {})
    layers = list(layers)
    unknown = sorted(set(overrides) - set(layers))
    if unknown:
        raise ModelError(f"--layout names {', '.join(map(repr, unknown))}, which is not among the layers {layers}")
    for layer in layers:
        module = model.get_submodule(layer)
        if hasattr(module, _LAYOUT):
            object.__delattr__(module, _LAYOUT)
        token = class_token if isinstance(class_token, str) else class_token.get(layer, "exclude")
        object.__setattr__(module, _CHOICE, (overrides.get(layer), token))


@torch.no_grad()
def probe_layouts(model: nn.Module, sample: torch.Tensor, layers: Iterable[str]) -> dict[str, NeuronLayout]:
    """The layouts of ``layers`` from one forward pass of ``sample`` (one input suffices), remembered."""
    found: dict[str, NeuronLayout] = {}
    forward_visiting(model, sample, layers, lambda name, layout, _output: found.__setitem__(name, layout))
    return found


def forward_visiting(model: nn.Module, inputs: torch.Tensor, layers: Iterable[str],
                     visit: Callable[[str, NeuronLayout, torch.Tensor], None]) -> None:
    """One forward pass of ``inputs`` that calls ``visit(layer, its layout, its output)`` for each of ``layers``;
    a layer that runs twice, or not at all, gets a ModelError. The hooks are removed on exit."""
    names = list(dict.fromkeys(layers))
    seen: set[str] = set()
    handles = []
    for name in names:
        def hook(module: nn.Module, _args: object, output: object, name: str = name) -> None:
            if name in seen:
                raise ModelError(f"module {name!r} runs more than once per forward pass; pick another layer")
            seen.add(name)
            value = first_tensor(output)
            visit(name, layout_of(module, value, name), value)
        handles.append(model.get_submodule(name).register_forward_hook(hook))
    try:
        model(inputs)
    finally:
        for handle in handles:
            handle.remove()
    missing = [layer for layer in names if layer not in seen]
    if missing:
        raise ModelError(f"layer(s) {missing} did not run in the forward pass")


def first_tensor(output: object) -> torch.Tensor:
    """A module's output tensor (the first of a tuple, as some modules return)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise ModelError(f"a layer returned {type(output).__name__}, not a tensor")
