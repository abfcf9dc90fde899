"""Pure functions on a :class:`~neurflow.circuit.Circuit`: how the logit's attribution flows through it.

The one home of: the **influence** of every core neuron, semantic group, neuron group and edge (its share of what
the circuit carries from the class logit, summed over all paths: a share *within the circuit*, each layer summing
to 1), the **coverage** of a circuit (how much of the logit's attribution its core paths keep, layer by layer:
:func:`layer_coverage`), the pruned view of a
circuit that keeps what carries a given share of it, the group-edge shares (written on ``FLOWS_TO`` edges) and
the strongest paths up to the logit and down to the lowest layer. Used by the graph writer, the pictures,
labelling and debugging.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from neurflow.circuit import Circuit, Edge, GroupEdge, SemanticGroup, neuron_key

K = TypeVar("K")


@dataclass(frozen=True)
class GroupFlow:
    """How the logit's attribution flows through one neuron group (see docs/graph-model.md).

    ``influence``: the group's share of what the circuit carries from the logit (:func:`circuit_influence`).
    ``up_score``/``up_next``: strength of the strongest path from the group up to the logit and the next
    (upper) group on it; ``down_score``/``down_next``: the same down to the circuit's lowest layer.
    """

    influence: float
    up_score: float
    up_next: str | None
    down_score: float
    down_next: str | None


@dataclass(frozen=True)
class CircuitInfluence:
    """The share of what one circuit carries from the class logit that reaches each of its parts: a share
    *within the circuit* (see :func:`layer_coverage` for how much of the logit's attribution the circuit keeps).

    The logit has influence 1. A core neuron a passes its influence to its semantic groups in proportion to
    their share of its concept (patches of V_a,j over patches of V_a), and a semantic group passes its influence
    down its edges in proportion to |w(a, s, V_a,j)| (over the group's total |w|). A lower neuron's influence is
    what its incoming edges carry, summed over all paths from the logit. Signs are ignored: an inhibiting edge
    carries attribution as much as an exciting one. Every layer's neurons share the same total (1 when every
    upper neuron has edges), so the numbers compare across layers and classes.

    ``neurons``: neuron key -> influence; ``semantic_groups``: semantic group key -> influence;
    ``groups``: neuron group id -> the sum of its semantic groups' influence; ``members``: (group id, neuron
    key) -> the influence the group carries through that member; ``edges``: (upper semantic group, lower
    neuron) -> the influence along the edge; ``group_edges``: (upper group, lower group) -> the influence the
    member edges carry into the lower group (each lower neuron's part split over its groups as its semantic
    groups are), so a lower group's influence is the sum of its incoming group edges.

    ``signed_neurons`` and ``signed_groups`` keep the signs: the same flow with w(a, s, V_a,j) in place of |w|,
    so each path carries the product of its edges' signs. Positive: on the class's images the part, through the
    circuit's paths, raises the class logit on balance (excitatory); negative: it lowers it (inhibitory). Its
    magnitude is at most the influence; the difference is what paths of opposite signs cancel.
    """

    neurons: dict[str, float]
    semantic_groups: dict[str, float]
    groups: dict[str, float]
    members: dict[tuple[str, str], float]
    edges: dict[tuple[str, str], float]
    group_edges: dict[tuple[str, str], float]
    signed_neurons: dict[str, float] = field(default_factory=dict)
    signed_groups: dict[str, float] = field(default_factory=dict)


def circuit_influence(circuit: Circuit) -> CircuitInfluence:
    """Influence of every neuron, semantic group, neuron group and edge (see :class:`CircuitInfluence`).

    >>> from neurflow.synthetic import synthetic_circuit
    >>> influence = circuit_influence(synthetic_circuit(258))
    >>> round(sum(v for k, v in influence.neurons.items() if k.startswith("_blocks.15:")), 6)
    1.0
    """
    sgs_of_neuron: dict[str, list[SemanticGroup]] = defaultdict(list)
    for sg in circuit.semantic_groups:
        sgs_of_neuron[sg.neuron].append(sg)
    concept_share: dict[str, float] = {}
    for split in sgs_of_neuron.values():
        total = sum(len(g.patches) for g in split)
        for g in split:
            concept_share[g.key] = len(g.patches) / total if total else 1.0 / len(split)
    edges_of_sg: dict[str, list[Edge]] = defaultdict(list)
    for e in circuit.edges:
        edges_of_sg[e.upper_group].append(e)

    neurons: dict[str, float] = defaultdict(float)
    neurons[circuit.logit_key] = 1.0
    signed: dict[str, float] = defaultdict(float)
    signed[circuit.logit_key] = 1.0
    sg_influence: dict[str, float] = {}
    sg_signed: dict[str, float] = {}
    edge_influence: dict[tuple[str, str], float] = {}
    for layer in circuit.layers:  # top down: a layer's neurons are complete before its edges pass them on
        for neuron in circuit.neurons.get(layer, []):
            for sg in sgs_of_neuron.get(neuron.key, []):
                sg_influence[sg.key] = neurons.get(neuron.key, 0.0) * concept_share[sg.key]
                sg_signed[sg.key] = signed.get(neuron.key, 0.0) * concept_share[sg.key]
                total = sum(abs(e.weight) for e in edges_of_sg.get(sg.key, []))
                for e in edges_of_sg.get(sg.key, []):
                    flow = sg_influence[sg.key] * abs(e.weight) / total if total > 0 else 0.0
                    edge_influence[e.upper_group, e.lower] = flow
                    neurons[e.lower] += flow
                    signed[e.lower] += sg_signed[sg.key] * e.weight / total if total > 0 else 0.0

    group_of_sg = {sg: g.id for g in circuit.neuron_groups for sg in g.semantic_groups}
    groups: dict[str, float] = defaultdict(float)
    signed_groups: dict[str, float] = defaultdict(float)
    members: dict[tuple[str, str], float] = defaultdict(float)
    part_in_group: dict[tuple[str, str], float] = defaultdict(float)  # (neuron, group) -> concept share in it
    neuron_of_sg = {sg.key: sg.neuron for sg in circuit.semantic_groups}
    for sg, group in group_of_sg.items():
        groups[group] += sg_influence.get(sg, 0.0)
        signed_groups[group] += sg_signed.get(sg, 0.0)
        members[group, neuron_of_sg[sg]] += sg_influence.get(sg, 0.0)
        part_in_group[neuron_of_sg[sg], group] += concept_share.get(sg, 0.0)
    groups_of_neuron: dict[str, list[str]] = defaultdict(list)
    for neuron, group in part_in_group:
        groups_of_neuron[neuron].append(group)
    group_edges: dict[tuple[str, str], float] = defaultdict(float)
    for (upper_sg, lower), flow in edge_influence.items():
        upper_group = group_of_sg.get(upper_sg)
        if upper_group is None:
            continue
        for lower_group in groups_of_neuron.get(lower, []):
            group_edges[upper_group, lower_group] += flow * part_in_group[lower, lower_group]
    core = {n.key for ns in circuit.neurons.values() for n in ns}
    return CircuitInfluence(
        neurons={k: neurons.get(k, 0.0) for k in sorted(core)},
        semantic_groups=sg_influence,
        groups={g.id: groups.get(g.id, 0.0) for g in circuit.neuron_groups},
        members=dict(members),
        edges=edge_influence,
        group_edges=dict(group_edges),
        signed_neurons={k: signed.get(k, 0.0) for k in sorted(core)},
        signed_groups={g.id: signed_groups.get(g.id, 0.0) for g in circuit.neuron_groups},
    )


def influence_before(values: Mapping[K, float], layer_of: Callable[[K], str]) -> dict[K, float]:
    """Per layer, ranking items by influence (largest first, ties by key): the share of the layer's total
    influence carried by the items ranked above each one. A view pruned to share P keeps the items whose
    value is below P (the fewest items that together carry at least P of the layer)."""
    by_layer: dict[str, list[K]] = defaultdict(list)
    for key in values:
        by_layer[layer_of(key)].append(key)
    before: dict[K, float] = {}
    for keys in by_layer.values():
        total = sum(values[k] for k in keys)
        carried = 0.0
        for key in sorted(keys, key=lambda k: (-values[k], str(k))):
            before[key] = carried / total if total > 0 else 0.0
            carried += values[key]
    return before


@dataclass(frozen=True)
class InfluenceRanks:
    """:func:`influence_before` of every neuron, neuron group and group edge, each ranked within its layer (an
    edge within its upper group's layer): what the graph stores as ``influenceBefore``."""

    neurons: dict[str, float]
    groups: dict[str, float]
    group_edges: dict[tuple[str, str], float]


def influence_ranks(circuit: Circuit, influence: CircuitInfluence) -> InfluenceRanks:
    layer_of_group = {g.id: g.layer for g in circuit.neuron_groups}
    return InfluenceRanks(
        neurons=influence_before(influence.neurons, lambda k: k.rpartition(":")[0]),
        groups=influence_before(influence.groups, layer_of_group.__getitem__),
        group_edges=influence_before(influence.group_edges, lambda e: layer_of_group[e[0]]),
    )


@dataclass(frozen=True)
class PrunedCircuit:
    """What a view pruned to ``share`` keeps: per layer, the fewest neurons (and neuron groups) that carry
    ``share`` of the layer's influence, and the group edges among the fewest that carry ``share`` of what the
    edges out of each layer carry, where both their groups are kept (the rule the graph's
    ``influenceBefore`` properties give to queries)."""

    share: float
    neurons: dict[str, list[str]]
    groups: set[str]
    group_edges: set[tuple[str, str]]


def prune(circuit: Circuit, share: float, influence: CircuitInfluence | None = None) -> PrunedCircuit:
    """The pruned view of ``circuit`` (0 < share <= 1); the circuit itself is unchanged.

    >>> from neurflow.synthetic import synthetic_circuit
    >>> view = prune(synthetic_circuit(258), 0.8)
    >>> 0 < len(view.neurons["_blocks.15"]) <= 16
    True
    """
    if not 0 < share <= 1:
        raise ValueError(f"a pruning share must be in (0, 1], got {share}")
    if influence is None:
        influence = circuit_influence(circuit)
    of_neuron = influence.neurons
    ranks = influence_ranks(circuit, influence)
    neurons = {layer: [n.key for n in sorted(circuit.neurons.get(layer, []), key=lambda n: (-of_neuron[n.key], n.key))
                       if ranks.neurons[n.key] < share] for layer in circuit.layers}
    groups = {g for g, before in ranks.groups.items() if before < share}
    edges = {e for e, before in ranks.group_edges.items() if before < share and e[0] in groups and e[1] in groups}
    return PrunedCircuit(share, neurons, groups, edges)


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


def group_flow(circuit: Circuit, influence: CircuitInfluence | None = None) -> dict[str, GroupFlow]:
    """Influence (:func:`circuit_influence`) and strongest paths of every neuron group.

    A path's strength is the product of the group-edge shares along it, times the top (logit-layer) group's
    influence, maximised by dynamic programming. Ties go to the smaller group id.
    """
    if influence is None:
        influence = circuit_influence(circuit)
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
    start = {g: influence.groups.get(g, 0.0) for g in by_depth.get(0, [])}
    up = _strongest_up(by_depth, group_depth, uppers, start)
    down = _strongest_down(by_depth, group_depth, lowers)
    return {g: GroupFlow(influence.groups.get(g, 0.0), up[g][0], up[g][1], down[g][0], down[g][1])
            for g in group_depth}


Step = tuple[float, str | None]
"""(strength of the strongest path from a group, the next group on it)."""


def _strongest_up(by_depth: dict[int, list[str]], group_depth: dict[str, int],
                  uppers: dict[str, list[tuple[str, float]]], start: dict[str, float]) -> dict[str, Step]:
    """Top down, layer by layer: the strongest path from each group up to the logit."""
    up: dict[str, Step] = {}
    for d in sorted(by_depth):
        for g in by_depth[d]:
            if d == 0:
                up[g] = (start[g], None)
                continue
            best: Step = (0.0, None)
            for u, share in uppers.get(g, []):
                if group_depth.get(u) != d - 1:
                    continue
                score = up[u][0] * share
                if score > best[0]:
                    best = (score, u)
            up[g] = best
    return up


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


@dataclass(frozen=True)
class LayerCoverage:
    """How much of the class logit's attribution a circuit keeps at one layer (docs/coverage.md).

    ``targets``: the upper layer's core neurons with a coverage record; ``mean_core_share`` / ``min_core_share``:
    over them, the share of each target's |attribution| its core set in this layer carries; ``reach``: the share
    of the logit's attribution that reaches this layer through core paths (1 at the logit): a target passes its
    reach to each core neuron s in proportion to |T(a, s)| over the sum of |T(a, s')| over *every* lower neuron, so
    what the core sets leave out is lost on the way down. NaN when the circuit records no coverage (built before
    neurflow recorded it).
    """

    layer: str
    depth: int
    targets: int
    mean_core_share: float
    min_core_share: float
    mean_signed_share: float
    reach: float


def neuron_reach(circuit: Circuit) -> dict[str, float]:
    """Per core neuron, the share of the logit's attribution that reaches it through core paths (see
    :class:`LayerCoverage`); empty when the circuit records no coverage."""
    if not circuit.coverage:
        return {}
    attribution = {neuron_key(c.layer, c.channel): c.attribution for c in circuit.coverage}
    core_score: dict[tuple[str, str], float] = defaultdict(float)
    for edge in circuit.edges:
        core_score[edge.upper, edge.lower] += edge.score  # summed over V_a's semantic groups: T(a, s)
    reach = {circuit.logit_key: 1.0}
    for upper in circuit.layers[:-1]:
        for (a, s), score in core_score.items():
            if a.rpartition(":")[0] == upper and attribution.get(a):
                reach[s] = reach.get(s, 0.0) + reach.get(a, 0.0) * abs(score) / attribution[a]
    return reach


def layer_coverage(circuit: Circuit, reach: Mapping[str, float] | None = None) -> list[LayerCoverage]:
    """Per layer below the logit, top down: the core sets' coverage of their targets and the reach (see
    :class:`LayerCoverage`).

    >>> from neurflow.synthetic import synthetic_circuit
    >>> [round(c.reach, 3) for c in layer_coverage(synthetic_circuit(258))]   # doctest: +SKIP
    """
    if reach is None:  # ``reach``: the circuit's neuron_reach, when the caller has it already
        reach = neuron_reach(circuit)
    rows = []
    for depth, (upper, lower) in enumerate(zip(circuit.layers, circuit.layers[1:], strict=False), start=1):
        records = [c for c in circuit.coverage if c.layer == upper]
        shares = [c.core_share for c in records if not math.isnan(c.core_share)]
        signed = [c.signed_share for c in records if not math.isnan(c.signed_share)]
        nan = float("nan")
        rows.append(LayerCoverage(
            layer=lower, depth=depth, targets=len(records),
            mean_core_share=sum(shares) / len(shares) if shares else nan,
            min_core_share=min(shares) if shares else nan,
            mean_signed_share=sum(signed) / len(signed) if signed else nan,
            reach=sum(v for k, v in reach.items() if k.rpartition(":")[0] == lower) if reach else nan,
        ))
    return rows


def circuit_coverage(circuit: Circuit) -> float:
    """The share of the logit's attribution that reaches the circuit's lowest layer through core paths (NaN
    when the circuit records no coverage)."""
    layers = layer_coverage(circuit)
    return layers[-1].reach if layers else float("nan")
