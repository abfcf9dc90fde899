"""Neuron layouts on torchvision's transformers (random weights): ViT tokens, Swin channels-last, ConvNeXt.

Segments equal the model between layers, integrated gradients agree with captum and are complete on a ViT
block, masking a hidden unit changes exactly that unit, and a layout that cannot read a shape says so.
"""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from neurflow.engine.attribution import completeness_gap, integrated_gradients, quadrature
from neurflow.engine.config import parse_layout_overrides
from neurflow.engine.layouts import (
    NeuronLayout,
    assign_layouts,
    detect_layout,
    known_layout,
    neuron_means,
    probe_layouts,
)
from neurflow.engine.models import LoadedModel, load_model
from neurflow.engine.segments import (
    canonical_segment,
    channel_hooks,
    record_layers,
    resolve_token_activations,
    trace,
)
from neurflow.registry import REGISTRY, ModelError

VIT_BLOCKS = ["heads", "encoder.layers.encoder_layer_11", "encoder.layers.encoder_layer_10"]
SWIN_BLOCKS = ["head", "features.7.1", "features.7.0", "features.6"]


@pytest.fixture(scope="module")
def vit() -> LoadedModel:
    return load_model("vit_b_16", random_weights=True, device="cpu")


@pytest.fixture(scope="module")
def swin() -> LoadedModel:
    return load_model("swin_t", random_weights=True, device="cpu")


