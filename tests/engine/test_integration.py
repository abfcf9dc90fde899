"""steps="auto": the levels, the stopping rule on hand-made attributions, tiny models built with auto (a linear
segment, where integrated gradients are exact at any N, and a random one with ReLU kinks checked against independent
computations), the settings and the --steps option."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from neurflow.circuit import Circuit, ClassInfo
from neurflow.engine.attribution import integrated_gradients
from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.config import BuildConfig, steps_rule_of
from neurflow.engine.integration import (
    auto_levels,
    completeness_gap_ratio,
    integrate_until_stable,
    set_change,
)
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import ImageFile, PatchSet, ViewImage, normalise
from neurflow.engine.segments import extract_segment
from neurflow.format import load_circuit, save_circuit
from neurflow.registry import Preprocessing
from tests.engine.option_parsing import parsing_command

PREP = Preprocessing(resize=8, crop=8, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def test_levels_double_from_the_start_to_the_maximum() -> None:
    assert auto_levels(4, 64) == [4, 8, 16, 32, 64]
    assert auto_levels(4, 50) == [4, 8, 16, 32, 50]
    assert auto_levels(3, 6) == [3, 6]


def test_completeness_gap_is_the_weighted_mean_of_row_gaps() -> None:
    # rows sum to 1.0 and 3.5 against f(h) - f(0) = 1.0 and -4.0: |0| + |7.5| over |1| + |4|.
    per_patch = np.array([[0.5, 0.5], [2.0, 1.5]])
    assert completeness_gap_ratio(per_patch, np.array([1.0, -4.0])) == pytest.approx(7.5 / 5)
    assert np.isnan(completeness_gap_ratio(per_patch, np.zeros(2)))  # no output change: undefined


def test_set_change_counts_swaps_within_the_tie_band_as_ties() -> None:
    before = np.array([5.0, 4.0, 3.0, 1.0])
    assert set_change(np.array([5.0, 4.1, 2.0, 1.0]), before, 2, 0.01) == "same"
    # neuron 2 overtakes neuron 1 by 0.02 of the 2nd score (4.02): a tie at 1 %, a change at 0.1 %
    now = np.array([5.0, 4.0, 4.02, 1.0])
    assert set_change(now, before, 2, 0.01) == "tied"
    assert set_change(now, before, 2, 0.001) == "changed"


def scripted(scores: dict[tuple[int, int], list[float]], gaps: dict[tuple[int, int], float]):
    """integrate(N, targets) returning one patch per target whose attributions are the scripted scores at N,
    shifted so that the target's gap (f(h) - f(0) = 1) is the scripted gap; records the calls."""
    calls: list[tuple[int, list[int]]] = []

    def integrate(nodes: int, targets: list[int]) -> dict[int, np.ndarray]:
        calls.append((nodes, list(targets)))
        result = {}
        for a in targets:
            values = np.array(scores[a, nodes], dtype=float)
            values = values / values.sum() * (1 + gaps[a, nodes])
            result[a] = values[None, :]
        return result

    return integrate, calls


def test_each_target_stops_at_its_first_stable_and_complete_level() -> None:
    """tau = 1 and levels 4, 8, 16, 32. Target 0: the same top neuron at 4 and 8, gap 1 %: settles at 8.
    Target 1: top neuron 0 at 4, 1 at 8 and 16: settles at 16. Target 2: stable from 4 on, but its gap is 10 %
    until 32 (2 %): settles at 32. Target 3: its top neuron alternates at every level: not settled at 32."""
    flip = {4: [3, 1, 1], 8: [1, 3, 1], 16: [3, 1, 1], 32: [1, 3, 1]}
    scores = {(a, n): [3, 1, 1] for a in range(3) for n in (4, 8, 16, 32)}
    scores |= {(1, 8): [1, 3, 1], (1, 16): [1, 3, 1], (1, 32): [1, 3, 1]} | {(3, n): v for n, v in flip.items()}
    gaps = {(a, n): 0.01 for a in range(4) for n in (4, 8, 16, 32)}
    gaps |= {(2, 4): 0.1, (2, 8): 0.1, (2, 16): 0.1, (2, 32): 0.02}
    integrate, calls = scripted(scores, gaps)
    deltas = {a: np.ones(1) for a in range(4)}
    kept, record = integrate_until_stable(integrate, deltas, lambda v: np.abs(v.sum(0)), 1, [4, 8, 16, 32], 0.05,
                                          0.0, "up", "low")
    assert calls == [(4, [0, 1, 2, 3]), (8, [0, 1, 2, 3]), (16, [1, 2, 3]), (32, [2, 3])]
    assert record.target_nodes == {0: 8, 1: 16, 2: 32, 3: 32}
    assert record.target_gaps == pytest.approx({0: 0.01, 1: 0.01, 2: 0.02, 3: 0.01})
    assert record.unsettled == [3] and record.tied == []
    assert record.levels == [4, 8, 16, 32] and record.level_targets == [4, 4, 3, 2]
    assert record.nodes == 32 and record.gap == pytest.approx(0.02)
    np.testing.assert_allclose(kept[1][0], np.array([1, 3, 1]) / 5 * 1.01)  # the attributions of its level
    data = record.as_dict()
    assert data["converged"] is False and data["targets_by_nodes"] == {"8": 1, "16": 1, "32": 2}
    assert data["target_nodes"] == {"0": 8, "1": 16, "2": 32, "3": 32}


