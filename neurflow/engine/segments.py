"""Hooks and graph surgery on the model; no attribution math here.

- :func:`record_activations`: one forward pass that records the neuron activations of every requested layer
  (each layer's layout's means);
  :func:`record_layers` also keeps the full outputs of some of them.
- :func:`layer_output`: the full output of one layer (the forward stops there).
- :func:`extract_segment`: the model's *real* computation from one layer's output to another's, cut out of
  its torch.fx graph (skip connections, branches and functional ops included), as a module.
- :func:`canonical_segment`: the same, between the layers' canonical forms ``[B, neurons, positions...]``
  (:mod:`neurflow.engine.layouts`), so that attribution and knock-outs read every layout alike.
- :func:`channel_hooks`: forward hooks that ablate channels (masking): set them to zero, or to a given value
  per channel (e.g. its mean), removed on exit.
"""

from __future__ import annotations

import operator
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager

import torch
import torch.fx as fx
from torch import nn

from neurflow.engine.layouts import (
    NeuronLayout,
    assign_layouts,
    first_tensor,
    forward_visiting,
    known_layout,
    layout_of,
    neuron_means,
    probe_layouts,
)
from neurflow.registry import ModelError


def spatial_mean(output: torch.Tensor, layer: str | None = None) -> torch.Tensor:
    """A channels-first neuron's activation: channel maps reduced by their spatial mean; units as they are.

    For a canonical output ``[B, neurons, positions...]`` of any layout this is :func:`neuron_means`; outputs of
    another shape get a ModelError naming ``layer`` and the shape.
    """
    NeuronLayout().check(output, layer)
    return neuron_means(output)


class _StopForward(Exception):
    def __init__(self, output: torch.Tensor):
        self.output = output


