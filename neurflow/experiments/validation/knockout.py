"""The knockout concept and its loss (the paper's Definition 2), exact and batched, and the layer pairs the
correlation and optimality studies run it on.

For a target a (a channel or unit of an upper layer U) and a set S of channels of the layer L below it:

    V_a^(S)  = a's top-k patches over ALL the class's patches when the channels S of L are ablated
    L(S, a)  = |V_a^(S) ∩ V_a| / |V_a|,   k = |V_a|

L is the share of a's concept that survives the knockout: 1 when S does not touch the concept, lower when more
of it is destroyed (the studies look for sets with a LOW loss). Ablated channels are set to a replacement
value at every position: 0 (``zero``, the paper) or a per-channel value (``mean``: the channel's mean).

Exact: every patch goes through the model's real computation from L to U (the torch.fx segment of
:func:`~neurflow.engine.segments.extract_segment`, skip connections included) with S ablated, and the top-k
is taken over all of them (ties by patch index, the builder's order). Batched: each call carries many
(knockout set, patch) inputs, built from the recorded lower maps by one multiply-add of a per-set mask, and
reads every target at once; only the targets' spatial means leave the call.

>>> losses = knockout_losses(segment, maps, [3, 7], {3: v3, 7: v7}, [[], [0], [0, 5]])   # doctest: +SKIP
>>> losses.shape   # [targets, sets]; losses[:, 0] == 1 (nothing knocked out)            # doctest: +SKIP
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.layouts import neuron_means
from neurflow.engine.ranking import ranking_scores
from neurflow.engine.recording import Recording
from neurflow.experiments.validation.common import (
    StudySettingsError,
    layer_pairs,
    study_builder,
    study_recording,
    study_targets,
)
from neurflow.experiments.validation.inputs import StudyInputs

Segment = Callable[[torch.Tensor], torch.Tensor]


def default_batch(device: torch.device) -> int:
    """(set, patch) inputs per segment call: small calls stay in cache on the CPU (measured fastest)."""
    return 1024 if device.type == "cuda" else 64


def set_masks(
    sets: Sequence[Sequence[int]], channels: int, replacement: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per set: ``keep`` [sets, channels] (0 on the knocked-out channels, 1 elsewhere) and ``fill`` (the
    replacement on the knocked-out channels, 0 elsewhere; None for zero ablation)."""
    keep = torch.ones(len(sets), channels)
    for row, chosen in enumerate(sets):
        index = [int(c) for c in chosen]
        if index and (min(index) < 0 or max(index) >= channels):
            raise StudySettingsError(f"knockout set {index} names a channel outside 0..{channels - 1}")
        keep[row, index] = 0.0
    if replacement is None:
        return keep, None
    values = torch.as_tensor(replacement, dtype=torch.float32).reshape(-1).cpu()
    if values.shape[0] != channels:
        raise StudySettingsError(f"the replacement has {values.shape[0]} values for a layer of {channels} channels")
    return keep, (1.0 - keep) * values


