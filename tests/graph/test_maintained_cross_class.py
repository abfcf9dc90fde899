"""The cross-class values maintained at ingestion (graph model 1.7) equal a from-scratch computation after writes,
deletions, --force rewrites, a taken-over attempt and concurrent ingestions.

The oracle (:func:`from_scratch`) reads only the complete circuits' own parts back (core links, groups and their
member links) and recomputes in Python what the writes maintain: SIMILAR_TO of every pair of one family and two
classes, the family totals (FAMILY_INFLUENCE), OVERLAPS and the groups' reuse summaries. The named queries that
read them are compared with the same oracle, and concept-reuse with its own query-time path.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import neo4j
import pytest

from neurflow.graph.deletion import WriteConflictError, delete_circuit
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.named_queries import run_query
from neurflow.graph.schema import OVERLAP_MIN_JACCARD, REUSE_MIN_JACCARD
from tests.helpers import small_synthetic

pytestmark = pytest.mark.neo4j

# narrow lower layers, so that classes share neurons and groups overlap at the reuse threshold
NARROW = dict(channels={"_fc": 1000, "_blocks.15": 24, "_blocks.14": 24, "_blocks.13": 24})
TOLERANCE = 1e-9  # float sums in another order (Cypher, numpy, Python) differ in their last bits


def narrow(index: int, **options: Any):
    return small_synthetic(index, **{**NARROW, **options})


def _rows(driver: neo4j.Driver, db: str, query: str, **params: Any) -> list[dict[str, Any]]:
    records, _, _ = driver.execute_query(query, params, database_=db)  # type: ignore[call-overload]
    return [r.data() for r in records]


def _ratio(part: float, whole: float) -> float:
    return part / whole if whole > 0 else 0.0


def from_scratch(driver: neo4j.Driver, db: str) -> dict[str, Any]:
    """What the maintained values must be, from the complete circuits' parts alone."""
    circuits = {r["id"]: r for r in _rows(driver, db, """
        MATCH (c:Circuit {complete: true})
        RETURN c.id AS id, c.familyKey AS family, c.modelKey AS model, c.classIndex AS cls, c.layers AS layers,
               c.ingestedAt AS at""")}
    core: dict[str, dict[str, tuple[str, float, float]]] = defaultdict(dict)
    totals: dict[tuple[str, str], list[float]] = {}
    for r in _rows(driver, db, """
            MATCH (c:Circuit {complete: true})-[r:HAS_CORE_NEURON]->(n:Neuron)
            RETURN c.id AS id, n.key AS neuron, r.depth AS depth, r.layer AS layer, r.influence AS influence,
                   r.weight AS weight"""):
        family = circuits[r["id"]]["family"]
        total = totals.setdefault((family, r["neuron"]), [0.0, -math.inf, 0])
        total[0] += r["influence"]
        total[1] = max(total[1], r["influence"])
        total[2] += 1
        if r["depth"] > 0:
            core[r["id"]][r["neuron"]] = (r["layer"], r["influence"], r["weight"])

    similar = {}
    for a, b in itertools.combinations(sorted(circuits), 2):
        ca, cb = circuits[a], circuits[b]
        if ca["family"] != cb["family"] or ca["cls"] == cb["cls"]:
            continue
        shared = core[a].keys() & core[b].keys()
        smaller = sum(min(core[a][n][1], core[b][n][1]) for n in shared)
        smaller_w = sum(min(core[a][n][2], core[b][n][2]) for n in shared)
        tot_a, tot_b = (sum(v[1] for v in core[x].values()) for x in (a, b))
        w_a, w_b = (sum(v[2] for v in core[x].values()) for x in (a, b))
        per_layer = []
        for layer in ca["layers"][1:]:
            mine = sum(v[1] for v in core[a].values() if v[0] == layer)
            theirs = sum(v[1] for v in core[b].values() if v[0] == layer)
            here = sum(min(core[a][n][1], core[b][n][1]) for n in shared if core[a][n][0] == layer)
            per_layer.append(_ratio(here, mine + theirs - here))
        similar[frozenset((a, b))] = {
            "weightedJaccard": _ratio(smaller, tot_a + tot_b - smaller),
            "jaccard": _ratio(len(shared), len(core[a]) + len(core[b]) - len(shared)),
            "incomingWeightJaccard": _ratio(smaller_w, w_a + w_b - smaller_w),
            "sharedNeurons": len(shared), "layerWeightedJaccard": per_layer}

    groups = {r["key"]: r for r in _rows(driver, db, """
        MATCH (c:Circuit {complete: true})-[:HAS_GROUP]->(g:NeuronGroup)
        WHERE g.depth > 0
        RETURN g.key AS key, c.id AS circuit, g.layer AS layer, g.influence AS influence, g.className AS name,
               [(g)-[:HAS_MEMBER]->(n:Neuron) | n.key] AS members""")}
    overlaps = {}
    for g, h in itertools.combinations(sorted(groups), 2):
        cg, ch = circuits[groups[g]["circuit"]], circuits[groups[h]["circuit"]]
        if cg["model"] != ch["model"] or cg["cls"] == ch["cls"] or groups[g]["layer"] != groups[h]["layer"]:
            continue
        mg, mh = set(groups[g]["members"]), set(groups[h]["members"])
        if mg & mh and len(mg & mh) / len(mg | mh) >= OVERLAP_MIN_JACCARD:
            overlaps[frozenset((g, h))] = {"jaccard": len(mg & mh) / len(mg | mh), "shared": len(mg & mh),
                                           "smallerInfluence": min(groups[g]["influence"], groups[h]["influence"])}

    newest: dict[tuple[str, int], str] = {}
    for cid, c in sorted(circuits.items(), key=lambda kv: (kv[1]["at"], _desc(kv[0]))):
        newest[(c["family"], c["cls"])] = cid  # the last one wins: newest ingestedAt, then the smallest id
    counted = set(newest.values())
    reuse = {}
    for g, row in groups.items():
        if row["circuit"] not in counted:
            continue
        family = circuits[row["circuit"]]["family"]
        best: dict[str, list[float]] = {}
        for pair, o in overlaps.items():
            if g not in pair or o["jaccard"] < REUSE_MIN_JACCARD:
                continue
            (h,) = pair - {g}
            if groups[h]["circuit"] not in counted or circuits[groups[h]["circuit"]]["family"] != family:
                continue
            best[groups[h]["name"]] = max(best.get(groups[h]["name"], [-1.0, -1.0]),
                                          [o["jaccard"], groups[h]["influence"]])
        if best:
            reuse[g] = {"reuseClassCount": 1 + len(best),
                        "reuseClasses": [n for n, _ in sorted(best.items(), key=lambda kv: (-kv[1][0], -kv[1][1],
                                                                                           kv[0]))],
                        "reuseJaccard": sum(b[0] for b in best.values()) / len(best),
                        "reuseShared": sum(min(b[1], row["influence"]) for b in best.values())}
    return {"circuits": circuits, "similar": similar, "totals": totals, "overlaps": overlaps, "reuse": reuse,
            "groups": groups, "newest": newest}


