"""Group-edge shares, influence and strongest paths (neurflow.analysis) against brute force over all paths."""

from __future__ import annotations

import math

import pytest

from neurflow.analysis import group_edge_shares, group_flow
from tests.helpers import all_paths, shares, small_synthetic


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
        assert math.isclose(flows[g.id].influence, sum(ending), rel_tol=1e-9, abs_tol=1e-12)
        assert math.isclose(flows[g.id].up_score, max(ending, default=0.0), rel_tol=1e-9, abs_tol=1e-12)
        through = [(p, s) for p, s in paths if g.id in p and layer_of[p[-1]] == bottom]
        best = max((s for _, s in through), default=0.0)
        assert math.isclose(flows[g.id].up_score * flows[g.id].down_score, best, rel_tol=1e-9, abs_tol=1e-12)
    # influence is conserved layer by layer (every group here has upper and lower edges)
    for layer in circuit.layers:
        total = sum(flows[g.id].influence for g in circuit.neuron_groups if g.layer == layer)
        assert total == pytest.approx(1.0)