def images(count: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(count, 3, 224, 224, generator=torch.Generator().manual_seed(seed))


def test_layouts_are_found_from_the_shape_and_the_module(vit: LoadedModel, swin: LoadedModel) -> None:
    found = probe_layouts(vit.module, images(1), VIT_BLOCKS)
    assert found["heads"] == NeuronLayout("channels-first")
    assert found["encoder.layers.encoder_layer_11"] == NeuronLayout("tokens", prefix_tokens=1)  # 197 = 1 + 14^2
    found = probe_layouts(swin.module, images(1), SWIN_BLOCKS)
    assert {layer: layout.kind for layer, layout in found.items()} == {
        "head": "channels-first", "features.7.1": "channels-last", "features.7.0": "channels-last",
        "features.6": "channels-last",
    }
    convnext = load_model("convnext_tiny", random_weights=True, device="cpu")
    found = probe_layouts(convnext.module, images(1), ["classifier.2", "features.7.2", "features.7.2.block.3"])
    assert {layer: layout.kind for layer, layout in found.items()} == {
        "classifier.2": "channels-first", "features.7.2": "channels-first", "features.7.2.block.3": "channels-last"}
    # Square shapes that cannot tell: the module decides (a Linear keeps its features last).
    assert detect_layout(nn.Linear(7, 7), torch.zeros(1, 7, 7, 7)).kind == "channels-last"
    assert detect_layout(nn.Conv2d(7, 7, 1), torch.zeros(1, 7, 7, 7)).kind == "channels-first"
    assert detect_layout(nn.Conv1d(3, 8, 1), torch.zeros(2, 8, 10)).kind == "channels-first"


def test_default_layer_lists_exist_and_run(vit: LoadedModel, swin: LoadedModel) -> None:
    for name, loaded in (("vit_b_16", vit), ("swin_t", swin)):
        layers = list(REGISTRY[name].layers)
        assert loaded.layers == layers and len(layers) >= 10
        found = probe_layouts(loaded.module, images(1), layers)
        assert set(found) == set(layers)


def test_an_unsupported_shape_or_a_wrong_override_names_the_shape(vit: LoadedModel) -> None:
    with pytest.raises(ModelError, match=r"shape \[1, 2, 3, 4, 5\]"):
        detect_layout(nn.Identity(), torch.zeros(1, 2, 3, 4, 5), "clip")
    assign_layouts(vit.module, VIT_BLOCKS, {"encoder.layers.encoder_layer_11": "channels-last"})
    try:
        with pytest.raises(ModelError, match=r"layer 'encoder.layers.encoder_layer_11' outputs a tensor of shape "
                                             r"\[1, 197, 768\], which the channels-last layout cannot read"):
            probe_layouts(vit.module, images(1), VIT_BLOCKS)
        with pytest.raises(ModelError, match="not among the layers"):
            assign_layouts(vit.module, VIT_BLOCKS, {"encoder.ln": "tokens"})
    finally:
        assign_layouts(vit.module, VIT_BLOCKS)
    with pytest.raises(ValueError, match="LAYER=KIND"):
        parse_layout_overrides(["encoder.ln:tokens"])


def test_the_class_token_is_left_out_of_a_hidden_units_activation_unless_included(vit: LoadedModel) -> None:
    layer = "encoder.layers.encoder_layer_11"
    x = images(2)
    kept: dict[str, torch.Tensor] = {}

    def keep(_m: nn.Module, _a: object, out: torch.Tensor) -> None:
        kept.setdefault("out", out)

    handle = vit.module.get_submodule(layer).register_forward_hook(keep)
    try:
        assign_layouts(vit.module, VIT_BLOCKS)
        means, maps = record_layers(vit.module, x, VIT_BLOCKS, keep=[layer])
        tokens = kept["out"]  # [2, 197, 768]
        torch.testing.assert_close(means[layer], tokens[:, 1:].mean(1))
        torch.testing.assert_close(maps[layer], tokens.transpose(1, 2))  # canonical: [B, 768, 197]
        assign_layouts(vit.module, VIT_BLOCKS, class_token="include")
        included, _ = record_layers(vit.module, x, VIT_BLOCKS)
        torch.testing.assert_close(included[layer], tokens.mean(1))
    finally:
        handle.remove()
        assign_layouts(vit.module, VIT_BLOCKS)


def test_auto_takes_the_class_token_alone_where_the_layer_above_reads_only_it(vit: LoadedModel) -> None:
    # The head reads block 11 through x[:, 0] only: block 11's units are their class token, so the activation a
    # concept ranks patches by is the one the head's attributions credit. Block 11 reads every token of block 10.
    last, below = VIT_BLOCKS[1], VIT_BLOCKS[2]
    kept: dict[str, torch.Tensor] = {}
    handle = vit.module.get_submodule(last).register_forward_hook(lambda _m, _a, out: kept.__setitem__("out", out))
    try:
        chosen = resolve_token_activations(vit.module, VIT_BLOCKS, "auto")
        assert chosen == {last: "only", below: "exclude"}
        means, _ = record_layers(vit.module, images(2), VIT_BLOCKS)
        torch.testing.assert_close(means[last], kept["out"][:, 0])
        # Independently of the blank input the rule looked at: a head unit's gradient on block 11 lives on the class
        # token of real-looking inputs too, and block 11 reads block 10's patch tokens.
        traced = trace(vit.module, VIT_BLOCKS)
        _, maps = record_layers(vit.module, images(2, seed=3), VIT_BLOCKS, keep=[last, below])
        for lower, upper, only in ((last, "heads", True), (below, last, False)):
            x = maps[lower].clone().requires_grad_(True)
            with torch.enable_grad():
                output = neuron_means(canonical_segment(traced, lower, upper)(x))[:, 7].sum()
                (gradient,) = torch.autograd.grad(output, x)
            assert bool(gradient[:, :, 1:].abs().max() == 0) is only
            assert gradient[:, :, 0].abs().max() > 0
        assert resolve_token_activations(vit.module, VIT_BLOCKS, "include") == {last: "include", below: "include"}
    finally:
        handle.remove()
        assign_layouts(vit.module, VIT_BLOCKS)


def test_a_vit_defaults_to_auto_and_its_circuits_record_it() -> None:
    from neurflow.engine.config import BuildConfig

    assert BuildConfig("vit_b_16").class_token == "auto"
    assert BuildConfig("vit_b_16").circuit_params()["class_token"] == "auto"
    assert "class_token" not in BuildConfig("resnet50").circuit_params()  # CNN ids unchanged
    assert "class_token" not in BuildConfig("vit_b_16", class_token="exclude").circuit_params()


@pytest.mark.parametrize("model,layers", [("vit", VIT_BLOCKS), ("swin", SWIN_BLOCKS)])
def test_canonical_segments_compute_what_the_model_computes(model: str, layers: list[str],
                                                            request: pytest.FixtureRequest) -> None:
    loaded: LoadedModel = request.getfixturevalue(model)
    assign_layouts(loaded.module, layers)
    x = images(2, seed=1)
    means, maps = record_layers(loaded.module, x, layers, keep=layers)
    traced = trace(loaded.module, layers)
    with torch.no_grad():
        for lower, upper in zip(layers[1:], layers[:-1], strict=True):
            segment = canonical_segment(traced, lower, upper)
            torch.testing.assert_close(neuron_means(segment(maps[lower])), means[upper], rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def vit_block(vit: LoadedModel) -> tuple[nn.Module, torch.Tensor]:
    """One ViT encoder block as a canonical segment, and its input for two images ([2, 768, 197])."""
    assign_layouts(vit.module, VIT_BLOCKS)
    _, maps = record_layers(vit.module, images(2, seed=2), VIT_BLOCKS, keep=VIT_BLOCKS[2:])
    segment = canonical_segment(trace(vit.module, VIT_BLOCKS), VIT_BLOCKS[2], VIT_BLOCKS[1])
    return segment, maps[VIT_BLOCKS[2]]


def test_integrated_gradients_agree_with_captum_on_a_vit_block(vit_block: tuple[nn.Module, torch.Tensor]) -> None:
    segment, h = vit_block
    rows = [(0, 5), (1, 5), (0, 700)]
    ours = integrated_gradients(segment, h, torch.tensor([t for _, t in rows]), steps=8, batch_size=8,
                                source_index=torch.tensor([i for i, _ in rows]))
    for row, (image, target) in enumerate(rows):
        ig = IntegratedGradients(lambda x, t=target: neuron_means(segment(x))[:, t])
        reference = ig.attribute(h[image : image + 1], baselines=0.0, n_steps=8, method="gausslegendre")
        # Summed over every token, the class token included: the unit's attribution.
        torch.testing.assert_close(ours[row], reference.sum(2)[0], rtol=1e-3, atol=1e-5)


@pytest.mark.slow  # 64 nodes, two rules, on a ViT-B/16 block: ~11 s here
def test_integrated_gradients_are_complete_on_a_vit_block_with_graded_nodes(
        vit_block: tuple[nn.Module, torch.Tensor]) -> None:
    segment, h = vit_block
    targets = torch.tensor([3, 400])
    with torch.no_grad():
        delta = (neuron_means(segment(h)) - neuron_means(segment(torch.zeros_like(h)))).gather(1, targets.view(-1, 1))
    relative = {}
    for method in ("gauss-legendre", "gauss-legendre-graded"):
        attributions = integrated_gradients(segment, h, targets, steps=64, batch_size=32, method=method)
        relative[method] = completeness_gap(segment, h, targets, attributions).abs() / delta.view(-1).abs()
    # LayerNorm first: f(alpha h) jumps near alpha = 1e-6, which uniform nodes never see (why ViT and Swin
    # default to graded nodes); the graded rule integrates it, within 1 % of f(h) - f(0).
    assert (relative["gauss-legendre-graded"] <= 0.01).all(), relative
    assert (relative["gauss-legendre"] >= 0.1).all(), relative


def test_graded_nodes_lie_in_the_unit_interval_and_their_weights_sum_to_one() -> None:
    for steps in (4, 5, 16, 64):
        alphas, weights = quadrature(steps, "gauss-legendre-graded")
        assert len(alphas) == steps and 0 < alphas.min() and alphas.max() < 1
        assert weights.sum().item() == pytest.approx(1.0, abs=1e-6)
    # Exact on smooth integrands too: the integral of 3 alpha^2 over [0, 1] is 1.
    alphas, weights = quadrature(16, "gauss-legendre-graded")
    assert (weights * 3 * alphas**2).sum().item() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("model,layer,unit", [("vit", "encoder.layers.encoder_layer_10", 17),
                                              ("swin", "features.7.0", 33)])
def test_masking_a_hidden_unit_changes_exactly_that_unit(model: str, layer: str, unit: int,
                                                         request: pytest.FixtureRequest) -> None:
    loaded: LoadedModel = request.getfixturevalue(model)
    x = images(1, seed=3)
    seen: list[torch.Tensor] = []

    def record(_m: nn.Module, _a: object, output: torch.Tensor) -> None:
        seen.append(output.detach().clone())

    with torch.no_grad():
        plain = loaded.module(x)
        with channel_hooks(loaded.module, {layer: [unit]}):
            handle = loaded.module.get_submodule(layer).register_forward_hook(record)  # after the mask's hook
            try:
                masked = loaded.module(x)
            finally:
                handle.remove()
        handle = loaded.module.get_submodule(layer).register_forward_hook(record)
        try:
            loaded.module(x)
        finally:
            handle.remove()
    after, before = seen
    changed = (after != before).nonzero()
    assert (changed[:, -1] == unit).all()  # the unit is on the last dimension of tokens and channels-last
    assert (after[..., unit] == 0).all() and (before[..., unit] != 0).any()
    assert known_layout(loaded.module, layer).kind in ("tokens", "channels-last")
    assert not torch.equal(plain, masked)


def test_random_weights_give_a_vit_whose_logits_depend_on_the_image(vit: LoadedModel) -> None:
    """torchvision initialises ViT's head to zeros; `--random-weights` redraws it, so that attributions from
    the logits are not all zero."""
    head = vit.module.get_submodule("heads.head")
    assert isinstance(head, nn.Linear) and head.weight.any()
    torch.manual_seed(0)
    with torch.no_grad():
        logits = vit.module(torch.randn(2, 3, 224, 224))
    assert not torch.allclose(logits[0], logits[1])
