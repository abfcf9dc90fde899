"""The cross-class named queries (class-specific, shared-groups, neuron-classes, search-concepts) against real
and synthetic circuits in a real Neo4j, checked against influence, family totals, specificity, overlaps and
thumbnails recomputed here from the circuit files (influence by brute force over every path from the logit,
``tests.helpers.neuron_paths``; never ``neurflow.analysis``)."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import neo4j
import pytest
from click.testing import CliRunner

from neurflow.circuit import Circuit
from neurflow.cli.query import query as query_command
from neurflow.format import thumbnail_uri
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.labels import write_caption
from neurflow.graph.named_queries import (
    EmptyAnswerError,
    QueryError,
    UnknownClassError,
    bind_params,
    load_query,
    run_query,
)
from neurflow.graph.query_answers import query_notes
from neurflow.graph.reads import incomplete_circuits
from tests.graph.graphs import Graph, ingest
from tests.helpers import neuron_paths, overlap_pairs, small_synthetic


@pytest.fixture
def synthetic_graph(clean_graph: neo4j.Driver, neo4j_settings, tmp_path: Path) -> Graph:
    """Family A: four classes with overlapping groups. Family B (another image count, ingested last): class 300,
    which has no circuit in family A, and class 258 again, so 258's newest circuit is family B's. Groups of the
    two families overlap too (same model and layers): the queries must never compare across them."""
    family_a = [small_synthetic(i, foreign_fraction=0.7, max_neuron_groups=3, images=12) for i in (258, 207, 259, 208)]
    family_b = [small_synthetic(i, foreign_fraction=0.7, max_neuron_groups=3, images=11) for i in (300, 258)]
    circuits = family_a + family_b
    folders: list[Path | None] = [tmp_path / f"{c.target.index}-{c.id}" for c in circuits]
    return ingest(clean_graph, neo4j_settings.database, circuits, folders)


def run(graph: Graph, name: str, **params: Any) -> list[dict[str, Any]]:
    return run_query(graph[0], name, params, graph[1])[1]


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --------------------------------------------------------------------------- independent expectations


@dataclass
class Influence:
    """Brute-force influence of one circuit: neuron key -> share of the logit, (group, neuron) -> what the group
    carries through the member, group -> the sum of that."""

    neurons: dict[str, float]
    members: dict[tuple[str, str], float]
    groups: dict[str, float]
    signed_neurons: dict[str, float]
    signed_groups: dict[str, float]


_INFLUENCE: dict[str, Influence] = {}


def influence(circuit: Circuit) -> Influence:
    if circuit.id not in _INFLUENCE:
        _INFLUENCE[circuit.id] = _influence(circuit)
    return _INFLUENCE[circuit.id]


def _influence(circuit: Circuit) -> Influence:
    neurons: dict[str, float] = defaultdict(float)
    for path, strength in neuron_paths(circuit):
        neurons[path[-1]] += strength
    concept: dict[str, int] = defaultdict(int)
    for sg in circuit.semantic_groups:
        concept[sg.neuron] += len(sg.patches)
    sg_of = {sg.key: sg for sg in circuit.semantic_groups}
    members: dict[tuple[str, str], float] = defaultdict(float)
    for g in circuit.neuron_groups:
        for n in g.neurons:
            members[g.id, n] += 0.0
        for key in g.semantic_groups:
            sg = sg_of[key]
            members[g.id, sg.neuron] += neurons[sg.neuron] * len(sg.patches) / concept[sg.neuron]
    groups = {g.id: sum(members[g.id, n] for n in g.neurons) for g in circuit.neuron_groups}
    signed: dict[str, float] = defaultdict(float)  # every path's product of signed shares
    for path, strength in neuron_paths(circuit, signed=True):
        signed[path[-1]] += strength
    signed_groups = {g.id: sum(signed[sg_of[key].neuron] * len(sg_of[key].patches) / concept[sg_of[key].neuron]
                               for key in g.semantic_groups) for g in circuit.neuron_groups}
    return Influence(dict(neurons), dict(members), groups, dict(signed), signed_groups)


def before(values: dict[str, float], layer_of: dict[str, str]) -> dict[str, float]:
    """Per layer, the share of the layer's total carried by the items ranked above each (largest first, then key)."""
    result: dict[str, float] = {}
    for layer in set(layer_of.values()):
        keys = sorted((k for k in values if layer_of[k] == layer), key=lambda k: (-values[k], k))
        total, carried = sum(values[k] for k in keys), 0.0
        for k in keys:
            result[k] = carried / total if total > 0 else 0.0
            carried += values[k]
    return result


