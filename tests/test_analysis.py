"""Influence, pruning, group-edge shares and strongest paths (neurflow.analysis) against brute force over all
paths and a circuit computed by hand."""

from __future__ import annotations

import math

import pytest

from neurflow.analysis import circuit_influence, group_edge_shares, group_flow, influence_before, prune
from neurflow.circuit import Circuit, ClassInfo, CoreNeuron, Edge, ModelInfo, NeuronGroup, SemanticGroup
from tests.helpers import all_paths, neuron_paths, shares, small_synthetic


def test_group_edge_shares_match_the_oracle() -> None:
    circuit = small_synthetic(258)
    expected = shares(circuit)
    got = group_edge_shares(circuit)
    assert [e for e, _ in got] == circuit.group_edges
    for edge, share in got:
        assert math.isclose(share, expected[edge.upper, edge.lower], rel_tol=1e-12)
    for upper in {e.upper for e in circuit.group_edges}:
        assert sum(s for e, s in got if e.upper == upper) == pytest.approx(1.0)


def test_group_flow_matches_brute_force_paths() -> None:
    circuit = small_synthetic(258, max_neuron_groups=3)
    flows = group_flow(circuit)
    paths = all_paths(circuit)
    layer_of = {g.id: g.layer for g in circuit.neuron_groups}
    bottom = circuit.layers[-1]
    for g in circuit.neuron_groups:
        ending = [s for p, s in paths if p[-1] == g.id]
        assert math.isclose(flows[g.id].up_score, max(ending, default=0.0), rel_tol=1e-9, abs_tol=1e-12)
        through = [(p, s) for p, s in paths if g.id in p and layer_of[p[-1]] == bottom]
        best = max((s for _, s in through), default=0.0)
        assert math.isclose(flows[g.id].up_score * flows[g.id].down_score, best, rel_tol=1e-9, abs_tol=1e-12)
    # a group's influence is the one definition of circuit_influence; it is conserved layer by layer
    influence = circuit_influence(circuit)
    for layer in circuit.layers:
        assert sum(flows[g.id].influence for g in circuit.neuron_groups if g.layer == layer) == pytest.approx(1.0)
    assert all(flows[g].influence == influence.groups[g] for g in flows)


def hand_circuit() -> Circuit:
    """The logit L (concept of 4 patches: semantic groups of 3 and 1) -> neurons a, b -> neuron c.

    L/0 (3 patches): w(a) = 0.5, w(b) = -0.5; L/1 (1 patch): w(a) = 1. a has one semantic group with edges
    w(c) = 1; b has one with w(c) = -0.25 (un-normalised, so its share is 1 too).
    By hand: I(L) = 1; I(a) = 3/4 * 1/2 + 1/4 * 1 = 0.625; I(b) = 3/4 * 1/2 = 0.375; I(c) = 0.625 + 0.375 = 1.
    """
    def neuron(layer: str, channel: int) -> CoreNeuron:
        return CoreNeuron(layer, channel, [0, 1, 2, 3], [1.0] * 4, 1.0)

    def sg(layer: str, channel: int, index: int, patches: list[int]) -> SemanticGroup:
        return SemanticGroup(layer, channel, index, patches, [1.0] * len(patches))

    sgs = [sg("fc", 0, 0, [0, 1, 2]), sg("fc", 0, 1, [3]), sg("x", 1, 0, [0, 1]), sg("x", 2, 0, [2]),
           sg("y", 3, 0, [0])]
    edges = [Edge("fc:0/0", "fc:0", "x:1", 2.0, 0.5), Edge("fc:0/0", "fc:0", "x:2", -2.0, -0.5),
             Edge("fc:0/1", "fc:0", "x:1", 1.0, 1.0), Edge("x:1/0", "x:1", "y:3", 1.0, 1.0),
             Edge("x:2/0", "x:2", "y:3", -1.0, -0.25)]
    groups = [NeuronGroup("fc/g0", "fc", ["fc:0/0", "fc:0/1"], ["fc:0"], [0, 1, 2, 3]),
              NeuronGroup("x/g0", "x", ["x:1/0"], ["x:1"], [0, 1]),
              NeuronGroup("x/g1", "x", ["x:2/0"], ["x:2"], [2]),
              NeuronGroup("y/g0", "y", ["y:3/0"], ["y:3"], [0])]
    return Circuit(ModelInfo("hand", "w", 8, 1), ClassInfo(0, "hand"), ["fc", "x", "y"], {}, [], [],
                   {"fc": [neuron("fc", 0)], "x": [neuron("x", 1), neuron("x", 2)], "y": [neuron("y", 3)]},
                   sgs, edges, groups, [])