def test_a_target_whose_output_does_not_move_settles_on_its_set_alone() -> None:
    """f(h) = f(0) on every patch: the gap is undefined (null in the circuit), so stability decides."""
    integrate, calls = scripted({(0, n): [3, 1, 1] for n in (4, 8, 16)}, {(0, n): 0.5 for n in (4, 8, 16)})
    _, record = integrate_until_stable(integrate, {0: np.zeros(1)}, lambda v: np.abs(v.sum(0)), 1, [4, 8, 16],
                                       0.05, 0.0)
    assert calls == [(4, [0]), (8, [0])] and record.unsettled == []
    assert np.isnan(record.gap) and record.as_dict()["gap"] is None and record.as_dict()["target_gaps"] == {"0": None}


# --------------------------------------------------------------------------- tiny models built with auto


class Tiny(nn.Module):
    """pick (1x1 conv) -> act (ReLU) -> body (3x3 conv, then a ReLU when ``kinks``) -> spatial mean -> head.

    Without kinks, everything above act is linear. With them, body's bias of -0.1 puts kinks inside the path
    alpha * h: the integrand of body <- act is piecewise constant in alpha, as in a ReLU network."""

    def __init__(self, kinks: bool) -> None:
        super().__init__()
        self.pick = nn.Conv2d(3, 8, 1)
        self.act = nn.ReLU()
        self.body = nn.Sequential(nn.Conv2d(8, 6, 3, padding=1), nn.ReLU() if kinks else nn.Identity())
        self.head = nn.Linear(6, 4)
        with torch.no_grad():
            self.body[0].bias.fill_(-0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.act(self.pick(x))).mean((2, 3)))


LAYERS = ["head", "body", "act"]


def tiny_build(kinks: bool, **settings: Any) -> tuple[Circuit, LoadedModel, PatchSet]:
    """The circuit of class 1 over two random 8x8 images (118 patches), tau = 3, k = 20."""
    torch.manual_seed(0)
    module = Tiny(kinks).eval()
    loaded = LoadedModel("tiny", module, LAYERS, PREP, "random:seed=0", ["c0", "c1", "c2", "c3"],
                         torch.device("cpu"))
    views = [ViewImage(ImageFile(Path(f"/nowhere/{i}.png"), None), f"sha{i}", 8, 8, torch.rand(3, 8, 8), 1.0,
                       (0.0, 0.0)) for i in range(2)]
    config = BuildConfig("tiny", layers=LAYERS, tau=3, k=20, device="cpu", ig_batch_size=4096, **settings)
    with torch.no_grad():
        logits = module(normalise(torch.stack([v.view for v in views]), PREP))
    circuit = CircuitBuilder(loaded, config, progress=False).build(ClassInfo(1, "c1"), views, logits).circuit
    return circuit, loaded, PatchSet(views, PREP)


def edge_totals(circuit: Circuit, upper: str) -> dict[int, float]:
    """T(a, s) of one target a: its edge scores summed over its semantic groups, per lower channel s."""
    totals: dict[int, float] = {}
    for edge in circuit.edges_from(upper):
        channel = int(edge.lower.rpartition(":")[2])
        totals[channel] = totals.get(channel, 0.0) + edge.score
    return totals