@torch.no_grad()
def record_activations(model: nn.Module, inputs: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Neuron activations [batch, neurons] of ``layers`` from one forward pass (on the CPU)."""
    return record_layers(model, inputs, layers)[0]


@torch.no_grad()
def record_layers(
    model: nn.Module, inputs: torch.Tensor, layers: Sequence[str], keep: Collection[str] = ()
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """One forward pass: the neuron activations of ``layers`` (their layout's means), and the full outputs of the
    layers in ``keep`` in canonical form ``[B, neurons, positions...]`` (on the CPU)."""
    means: dict[str, torch.Tensor] = {}
    maps: dict[str, torch.Tensor] = {}

    def visit(name: str, layout: NeuronLayout, value: torch.Tensor) -> None:
        means[name] = layout.activations(value, name).float().cpu()
        if name in keep:
            maps[name] = layout.to_canonical(value.detach()).float().cpu()

    forward_visiting(model, inputs, layers, visit)
    return means, maps


@torch.no_grad()
def layer_output(model: nn.Module, inputs: torch.Tensor, layer: str) -> torch.Tensor:
    """The full output of ``layer`` for ``inputs`` in canonical form ``[B, neurons, positions...]``; the layers
    above it are not computed."""

    def hook(module: nn.Module, _args: object, output: object) -> None:
        value = first_tensor(output)
        raise _StopForward(layout_of(module, value, layer).to_canonical(value))

    handle = model.get_submodule(layer).register_forward_hook(hook)
    try:
        model(inputs)
    except _StopForward as stop:
        return stop.output
    finally:
        handle.remove()
    raise ModelError(f"layer {layer!r} did not run in the forward pass")


class _LeafTracer(fx.Tracer):
    """Keeps the requested layers as single call_module nodes, so their outputs are graph values."""

    def __init__(self, leaves: set[str]):
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return module_qualified_name in self.leaves or super().is_leaf_module(m, module_qualified_name)


def trace(model: nn.Module, layers: Sequence[str]) -> fx.GraphModule:
    try:
        graph = _LeafTracer(set(layers)).trace(model)
    except Exception as error:  # fx raises many kinds on dynamic control flow
        raise ModelError(f"torch.fx cannot trace this model ({type(error).__name__}: {error})") from error
    return fx.GraphModule(model, graph)


def _layer_node(graph: fx.Graph, layer: str) -> fx.Node:
    nodes = [n for n in graph.nodes if n.op == "call_module" and n.target == layer]
    if len(nodes) != 1:
        raise ModelError(
            f"layer {layer!r} is called {len(nodes)} times in the model's graph; pick a module called once"
        )
    return nodes[0]


def _ancestors(node: fx.Node) -> set[fx.Node]:
    seen: set[fx.Node] = set()
    stack = list(node.all_input_nodes)
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(current.all_input_nodes)
    return seen


def check_layer_order(traced: fx.GraphModule, layers: Sequence[str]) -> None:
    """A ModelError before any work when ``layers`` are not listed from the logit down (each computed from the
    next), naming the first pair that is not and the order that works when there is one."""
    nodes = {layer: _layer_node(traced.graph, layer) for layer in layers}
    position = {node: i for i, node in enumerate(traced.graph.nodes)}

    def feeds(lower: str, upper: str) -> bool:
        return nodes[lower] in _ancestors(nodes[upper])

    for upper, lower in zip(layers[:-1], layers[1:], strict=True):
        if feeds(lower, upper):
            continue
        suggestion = sorted(layers, key=lambda layer: -position[nodes[layer]])
        works = all(feeds(b, a) for a, b in zip(suggestion[:-1], suggestion[1:], strict=True))
        hint = (f": list them from the logit down, --layers {','.join(suggestion)}" if works else
                ": each layer must be computed from the next one listed (pick layers on one path to the logit)")
        raise ModelError(f"layer {upper!r} is not computed from {lower!r}, listed after it{hint}")


def _is_batch_size(node: fx.Node) -> bool:
    """``x.size(0)`` or ``x.shape[0]`` of some tensor: read from the segment's own input instead."""
    if node.op == "call_method" and node.target == "size":
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
        return isinstance(dim, int) and dim == 0
    if node.op == "call_function" and node.target is operator.getitem and node.args[1] == 0:
        source = node.args[0]
        return bool(
            isinstance(source, fx.Node) and source.op == "call_function" and source.target is getattr
            and source.args[1] == "shape"
        )
    return False


def extract_segment(traced: fx.GraphModule, lower: str, upper: str) -> fx.GraphModule:
    """The computation from ``lower``'s output to ``upper``'s output, as a module of one argument.

    Every graph node that ``upper`` depends on through ``lower`` is kept, so residual additions and
    parallel branches between the two layers are part of the segment.
    """
    lower_node, upper_node = _layer_node(traced.graph, lower), _layer_node(traced.graph, upper)
    if lower_node not in _ancestors(upper_node):
        raise ModelError(f"{upper!r} does not depend on {lower!r}: list layers from the logit down")
    needed: set[fx.Node] = set()
    batch_sizes: set[fx.Node] = set()
    stack = [upper_node]
    while stack:
        node = stack.pop()
        if node in needed or node is lower_node or node in batch_sizes:
            continue
        if _is_batch_size(node):
            # `bs = x.size(0)` of the input: the lower output has the same batch size.
            batch_sizes.add(node)
            continue
        if node.op == "placeholder":
            raise ModelError(
                f"the computation from {lower!r} to {upper!r} also reads the model input directly "
                "(a skip connection around the lower layer); choose adjacent layers without one"
            )
        needed.add(node)
        stack.extend(node.all_input_nodes)
    graph = fx.Graph()
    env: dict[fx.Node, fx.Node] = {lower_node: graph.placeholder("lower_output")}
    for node in batch_sizes:
        env[node] = graph.call_method("size", (env[lower_node], 0))
    for node in traced.graph.nodes:
        if node in needed:
            env[node] = graph.node_copy(node, lambda n: env[n])
    graph.output(env[upper_node])
    segment = fx.GraphModule(traced, graph)
    segment.eval()
    return segment


class LayoutSegment(nn.Module):
    """A segment between canonical forms: the lower layer's ``[B, neurons, positions...]`` in, the upper layer's
    out, with only the positions its activation averages (a ViT's class token dropped unless included)."""

    def __init__(self, segment: nn.Module, lower: NeuronLayout, upper: NeuronLayout):
        super().__init__()
        self.segment, self.lower, self.upper = segment, lower, upper

    def forward(self, canonical: torch.Tensor) -> torch.Tensor:
        native = self.segment(self.lower.to_native(canonical))
        return self.upper.for_means(self.upper.to_canonical(native))


def canonical_segment(traced: fx.GraphModule, lower: str, upper: str) -> nn.Module:
    """:func:`extract_segment` between the canonical forms of the two layers (whose layouts a forward pass through
    them found); between channels-first layers it is the segment itself."""
    segment = extract_segment(traced, lower, upper)
    lower_layout, upper_layout = known_layout(traced, lower), known_layout(traced, upper)
    if lower_layout == upper_layout == NeuronLayout():
        return segment
    return LayoutSegment(segment, lower_layout, upper_layout)


def resolve_token_activations(model: nn.Module, layers: Sequence[str], class_token: str,
                               overrides: Mapping[str, str] | None = None, crop: int = 224,
                               traced: fx.GraphModule | None = None) -> dict[str, str]:
    """Sets ``layers``' layouts on ``model`` (``overrides``: a kind per layer) with what each token layer's
    activation averages, and returns that per token layer (``exclude``, ``include`` or ``only``).

    ``class_token`` is one of ``exclude``, ``include``, ``only`` (every token layer) or ``auto``: ``only`` for a
    token layer whose upper layer in ``layers`` reads nothing but its leading (class) tokens, as a ViT's head
    reads its last block through ``x[:, 0]``, so that the activation its attributions credit is the one its
    concept is ranked by; ``exclude`` elsewhere. Found on one blank ``crop`` x ``crop`` input: the upper layer's
    gradient is exactly zero on every patch token of a layer it reads through the class token only.
    """
    layers = list(layers)
    if class_token != "auto":
        assign_layouts(model, layers, overrides, class_token)
        return {layer: class_token for layer, layout in _probed(model, layers, crop).items() if layout.kind == "tokens"}
    assign_layouts(model, layers, overrides, "exclude")
    found = _probed(model, layers, crop)
    tokens = [layer for layer in layers[1:] if found[layer].kind == "tokens" and found[layer].prefix_tokens > 0]
    chosen = {layer: "exclude" for layer, layout in found.items() if layout.kind == "tokens"}
    if tokens:
        traced = traced if traced is not None else trace(model, layers)
        device = next(iter(model.parameters())).device
        _, maps = record_layers(model, torch.zeros(1, 3, crop, crop, device=device), layers, keep=tokens)
        upper_of = dict(zip(layers[1:], layers[:-1], strict=True))
        for layer in tokens:
            if reads_prefix_only(canonical_segment(traced, layer, upper_of[layer]), maps[layer].to(device),
                                 found[layer].prefix_tokens):
                chosen[layer] = "only"
    assign_layouts(model, layers, overrides, chosen)  # found again by the next forward pass through them
    return chosen


def reads_prefix_only(segment: nn.Module, canonical: torch.Tensor, prefix: int) -> bool:
    """Whether ``segment``'s output depends on its canonical input ``[B, neurons, tokens]`` through the first
    ``prefix`` tokens only (a zero gradient on every other token, a non-zero one on them)."""
    x = canonical.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(neuron_means(segment(x)).sum(), x)
    return bool(gradient[:, :, prefix:].abs().max() == 0 and gradient[:, :, :prefix].abs().max() > 0)


def _probed(model: nn.Module, layers: Sequence[str], crop: int) -> dict[str, NeuronLayout]:
    """The layouts of ``layers`` (one forward pass of a blank input)."""
    device = next(iter(model.parameters())).device
    return probe_layouts(model, torch.zeros(1, 3, crop, crop, device=device), layers)


def _ablation_hook(layer: str, index: torch.Tensor, mode: str, value: torch.Tensor | None,
                   layout: NeuronLayout | None):
    """The forward hook of one layer: the chosen neurons (``mask``) or all others (``retain``) are replaced by
    zero (``value`` None) or by ``value[c]`` at every position of neuron c (every token, class token included)."""

    def hook(module: nn.Module, _args: object, output: object) -> torch.Tensor:
        tensor = first_tensor(output)
        found = layout or layout_of(module, tensor, layer)
        width = found.width(found.check(tensor, layer))
        if value is not None and value.shape != (width,):
            raise ModelError(f"layer {layer!r} has {width} neurons but its ablation values have shape "
                             f"{list(value.shape)}")
        chosen = torch.zeros(width, dtype=torch.bool, device=tensor.device)
        chosen[index.to(tensor.device)] = True
        ablated = chosen if mode == "mask" else ~chosen
        shape = found.unit_shape(tensor)
        if value is None:
            # Multiplying by 0/1 (rather than writing zeros) keeps the exact arithmetic masks always had.
            return tensor * (~ablated).to(tensor.dtype).view(shape)
        replacement = value.to(device=tensor.device, dtype=tensor.dtype).view(shape)
        return torch.where(ablated.view(shape), replacement, tensor)

    return hook


@contextmanager
def channel_hooks(
    model: nn.Module,
    channels: Mapping[str, Sequence[int]],
    mode: str = "mask",
    replacement: Mapping[str, torch.Tensor] | None = None,
    layouts: Mapping[str, NeuronLayout] | None = None,
) -> Iterator[None]:
    """Ablate ``channels`` of each layer (``mask``) or every other channel of it (``retain``) while inside.

    An ablated channel is zero, or, when ``replacement`` has a ``[C]`` tensor for its layer, that tensor's value
    for the channel at every position (mean ablation: the channel's mean activation). Layers without a
    replacement are zeroed. A channel is a neuron of the layer's layout (``layouts[layer]``, else the one its
    module knows or detects): a ViT hidden unit is ablated at every token. The hooks are removed on exit,
    whatever happens.
    """
    if mode not in ("mask", "retain"):
        raise ValueError(f"mode must be 'mask' or 'retain', not {mode!r}")
    values = dict(replacement or {})
    handles = []
    try:
        for layer, chosen in channels.items():
            index = torch.as_tensor(list(chosen), dtype=torch.long)
            value = values.get(layer)
            hook = _ablation_hook(layer, index, mode, None if value is None else value.detach().float().reshape(-1),
                                  (layouts or {}).get(layer))
            handles.append(model.get_submodule(layer).register_forward_hook(hook))
        yield
    finally:
        for handle in handles:
            handle.remove()