def test_influence_of_a_circuit_computed_by_hand() -> None:
    influence = circuit_influence(hand_circuit())
    assert influence.neurons == pytest.approx({"fc:0": 1.0, "x:1": 0.625, "x:2": 0.375, "y:3": 1.0})
    assert influence.semantic_groups == pytest.approx({"fc:0/0": 0.75, "fc:0/1": 0.25, "x:1/0": 0.625,
                                                       "x:2/0": 0.375, "y:3/0": 1.0})
    assert influence.groups == pytest.approx({"fc/g0": 1.0, "x/g0": 0.625, "x/g1": 0.375, "y/g0": 1.0})
    assert influence.edges[("fc:0/0", "x:2")] == pytest.approx(0.375)
    assert influence.group_edges == pytest.approx({("fc/g0", "x/g0"): 0.625, ("fc/g0", "x/g1"): 0.375,
                                                   ("x/g0", "y/g0"): 0.625, ("x/g1", "y/g0"): 0.375})
    # Signed: b inhibits the logit (3/4 * -0.5); c is reached through a (+0.625) and through b's negative edge
    # (-0.375 * -0.25 / 0.25 = +0.375): an inhibitor of an inhibitor, so c excites on balance.
    assert influence.signed_neurons == pytest.approx({"fc:0": 1.0, "x:1": 0.625, "x:2": -0.375, "y:3": 1.0})
    assert influence.signed_groups == pytest.approx({"fc/g0": 1.0, "x/g0": 0.625, "x/g1": -0.375, "y/g0": 1.0})


def test_neuron_influence_matches_brute_force_paths() -> None:
    circuit = small_synthetic(258, max_neuron_groups=3)
    influence = circuit_influence(circuit)
    paths = neuron_paths(circuit)
    for key, value in influence.neurons.items():
        assert math.isclose(value, sum(s for p, s in paths if p[-1] == key), rel_tol=1e-9, abs_tol=1e-12)
    signed_paths = neuron_paths(circuit, signed=True)  # each path: the product of its signed shares
    for key, value in influence.signed_neurons.items():
        assert math.isclose(value, sum(s for p, s in signed_paths if p[-1] == key), rel_tol=1e-9, abs_tol=1e-12)
        assert abs(value) <= influence.neurons[key] + 1e-12
    assert any(v < 0 for v in influence.signed_neurons.values())  # the synthetic circuit has inhibitory parts
    for layer in circuit.layers:  # conserved layer by layer: every upper neuron has edges down
        assert sum(v for k, v in influence.neurons.items() if k.startswith(f"{layer}:")) == pytest.approx(1.0)
    # a group's influence: the sum over its members, and (below the logit layer) over its incoming group edges
    for g in circuit.neuron_groups:
        assert influence.groups[g.id] == pytest.approx(sum(v for (h, _), v in influence.members.items() if h == g.id))
        if g.layer != circuit.layers[0]:
            incoming = sum(v for (_, low), v in influence.group_edges.items() if low == g.id)
            assert influence.groups[g.id] == pytest.approx(incoming)


def test_influence_before_ranks_within_each_layer() -> None:
    before = influence_before({"a": 0.5, "b": 0.2, "c": 0.3, "d": 2.0}, lambda k: "L2" if k == "d" else "L1")
    assert before == pytest.approx({"a": 0.0, "c": 0.5, "b": 0.8, "d": 0.0})


def test_pruned_views_keep_the_fewest_nodes_that_carry_the_share() -> None:
    circuit = small_synthetic(207)
    influence = circuit_influence(circuit)
    for share in (0.5, 0.8, 1.0):
        view = prune(circuit, share, influence)
        for layer in circuit.layers:
            kept = view.neurons[layer]
            total = sum(influence.neurons[n.key] for n in circuit.neurons[layer])
            carried = [influence.neurons[k] for k in kept]
            assert sum(carried) >= share * total - 1e-9
            assert sum(carried[:-1]) < share * total  # one fewer would not carry it
            assert carried == sorted(carried, reverse=True)
        assert all(u in view.groups and low in view.groups for u, low in view.group_edges)
    assert len(prune(circuit, 1.0).groups) == len(circuit.neuron_groups)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        prune(circuit, 0.0)