def core(circuit: Circuit, lower: bool = True) -> dict[str, int]:
    """Core neuron key -> depth (below the logit layer when ``lower``)."""
    return {n.key: d for d, layer in enumerate(circuit.layers) if d > 0 or not lower for n in circuit.neurons[layer]}


def reference(graph: Graph, cls: int, family: str | None = None) -> tuple[Circuit, Path | None]:
    """The newest (last ingested) circuit of the class, of the family when given."""
    found = [(c, f) for c, f in zip(graph[2], graph[3], strict=True)
             if c.target.index == cls and family in (None, c.family_key)]
    return found[-1]


def family_of(graph: Graph, circuit: Circuit) -> list[Circuit]:
    return [c for c in graph[2] if c.family_key == circuit.family_key]


def patch_keys(circuit: Circuit) -> dict[int, str]:
    return {p.id: f"{circuit.images[p.image].sha256}|{','.join(map(str, p.box))}" for p in circuit.patches}


_URIS: dict[tuple[tuple[str, str], ...], dict[str, str]] = {}


def thumbs(graph: Graph, circuit: Circuit, sg_keys: set[str], count: int = 4) -> list[str]:
    """Thumbnail URIs of the strongest patches of the semantic groups ``sg_keys`` (best activation per patch).
    A patch is one node for every circuit that crops it: its URI is the first ingested circuit's."""
    ingested = tuple((c.id, str(f)) for c, f in zip(graph[2], graph[3], strict=True))
    uri = _URIS.setdefault(ingested, {})
    if not uri:
        for c, folder in zip(graph[2], graph[3], strict=True):
            keys = patch_keys(c)
            for sg in c.semantic_groups:
                for p in sg.patches:
                    if folder is not None:
                        uri.setdefault(keys[p], thumbnail_uri(folder, p))
    keys = patch_keys(circuit)
    best: dict[str, float] = {}
    for sg in circuit.semantic_groups:
        if sg.key in sg_keys:
            for p, a in zip(sg.patches, sg.activations, strict=True):
                best[keys[p]] = max(best.get(keys[p], -math.inf), a)
    return [uri[k] for k in sorted(best, key=lambda k: (-best[k], k))[:count] if k in uri]


def family_totals(members: list[Circuit]) -> tuple[dict[str, float], dict[str, int]]:
    totals: dict[str, float] = defaultdict(float)
    classes: dict[str, int] = defaultdict(int)
    for c in members:
        infl = influence(c).neurons
        for n in core(c, lower=False):
            totals[n] += infl.get(n, 0.0)
            classes[n] += 1
    return totals, classes


def ranked(rows: list[tuple], limit: int) -> list[tuple]:
    """Best score first (products computed in another order may differ in the last bit), then the item."""
    return sorted(rows, key=lambda t: (-round(t[3], 12), t[0]))[:limit]


# --------------------------------------------------------------------------- one checker per query


