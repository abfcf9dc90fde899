"""Every named query, run with its default parameters against real circuits in a real Neo4j, checked against
values computed here from the circuit files; plus the query loader, parameters, read-only runs and the CLI."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import neo4j
import pytest
from click.testing import CliRunner

from neurflow.analysis import layer_coverage, prune
from neurflow.circuit import Circuit
from neurflow.cli.main import main as neurflow_main
from neurflow.cli.query import query as query_command
from neurflow.format import thumbnail_uri
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.labels import write_caption
from neurflow.graph.named_queries import (
    EmptyAnswerError,
    QueryError,
    bind_params,
    list_queries,
    load_query,
    parse_query,
    query_columns,
    run_query,
)
from neurflow.graph.reads import incomplete_circuits
from tests.graph.graphs import Graph, ingest
from tests.helpers import (
    all_paths,
    expected_counts,
    neuron_influence,
    overlap_pairs,
    shares,
    small_synthetic,
)


@pytest.fixture
def synthetic_graph(clean_graph: neo4j.Driver, neo4j_settings, tmp_path: Path) -> Graph:
    """Four synthetic circuits with many foreign-labelled images and overlapping groups."""
    circuits = [small_synthetic(i, foreign_fraction=0.7, max_neuron_groups=3, images=12) for i in (258, 207, 259, 208)]
    folders: list[Path | None] = [tmp_path / str(c.target.index) for c in circuits]
    return ingest(clean_graph, neo4j_settings.database, circuits, folders)


def run(graph: Graph, name: str, **params: Any) -> list[dict[str, Any]]:
    driver, database, _, _ = graph
    return run_query(driver, name, params, database)[1]


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --------------------------------------------------------------------------- independent expectations


def influences(circuit: Circuit) -> dict[str, float]:
    """Share of the logit's attribution that reaches each group: its member neurons' influence (layer matrices,
    tests/helpers.py), each neuron's part split by its semantic groups' share of its concept."""
    neuron = neuron_influence(circuit)
    concept: dict[str, int] = defaultdict(int)
    for sg in circuit.semantic_groups:
        concept[sg.neuron] += len(sg.patches)
    of_sg = {sg.key: neuron[sg.neuron] * len(sg.patches) / concept[sg.neuron] for sg in circuit.semantic_groups}
    return {g.id: sum(of_sg[k] for k in g.semantic_groups) for g in circuit.neuron_groups}


def patch_keys(circuit: Circuit) -> dict[int, str]:
    return {p.id: f"{circuit.images[p.image].sha256}|{','.join(map(str, p.box))}" for p in circuit.patches}


def foreign_shares(circuit: Circuit) -> dict[str, float | None]:
    by_id = {p.id: p for p in circuit.patches}
    t = circuit.target
    result: dict[str, float | None] = {}
    for g in circuit.neuron_groups:
        labels = [circuit.images[by_id[p].image].label for p in g.patches]
        labelled = [lab for lab in labels if lab is not None]
        foreign = [lab for lab in labelled if lab not in (t.wnid, str(t.index)) and lab.lower() != t.name.lower()]
        result[g.id] = len(foreign) / len(labelled) if labelled else None
    return result


def in_weights(circuit: Circuit) -> dict[str, float]:
    """A lower core neuron's total incoming |w| in the circuit."""
    result: dict[str, float] = defaultdict(float)
    for e in circuit.edges:
        result[e.lower] += abs(e.weight)
    return result


def lower_core(circuit: Circuit) -> dict[str, float]:
    weights = in_weights(circuit)
    return {n.key: weights.get(n.key, 0.0) for layer in circuit.layers[1:] for n in circuit.neurons[layer]}


# --------------------------------------------------------------------------- one checker per query file


def check_graph_stats(graph: Graph, **params: Any) -> None:
    rows = run(graph, "graph-stats", **params)
    counts = {r["name"]: r["count"] for r in rows if r["kind"] in ("label", "relationship")}
    expected = expected_counts(graph[2])
    assert {k: counts.get(k) for k in expected} == expected
    assert all(v == 0 for k, v in counts.items() if k not in expected)  # labels of later work: none here
    circuits = {r["name"]: r["count"] for r in rows if r["kind"] == "circuits"}
    assert circuits == {"complete": len(graph[2]), "incomplete": 0}
    families: dict[str, int] = defaultdict(int)
    for c in graph[2]:
        families[c.family_key] += 1
    assert {r["name"].split()[0]: r["count"] for r in rows if r["kind"] == "family"} == families


