"""One forward pass over a class's patches: every layer's spatial means, and the full outputs of the lower layers
that fit in memory, which attribution then starts from instead of recomputing the input-to-layer prefix.

A :class:`Recording` is a value: building a circuit makes one and drops it, a circuit handle makes one for its
studies and keeps it. Nothing in the engine holds one between calls.

>>> recording = record_patches(loaded, layers, PatchSet(views, loaded.preprocessing), config)  # doctest: +SKIP
>>> recording.means["_blocks.15"].shape          # [patches, channels]                         # doctest: +SKIP
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from tqdm import tqdm

from neurflow.engine.config import BuildConfig
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import PatchSet
from neurflow.engine.segments import layer_output, record_layers


@dataclass(frozen=True)
class Recording:
    """``means``: per layer, [patches, neurons] spatial means (float32); ``maps``: per kept lower layer, the
    [patches, neurons, positions...] outputs in canonical form, on the CPU."""

    patches: PatchSet
    means: dict[str, np.ndarray]
    maps: dict[str, torch.Tensor] = field(default_factory=dict)

    def lower_maps(self, loaded: LoadedModel, chunk: Sequence[int], layer: str) -> torch.Tensor:
        """Full outputs of ``layer`` for the patches in ``chunk``, on the model's device: kept, or recomputed."""
        if layer in self.maps:
            return self.maps[layer][list(chunk)].to(loaded.device)
        return layer_output(loaded.module, self.patches.inputs(list(chunk), loaded.device), layer)

    def layer_maps(self, loaded: LoadedModel, layer: str, patches_per_pass: int) -> torch.Tensor:
        """[patches, ...] outputs of ``layer`` for every patch, on the CPU: kept, or recomputed in batches."""
        kept = self.maps.get(layer)
        if kept is not None:
            return kept
        return torch.cat([self.lower_maps(loaded, batch, layer).cpu()
                          for batch in self.patches.batches(patches_per_pass)])

    def with_maps(self, layer: str, maps: torch.Tensor) -> Recording:
        """The same recording, with ``layer``'s full outputs kept too (for one layer pair's work; this recording
        is left as it was, so that its memory does not grow with every pair)."""
        return replace(self, maps={**self.maps, layer: maps})


def record_patches(loaded: LoadedModel, layers: Sequence[str], patches: PatchSet, config: BuildConfig,
                   keep_maps: bool = True, progress: bool = False) -> Recording:
    """One forward pass over every patch, recording every layer's spatial means.

    With ``keep_maps``, the full outputs of the layers below the top are kept, from the top down, as long as they
    fit in ``config.map_cache_mb``; the layers that do not fit are recomputed for the patches that need them.
    """
    layers = list(layers)
    chunks: dict[str, list[torch.Tensor]] = defaultdict(list)
    kept: dict[str, list[torch.Tensor]] = defaultdict(list)
    keep: list[str] | None = None if keep_maps else []
    batches = list(patches.batches(config.patches_per_pass(loaded.device)))
    for batch in tqdm(batches, desc="activations", unit="batch", disable=not progress, leave=False):
        inputs = patches.inputs(batch, loaded.device)
        means, maps = record_layers(loaded.module, inputs, layers, layers[1:] if keep is None else keep)
        if keep is None:
            keep = layers_that_fit(layers[1:], {name: value[0].numel() * 4 for name, value in maps.items()},
                                   len(patches), config.map_cache_mb * 2**20)
        for layer, values in means.items():
            chunks[layer].append(values)
        for layer in keep:
            kept[layer].append(maps[layer])
    return Recording(patches, {layer: torch.cat(values).numpy() for layer, values in chunks.items()},
                     {layer: torch.cat(values) for layer, values in kept.items()})


def layers_that_fit(layers: Sequence[str], bytes_per_patch: dict[str, int], patches: int, budget: int) -> list[str]:
    """The first of ``layers`` (top down) whose outputs for every patch fit in ``budget`` bytes together."""
    keep = []
    for layer in layers:
        size = bytes_per_patch[layer] * patches
        if size > budget:
            break
        keep.append(layer)
        budget -= size
    return keep