def check_class_specific(graph: Graph, cls: int, family: str | None = None, prune: float | None = None,
                         limit: int = 10) -> list[dict[str, Any]]:
    c, _ = reference(graph, cls, family)
    members = family_of(graph, c)
    totals, users = family_totals(members)
    mine = influence(c)
    depth = core(c)
    spec = {n: mine.neurons.get(n, 0.0) / totals[n] if totals[n] > 0 else 0.0 for n in depth}
    layer_of = {n: n.rpartition(":")[0] for n in mine.neurons}
    neuron_before = before({n: mine.neurons.get(n, 0.0) for n in core(c, lower=False)}, layer_of)
    neurons = [(n, c.layers[d], d, mine.neurons.get(n, 0.0) * spec[n], mine.neurons.get(n, 0.0), spec[n], users[n],
                thumbs(graph, c, {sg.key for sg in c.semantic_groups if sg.neuron == n}))
               for n, d in depth.items() if prune is None or neuron_before[n] < prune]
    overlapping: dict[str, set[int]] = defaultdict(set)
    for a, ga, b, gb, _ in overlap_pairs(members):
        for (x, gx), (y, _gy) in (((a, ga), (b, gb)), ((b, gb), (a, ga))):
            if x.id == c.id:
                overlapping[gx].add(y.target.index)
    group_before = before(mine.groups, {g.id: g.layer for g in c.neuron_groups})
    groups = []
    for g in c.neuron_groups:
        d = c.layers.index(g.layer)
        if d == 0 or (prune is not None and group_before[g.id] >= prune):
            continue
        score = sum(mine.members[g.id, n] * spec[n] for n in g.neurons)
        groups.append((g.id, g.layer, d, score, mine.groups[g.id], score / mine.groups[g.id] if mine.groups[g.id] else 0.0,
                       1 + len(overlapping[g.id]), thumbs(graph, c, set(g.semantic_groups))))
    if prune is not None:  # no item sits on the edge, where rounding could decide
        assert all(abs(v - prune) > 1e-9 for v in [*neuron_before.values(), *group_before.values()])
    params = {"class": c.target.name, "limit": limit, "prune": prune, "family": family}
    rows = run(graph, "class-specific", **params)
    assert {r["circuit"] for r in rows} <= {c.id} and {r["class"] for r in rows} <= {c.target.name}
    for kind, expected in (("neuron", ranked(neurons, limit)), ("group", ranked(groups, limit))):
        got = sorted((r for r in rows if r["kind"] == kind), key=lambda r: (-round(r["score"], 12), r["item"]))
        assert [r["item"] for r in got] == [t[0] for t in expected], kind
        for r, (_, layer, d, score, infl, sp, classes, uris) in zip(got, expected, strict=True):
            assert (r["layer"], r["depth"], r["classCount"], r["thumbnails"]) == (layer, d, classes, uris)
            assert close(r["score"], score) and close(r["influence"], infl) and close(r["specificity"], sp)
            signed = (mine.signed_neurons if kind == "neuron" else mine.signed_groups)[r["item"]]
            assert close(r["signedInfluence"], signed) and abs(signed) <= infl + 1e-9
            assert r["effect"] == ("inhibitory" if signed < 0 else "excitatory")
            assert -1e-9 <= r["specificity"] <= 1 + 1e-9
    assert [r["kind"] for r in rows] == sorted((r["kind"] for r in rows), reverse=True)  # neurons first
    return rows