def check_top_groups(graph: Graph, limit: int = 5, thumbnails: int = 4) -> None:
    circuit, folder = graph[2][0], graph[3][0]
    params = {} if (limit, thumbnails) == (5, 4) else {"limit": limit, "thumbnails": thumbnails}
    rows = run(graph, "top-groups", **{"class": circuit.target.name, **params})
    influence = influences(circuit)
    keys = patch_keys(circuit)
    sg_of = {g.key: g for g in circuit.semantic_groups}
    expected = []
    for depth, layer in enumerate(circuit.layers):
        groups = sorted((g for g in circuit.neuron_groups if g.layer == layer), key=lambda g: (-influence[g.id], g.id))
        for rank, g in enumerate(groups[:limit], 1):
            best: dict[int, float] = {}
            for sg in g.semantic_groups:
                for p, a in zip(sg_of[sg].patches, sg_of[sg].activations, strict=True):
                    best[p] = max(best.get(p, -math.inf), a)
            top = sorted(best, key=lambda p: (-best[p], keys[p]))[:thumbnails]
            uris = [thumbnail_uri(folder, p) for p in top] if folder is not None else []
            channels = sorted(int(n.rpartition(":")[2]) for n in g.neurons)
            expected.append((layer, depth, rank, g.id, influence[g.id], len(g.neurons), channels, uris))
    assert len(rows) == len(expected)
    for row, (layer, depth, rank, gid, infl, size, channels, uris) in zip(rows, expected, strict=True):
        assert (row["class"], row["layer"], row["depth"], row["rank"]) == (circuit.target.name, layer, depth, rank)
        assert math.isclose(row["influence"], infl, rel_tol=1e-9, abs_tol=1e-12)
        assert row["group"] == gid
        assert (row["neurons"], row["channels"], row["thumbnails"]) == (size, channels, uris)


def check_class_circuit(graph: Graph, min_share: float = 0.1) -> None:
    circuit = graph[2][0]
    rows = run(graph, "class-circuit", **{"class": str(circuit.target.index)})
    share = shares(circuit)
    expected = {(e.lower, e.upper): (e.weight, share[e.upper, e.lower]) for e in circuit.group_edges
                if share.get((e.upper, e.lower), 0.0) >= min_share}
    flows = {(r["fromGroup"], r["toGroup"]): (r["weight"], r["share"]) for r in rows if r["kind"] == "flow"}
    assert flows.keys() == expected.keys()
    assert all(close(flows[k][0], expected[k][0]) and close(flows[k][1], expected[k][1]) for k in expected)
    logit = [r for r in rows if r["kind"] == "logit"]
    top = [g.id for g in circuit.neuron_groups if g.layer == circuit.layers[0]]
    assert [(r["fromGroup"], r["toGroup"]) for r in logit] == [(g, circuit.logit_key) for g in top]
    path = logit[0]["path"]
    assert [sorted(n["_labels"]) for n in path["nodes"]] == [["Class"], ["Circuit"], ["Neuron"], ["NeuronGroup"]]
    assert rows[0]["kind"] == "logit" and all(r["path"]["relationships"] for r in rows)
    # the pruned view: the groups and edges neurflow.analysis.prune keeps (drawn by `neurflow draw --prune`)
    view = prune(circuit, 0.6)
    rows = run(graph, "class-circuit", **{"class": str(circuit.target.index), "prune": 0.6})
    assert {(r["fromGroup"], r["toGroup"]) for r in rows if r["kind"] == "flow"} == {
        (low, up) for up, low in view.group_edges}
    assert {r["fromGroup"] for r in rows if r["kind"] == "logit"} == {g for g in top if g in view.groups}