class _desc(str):
    """Sorts ids in reverse, so that of two circuits completed at the same instant the smaller id comes last."""

    def __lt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__gt__(self, other)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)
    return bool(a == b)


def assert_maintained(driver: neo4j.Driver, db: str) -> dict[str, Any]:
    """Every maintained value equals the from-scratch one; returns the oracle."""
    want = from_scratch(driver, db)
    got = {frozenset((r["a"], r["b"])): r["props"] for r in _rows(driver, db, """
        MATCH (a:Circuit)-[s:SIMILAR_TO]->(b:Circuit) RETURN a.id AS a, b.id AS b, properties(s) AS props""")}
    assert got.keys() == want["similar"].keys()
    for pair, props in want["similar"].items():
        assert all(_close(got[pair][k], v) for k, v in props.items()), (pair, got[pair], props)

    totals = {(r["family"], r["neuron"]): [r["influence"], r["most"], r["classes"]] for r in _rows(driver, db, """
        MATCH (f:CircuitFamily)-[t:FAMILY_INFLUENCE]->(n:Neuron)
        RETURN f.key AS family, n.key AS neuron, t.influence AS influence, t.maxInfluence AS most,
               t.classes AS classes""")}
    assert totals.keys() == want["totals"].keys()
    assert all(_close(totals[k], v) for k, v in want["totals"].items())

    overlaps = {frozenset((r["g"], r["h"])): r["props"] for r in _rows(driver, db, """
        MATCH (g:NeuronGroup)-[o:OVERLAPS]->(h:NeuronGroup)
        RETURN g.key AS g, h.key AS h, o {.jaccard, .shared, .smallerInfluence} AS props""")}
    assert overlaps.keys() == want["overlaps"].keys()
    assert all(_close(overlaps[k][p], v[p]) for k, v in want["overlaps"].items() for p in v)

    reuse = {r["key"]: r["props"] for r in _rows(driver, db, """
        MATCH (g:NeuronGroup) WHERE g.reuseClassCount IS NOT NULL
        RETURN g.key AS key, g {.reuseClassCount, .reuseClasses, .reuseJaccard, .reuseShared} AS props""")}
    assert reuse.keys() == want["reuse"].keys()
    assert all(_close(reuse[g][p], v[p]) for g, v in want["reuse"].items() for p in v)
    return want


