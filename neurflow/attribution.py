"""Integrated gradients between two layers, batched over (target, patch, step) rows.

For a target neuron a of the upper layer and a source map h of the lower layer, with zero baseline:

    IG_s(h) = sum over positions of  h_s * integral_0^1 d f_a(alpha h) / d h_s  d alpha

where f_a is the spatial mean of channel a of the segment's output. The integral uses Gauss-Legendre
(default) or midpoint-Riemann nodes. Completeness: sum_s IG_s(h) = f_a(h) - f_a(0) up to quadrature error.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from neurflow.hooks import spatial_mean


def quadrature(steps: int, method: str = "gauss-legendre") -> tuple[torch.Tensor, torch.Tensor]:
    """Nodes alpha in (0, 1) and weights that sum to 1 for ``steps`` evaluations."""
    if method == "gauss-legendre":
        nodes, weights = np.polynomial.legendre.leggauss(steps)
        alphas, weights = (nodes + 1) / 2, weights / 2
    elif method == "riemann-midpoint":
        alphas, weights = (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    else:
        raise ValueError(f"unknown quadrature {method!r}")
    return torch.tensor(alphas, dtype=torch.float32), torch.tensor(weights, dtype=torch.float32)


def integrated_gradients(
    segment: Callable[[torch.Tensor], torch.Tensor],
    sources: torch.Tensor,
    targets: torch.Tensor,
    steps: int = 50,
    method: str = "gauss-legendre",
    batch_size: int = 128,
    source_index: torch.Tensor | None = None,
) -> torch.Tensor:
    """Spatially summed attributions [rows, channels] of each row's target to its source channels.

    ``sources``: [n, C, ...] lower-layer outputs; row r reads ``sources[source_index[r]]`` (default: row r)
    and attributes upper channel ``targets[r]``. Rows and steps are packed into calls of at most
    ``batch_size`` inputs; each call is one forward and one backward pass. Rows never interact (the model
    is in eval mode), so one backward of the summed outputs gives every row its own gradient.
    """
    device = sources.device
    index = torch.arange(sources.shape[0], device=device) if source_index is None else source_index.to(device)
    targets = targets.to(device)
    rows = index.shape[0]
    alphas, weights = quadrature(steps, method)
    alphas, weights = alphas.to(device), weights.to(device)
    shape = (1,) * (sources.dim() - 1)
    result = torch.zeros(rows, sources.shape[1], device=device)
    total = rows * steps
    # (row, step) pairs in row-major order; a call may span rows and split a row's steps.
    for start in range(0, total, max(1, batch_size)):
        flat = torch.arange(start, min(start + batch_size, total), device=device)
        row, step = flat // steps, flat % steps
        source = sources[index[row]]
        scaled = (alphas[step].view(-1, *shape) * source).requires_grad_(True)
        with torch.enable_grad():
            chosen = spatial_mean(segment(scaled)).gather(1, targets[row].view(-1, 1))
            (grad,) = torch.autograd.grad(chosen.sum(), scaled)
        contribution = grad * source
        if contribution.dim() > 2:
            contribution = contribution.flatten(2).sum(-1)
        result.index_add_(0, row, contribution * weights[step].view(-1, 1))
    return result


@torch.no_grad()
def completeness_gap(
    segment: Callable[[torch.Tensor], torch.Tensor],
    sources: torch.Tensor,
    targets: torch.Tensor,
    attributions: torch.Tensor,
) -> torch.Tensor:
    """Per row: sum of attributions - (f(h) - f(0)); zero for exact integration."""
    index = targets.view(-1, 1).to(sources.device)
    at_source = spatial_mean(segment(sources)).gather(1, index)
    at_zero = spatial_mean(segment(torch.zeros_like(sources))).gather(1, index)
    return attributions.sum(1) - (at_source - at_zero).view(-1)