def check_bias_paths(graph: Graph, n: int = 5, min_foreign: float = 0.5) -> None:
    circuit = graph[2][0]
    params = {} if (n, min_foreign) == (5, 0.5) else {"n": n, "minForeign": min_foreign}
    rows = run(graph, "bias-paths", **{"class": circuit.target.wnid or circuit.target.name, **params})
    layer_of = {g.id: g.layer for g in circuit.neuron_groups}
    bottom = circuit.layers[-1]
    weight = {(e.upper, e.lower): e.weight for e in circuit.group_edges}
    paths = [(p, s) for p, s in all_paths(circuit) if s > 0 and layer_of[p[-1]] == bottom]

    def as_row(path: list[str], strength: float) -> tuple[list[str], float, list[float]]:
        up = list(reversed(path))
        return up, strength, [weight[u, low] for low, u in zip(up, up[1:], strict=False)]

    best: dict[str, tuple[list[str], float]] = {}
    for p, s in paths:
        if p[-1] not in best or s > best[p[-1]][1]:
            best[p[-1]] = (p, s)
    strongest = sorted(best.items(), key=lambda kv: (-kv[1][1], kv[0]))[:n]
    expected = [as_row(p, s) for _, (p, s) in strongest]
    got = [r for r in rows if r["kind"] == "strongest"]
    assert len(got) == len(expected)
    for row, (groups, strength, weights) in zip(got, expected, strict=True):
        assert row["groups"] == groups and close(row["strength"], strength)
        assert all(close(a, b) for a, b in zip(row["weights"], weights, strict=True))

    foreign = foreign_shares(circuit)
    through: dict[str, tuple[list[str], float]] = {}
    for g, fs in foreign.items():
        if fs is None or fs < min_foreign:
            continue
        candidates = [(p, s) for p, s in paths if g in p]
        if candidates:
            through[g] = max(candidates, key=lambda ps: ps[1])
    # Groups on one common path tie exactly; products computed in another order may differ in the last bit.
    chosen = sorted(through.items(), key=lambda kv: (-round(kv[1][1], 12), kv[0]))[:n]
    got = sorted((r for r in rows if r["kind"] == "foreign"), key=lambda r: (-round(r["strength"], 12), r["via"]))
    assert len(got) == len(chosen)
    for row, (g, (p, s)) in zip(got, chosen, strict=True):
        groups, strength, weights = as_row(p, s)
        assert row["via"] == g and row["groups"] == groups and close(row["strength"], strength)
        assert close(row["foreignShare"], foreign[g]) and row["foreignShare"] >= min_foreign
        assert all(close(a, b) for a, b in zip(row["weights"], weights, strict=True))
        assert len(row["paths"]) == 2  # down to the bottom, up to the logit: both drawn in Browser


def check_concept_reuse(graph: Graph, min_classes: int = 2, min_jaccard: float = 0.5, limit: int = 10,
                        prune: float | None = None) -> None:
    circuits = graph[2]  # one family here, and the newest circuit is the last ingested
    assert len({c.family_key for c in circuits}) == 1
    given = {"minClasses": (min_classes, 2), "minJaccard": (min_jaccard, 0.5), "limit": (limit, 10),
             "prune": (prune, None)}
    rows = run(graph, "concept-reuse", **{k: v for k, (v, default) in given.items() if v != default})
    assert {r["family"] for r in rows} <= {circuits[0].family_key}
    kept = {c.id: kept_neurons(c, prune) for c in circuits}
    uses: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for c in circuits:
        for key, value in kept[c.id].items():
            uses[key].append((value, c.target.name))
    ranked = sorted(((k, sum(v for v, _ in u), sum(v for v, _ in u) - max(v for v, _ in u)) for k, u in uses.items()
                     if len(u) >= min_classes), key=lambda t: (-t[2], -t[1], t[0]))
    got = [r for r in rows if r["kind"] == "neuron"]
    assert [r["item"] for r in got] == [t[0] for t in ranked[:limit]]
    for row, (key, total, beyond) in zip(got, ranked, strict=False):
        assert close(row["influence"], total) and close(row["sharedInfluence"], beyond)
        by_class = dict((name, v) for v, name in uses[key])
        assert set(row["classes"]) == set(by_class) and row["classCount"] == len(by_class)
        assert all(close(v, by_class[name]) for name, v in zip(row["classes"], row["influences"], strict=True))
        assert row["influences"] == sorted(row["influences"], reverse=True)

    influence = {c.id: influences(c) for c in circuits}
    kept_groups = {c.id: kept_group_ids(c, influence[c.id], prune) for c in circuits}
    pairs = [p for p in overlap_pairs(circuits, min_jaccard) if p[1] in kept_groups[p[0].id] and p[3] in kept_groups[p[2].id]]
    best: dict[tuple[str, str], dict[str, tuple[float, float]]] = defaultdict(dict)  # other class -> (jaccard, infl)
    for a, ga, b, gb, j in pairs:
        for (x, gx), (y, gy) in (((a, ga), (b, gb)), ((b, gb), (a, ga))):
            mine = best[x.target.name, gx]
            candidate = (j, influence[y.id][gy])
            if y.target.name not in mine or candidate > mine[y.target.name]:
                mine[y.target.name] = candidate
    infl = {(c.target.name, g): v for c in circuits for g, v in influence[c.id].items()}
    groups = [(f"{cls} {g}", 1 + len(others), sum(j for j, _ in others.values()) / len(others),
               sum(min(i, infl[cls, g]) for _, i in others.values())) for (cls, g), others in best.items()
              if 1 + len(others) >= min_classes]
    groups.sort(key=lambda t: (-t[3], -t[2], t[0]))
    got = [r for r in rows if r["kind"] == "group"]
    assert [r["item"] for r in got] == [t[0] for t in groups[:limit]]
    assert all(close(r["jaccard"], t[2]) and close(r["sharedInfluence"], t[3]) for r, t in zip(got, groups, strict=False))

    pair_rows = sorted(
        ((frozenset({f"{a.target.name} {ga}", f"{b.target.name} {gb}"}), j,
          min(influence[a.id][ga], influence[b.id][gb])) for a, ga, b, gb, j in pairs),
        key=lambda t: (-t[2], -t[1]))[:limit]
    got = [r for r in rows if r["kind"] == "group-pair"]
    assert len(got) == len(pair_rows)
    for row, (items, j, w) in zip(got, pair_rows, strict=True):
        assert frozenset(row["item"].split(" ~ ")) == items and close(row["jaccard"], j)
        assert close(row["sharedInfluence"], w)