def assert_queries_read_them(driver: neo4j.Driver, db: str, want: dict[str, Any], class_name: str) -> None:
    """class-similarity and similarity-matrix give the oracle's values; concept-reuse gives what its query-time
    path computes (the DataModel's threshold hidden for one run)."""
    circuits = want["circuits"]
    newest_ids = set(want["newest"].values())
    (mine,) = [cid for (family, cls), cid in want["newest"].items()
               if cls == _class_of(driver, db, class_name) and family == _family_of(circuits, cid)]
    compared = {o for o in newest_ids if frozenset((mine, o)) in want["similar"]}
    rows = [r for r in run_query(driver, "class-similarity", {"class": class_name, "limit": 100}, database=db)[1]
            if r["comparable"]]
    assert {r["circuit"] for r in rows} == compared and len(rows) == len(compared) > 0
    assert [r["weightedJaccard"] for r in rows] == sorted((r["weightedJaccard"] for r in rows), reverse=True)
    for r in rows:
        props = want["similar"][frozenset((mine, r["circuit"]))]
        assert _close(r["weightedJaccard"], props["weightedJaccard"]) and r["sharedNeurons"] == props["sharedNeurons"]
        assert _close([x["weightedJaccard"] for x in r["perLayer"]], props["layerWeightedJaccard"])

    family_ids = sorted(cid for cid in newest_ids if circuits[cid]["family"] == circuits[mine]["family"])
    matrix = run_query(driver, "similarity-matrix", {"circuits": ",".join(family_ids)}, database=db)[1]
    assert {(r["a"], r["b"]) for r in matrix} == {
        tuple(sorted(p)) for p, v in want["similar"].items() if p <= set(family_ids) and v["sharedNeurons"] > 0}
    assert all(_close(r["weightedJaccard"], want["similar"][frozenset((r["a"], r["b"]))]["weightedJaccard"])
               for r in matrix)

    params = {"class": class_name, "limit": 1000}  # every row: no cut between near-ties
    maintained = run_query(driver, "concept-reuse", params, database=db)[1]
    driver.execute_query("MATCH (d:DataModel) SET d.hidden = d.reuseMinJaccard REMOVE d.reuseMinJaccard",
                         database_=db)
    try:
        computed = run_query(driver, "concept-reuse", params, database=db)[1]
    finally:
        driver.execute_query("MATCH (d:DataModel) SET d.reuseMinJaccard = d.hidden REMOVE d.hidden", database_=db)
    # the same rows; in the same order but where two rows tie up to float rounding (sums taken in another order)
    assert sorted((r["kind"], r["item"]) for r in maintained) == sorted((r["kind"], r["item"]) for r in computed)
    by_item = {(r["kind"], r["item"]): r for r in computed}
    for a in maintained:
        b = by_item[(a["kind"], a["item"])]
        assert a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a), (a, b)
    for kind in ("neuron", "group", "group-pair"):
        mine = [(r["sharedInfluence"], r["item"]) for r in maintained if r["kind"] == kind]
        theirs = [(r["sharedInfluence"], r["item"]) for r in computed if r["kind"] == kind]
        assert all(_close(x[0], y[0]) for x, y in zip(mine, theirs, strict=True))
        assert all(x[1] == y[1] or _close(x[0], y[0]) for x, y in zip(mine, theirs, strict=True))
    assert any(r["kind"] == "group" for r in maintained) and any(r["kind"] == "group-pair" for r in maintained)


