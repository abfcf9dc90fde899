"""Integrated gradients between layers: hand-computed tiny cases, completeness, captum agreement."""

from __future__ import annotations

import pytest
import torch
from captum.attr import IntegratedGradients
from torch import nn

from neurflow.engine.attribution import completeness_gap, integrated_gradients, quadrature
from neurflow.engine.models import load_model
from neurflow.engine.segments import extract_segment, layer_output, spatial_mean, trace


@pytest.mark.parametrize("method", ["gauss-legendre", "riemann-midpoint"])
def test_quadrature_weights_sum_to_one_on_unit_interval(method: str) -> None:
    alphas, weights = quadrature(12, method)
    assert weights.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert 0 < alphas.min().item() and alphas.max().item() < 1


def test_linear_segment_attribution_is_weight_times_mean_activation() -> None:
    # f_a(h) = mean over positions of sum_s W[a, s] h_s  =>  IG_s = W[a, s] * mean(h_s), for any steps.
    conv = nn.Conv2d(3, 2, kernel_size=1, bias=False)
    weight = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, 1.0]])
    conv.weight.data = weight.view(2, 3, 1, 1)
    h = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).view(2, 3, 2, 2) / 10
    targets = torch.tensor([0, 1])
    attributions = integrated_gradients(conv, h, targets, steps=3)
    expected = weight[targets] * h.mean((2, 3))
    torch.testing.assert_close(attributions, expected)


def test_cubic_segment_matches_closed_form_and_riemann_error() -> None:
    # f_a(h) = mean(h_a^3): IG_a = mean(h_a^3) exactly (Gauss-Legendre is exact on polynomials);
    # the midpoint rule integrates 3 alpha^2 as 1 - 1/(4 N^2).
    class Cube(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x**3

    h = torch.tensor([[[[1.0, 2.0]], [[-1.0, 0.5]]]])  # [1, 2, 1, 2]
    exact = (h**3).mean((2, 3))[0]
    for target in (0, 1):
        gl = integrated_gradients(Cube(), h, torch.tensor([target]), steps=3)
        torch.testing.assert_close(gl[0, target], exact[target])
        assert gl[0, 1 - target].item() == 0.0
        steps = 4
        riemann = integrated_gradients(Cube(), h, torch.tensor([target]), steps=steps, method="riemann-midpoint")
        torch.testing.assert_close(riemann[0, target], exact[target] * (1 - 1 / (4 * steps**2)))


def test_batching_does_not_change_results() -> None:
    torch.manual_seed(0)
    segment = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 5, 1))
    h = torch.randn(3, 4, 5, 5)
    index = torch.tensor([0, 0, 1, 2, 2, 2])
    targets = torch.tensor([0, 4, 2, 1, 3, 0])
    one_call = integrated_gradients(segment, h, targets, steps=10, batch_size=10_000, source_index=index)
    tiny_calls = integrated_gradients(segment, h, targets, steps=10, batch_size=7, source_index=index)
    torch.testing.assert_close(one_call, tiny_calls)
    per_row = torch.stack([
        integrated_gradients(segment, h[i : i + 1], targets[r : r + 1], steps=10)[0] for r, i in enumerate(index)
    ])
    torch.testing.assert_close(one_call, per_row)


def test_completeness_on_smooth_segment() -> None:
    torch.manual_seed(1)
    segment = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1), nn.Tanh(), nn.Conv2d(6, 5, 1), nn.Sigmoid())
    h = torch.randn(4, 4, 6, 6)
    targets = torch.tensor([0, 1, 2, 3])
    attributions = integrated_gradients(segment, h, targets, steps=16)
    gap = completeness_gap(segment, h, targets, attributions)
    assert gap.abs().max().item() < 1e-5


@pytest.fixture(scope="module")
def resnet18_block() -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    loaded = load_model("resnet18", random_weights=True, device="cpu")
    traced = trace(loaded.module, ["layer4.0", "layer4.1"])
    segment = extract_segment(traced, "layer4.0", "layer4.1")
    h = layer_output(loaded.module, torch.randn(3, 3, 224, 224), "layer4.0")
    return segment, h


def test_completeness_on_resnet_block_with_skip_connection(resnet18_block) -> None:
    # ReLU makes f piecewise linear along the path, so the quadrature error is small but not zero:
    # the stated tolerance is 1 % of |f(h) - f(0)| at N = 50.
    segment, h = resnet18_block
    targets = torch.tensor([3, 100, 511])
    attributions = integrated_gradients(segment, h, targets, steps=50)
    gap = completeness_gap(segment, h, targets, attributions)
    with torch.no_grad():
        delta = spatial_mean(segment(h)).gather(1, targets.view(-1, 1)).view(-1) - spatial_mean(
            segment(torch.zeros_like(h))
        ).gather(1, targets.view(-1, 1)).view(-1)
    assert (gap.abs() <= 0.01 * delta.abs() + 1e-4).all(), (gap, delta)


@pytest.mark.parametrize("method,captum_method", [("gauss-legendre", "gausslegendre"),
                                                  ("riemann-midpoint", "riemann_middle")])
def test_agrees_with_captum_per_target_reference(resnet18_block, method: str, captum_method: str) -> None:
    segment, h = resnet18_block
    rows = [(0, 7), (1, 7), (2, 300), (0, 42)]
    ours = integrated_gradients(
        segment, h, torch.tensor([t for _, t in rows]), steps=20, method=method, batch_size=16,
        source_index=torch.tensor([i for i, _ in rows]),
    )
    for row, (image, target) in enumerate(rows):
        ig = IntegratedGradients(lambda x, t=target: spatial_mean(segment(x))[:, t])
        reference = ig.attribute(h[image : image + 1], baselines=0.0, n_steps=20, method=captum_method)
        torch.testing.assert_close(ours[row], reference.sum((2, 3))[0], rtol=1e-4, atol=1e-5)