def kept_neurons(circuit: Circuit, prune: float | None) -> dict[str, float]:
    """Core neurons below the logit in the view pruned to ``prune`` (all when None): neuron -> influence."""
    influence = neuron_influence(circuit)
    kept: dict[str, float] = {}
    for layer in circuit.layers[1:]:
        ranked = sorted(circuit.neurons[layer], key=lambda n: (-influence[n.key], n.key))
        total, carried = sum(influence[n.key] for n in ranked), 0.0
        for n in ranked:
            if prune is None or carried / total < prune - 1e-12:
                kept[n.key] = influence[n.key]
            carried += influence[n.key]
    return kept


def kept_group_ids(circuit: Circuit, influence: dict[str, float], prune: float | None) -> set[str]:
    kept: set[str] = set()
    for layer in circuit.layers:
        ranked = sorted((g.id for g in circuit.neuron_groups if g.layer == layer), key=lambda g: (-influence[g], g))
        total, carried = sum(influence[g] for g in ranked), 0.0
        for g in ranked:
            if prune is None or carried / total < prune - 1e-12:
                kept.add(g)
            carried += influence[g]
    return kept


def check_class_similarity(graph: Graph, limit: int = 10, prune: float | None = None) -> None:
    circuits = graph[2]
    target = circuits[0]
    params: dict[str, Any] = {"class": target.target.name.upper()}
    if limit != 10:
        params["limit"] = limit
    if prune is not None:
        params["prune"] = prune
    rows = run(graph, "class-similarity", **params)

    def side(circuit: Circuit) -> dict[str, tuple[str, float, float]]:
        """Neuron -> (layer, influence, incoming |w|), below the logit, in the pruned view."""
        weights = in_weights(circuit)
        return {k: (k.rpartition(":")[0], v, weights.get(k, 0.0)) for k, v in kept_neurons(circuit, prune).items()}

    def weighted(mine: dict, theirs: dict, at: int) -> float:
        keys = mine.keys() | theirs.keys()
        larger = sum(max(mine.get(k, (0, 0.0, 0.0))[at], theirs.get(k, (0, 0.0, 0.0))[at]) for k in keys)
        return sum(min(mine.get(k, (0, 0.0, 0.0))[at], theirs.get(k, (0, 0.0, 0.0))[at]) for k in keys) / larger

    mine = side(target)
    expected = []
    for other in circuits:
        if other.target.index == target.target.index or other.family_key != target.family_key:
            continue
        theirs = side(other)
        shared = mine.keys() & theirs.keys()
        per_layer = []
        for layer in target.layers[1:]:
            a = {k: v for k, v in mine.items() if v[0] == layer}
            b = {k: v for k, v in theirs.items() if v[0] == layer}
            per_layer.append((layer, weighted(a, b, 1)))
        expected.append((other.target.name, other.id, len(shared), weighted(mine, theirs, 1),
                         len(shared) / len(mine.keys() | theirs.keys()), weighted(mine, theirs, 2), per_layer))
    expected.sort(key=lambda t: (-t[3], -t[4], t[0]))
    comparable = [r for r in rows if r["comparable"]]
    assert [(r["class"], r["circuit"], r["sharedNeurons"]) for r in comparable] == [t[:3] for t in expected[:limit]]
    for r, t in zip(comparable, expected, strict=False):
        assert close(r["weightedJaccard"], t[3]) and close(r["jaccard"], t[4])
        assert close(r["incomingWeightJaccard"], t[5])
        assert [p["layer"] for p in r["perLayer"]] == [p[0] for p in t[6]]
        assert all(close(p["weightedJaccard"], q[1]) for p, q in zip(r["perLayer"], t[6], strict=True))


