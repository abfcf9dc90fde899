"""The knockout concept and its loss L(S, a) (Definition 2): hand-computed answers on a 1x1-conv segment, the
batched computation against a one-set-at-a-time loop with forward hooks on the whole model, and the real model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurflow.engine.ranking import ranking_scores, top_indices
from neurflow.engine.segments import extract_segment, layer_output, trace
from neurflow.experiments.validation.common import StudySettingsError
from neurflow.experiments.validation.inputs import StudyInputs
from neurflow.experiments.validation.knockout import (
    ablation_values,
    draw_random_sets,
    knockout_losses,
    layer_rng,
    prepare_pairs,
)
from tests.experiments.validation.support import three_colours_inputs

# Six patches, two lower channels, constant 2x2 maps: the spatial mean of a channel is its value.
H0 = (5.0, 4.0, 3.0, 0.5, 1.0, 2.0)
H1 = (1.0, 0.2, 2.0, 3.5, 4.5, 2.5)
# Upper: ReLU of (h0 + h1, h0 - h1, h1 - h0) = (6, 4.2, 5, 4, 5.5, 4.5), (4, 3.8, 1, 0, 0, 0), (0, 0, 0, 3, 3.5, .5)
CONCEPTS = {0: np.array([0, 4, 2]), 1: np.array([0, 1, 2]), 2: np.array([4, 3, 5])}
SETS = [[], [0], [1], [0, 1]]


def constant_maps() -> torch.Tensor:
    return torch.tensor([H0, H1]).T.reshape(6, 2, 1, 1).expand(6, 2, 2, 2).clone()


def linear_segment() -> nn.Conv2d:
    conv = nn.Conv2d(2, 3, 1, bias=False)
    conv.weight.data = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0]]).view(3, 2, 1, 1)
    return conv.eval()


def relu_segment() -> nn.Module:
    return nn.Sequential(linear_segment(), nn.ReLU()).eval()


def test_zero_ablation_matches_the_hand_computed_top_k() -> None:
    losses = knockout_losses(relu_segment(), constant_maps(), [0, 1, 2], CONCEPTS, SETS)
    expected = [
        # {0}: a0 = h1 -> top-3 {4, 3, 5}, 1 of V_0 left. {1}: a0 = h0 -> {0, 1, 2}, 2 left. {0, 1}: all zero,
        # ties by patch index -> {0, 1, 2}.
        [1, 1 / 3, 2 / 3, 2 / 3],
        # a1 = ReLU(h0 - h1): knocking h0 out zeroes it (ties -> {0, 1, 2} = V_1); knocking h1 out leaves h0.
        [1, 1, 1, 1],
        # a2 = ReLU(h1 - h0): knocking h1 out zeroes it, the tie-broken top-3 {0, 1, 2} misses V_2 entirely.
        [1, 1, 0, 0],
    ]
    np.testing.assert_allclose(losses, expected)


def test_mean_ablation_sets_the_channel_to_its_value_everywhere() -> None:
    # Replacement (3, 2). a2 with h0 := 3 is ReLU(h1 - 3) = (0, 0, 0, .5, 1.5, 0): top-3 {4, 3, 0}, 2 of V_2;
    # with h1 := 2 it is ReLU(2 - h0) = (0, 0, 0, 1.5, 1, 0): {3, 4, 0}. a0 only shifts (the same top-3 as zero).
    losses = knockout_losses(relu_segment(), constant_maps(), [0, 1, 2], CONCEPTS, SETS,
                             replacement=torch.tensor([3.0, 2.0]))
    np.testing.assert_allclose(losses, [[1, 1 / 3, 2 / 3, 2 / 3], [1, 1, 1, 1], [1, 2 / 3, 2 / 3, 0]])


def test_a_linear_segment_ranks_the_same_under_any_replacement() -> None:
    # a = W h: replacing h_s by a constant adds the same number to every patch, so the top-k cannot change.
    linear = linear_segment()
    zero = knockout_losses(linear, constant_maps(), [0, 1, 2], CONCEPTS, SETS[:3])
    shifted = knockout_losses(linear, constant_maps(), [0, 1, 2], CONCEPTS, SETS[:3], replacement=torch.tensor([7.0, -3.0]))
    np.testing.assert_array_equal(zero, shifted)


class Residual(nn.Module):
    """stem -> block (with a skip around it) -> ReLU -> head: the segment stem -> head holds the skip."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 6, 3, padding=1)
        self.block = nn.Sequential(nn.Conv2d(6, 6, 3, padding=1), nn.Tanh())
        self.head = nn.Conv2d(6, 5, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.stem(x)
        return self.head(torch.relu(self.block(low) + low))


def hooked_losses(model: Residual, inputs: torch.Tensor, concepts: dict[int, np.ndarray], sets: list[list[int]],
                  replacement: torch.Tensor | None) -> np.ndarray:
    """The definition, one set at a time: the whole model with a forward hook that ablates S in ``stem``."""
    losses = np.empty((len(concepts), len(sets)))
    for column, chosen in enumerate(sets):
        def ablate(_module: nn.Module, _args: object, output: torch.Tensor, chosen: list[int] = chosen) -> torch.Tensor:
            output = output.clone()
            for channel in chosen:
                output[:, channel] = 0.0 if replacement is None else replacement[channel]
            return output

        handle = model.stem.register_forward_hook(ablate)
        with torch.no_grad():
            upper = model(inputs).mean((2, 3)).numpy()
        handle.remove()
        for row, (target, concept) in enumerate(concepts.items()):
            top = np.argsort(-upper[:, target], kind="stable")[: len(concept)]
            losses[row, column] = len(set(top.tolist()) & set(concept.tolist())) / len(concept)
    return losses


@pytest.mark.parametrize("replacement", [None, torch.tensor([0.3, -1.0, 2.0, 0.0, 0.5, -0.2])])
def test_batched_losses_equal_a_hooked_loop_over_the_whole_model(replacement: torch.Tensor | None) -> None:
    torch.manual_seed(0)
    model = Residual().eval()
    inputs = torch.randn(20, 3, 6, 6)
    with torch.no_grad():
        clean = model(inputs).mean((2, 3)).numpy()
    sizes = {0: 4, 2: 6, 4: 3}  # concepts of different sizes: k = |V_a| per target
    concepts = {a: np.argsort(-clean[:, a], kind="stable")[:k] for a, k in sizes.items()}
    rng = np.random.default_rng(1)
    sets = [[], list(range(6))] + [sorted(rng.choice(6, size, replace=False).tolist()) for size in (1, 1, 2, 3, 3, 5)]
    expected = hooked_losses(model, inputs, concepts, sets, replacement)
    assert 0 < expected.mean() < 1  # the sets do change the concepts
    segment = extract_segment(trace(model, ["head", "stem"]), "stem", "head")
    maps = layer_output(model, inputs, "stem")
    for batch in (1, 7, 10_000):  # one input per call, sets split across calls, everything in one call
        losses = knockout_losses(segment, maps, list(concepts), concepts, sets, replacement, batch=batch)
        np.testing.assert_array_equal(losses, expected)


def test_nothing_knocked_out_leaves_every_concept_whole() -> None:
    torch.manual_seed(2)
    model = Residual().eval()
    inputs = torch.randn(15, 3, 5, 5)
    segment = extract_segment(trace(model, ["head", "stem"]), "stem", "head")
    maps = layer_output(model, inputs, "stem")
    with torch.no_grad():
        clean = segment(maps).mean((2, 3)).numpy()
    concepts = {a: np.argsort(-clean[:, a], kind="stable")[:5] for a in range(5)}
    losses = knockout_losses(segment, maps, list(range(5)), concepts, [[], []], replacement=torch.ones(6))
    np.testing.assert_array_equal(losses, np.ones((5, 2)))


def test_bad_sets_and_replacements_are_refused() -> None:
    with pytest.raises(StudySettingsError, match="outside 0..1"):
        knockout_losses(relu_segment(), constant_maps(), [0], CONCEPTS, [[2]])
    with pytest.raises(StudySettingsError, match="3 values for a layer of 2 channels"):
        knockout_losses(relu_segment(), constant_maps(), [0], CONCEPTS, [[0]], replacement=torch.ones(3))
    with pytest.raises(StudySettingsError, match="patch outside"):
        knockout_losses(relu_segment(), constant_maps(), [0], {0: np.array([6])}, [[0]])


def test_the_ablation_value_comes_from_the_inputs() -> None:
    inputs = three_colours_inputs()
    assert ablation_values(inputs, "act") is None
    inputs.ablation = "mean"
    with pytest.raises(StudySettingsError, match="per-channel means of 'act'"):
        ablation_values(inputs, "act")
    inputs.replacement["act"] = torch.tensor([0.25, 0.5, 0.8 / 3])
    torch.testing.assert_close(ablation_values(inputs, "act"), torch.tensor([0.25, 0.5, 0.8 / 3]))


def test_ranking_and_random_sets() -> None:
    per_patch = np.array([[1.0, -3.0, 2.0], [1.0, 2.0, -2.5]])
    np.testing.assert_allclose(ranking_scores(per_patch, "sum"), [2.0, 1.0, 0.5])
    np.testing.assert_allclose(ranking_scores(per_patch, "mean-abs"), [1.0, 2.5, 2.25])
    assert top_indices(np.array([1.0, 3.0, 3.0, 0.0]), 2).tolist() == [1, 2]  # ties by channel
    drawn = draw_random_sets(layer_rng(0, "layer", "x"), 10, 4, 5)
    assert all(len(set(s)) == 4 and s == sorted(s) and max(s) < 10 for s in drawn)
    assert drawn == draw_random_sets(layer_rng(0, "layer", "x"), 10, 4, 5)
    assert drawn != draw_random_sets(layer_rng(0, "other", "x"), 10, 4, 5)


def test_the_tiny_circuit_pair_gives_the_hand_computed_losses(three_colours: StudyInputs) -> None:
    (pair,) = prepare_pairs(three_colours, None, None, progress=False)
    assert (pair.upper, pair.lower, pair.targets) == ("head", "act", [0])
    np.testing.assert_array_equal(pair.concepts[0], np.arange(59))  # image 0's patches
    np.testing.assert_allclose(pair.importance[0], [29.5, 5.9, 0.0], rtol=1e-5)
    sets = [[0], [1], [2], [0, 1], [0, 2], [1, 2], [0, 1, 2]]
    losses = pair.losses(sets, None, torch.device("cpu"), False, "test")
    np.testing.assert_array_equal(losses, [[0, 1, 1, 0, 1, 1, 1]])


def test_real_segment_reproduces_the_circuit_and_its_core_sets(samoyed_inputs: StudyInputs) -> None:
    circuit = samoyed_inputs.circuit
    tau = samoyed_inputs.config.tau
    (pair,) = prepare_pairs(samoyed_inputs, ["_blocks.15"], 3, progress=False)
    assert pair.lower == "_blocks.14" and pair.lower_maps.shape[0] == len(circuit.patches)
    # Nothing knocked out: the segment over the recorded maps gives back every target's concept exactly.
    losses = pair.losses([[], list(range(pair.channels))], None, torch.device("cpu"), False, "test")
    np.testing.assert_array_equal(losses[:, 0], np.ones(3))
    assert losses[:, 1].max() < 1  # everything knocked out: the concepts are gone (ties by index)
    for a in pair.targets:
        # The recomputed attributions rank the circuit's own core set first.
        edges = {e.lower for e in circuit.edges if e.upper == f"_blocks.15:{a}"}
        assert {f"_blocks.14:{s}" for s in top_indices(pair.importance[a], tau)} == edges