def check_shared_groups(graph: Graph, a: int, b: int, min_jaccard: float = 0.2, prune: float | None = None,
                        limit: int = 10, family: str | None = None) -> list[dict[str, Any]]:
    ca, _ = reference(graph, a, family)
    comparable = [(c, f) for c, f in zip(graph[2], graph[3], strict=True)
                  if c.target.index == b and c.family_key == ca.family_key]
    name_b = next(c.target.name for c in graph[2] if c.target.index == b)
    rows = run(graph, "shared-groups", a=str(a), b=name_b.upper(), minJaccard=min_jaccard, prune=prune,
               limit=limit, family=family)
    if not comparable:
        assert len(rows) == 1
        assert {k: rows[0][k] for k in ("kind", "family", "classA", "circuitA", "classB", "circuitB", "groupA")} == {
            "kind": "no comparable circuit", "family": ca.family_key, "classA": ca.target.name, "circuitA": ca.id,
            "classB": name_b, "circuitB": None, "groupA": None}
        return rows
    cb, _ = comparable[-1]
    ia, ib = influence(ca), influence(cb)
    before_a = before(ia.groups, {g.id: g.layer for g in ca.neuron_groups})
    before_b = before(ib.groups, {g.id: g.layer for g in cb.neuron_groups})
    members_a = {g.id: g for g in ca.neuron_groups}
    members_b = {g.id: g for g in cb.neuron_groups}
    expected = []
    for x, gx, _, gy, j in overlap_pairs([ca, cb], min_jaccard):
        ga, gb = (gx, gy) if x.id == ca.id else (gy, gx)
        if prune is not None and (before_a[ga] >= prune or before_b[gb] >= prune):
            continue
        shared = set(members_a[ga].neurons) & set(members_b[gb].neurons)
        expected.append((ga, gb, j, min(ia.groups[ga], ib.groups[gb]), members_a[ga].layer,
                         sorted(shared, key=lambda n: int(n.rpartition(":")[2])),
                         thumbs(graph, ca, set(members_a[ga].semantic_groups)),
                         thumbs(graph, cb, set(members_b[gb].semantic_groups))))
    expected.sort(key=lambda t: (-round(t[3], 12), -t[2], t[0], t[1]))
    expected = expected[:limit]
    assert [(r["groupA"], r["groupB"]) for r in rows] == [t[:2] for t in expected]
    for r, (ga, gb, j, weight, layer, shared, ta, tb) in zip(rows, expected, strict=True):
        assert (r["kind"], r["classA"], r["circuitA"], r["classB"], r["circuitB"], r["family"]) == (
            "shared", ca.target.name, ca.id, cb.target.name, cb.id, ca.family_key)
        assert close(r["jaccard"], j) and close(r["weight"], weight) and r["layer"] == layer
        assert close(r["influenceA"], ia.groups[ga]) and close(r["influenceB"], ib.groups[gb])
        assert r["sharedNeurons"] == shared and r["shared"] == len(shared)
        assert (r["thumbnailsA"], r["thumbnailsB"]) == (ta, tb)
        assert len(r["paths"]) == len(shared)  # group a -> shared neuron <- group b, for Browser
    return rows


def check_neuron_classes(graph: Graph, neuron: str, family: str | None = None, model: str | None = None,
                         limit: int = 20) -> list[dict[str, Any]]:
    expected = []
    for fam in {c.family_key for c in graph[2]}:
        members = [c for c in graph[2] if c.family_key == fam]
        totals, users = family_totals(members)
        for c in members:
            depth = core(c, lower=False).get(neuron)
            if depth is None or family not in (None, fam) or model not in (None, c.model.key, c.model.name):
                continue
            infl = influence(c)
            groups = sorted(((g.id, infl.members[g.id, neuron]) for g in c.neuron_groups if neuron in g.neurons),
                            key=lambda t: (-t[1], t[0]))
            value = infl.neurons.get(neuron, 0.0)
            expected.append((c.id, c.model.key, fam, c.target.name, c.target.index, depth, value,
                             value / totals[neuron] if totals[neuron] > 0 else 0.0, users[neuron], groups))
    expected.sort(key=lambda t: (-round(t[6], 12), t[2], t[4]))
    rows = run(graph, "neuron-classes", neuron=neuron, family=family, model=model, limit=limit)
    assert [r["circuit"] for r in rows] == [t[0] for t in expected[:limit]]
    for r, (_, mkey, fam, name, index, depth, value, spec, users, groups) in zip(rows, expected, strict=False):
        assert (r["model"], r["family"], r["class"], r["index"], r["depth"], r["classCount"]) == (
            mkey, fam, name, index, depth, users)
        assert r["neuron"] == neuron and close(r["influence"], value) and close(r["specificity"], spec)
        got = sorted(zip(r["groups"], r["groupInfluence"], strict=True), key=lambda t: (-round(t[1], 12), t[0]))
        assert [g for g, _ in got] == [g for g, _ in groups], (got, groups)
        assert all(close(x, y) for (_, x), (_, y) in zip(got, groups, strict=True))
        assert r["groupInfluence"] == sorted(r["groupInfluence"], reverse=True)
    return rows


# --------------------------------------------------------------------------- tests