def check_circuit_coverage(graph: Graph) -> None:
    """Per circuit and layer, the reach and the targets' core shares written at ingestion, against
    :func:`neurflow.analysis.layer_coverage` of the circuit file."""
    circuits = graph[2]
    for circuit in circuits:
        rows = run(graph, "circuit-coverage", **{"class": circuit.target.name, "circuit": circuit.id})
        assert [(r["class"], r["circuit"], r["layer"], r["depth"]) for r in rows] == [
            (circuit.target.name, circuit.id, layer, depth) for depth, layer in enumerate(circuit.layers)]
        assert [r["coreNeurons"] for r in rows] == [len(circuit.neurons[layer]) for layer in circuit.layers]
        logit = rows[0]
        assert logit["reach"] == 1.0 and logit["targets"] is None and logit["meanCoreShare"] is None
        for row, expected in zip(rows[1:], layer_coverage(circuit), strict=True):
            assert row["targets"] == expected.targets
            assert close(row["reach"], expected.reach) and close(row["meanCoreShare"], expected.mean_core_share)
            assert close(row["minCoreShare"], expected.min_core_share)
            assert close(row["meanSignedShare"], expected.mean_signed_share)
            gaps = [c.completeness_gap for c in circuit.coverage if c.lower_layer == row["layer"]]
            assert close(row["maxCompletenessGap"], max(g for g in gaps if not math.isnan(g)))
    everyone = run(graph, "circuit-coverage")
    assert {r["circuit"] for r in everyone} <= {c.id for c in circuits} and everyone


def check_group_stability(graph: Graph, min_stability: float = 0.0) -> None:
    """Per group below the logit, the bootstrap's stability and its members' selection frequency written at
    ingestion, against the circuit file's Stability record."""
    circuit = graph[2][0]
    params = {} if min_stability == 0.0 else {"minStability": min_stability}
    rows = run(graph, "group-stability", **{"class": circuit.target.name, **params})
    s = circuit.stability
    stability = dict(s.neuron_groups) if s else {}
    frequency: dict[str, float] = {}
    for _, lower, value in (s.core if s else []):
        frequency[lower] = max(frequency.get(lower, 0.0), value)
    depth = {layer: i for i, layer in enumerate(circuit.layers)}
    expected = [g for g in circuit.neuron_groups if depth[g.layer] > 0
                and (min_stability <= 0 or stability.get(g.id, -1.0) >= min_stability)]
    expected.sort(key=lambda g: (depth[g.layer], -stability.get(g.id, math.inf), g.id))
    assert [r["group"] for r in rows] == [g.id for g in expected]
    for row, g in zip(rows, expected, strict=True):
        assert close(row["stability"], stability.get(g.id))
        ari = {layer: value for layer, _, _, value in s.neuron_groupings} if s else {}
        assert close(row["layerAri"], ari.get(g.layer))
        members = [frequency[n] for n in g.neurons if n in frequency]
        assert close(row["minSelection"], min(members) if members else None)
        assert close(row["meanSelection"], sum(members) / len(members) if members else None)