def _class_of(driver: neo4j.Driver, db: str, name: str) -> int:
    return int(_rows(driver, db, "MATCH (c:Class {name: $name}) RETURN c.index AS i", name=name)[0]["i"])


def _family_of(circuits: dict[str, Any], cid: str) -> str:
    return str(circuits[cid]["family"])


def test_maintained_values_after_writes_deletions_force_and_a_second_circuit_of_a_class(
        clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    family = [narrow(i) for i in (3, 17, 258, 407, 511, 906)]
    other_family = narrow(17, tau=4)  # other build parameters: a family of its own, OVERLAPS across families
    again = narrow(258, seed=1)  # a second circuit of one class in the family (other images), completed later
    again.params = dict(family[2].params)  # the same build parameters: the same family
    assert other_family.family_key != family[0].family_key == again.family_key and again.id != family[2].id
    for circuit in [*family, other_family, again]:
        assert write_circuit(clean_graph, circuit, database=db).status == "written"
    want = assert_maintained(clean_graph, db)
    assert len(want["similar"]) == 15 + 5  # 6 classes; the second circuit of a class with the 5 others
    assert len(want["reuse"]) > 0 and any(len(v["reuseClasses"]) > 1 for v in want["reuse"].values())
    assert any(o["jaccard"] >= REUSE_MIN_JACCARD for o in want["overlaps"].values())
    assert_queries_read_them(clean_graph, db, want, family[0].target.name)

    assert delete_circuit(clean_graph, again.id, db)  # the older circuit of the class counts again
    assert delete_circuit(clean_graph, family[3].id, db)
    assert_queries_read_them(clean_graph, db, assert_maintained(clean_graph, db), family[0].target.name)

    changed = family[1]  # rewritten with a group whose members changed
    changed.neuron_groups[-1].neurons = changed.neuron_groups[-1].neurons[:-1]
    assert write_circuit(clean_graph, changed, database=db, force=True).status == "replaced"
    assert_queries_read_them(clean_graph, db, assert_maintained(clean_graph, db), family[0].target.name)


def test_maintained_values_after_a_taken_over_attempt_and_concurrent_ingestions(
        clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    first = narrow(258)
    later: list[str] = []

    def start_another(step: str, done: int, total: int) -> None:
        if step == "neuron groups" and not later:  # the earlier attempt is half-way
            later.append(write_circuit(clean_graph, first, database=db).status)

    with pytest.raises(WriteConflictError, match="took it over"):
        write_circuit(clean_graph, first, database=db, batch_rows=10, progress=start_another)
    assert later == ["rewritten"]
    assert_maintained(clean_graph, db)

    circuits = [narrow(i) for i in (3, 17, 407, 511, 906, 640, 77, 129)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda c: write_circuit(clean_graph, c, database=db).status, circuits))
    assert statuses == ["written"] * len(circuits)
    want = assert_maintained(clean_graph, db)
    assert len(want["similar"]) == 9 * 8 // 2
    assert_queries_read_them(clean_graph, db, want, first.target.name)