@pytest.mark.neo4j
def test_cross_class_queries_on_real_circuits(real_graph: Graph, neo4j_settings) -> None:
    samoyed, golden = real_graph[2]
    assert samoyed.family_key == golden.family_key
    full = check_class_specific(real_graph, samoyed.target.index, limit=1000)
    assert {r["kind"] for r in full} == {"neuron", "group"} and all(r["thumbnails"] for r in full)
    assert len(check_class_specific(real_graph, samoyed.target.index, prune=0.5, limit=1000)) < len(full)
    check_class_specific(real_graph, golden.target.index, limit=3)
    check_shared_groups(real_graph, samoyed.target.index, golden.target.index)
    check_shared_groups(real_graph, golden.target.index, samoyed.target.index, limit=2, prune=0.9)
    shared = set(core(samoyed)) & set(core(golden))
    assert shared, "the two real circuits share core neurons"
    for neuron in sorted(shared)[:3]:
        assert len(check_neuron_classes(real_graph, neuron)) == 2
    check_neuron_classes(real_graph, samoyed.logit_key)
    # labels stored as `neurflow label` stores them are found, words only
    group = max(samoyed.neuron_groups, key=lambda g: (len(g.neurons), g.id))
    write_caption(real_graph[0], samoyed.id, group.id, label="Fluffy white fur", caption="dense fur: (curly) hair",
                  common_features=["fur"], model="test", prompt_version="1", at=None, raw=None,
                  database=neo4j_settings.database)
    for text in ("fur", "FUR:", "(curly", "white AND"):
        rows = run(real_graph, "search-concepts", text=text)
        assert [(r["kind"], r["group"], r["circuit"]) for r in rows] == [("group", group.id, samoyed.id)], text
        assert rows[0]["thumbnails"] == thumbs(real_graph, samoyed, set(group.semantic_groups))
        assert close(rows[0]["influence"], influence(samoyed).groups[group.id])
    rows = run(real_graph, "search-concepts", text="retriever")
    assert [(r["kind"], r["class"], r["circuit"]) for r in rows] == [("class", golden.target.name, golden.id)]


@pytest.mark.neo4j
def test_cross_class_queries_on_synthetic_families(synthetic_graph: Graph) -> None:
    circuits = synthetic_graph[2]
    family_a, family_b = circuits[0].family_key, circuits[-1].family_key
    assert family_a != family_b and len({c.family_key for c in circuits[:4]}) == 1
    assert any(a.family_key != b.family_key for a, _, b, _, _ in overlap_pairs(circuits))
    # 258's newest circuit is family B's; family chooses the other; only like with like is compared
    for family in (None, family_a):
        full = check_class_specific(synthetic_graph, 258, family=family, limit=100)
        pruned = check_class_specific(synthetic_graph, 258, family=family, prune=0.5, limit=100)
        assert len(pruned) < len(full)
        check_class_specific(synthetic_graph, 258, family=family, limit=2)
    assert any(r["classCount"] > 1 for r in check_class_specific(synthetic_graph, 207, limit=100)
               if r["kind"] == "group")
    assert any(r["specificity"] < 1 for r in check_class_specific(synthetic_graph, 259, limit=100))
    pairs = 0
    for a in (207, 259, 208):
        for b in (258, 207, 259, 208):
            if a != b:
                pairs += len(check_shared_groups(synthetic_graph, a, b))
                check_shared_groups(synthetic_graph, a, b, min_jaccard=0.3, limit=2)
                check_shared_groups(synthetic_graph, a, b, prune=0.6)
    assert pairs > 0, "the synthetic data has overlapping groups"
    check_shared_groups(synthetic_graph, 258, 207, family=family_a)
    check_shared_groups(synthetic_graph, 258, 300)  # both newest in family B
    # 300 has circuits in family B only; 207 in family A only: no comparable circuit, either way round
    assert check_shared_groups(synthetic_graph, 207, 300)[0]["kind"] == "no comparable circuit"
    assert check_shared_groups(synthetic_graph, 300, 207)[0]["kind"] == "no comparable circuit"
    assert check_shared_groups(synthetic_graph, 258, 207)[0]["kind"] == "no comparable circuit"
    # neuron-classes: every family by default, one family when asked
    keys = defaultdict(set)
    for c in circuits:
        for n in core(c):
            keys[n].add(c.family_key)
    both = sorted(n for n, fams in keys.items() if len(fams) == 2)
    assert both, "some neuron is used in both families"
    for neuron in both[:4]:
        rows = check_neuron_classes(synthetic_graph, neuron)
        assert {r["family"] for r in rows} == {family_a, family_b}
        assert {r["family"] for r in check_neuron_classes(synthetic_graph, neuron, family=family_a)} == {family_a}
        check_neuron_classes(synthetic_graph, neuron, limit=2, model=circuits[0].model.key)
        with pytest.raises(EmptyAnswerError, match="no complete circuit of model 'no-such-model'.*neurflow-ingest"):
            check_neuron_classes(synthetic_graph, neuron, model="no-such-model")