CHECKERS: dict[str, Callable[..., None]] = {
    "group-stability": check_group_stability,
    "circuit-coverage": check_circuit_coverage,
    "graph-stats": check_graph_stats,
    "top-groups": check_top_groups,
    "class-circuit": check_class_circuit,
    "bias-paths": check_bias_paths,
    "concept-reuse": check_concept_reuse,
    "class-similarity": check_class_similarity,
}


def test_the_circuit_queries_exist() -> None:
    assert set(CHECKERS) <= {q.name for q in list_queries()}


# Queries of what this graph does not hold yet (experiments, studies): no rows, never an error.
ABOUT_LATER_WORK = {"masking-experiments", "fidelity-summary", "validation-summary"}


def required_values(graph: Graph) -> dict[str, Any]:
    """A value for every required parameter of the project's queries, taken from the graph's circuits."""
    first, second = graph[2][0], graph[2][1]
    return {"class": first.target.name, "a": first.target.name, "b": second.target.name,
            "neuron": first.neurons[first.layers[1]][0].key, "text": first.target.name, "circuit": first.id,
            "group": first.groups_of_layer(first.layers[1])[0].id, "circuits": f"{first.id},{second.id}"}


@pytest.mark.neo4j
def test_every_query_file_runs_with_its_defaults(real_graph: Graph) -> None:
    """Every file in queries/ runs read-only with its defaults and the required parameters set from the graph:
    each row has the query's columns; a query of the circuits finds rows in two real ones, a query of later
    work (experiments, studies: none here) finds none. A new query file must be placed in one of the
    two kinds (its rows are checked against the circuit files by a CHECKER when it has one)."""
    values = required_values(real_graph)
    driver, database, _, _ = real_graph
    for info in list_queries():
        missing = [p.name for p in info.params if p.required and p.name not in values]
        assert not missing, f"{info.name}: give required_values a value for {missing}"
        columns, rows = run_query(driver, info.name, {p.name: values[p.name] for p in info.params if p.required},
                                  database)
        assert columns and all(list(row) == columns for row in rows), info.name
        assert columns == query_columns(info), info.name  # what `neurflow query NAME --help` lists
        if info.name in ABOUT_LATER_WORK:
            assert rows == [], info.name
        else:
            assert rows, f"{info.name} finds nothing in two real circuits"


@pytest.mark.neo4j
@pytest.mark.parametrize("name", sorted(CHECKERS))
def test_query_with_default_parameters_on_real_circuits(real_graph: Graph, name: str) -> None:
    CHECKERS[name](real_graph)


@pytest.mark.neo4j
def test_queries_on_synthetic_circuits_with_foreign_images_and_overlaps(synthetic_graph: Graph) -> None:
    for check in CHECKERS.values():
        check(synthetic_graph)
    check_top_groups(synthetic_graph, limit=2, thumbnails=1)
    check_bias_paths(synthetic_graph, n=3, min_foreign=0.4)
    check_class_similarity(synthetic_graph, prune=0.8)
    check_class_similarity(synthetic_graph, limit=2, prune=0.5)
    check_concept_reuse(synthetic_graph, min_jaccard=0.2, prune=0.8)
    rows = run(synthetic_graph, "bias-paths", **{"class": "258", "minForeign": 0.4})
    assert any(r["kind"] == "foreign" for r in rows), "the synthetic data has foreign groups"
    rows = run(synthetic_graph, "concept-reuse", minJaccard=0.2)
    assert {r["kind"] for r in rows} == {"neuron", "group", "group-pair"}


@pytest.mark.neo4j
def test_bias_paths_through_groups_labelled_context_or_background(synthetic_graph: Graph) -> None:
    driver, database, circuits, _ = synthetic_graph
    circuit = circuits[0]
    layer_of = {g.id: g.layer for g in circuit.neuron_groups}
    paths = [(p, s) for p, s in all_paths(circuit) if s > 0 and layer_of[p[-1]] == circuit.layers[-1]]
    middle = [g.id for g in circuit.neuron_groups if g.layer == circuit.layers[2]][:2]
    for group, depicts in zip(middle, ("background", "object"), strict=True):
        write_caption(driver, circuit.id, group, label=f"{depicts} thing", caption="c", common_features=[],
                      model="m", prompt_version="group-caption-v2", at=None, raw=None, database=database,
                      depicts=depicts)
    rows = [r for r in run(synthetic_graph, "bias-paths", **{"class": circuit.target.name}) if r["kind"] == "context"]
    assert [(r["via"], r["depicts"], r["label"]) for r in rows] == [(middle[0], "background", "background thing")]
    best = max((ps for ps in paths if middle[0] in ps[0]), key=lambda ps: ps[1])
    assert rows[0]["groups"] == list(reversed(best[0])) and close(rows[0]["strength"], best[1])


