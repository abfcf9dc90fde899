"""A faithful re-implementation of the NeurFlow authors' circuit procedure, as the baseline of the benchmark.

Cao et al. (ICLR 2025) attribute every target neuron on its own: for each layer pair (upper, lower) and
each core neuron ``a`` of the upper layer, over its concept patches V_a in batches of 4,

1. the lower layer's maps ``h`` are recomputed from the patch pixels (a forward pass from the input that
   stops at the lower layer; nothing is cached between targets),
2. ``captum.attr.IntegratedGradients(lambda h: spatial_mean(segment(h))[:, a])`` attributes the spatial
   mean of ``a`` to ``h`` with a zero baseline, 50 Gauss-Legendre steps,
3. the attributions are summed over positions (one score per lower channel and patch).

The scores are summed over V_a; the tau lower channels of largest |sum| are a's core set, and the union of
the core sets is the next layer's targets: the same recursion as ``neurflow.engine.builder.CircuitBuilder`` with
``ranking="sum"``, but per target, with captum, in batches of 4 patches.

The segment between two layers is neurflow's fx segment (``neurflow.engine.segments.extract_segment``), so both
procedures differentiate the very same computation; only the way the work is scheduled differs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from captum.attr import IntegratedGradients

from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import PatchSet
from neurflow.engine.segments import extract_segment, layer_output, spatial_mean, trace

CAPTUM_METHODS = {"gauss-legendre": "gausslegendre", "riemann-midpoint": "riemann_middle"}


def top_patches(values: np.ndarray, k: int) -> np.ndarray:
    """V_a: indices of the k most activating patches, largest first; ties broken by index (stable)."""
    return np.argsort(-values, kind="stable")[: min(k, len(values))]


def core_set(per_patch: np.ndarray, tau: int) -> np.ndarray:
    """S_a: the tau lower channels of largest |sum over V_a of the attribution| (the paper's ranking)."""
    return np.argsort(-np.abs(per_patch.sum(0)), kind="stable")[:tau]


@dataclass
class PairResult:
    """One layer pair of a circuit: per target its core set, and how long the attributions took."""

    upper: str
    lower: str
    core_sets: dict[int, np.ndarray]
    seconds: float
    rows: int  # (target, patch) pairs attributed
    peak_rss_mb: float | None = None
    peak_cuda_mb: float | None = None


@dataclass
class CircuitResult:
    pairs: list[PairResult] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.pairs)

    def core(self, layer: str) -> list[int]:
        for pair in self.pairs:
            if pair.lower == layer:
                return sorted({int(s) for chosen in pair.core_sets.values() for s in chosen})
        raise KeyError(layer)


def authors_attribute(
    loaded: LoadedModel,
    patches: PatchSet,
    segment: Callable[[torch.Tensor], torch.Tensor],
    lower: str,
    concepts: dict[int, np.ndarray],
    steps: int = 50,
    quadrature: str = "gauss-legendre",
    batch: int = 4,
) -> dict[int, np.ndarray]:
    """Per target a: [|V_a|, lower channels] captum integrated gradients, one target at a time."""
    method = CAPTUM_METHODS[quadrature]
    result: dict[int, np.ndarray] = {}
    for a, concept in concepts.items():
        ig = IntegratedGradients(lambda h, a=a: spatial_mean(segment(h))[:, a])
        rows = []
        for start in range(0, len(concept), batch):
            chosen = [int(p) for p in concept[start : start + batch]]
            # The input-to-lower prefix, recomputed from the pixels for every target and batch.
            maps = layer_output(loaded.module, patches.inputs(chosen, loaded.device), lower)
            attribution = ig.attribute(maps, baselines=0.0, n_steps=steps, method=method)
            if attribution.dim() > 2:
                attribution = attribution.flatten(2).sum(-1)
            rows.append(attribution.detach().double().cpu())
        result[a] = torch.cat(rows).numpy()
    return result


Attribute = Callable[[str, str, dict[int, np.ndarray]], dict[int, np.ndarray]]
Measure = Callable[[Callable[[], dict[int, np.ndarray]]], tuple[dict[int, np.ndarray], float, float | None, float | None]]


def _plain_measure(run: Callable[[], dict[int, np.ndarray]]):
    start = time.perf_counter()
    value = run()
    return value, time.perf_counter() - start, None, None


def run_circuit(
    attribute: Attribute,
    acts: dict[str, np.ndarray],
    layers: Sequence[str],
    class_index: int,
    k: int,
    tau: int,
    select: Callable[[np.ndarray, int], np.ndarray] = core_set,
    fixed_targets: dict[str, list[int]] | None = None,
    measure: Measure = _plain_measure,
) -> CircuitResult:
    """The top-down recursion from the class logit: V_a by activation, S_a by ``attribute``, union -> targets.

    ``attribute(upper, lower, concepts)`` returns per target its [|V_a|, lower channels] scores.
    ``fixed_targets`` (layer -> targets) replaces the union by given targets (to compare on equal targets).
    ``measure`` runs one pair's attribution and returns (scores, seconds, peak RSS MB, peak CUDA MB).
    """
    result = CircuitResult()
    targets = [class_index]
    for upper, lower in zip(layers, layers[1:], strict=False):
        if fixed_targets is not None and upper in fixed_targets:
            targets = list(fixed_targets[upper])
        concepts = {a: top_patches(acts[upper][:, a], k) for a in targets}
        scores, seconds, rss, cuda = measure(lambda u=upper, lo=lower, c=concepts: attribute(u, lo, c))
        core_sets = {a: select(scores[a], tau) for a in targets}
        result.pairs.append(PairResult(upper, lower, core_sets, seconds, sum(len(c) for c in concepts.values()),
                                       rss, cuda))
        targets = sorted({int(s) for chosen in core_sets.values() for s in chosen})
    return result


class AuthorsReference:
    """The authors' procedure on a loaded model: ``attribute(upper, lower, concepts)`` for :func:`run_circuit`."""

    def __init__(self, loaded: LoadedModel, patches: PatchSet, layers: Sequence[str], steps: int = 50,
                 quadrature: str = "gauss-legendre", batch: int = 4):
        self.loaded = loaded
        self.patches = patches
        self.traced = trace(loaded.module, list(layers))
        self.traced_layers = list(layers)
        self.steps = steps
        self.quadrature = quadrature
        self.batch = batch

    def attribute(self, upper: str, lower: str, concepts: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        segment = extract_segment(self.traced, lower, upper)
        return authors_attribute(self.loaded, self.patches, segment, lower, concepts, self.steps,
                                 self.quadrature, self.batch)

    def record(self, batch: int = 64) -> dict[str, np.ndarray]:
        """The authors' activation pass: a separate input-to-layer forward for every layer (spatial means)."""
        result: dict[str, np.ndarray] = {}
        for layer in self.traced_layers:
            chunks = [spatial_mean(layer_output(self.loaded.module, self.patches.inputs(chunk, self.loaded.device),
                                                layer)).cpu()
                      for chunk in self.patches.batches(batch)]
            result[layer] = torch.cat(chunks).numpy()
        return result