@pytest.mark.neo4j
def test_unknown_classes_are_refused_and_unknown_neurons_give_no_rows(synthetic_graph: Graph) -> None:
    with pytest.raises(UnknownClassError, match="no class 'no such class'"):
        run(synthetic_graph, "class-specific", **{"class": "no such class"})
    # Nothing because nothing of that model was ingested: said, with the command that fixes it.
    with pytest.raises(EmptyAnswerError, match="models with circuits: .*; build and ingest some"):
        run(synthetic_graph, "class-specific", **{"class": "258", "model": "no-such-model"})
    with pytest.raises(UnknownClassError, match="parameter 'a'"):
        run(synthetic_graph, "shared-groups", a="no such class", b="207")
    with pytest.raises(UnknownClassError, match="parameter 'b'"):
        run(synthetic_graph, "shared-groups", a="207", b="no such class")
    for neuron in ("_blocks.15:99999", "no-such-layer:1"):  # well formed, in no circuit: the true answer is none
        assert run(synthetic_graph, "neuron-classes", neuron=neuron) == [], neuron
    for neuron in ("Samoyed", ":", "_blocks.15:x", "_blocks.15: 3"):  # malformed: refused before the server
        with pytest.raises(QueryError, match="neuron must be LAYER:CHANNEL"):
            bind_params(load_query("neuron-classes"), {"neuron": neuron})


@pytest.mark.neo4j
def test_search_concepts_escapes_lucene_and_sees_complete_circuits_only(synthetic_graph: Graph) -> None:
    driver, database, circuits, _ = synthetic_graph
    c = circuits[1]
    labels = {c.neuron_groups[0].id: ("striped fur", "orange and black stripes"),
              c.neuron_groups[1].id: ("dog: snout", "a (wet) nose [close-up]")}
    for gid, (label, caption) in labels.items():
        assert write_caption(driver, c.id, gid, label=label, caption=caption, common_features=[], model="test",
                             prompt_version="1", at=None, raw=None, database=database) == 1
    extra = small_synthetic(301, foreign_fraction=0.6)

    def crash(step: str, done: int, total: int) -> None:
        if step == "semantic groups" and done > total // 2:
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):  # an incomplete circuit whose labelled group must never show
        write_circuit(driver, extra, database=database, batch_rows=10, progress=crash)
    assert incomplete_circuits(driver, database) == [extra.id]
    assert write_caption(driver, extra.id, extra.neuron_groups[0].id, label="striped fur", caption="stripes",
                         common_features=[], model="test", prompt_version="1", at=None, raw=None,
                         database=database) == 1
    infl = influence(c).groups
    sgs = {g.id: set(g.semantic_groups) for g in c.neuron_groups}
    for text, gid in (("stripes", c.neuron_groups[0].id), ("STRIPED", c.neuron_groups[0].id),
                      ("dog:", c.neuron_groups[1].id), ("(wet", c.neuron_groups[1].id),
                      ("[close-up]", c.neuron_groups[1].id), ('"snout', c.neuron_groups[1].id)):
        rows = run(synthetic_graph, "search-concepts", text=text)
        assert [(r["kind"], r["group"], r["circuit"], r["class"]) for r in rows] == [
            ("group", gid, c.id, c.target.name)], text
        assert (rows[0]["label"], rows[0]["caption"]) == labels[gid] and close(rows[0]["influence"], infl[gid])
        assert rows[0]["thumbnails"] == thumbs(synthetic_graph, c, sgs[gid]) and rows[0]["score"] > 0
    rows = run(synthetic_graph, "search-concepts", text="fur OR nose")
    assert {r["group"] for r in rows} == set(labels) and rows[0]["score"] >= rows[1]["score"]
    assert len(run(synthetic_graph, "search-concepts", text="fur nose", limit=1)) == 1
    for text in ("(", "dog:(", "*", "\\", '"', "AND", "a && b || !c", "  ", "", "~^/{}"):
        rows = run(synthetic_graph, "search-concepts", text=text)  # never a Lucene parse error
        assert all(r["circuit"] != extra.id for r in rows)
    rows = run(synthetic_graph, "search-concepts", text=c.target.name)
    assert ("class", c.target.name, c.id) in [(r["kind"], r["class"], r["circuit"]) for r in rows]
    with pytest.raises(EmptyAnswerError, match="no complete circuit of model 'no-such-model'"):
        run(synthetic_graph, "search-concepts", text="stripes", model="no-such-model")
    rows = run(synthetic_graph, "search-concepts", text="stripes", model=c.model.name)
    assert [r["group"] for r in rows] == [c.neuron_groups[0].id]