@pytest.mark.neo4j
def test_class_similarity_compares_like_with_like(synthetic_graph: Graph) -> None:
    """A class whose only circuit has other build parameters is listed as not comparable, never compared; a
    second circuit of a compared class, of another family, changes nothing."""
    driver, database, circuits, _ = synthetic_graph
    before = run(synthetic_graph, "class-similarity", **{"class": "258"})
    write_circuit(driver, small_synthetic(300, seed=1), database=database)
    write_circuit(driver, small_synthetic(207, seed=1), database=database)
    rows = run(synthetic_graph, "class-similarity", **{"class": "258"})
    assert rows[:len(before)] == before
    assert [(r["index"], r["comparable"], r["weightedJaccard"]) for r in rows[len(before):]] == [(300, False, None)]
    # the other family, asked for by key, compares only its own circuits
    other = run(synthetic_graph, "class-similarity", **{"class": "207", "family": small_synthetic(207, seed=1).family_key})
    assert [(r["index"], r["comparable"]) for r in other if r["comparable"]] == [(300, True)]
    assert {r["index"] for r in other if not r["comparable"]} == {258, 259, 208}


@pytest.mark.neo4j
def test_queries_never_see_an_incomplete_circuit(synthetic_graph: Graph) -> None:
    driver, database, circuits, _ = synthetic_graph
    names = [q.name for q in list_queries() if q.name != "graph-stats"]
    given = {"neuron": "_blocks.15:194", "text": circuits[0].target.name}  # a neuron and a class name that exist
    params = {name: {p.name: given.get(p.name, "258") for p in load_query(name).params
                     if p.required or p.name == "class"}
              for name in names}

    def seen(name: str) -> list[dict[str, Any]]:
        rows = run(synthetic_graph, name, **params[name])
        # Full-text scores follow the index's term statistics, which any written node changes: compare the rest.
        return [{k: v for k, v in r.items() if k != "score"} for r in rows] if name == "search-concepts" else rows

    before = {name: seen(name) for name in names}
    extra = small_synthetic(300, foreign_fraction=0.6)

    def crash(step: str, done: int, total: int) -> None:
        if step == "semantic groups" and done > total // 2:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_circuit(driver, extra, database=database, batch_rows=10, progress=crash)
    assert incomplete_circuits(driver, database) == [extra.id]
    assert {name: seen(name) for name in names} == before
    for name in names:  # 300's only circuit is incomplete: its queries say so
        if load_query(name).param("class"):
            with pytest.raises(EmptyAnswerError, match="has no complete circuit in the graph"):
                run(synthetic_graph, name, **{"class": "300"})
    stats = {r["name"]: r["count"] for r in run(synthetic_graph, "graph-stats") if r["kind"] == "circuits"}
    assert stats == {"complete": len(circuits), "incomplete": 1}


# --------------------------------------------------------------------------- loader, parameters, read-only