@torch.no_grad()
def knocked_out_means(
    segment: Segment,
    lower_maps: torch.Tensor,
    targets: Sequence[int],
    sets: Sequence[Sequence[int]],
    replacement: torch.Tensor | None = None,
    batch: int | None = None,
    device: torch.device | None = None,
    progress: bool = False,
    desc: str = "knockout",
) -> Iterator[tuple[int, torch.Tensor]]:
    """The targets' activations under each knockout set: yields (first set of the chunk, [sets, patches,
    targets] spatial means), set chunk by set chunk, so that memory stays at one chunk of sets.

    ``lower_maps``: [patches, C, ...] outputs of the lower layer for every patch (any device: moved per call).
    """
    device = device or lower_maps.device
    patches, channels = lower_maps.shape[0], lower_maps.shape[1]
    batch = max(1, batch or default_batch(device))
    keep, fill = set_masks(sets, channels, replacement)
    # Many sets per call when the patches are few, else the patches of one set split over several calls.
    sets_per_call = max(1, batch // max(1, patches))
    patches_per_call = max(1, min(patches, batch // sets_per_call))
    spread = (1,) * (lower_maps.dim() - 2)
    channels_last = device.type == "cpu" and lower_maps.dim() == 4
    index = torch.as_tensor(list(targets), dtype=torch.long, device=device)
    bar = tqdm(total=len(sets), desc=desc, unit="set", disable=not progress, leave=False)
    for first in range(0, len(sets), sets_per_call):
        count = min(sets_per_call, len(sets) - first)
        keep_c = keep[first : first + count].to(device).view(count, 1, channels, *spread)
        fill_c = None if fill is None else fill[first : first + count].to(device).view(count, 1, channels, *spread)
        values = torch.empty(count, patches, len(targets))
        for start in range(0, patches, patches_per_call):
            maps = lower_maps[start : start + patches_per_call].to(device)
            inputs = maps.unsqueeze(0) * keep_c
            if fill_c is not None:
                inputs = inputs + fill_c
            inputs = inputs.reshape(count * maps.shape[0], *maps.shape[1:])
            if channels_last:
                # The model runs channels-last on the CPU (oneDNN); feed it the layout it expects.
                inputs = inputs.contiguous(memory_format=torch.channels_last)
            means = neuron_means(segment(inputs)).index_select(1, index).float().cpu()
            values[:, start : start + maps.shape[0]] = means.view(count, maps.shape[0], len(targets))
        bar.update(count)
        yield first, values
    bar.close()


def concept_members(concepts: Mapping[int, np.ndarray], targets: Sequence[int], patches: int) -> torch.Tensor:
    """[targets, patches] booleans: whether a patch is in the target's concept V_a."""
    members = torch.zeros(len(targets), patches, dtype=torch.bool)
    for row, target in enumerate(targets):
        concept = np.asarray(concepts[target], dtype=np.int64)
        if len(concept) == 0:
            raise StudySettingsError(f"target {target} has an empty concept")
        if concept.max() >= patches or concept.min() < 0:
            raise StudySettingsError(f"the concept of target {target} names a patch outside 0..{patches - 1}")
        members[row, torch.from_numpy(concept)] = True
    return members


def surviving_share(values: torch.Tensor, members: torch.Tensor) -> torch.Tensor:
    """L for each (set, target): ``values`` [sets, patches, targets] activations, ``members`` [targets,
    patches] the concepts; k = |V_a| per target; the top-k is stable (ties by patch index)."""
    sets, patches, targets = values.shape
    sizes = members.sum(1)  # |V_a|
    order = torch.sort(values, dim=1, descending=True, stable=True).indices  # [sets, patches, targets]
    in_concept = torch.gather(members.T.unsqueeze(0).expand(sets, patches, targets), 1, order)
    hits = in_concept.cumsum(1).gather(1, (sizes - 1).view(1, 1, targets).expand(sets, 1, targets))[:, 0]
    return hits.double() / sizes.double().view(1, targets)


def knockout_losses(
    segment: Segment,
    lower_maps: torch.Tensor,
    targets: Sequence[int],
    concepts: Mapping[int, np.ndarray],
    sets: Sequence[Sequence[int]],
    replacement: torch.Tensor | None = None,
    batch: int | None = None,
    device: torch.device | None = None,
    progress: bool = False,
    desc: str = "knockout",
) -> np.ndarray:
    """L(S, a) of Definition 2 for every target a and knockout set S: [targets, sets], in [0, 1].

    ``segment``: the model from the lower layer's output to the upper layer's (channel ``a`` of its output is
    target a); ``lower_maps``: [patches, C, ...] lower outputs of ALL the class's patches; ``concepts``: V_a
    per target (patch indices into ``lower_maps``); ``sets``: channel sets of the lower layer (shared by
    every target: give per-target sets as one list and read the cells you need: they cost one top-k each);
    ``replacement``: [C] values the knocked-out channels take (None: zero ablation); ``batch``: (set, patch)
    inputs per call. 1 = the concept survives whole, 0 = none of it is left in the top-k.
    """
    members = concept_members(concepts, targets, lower_maps.shape[0])
    losses = np.empty((len(targets), len(sets)))
    for first, values in knocked_out_means(segment, lower_maps, targets, sets, replacement, batch, device,
                                           progress, desc):
        losses[:, first : first + values.shape[0]] = surviving_share(values, members).T.numpy()
    return losses


# --------------------------------------------------------------------------- a circuit's layer pairs


def layer_rng(seed: int, layer: str, purpose: str) -> np.random.Generator:
    """A generator of its own per (seed, layer, purpose): one layer's draws do not depend on which other
    layers a run studies."""
    return np.random.default_rng([seed, zlib.crc32(layer.encode()), zlib.crc32(purpose.encode())])


def draw_random_sets(rng: np.random.Generator, channels: int, size: int, count: int) -> list[list[int]]:
    """``count`` random sets of ``size`` distinct channels out of ``channels``, each sorted."""
    return [sorted(int(c) for c in rng.choice(channels, size=size, replace=False)) for _ in range(count)]


@dataclass
class LayerPair:
    """What knockout needs on one (upper, lower) pair of a circuit.

    ``targets``: the studied core neurons of ``upper``; ``concepts``: their V_a (the circuit's); ``per_patch``:
    per target, [|V_a|, lower channels] integrated gradients (the circuit's settings); ``importance``: per
    target, the circuit's ranking score of every lower channel (|T(a, s)| for the default ranking);
    ``lower_maps``: [patches, C, ...] lower outputs of every patch (CPU); ``lower_acts``: their spatial means;
    ``replacement``: the value of knocked-out lower channels (None: zero).
    """

    upper: str
    lower: str
    segment: torch.nn.Module
    targets: list[int]
    concepts: dict[int, np.ndarray]
    per_patch: dict[int, np.ndarray]
    importance: dict[int, np.ndarray]
    lower_maps: torch.Tensor
    lower_acts: np.ndarray
    replacement: torch.Tensor | None

    @property
    def channels(self) -> int:
        return int(self.lower_maps.shape[1])

    def losses(self, sets: Sequence[Sequence[int]], batch: int | None, device: torch.device, progress: bool,
               desc: str) -> np.ndarray:
        """L(S, a) for every target of the pair and every set: [targets, sets]."""
        return knockout_losses(self.segment, self.lower_maps, self.targets, self.concepts, sets, self.replacement,
                               batch, device, progress, desc)


def ablation_values(inputs: StudyInputs, layer: str) -> torch.Tensor | None:
    """The replacement of ``layer``'s knocked-out channels: None for zero ablation, its [C] values for mean."""
    if inputs.ablation == "zero":
        return None
    if inputs.ablation != "mean":
        raise StudySettingsError(f"ablation must be 'zero' or 'mean', not {inputs.ablation!r}")
    if layer not in inputs.replacement:
        raise StudySettingsError(f"mean ablation needs the per-channel means of {layer!r}; none were given")
    return inputs.replacement[layer].float().cpu()


def prepare_pairs(
    inputs: StudyInputs,
    layers: Sequence[str] | None,
    targets: int | None,
    progress: bool,
) -> Iterator[LayerPair]:
    """The circuit's (upper, lower) pairs for the upper ``layers`` (default: all but the bottom), one at a
    time: at most ``targets`` targets per layer, the most important first (the same targets as the other
    studies), their concepts and attributions. Memory: the lower maps of every patch, for every pair the
    recording pass kept (within the circuit's ``map_cache_mb``) and for the current pair."""
    pairs = layer_pairs(inputs.circuit, layers)
    builder = study_builder(inputs, progress)
    # The class's one recording gives every layer's activations and keeps the lower layers' maps that knockout
    # runs on (those that fit); a pair whose maps were not kept gets them computed once, for this pair only.
    recording = study_recording(inputs, builder)
    for upper, lower in pairs:
        maps = recording.layer_maps(inputs.loaded, lower, inputs.config.patches_per_pass(inputs.loaded.device))
        yield prepare_pair(inputs, builder, recording.with_maps(lower, maps), upper, lower, targets)


def prepare_pair(
    inputs: StudyInputs,
    builder: CircuitBuilder,
    recording: Recording,
    upper: str,
    lower: str,
    targets: int | None,
) -> LayerPair:
    """One pair: its targets, their concepts (the circuit's) and attributions (the circuit's settings)."""
    chosen = study_targets(inputs.circuit, upper, targets)
    by_channel = {n.channel: np.asarray(n.concept, dtype=np.int64) for n in inputs.circuit.neurons[upper]}
    concepts = {a: by_channel[a] for a in chosen}
    step = builder.step(recording, upper, lower, concepts)
    per_patch = step.per_patch
    ranking = builder.config.ranking
    return LayerPair(
        upper=upper,
        lower=lower,
        segment=builder.segment(lower, upper),
        targets=chosen,
        concepts=concepts,
        per_patch=per_patch,
        importance={a: ranking_scores(per_patch[a], ranking) for a in chosen},
        lower_maps=recording.layer_maps(inputs.loaded, lower, inputs.config.patches_per_pass(inputs.loaded.device)),
        lower_acts=np.asarray(recording.means[lower]),
        replacement=ablation_values(inputs, lower),
    )