def test_a_linear_model_settles_at_the_first_level_it_can_with_no_gap() -> None:
    """Above act the model is linear, so integrated gradients are exact with any rule: every target's set is the
    same at 3 and 7 nodes and its gap is zero up to float rounding. Auto stops at 7 (Fejer's second rule, whose
    level 7 adds 4 nodes to level 3), the first level that has a previous one to compare with, in both pairs,
    and the scores are those of 2 Gauss-Legendre nodes (exact as well)."""
    circuit, loaded, patches = tiny_build(kinks=False)
    assert [(u["upper"], u["lower"], u["nodes"], u["levels"], u["converged"]) for u in circuit.integration] == [
        ("head", "body", 7, [3, 7], True), ("body", "act", 7, [3, 7], True)]
    assert all(u["gap"] < 1e-5 and u["rule"] == "fejer2" and u["level_new_nodes"] == [3, 4]
               for u in circuit.integration)
    assert circuit.integration[1]["targets_by_nodes"] == {"7": 3}
    assert circuit.params["steps"] == "auto"
    assert {k: circuit.params[k] for k in ("steps_start", "steps_max", "steps_tolerance", "steps_tie",
                                           "steps_rule")} == {
        "steps_start": 3, "steps_max": 63, "steps_tolerance": 0.05, "steps_tie": 0.01, "steps_rule": "fejer2"}
    module = loaded.module
    segment = extract_segment(CircuitBuilder(loaded, BuildConfig("tiny", layers=LAYERS)).traced, "act", "body")
    for neuron in circuit.neurons["body"]:
        with torch.no_grad():
            maps = module.act(module.pick(patches.inputs(neuron.concept)))
        exact = integrated_gradients(segment, maps, torch.full((len(neuron.concept),), neuron.channel), steps=2)
        for channel, total in edge_totals(circuit, neuron.key).items():
            assert total == pytest.approx(float(exact[:, channel].sum()), rel=1e-5, abs=1e-6)