def test_headers_document_every_parameter_the_query_uses() -> None:
    for info in list_queries():
        assert info.description and info.cypher.lstrip().startswith("// name:")
        used = set(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", info.cypher))
        assert used == {p.name for p in info.params}, info.name


def test_parameters_are_typed_by_the_header() -> None:
    info = load_query("top-groups")
    bound = bind_params(info, {"class": "Samoyed", "limit": "3"})
    assert bound == {"class": "Samoyed", "limit": 3, "thumbnails": 4, "model": None, "circuit": None}
    assert bind_params(info, {"class": 258})["class"] == "258"
    assert bind_params(load_query("bias-paths"), {"class": "x", "minForeign": "0.25"})["minForeign"] == 0.25
    with pytest.raises(QueryError, match=r"needs parameter 'class'.*limit \(int, default 5\)"):
        bind_params(info, {})
    with pytest.raises(QueryError, match="no parameter 'nope'.*Parameters: class"):
        bind_params(info, {"class": "x", "nope": "1"})
    with pytest.raises(QueryError, match="'limit' must be an int, not 'many'"):
        bind_params(info, {"class": "x", "limit": "many"})


def test_unknown_query_lists_the_queries() -> None:
    with pytest.raises(QueryError) as error:
        load_query("no-such-query")
    assert "unknown query 'no-such-query'" in str(error.value)
    assert all(q.name in str(error.value) for q in list_queries())
    with pytest.raises(QueryError, match="unknown query"):
        load_query("../pyproject")


def test_malformed_headers_are_reported(tmp_path: Path) -> None:
    with pytest.raises(QueryError, match="no '// name:' line"):
        parse_query("MATCH (n) RETURN n", tmp_path / "x.cypher")
    with pytest.raises(QueryError, match="unknown type 'list'"):
        parse_query("// name: x\n// param: a (list, required) no\nRETURN 1", tmp_path / "x.cypher")
    with pytest.raises(QueryError, match="names the query 'y'"):
        parse_query("// name: y\nRETURN 1", tmp_path / "x.cypher")


@pytest.mark.neo4j
def test_queries_run_read_only(clean_graph: neo4j.Driver, neo4j_settings, tmp_path: Path) -> None:
    (tmp_path / "sneaky.cypher").write_text("// name: sneaky\n// description: tries to write\nCREATE (:Oops) RETURN 1\n")
    with pytest.raises(neo4j.exceptions.Neo4jError, match="(?i)write|read"):
        run_query(clean_graph, "sneaky", {}, neo4j_settings.database, folder=tmp_path)
    records, _, _ = clean_graph.execute_query("MATCH (n:Oops) RETURN count(n) AS n", database_=neo4j_settings.database)
    assert records[0]["n"] == 0


# --------------------------------------------------------------------------- CLI


def test_cli_lists_queries_and_reports_bad_input() -> None:
    runner = CliRunner()
    result = runner.invoke(query_command, ["--list"])
    assert result.exit_code == 0
    for info in list_queries():
        assert info.name in result.output
    assert "--param class (string, required)" in result.output
    result = runner.invoke(query_command, ["nope"])
    assert result.exit_code == 2 and "unknown query 'nope'" in result.output and "top-groups" in result.output
    assert len(result.output.strip().splitlines()) == 1  # one line, no usage text
    result = runner.invoke(query_command, ["top-groups"])
    assert result.exit_code == 2 and "needs parameter 'class'" in result.output
    result = runner.invoke(query_command, ["top-groups", "-p", "limit"])
    assert result.exit_code == 2 and "key=value" in result.output
    result = runner.invoke(query_command, ["top-groups", "--show"])
    assert result.exit_code == 0 and "MATCH (c:Circuit {complete: true})" in result.output


@pytest.mark.neo4j
def test_cli_formats(real_graph: Graph, neo4j_settings) -> None:
    runner = CliRunner()
    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password or "", "NEO4J_DATABASE": neo4j_settings.database}
    name = real_graph[2][0].target.name
    table = runner.invoke(query_command, ["top-groups", "-p", f"class={name}", "-p", "limit=1", "--wide"], env=env)
    assert table.exit_code == 0, table.output
    assert table.output.splitlines()[0].split()[:4] == ["class", "layer", "depth", "rank"]
    assert f"({len(real_graph[2][0].layers)} rows)" in table.output
    as_json = runner.invoke(query_command, ["top-groups", "-p", f"class={name}", "-p", "limit=1", "-f", "json"], env=env)
    rows = json.loads(as_json.output)
    assert len(rows) == len(real_graph[2][0].layers) and rows[0]["influence"] == 1.0
    as_csv = runner.invoke(query_command, ["graph-stats", "--format", "csv"], env=env)
    assert as_csv.output.splitlines()[0] == "kind,name,count"
    # Connection failures become one line in the `neurflow` group (neurflow.cli.errors), as users run it.
    bad = runner.invoke(neurflow_main, ["query", "graph-stats"], env={**env, "NEO4J_PASSWORD": "wrong-password"})
    assert bad.exit_code == 1 and neo4j_settings.uri in bad.output and "wrong-password" not in bad.output
