"""Pure functions on a :class:`~neurflow.circuit.Circuit`: how the logit's attribution flows through it.

The one home of: group-edge shares (written on ``FLOWS_TO`` edges and used for everything below), the
influence of every neuron group (the share of the logit's attribution that reaches it over all paths), and the
strongest paths up to the logit and down to the lowest layer. Used by the graph writer, labelling and
debugging.

May import: numpy and ``neurflow.circuit`` only (no torch, no neo4j).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from neurflow.circuit import Circuit, GroupEdge


@dataclass(frozen=True)
class GroupFlow:
    """How the logit's attribution flows through one neuron group (see docs/graph-model.md).

    ``influence``: share of the logit's attribution that reaches the group, summed over all paths.
    ``up_score``/``up_next``: strength of the strongest path from the group up to the logit and the next
    (upper) group on it; ``down_score``/``down_next``: the same down to the circuit's lowest layer.
    """

    influence: float
    up_score: float
    up_next: str | None
    down_score: float
    down_next: str | None


def outgoing_weights(circuit: Circuit) -> dict[str, float]:
    """Upper group id -> the sum of |W(G, H')| over its group edges (groups without edges are missing)."""
    out: dict[str, float] = defaultdict(float)
    for e in circuit.group_edges:
        out[e.upper] += abs(e.weight)
    return dict(out)


def group_edge_shares(circuit: Circuit) -> list[tuple[GroupEdge, float]]:
    """Every group edge (in the circuit's order) with its *share*: |W(G, H)| over the sum of |W(G, H')| of
    the upper group G's edges (0 when that sum is 0)."""
    out = outgoing_weights(circuit)
    return [(e, abs(e.weight) / out[e.upper] if out[e.upper] > 0 else 0.0) for e in circuit.group_edges]


def group_flow(circuit: Circuit) -> dict[str, GroupFlow]:
    """Influence and strongest paths of every neuron group, from the group-edge shares.

    The logit-layer groups start with their share of the layer's total |W|; a lower group's influence is the
    sum over upper groups of influence x share; a path's strength is the product of its shares (times the top
    group's start share), maximised by dynamic programming. Ties go to the smaller group id.
    """
    depth = {layer: i for i, layer in enumerate(circuit.layers)}
    group_depth = {g.id: depth[g.layer] for g in circuit.neuron_groups}
    by_depth: dict[int, list[str]] = defaultdict(list)
    for g in sorted(circuit.neuron_groups, key=lambda g: g.id):
        by_depth[depth[g.layer]].append(g.id)
    lowers: dict[str, list[tuple[str, float]]] = defaultdict(list)  # upper -> [(lower, share)]
    uppers: dict[str, list[tuple[str, float]]] = defaultdict(list)  # lower -> [(upper, share)]
    for e, share in sorted(group_edge_shares(circuit), key=lambda item: (item[0].upper, item[0].lower)):
        lowers[e.upper].append((e.lower, share))
        uppers[e.lower].append((e.upper, share))
    out = outgoing_weights(circuit)
    top = by_depth.get(0, [])
    top_total = sum(out.get(g, 0.0) for g in top)
    start = {g: (out.get(g, 0.0) / top_total if top_total > 0 else 1.0 / len(top)) for g in top}

    influence, up = _influence_and_strongest_up(by_depth, group_depth, uppers, start)
    down = _strongest_down(by_depth, group_depth, lowers)
    return {g: GroupFlow(influence[g], up[g][0], up[g][1], down[g][0], down[g][1]) for g in group_depth}


Step = tuple[float, str | None]
"""(strength of the strongest path from a group, the next group on it)."""


def _influence_and_strongest_up(by_depth: dict[int, list[str]], group_depth: dict[str, int],
                                uppers: dict[str, list[tuple[str, float]]],
                                start: dict[str, float]) -> tuple[dict[str, float], dict[str, Step]]:
    """Top down, layer by layer: influence summed over the upper groups, and the strongest path up."""
    influence: dict[str, float] = defaultdict(float)
    up: dict[str, Step] = {}
    for d in sorted(by_depth):
        for g in by_depth[d]:
            if d == 0:
                influence[g] = start[g]
                up[g] = (start[g], None)
                continue
            best: Step = (0.0, None)
            for u, share in uppers.get(g, []):
                if group_depth.get(u) != d - 1:
                    continue
                influence[g] += influence[u] * share
                score = up[u][0] * share
                if score > best[0]:
                    best = (score, u)
            up[g] = best
    return influence, up


def _strongest_down(by_depth: dict[int, list[str]], group_depth: dict[str, int],
                    lowers: dict[str, list[tuple[str, float]]]) -> dict[str, Step]:
    """Bottom up, layer by layer: the strongest path from each group down to the lowest layer."""
    bottom = max(by_depth) if by_depth else 0
    down: dict[str, Step] = {}
    for d in sorted(by_depth, reverse=True):
        for g in by_depth[d]:
            if d == bottom:
                down[g] = (1.0, None)
                continue
            best: Step = (0.0, None)
            for low, share in lowers.get(g, []):
                if group_depth.get(low) != d + 1:
                    continue
                score = share * down[low][0]
                if score > best[0]:
                    best = (score, low)
            down[g] = best
    return down