@pytest.mark.neo4j
def test_cli_table_and_json(synthetic_graph: Graph, neo4j_settings, tmp_path: Path) -> None:
    env = {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
           "NEO4J_PASSWORD": neo4j_settings.password or "", "NEO4J_DATABASE": neo4j_settings.database}
    neuron = sorted(core(synthetic_graph[2][1]))[0]
    for name, params, first in (("class-specific", ["class=207", "limit=2"], "class"),
                                ("shared-groups", ["a=207", "b=300"], "kind"),
                                ("neuron-classes", [f"neuron={neuron}"], "model"),
                                ("search-concepts", ["text=golden retriever"], "kind")):
        options = [x for p in params for x in ("--param", p)]
        table = CliRunner().invoke(query_command, [name, *options, "--wide"], env=env)
        assert table.exit_code == 0, table.output
        assert table.output.splitlines()[0].split()[0] == first
        as_json = CliRunner().invoke(query_command, [name, *options, "--format", "json"], env=env)
        assert as_json.exit_code == 0, as_json.output
        rows = json.loads(as_json.output)
        assert rows and f"({len(rows)} row" in table.output, name
        # In a terminal narrower than the table: one `column : value` line per cell, nothing cut.
        folded = CliRunner().invoke(query_command, [name, *options], env={**env, "COLUMNS": "60"})
        assert folded.output.startswith("-[ row 1 ]") and f"({len(rows)} row" in folded.output, name
        assert folded.output.splitlines()[1].split(" : ")[0].strip() == first
        page = tmp_path / f"{name}.html"
        html = CliRunner().invoke(query_command, [name, *options, "--format", "html", "--html-out", str(page)], env=env)
        assert html.exit_code == 0 and str(page) in html.output and f"({len(rows)} row" in page.read_text()
        thumbnails = [uri for row in rows for key in ("thumbnails", "thumbnailsA", "thumbnailsB") for uri in row.get(key) or []]
        assert page.read_text().count("<img ") == len(thumbnails), name


@pytest.mark.neo4j
def test_a_search_over_labels_without_labels_says_so(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    circuit = small_synthetic(258)
    write_circuit(clean_graph, circuit, database=db)
    with pytest.raises(EmptyAnswerError, match=rf"none of the graph's {len(circuit.neuron_groups)} neuron groups is "
                                               r"labelled.*neurflow label"):
        run_query(clean_graph, "search-concepts", {"text": "stripes"}, db)
    # an answer that is truly empty stays one
    assert run_query(clean_graph, "neuron-classes", {"neuron": "_blocks.15:99999"}, db)[1] == []
    # bias-paths answers (its strongest paths), but its context paths are missing for lack of labels: a note
    rows = run_query(clean_graph, "bias-paths", {"class": "258"}, db)[1]
    assert rows and not any(r["kind"] == "context" for r in rows)
    (note,) = query_notes(clean_graph, "bias-paths", {"class": "258"}, rows, db)
    assert note.startswith("no context paths: none of the") and "neurflow label" in note