def test_auto_doubling_on_a_random_model_with_kinks_stops_at_a_stable_set_with_the_gap_it_records() -> None:
    """The doubling rule (circuits built before nested levels), recomputed independently for every target of
    body <- act, with integrated_gradients at fixed N and the model's own outputs for f(h) - f(0): the recorded N
    is the first level after the first whose top-tau set repeats and whose gap is within the tolerance, the
    recorded gap is the completeness gap at that N, and the target's core set is the top-tau at that N. The kinks
    make the targets need different N (8 and 16)."""
    circuit, loaded, patches = tiny_build(kinks=True, steps_tie=0.0, steps_rule="doubling")
    used = circuit.integration[1]
    assert (used["upper"], used["lower"], used["converged"]) == ("body", "act", True)
    assert used["rule"] == "gauss-legendre doubling" and used["level_new_nodes"] == used["levels"]
    assert {k: circuit.params[k] for k in ("steps_start", "steps_max")} == {"steps_start": 4, "steps_max": 64}
    assert "steps_rule" not in circuit.params  # as auto circuits built before nested rules: the same ids
    assert sorted(used["target_nodes"].values()) == [8, 16, 16] and used["levels"] == [4, 8, 16]
    assert used["level_targets"] == [3, 3, 2]
    module = loaded.module
    segment = extract_segment(CircuitBuilder(loaded, BuildConfig("tiny", layers=LAYERS)).traced, "act", "body")
    with torch.no_grad():
        at_zero = module.body(torch.zeros(1, 8, 8, 8)).mean((2, 3))[0]
    for neuron in circuit.neurons["body"]:
        a, concept = neuron.channel, neuron.concept
        inputs = patches.inputs(concept)
        with torch.no_grad():
            maps = module.act(module.pick(inputs))
            delta = (module.body(maps).mean((2, 3))[:, a] - at_zero[a]).double().numpy()

        at = {n: integrated_gradients(segment, maps, torch.full((len(maps),), a), steps=n).double().numpy()
              for n in {*used["levels"], *(n // 2 for n in used["levels"])}}

        def top(values: np.ndarray) -> set[int]:
            return {int(s) for s in np.argsort(-np.abs(values.sum(0)), kind="stable")[:3]}

        def gap(values: np.ndarray, delta: np.ndarray = delta) -> float:
            return float(np.abs(values.sum(1) - delta).sum() / np.abs(delta).sum())

        nodes = used["target_nodes"][str(a)]
        assert used["target_gaps"][str(a)] == pytest.approx(gap(at[nodes]), rel=1e-4, abs=1e-7)
        assert top(at[nodes]) == top(at[nodes // 2]) and gap(at[nodes]) <= 0.05
        for n in [m for m in used["levels"] if 4 < m < nodes]:
            assert top(at[n]) != top(at[n // 2]) or gap(at[n]) > 0.05, f"target {a} was settled at {n}"
        assert set(edge_totals(circuit, neuron.key)) == top(at[nodes])
        np.testing.assert_allclose(sorted(edge_totals(circuit, neuron.key).values()),
                                   sorted(at[nodes].sum(0)[sorted(top(at[nodes]))]), rtol=1e-4, atol=1e-6)


def test_a_circuit_records_what_auto_used_and_keeps_it_through_the_format(tmp_path: Path) -> None:
    circuit, _, _ = tiny_build(kinks=True)
    used = circuit.integration[1]
    assert set(used) >= {"upper", "lower", "nodes", "gap", "converged", "tolerance", "levels", "target_nodes",
                         "target_gaps", "level_seconds"}
    folder = save_circuit(circuit, tmp_path / "c")
    assert load_circuit(folder).integration == circuit.integration
    fixed, _, _ = tiny_build(kinks=True, steps=8)
    assert fixed.integration == [] and "integration" not in (save_circuit(fixed, tmp_path / "f") / "circuit.json").read_text()
    assert fixed.id != circuit.id
    doubling, _, _ = tiny_build(kinks=True, steps_rule="doubling")
    assert doubling.id != circuit.id and doubling.integration[1]["rule"] == "gauss-legendre doubling"


# --------------------------------------------------------------------------- settings and the option


def test_fixed_steps_keep_the_parameters_and_ids_of_before() -> None:
    fixed = BuildConfig("m", steps=50).circuit_params()
    assert fixed["steps"] == 50 and not {"steps_start", "steps_max", "steps_tolerance", "steps_tie",
                                         "steps_rule"} & set(fixed)
    assert BuildConfig("m", steps=50, quadrature="riemann-midpoint").circuit_params()["quadrature"] == "riemann-midpoint"
    auto = BuildConfig("m").circuit_params()
    assert auto["steps"] == "auto" and auto["steps_tolerance"] == 0.05 and auto["steps_max"] == 63
    assert auto["steps_rule"] == "fejer2" and auto["steps_start"] == 3
    assert BuildConfig("m", **BuildConfig("m").circuit_params()).circuit_params() == auto  # read back from params
    assert BuildConfig("m", steps="16").steps == 16 and BuildConfig("m", steps=" AUTO ").steps == "auto"
    for bad in (0, -3, "abc", True, 2.5):
        with pytest.raises(ValueError, match="steps must be 'auto' or a positive integer"):
            BuildConfig("m", steps=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must be more than steps_start"):
        BuildConfig("m", steps_max=3)
    with pytest.raises(ValueError, match="one level"):
        BuildConfig("m", steps_max=6)  # fejer2: 3, then 7
    with pytest.raises(ValueError, match="2\\^k - 1 nodes"):
        BuildConfig("m", steps_start=4)


def test_the_steps_rule_follows_the_quadrature_and_old_circuits_read_as_doubling() -> None:
    """Graded (ViT) and midpoint nodes are not nested: auto doubles them as before, unless told otherwise; a nested
    family with them is refused. A circuit built before steps_rule has none in its params: doubling."""
    graded = BuildConfig("m", quadrature="gauss-legendre-graded")
    assert (graded.steps_rule, graded.steps_start, graded.steps_max) == ("doubling", 4, 64)
    assert graded.auto_rule_name == "gauss-legendre-graded doubling"
    with pytest.raises(ValueError, match="replaces gauss-legendre"):
        BuildConfig("m", quadrature="riemann-midpoint", steps_rule="fejer2")
    with pytest.raises(ValueError, match="steps_rule must be one of"):
        BuildConfig("m", steps_rule="simpson")
    assert BuildConfig("m", steps_rule="clenshaw-curtis").steps_max == 65
    legacy = {"steps": "auto", "steps_start": 4, "steps_max": 64, "steps_tolerance": 0.05, "steps_tie": 0.01}
    assert steps_rule_of(legacy) == "doubling" and steps_rule_of({"steps": 50}) is None
    assert steps_rule_of(BuildConfig("m").circuit_params()) == "fejer2"


def test_steps_option_takes_auto_or_a_positive_integer() -> None:
    command, seen = parsing_command()
    runner = CliRunner()
    assert runner.invoke(command, ["-m", "m"]).exit_code == 0
    assert runner.invoke(command, ["-m", "m", "--steps", "16"]).exit_code == 0
    assert runner.invoke(command, ["-m", "m", "--steps", "auto", "--steps-tolerance", "0.01",
                                   "--steps-max", "32"]).exit_code == 0
    assert runner.invoke(command, ["-m", "m", "--steps-rule", "doubling"]).exit_code == 0
    assert [(c.steps, c.steps_tolerance, c.steps_max, c.steps_rule) for c in seen] == [
        ("auto", 0.05, 63, "fejer2"), (16, 0.05, 63, "fejer2"), ("auto", 0.01, 32, "fejer2"), ("auto", 0.05, 64, "doubling")]
    for bad in ("0", "fifty", "-2"):
        result = runner.invoke(command, ["-m", "m", "--steps", bad])
        error = [line for line in result.output.splitlines() if line.startswith("Error")]
        assert result.exit_code == 2 and len(error) == 1 and "neither 'auto' nor a positive integer" in error[0]
    assert runner.invoke(command, ["-m", "m", "--steps-max", "3"]).exit_code == 2
