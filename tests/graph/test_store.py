"""The Neo4j circuit store: rows, flows, schema, counts, idempotency and recovery from a dead ingestion.

Expected values are computed here from the Circuit objects, independently of neurflow.graph.store.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import neo4j
import pytest

from neurflow.circuit import Circuit, semantic_group_weight_sums
from neurflow.engine.groups import group_edges as engine_group_edges
from neurflow.format import load_circuit
from neurflow.graph import store
from neurflow.synthetic import save_synthetic, synthetic_circuit

SMALL = dict(layers=["_fc", "_blocks.15", "_blocks.14", "_blocks.13"], tau=5, k=10, images=8, max_neuron_groups=3,
             max_semantic_groups=3)


def small_synthetic(index: int, **options: object) -> Circuit:
    return synthetic_circuit(index, **{**SMALL, **options})  # type: ignore[arg-type]


# --------------------------------------------------------------------------- independent expectations


def neuron_sets(circuit: Circuit) -> dict[str, set[str]]:
    """Member neuron keys of every group below the logit layer."""
    return {g.id: set(g.neurons) for g in circuit.neuron_groups if g.layer != circuit.layers[0]}


def overlap_pairs(circuits: Sequence[Circuit], threshold: float = store.OVERLAP_MIN_JACCARD) -> list[tuple]:
    """(circuit a, group a, circuit b, group b, jaccard) for groups of different classes, same model and layer."""
    pairs = []
    for a, b in itertools.combinations(circuits, 2):
        if a.target.index == b.target.index or (a.model.name, a.model.weights_id) != (b.model.name, b.model.weights_id):
            continue
        layer_a = {g.id: g.layer for g in a.neuron_groups}
        layer_b = {g.id: g.layer for g in b.neuron_groups}
        for (ga, na), (gb, nb) in itertools.product(neuron_sets(a).items(), neuron_sets(b).items()):
            if layer_a[ga] != layer_b[gb] or not na & nb:
                continue
            jaccard = len(na & nb) / len(na | nb)
            if jaccard >= threshold:
                pairs.append((a, ga, b, gb, jaccard))
    return pairs


def expected_counts(circuits: Sequence[Circuit]) -> dict[str, int]:
    """Nodes per label and relationships per type after ingesting ``circuits`` into an empty graph."""
    models = {(c.model.name, c.model.weights_id) for c in circuits}
    layers = {(c.model.name, c.model.weights_id, layer) for c in circuits for layer in c.layers}
    neurons = {(c.model.name, c.model.weights_id, n.key) for c in circuits for ns in c.neurons.values() for n in ns}
    patches, images = set(), set()
    for c in circuits:
        by_id = {p.id: p for p in c.patches}
        for g in c.semantic_groups:
            for p in g.patches:
                patches.add((c.images[by_id[p].image].sha256, tuple(by_id[p].box)))
        images |= {im.sha256 for im in c.images}
    return {
        "DataModel": 1, "Model": len(models), "Layer": len(layers), "Neuron": len(neurons),
        "Class": len({c.target.index for c in circuits}), "Circuit": len(circuits),
        "SemanticGroup": sum(len(c.semantic_groups) for c in circuits),
        "NeuronGroup": sum(len(c.neuron_groups) for c in circuits), "Patch": len(patches), "Image": len(images),
        "HAS_LAYER": len(layers), "HAS_NEURON": len(neurons), "OF_MODEL": len(circuits), "FOR_CLASS": len(circuits),
        "HAS_LOGIT": len(circuits),
        "HAS_CORE_NEURON": sum(len(ns) for c in circuits for ns in c.neurons.values()),
        "HAS_IMAGE": sum(len(c.images) for c in circuits),
        "HAS_GROUP": sum(len(c.neuron_groups) for c in circuits),
        "HAS_SEMANTIC_GROUP": sum(len(g.semantic_groups) for c in circuits for g in c.neuron_groups),
        "OF_NEURON": sum(len(c.semantic_groups) for c in circuits),
        "HAS_MEMBER": sum(len(g.neurons) for c in circuits for g in c.neuron_groups),
        "CONTRIBUTES_TO": sum(len(c.edges) for c in circuits),
        "FLOWS_TO": sum(len(c.group_edges) for c in circuits),
        "OVERLAPS": len(overlap_pairs(circuits)),
        "EXEMPLIFIES": sum(len(g.patches) for c in circuits for g in c.semantic_groups),
        "CROPPED_FROM": len(patches),
    }


def shares(circuit: Circuit) -> dict[tuple[str, str], float]:
    """(upper group, lower group) -> |W| / sum of |W| over the upper group's edges."""
    totals: dict[str, float] = defaultdict(float)
    for e in circuit.group_edges:
        totals[e.upper] += abs(e.weight)
    return {(e.upper, e.lower): abs(e.weight) / totals[e.upper] for e in circuit.group_edges if totals[e.upper] > 0}


def top_start(circuit: Circuit) -> dict[str, float]:
    """Share of the logit that each logit-layer group starts with."""
    top = [g.id for g in circuit.neuron_groups if g.layer == circuit.layers[0]]
    out = {g: sum(abs(e.weight) for e in circuit.group_edges if e.upper == g) for g in top}
    total = sum(out.values())
    return {g: (out[g] / total if total else 1 / len(top)) for g in top}


def all_paths(circuit: Circuit) -> list[tuple[list[str], float]]:
    """Every path from a logit-layer group down through adjacent layers (any length >= 1 group), with its
    strength: start share x product of shares. Brute force: only for small circuits."""
    layer_of = {g.id: g.layer for g in circuit.neuron_groups}
    depth = {layer: i for i, layer in enumerate(circuit.layers)}
    share = shares(circuit)
    children: dict[str, list[str]] = defaultdict(list)
    for (u, low) in share:
        if depth[layer_of[low]] == depth[layer_of[u]] + 1:
            children[u].append(low)
    result = []

    def walk(path: list[str], strength: float) -> None:
        result.append((path, strength))
        for low in children[path[-1]]:
            walk([*path, low], strength * share[path[-1], low])

    for g, start in top_start(circuit).items():
        walk([g], start)
    return result


# --------------------------------------------------------------------------- pure (no server)


def test_synthetic_circuits_follow_the_engine_construction() -> None:
    circuit = synthetic_circuit(207, seed=3)
    again = synthetic_circuit(207, seed=3)
    assert circuit == again and circuit.id == again.id
    assert circuit.layers[0] == "_fc" and [n.channel for n in circuit.neurons["_fc"]] == [207]
    assert all(abs(s - 1) < 1e-9 for s in semantic_group_weight_sums(circuit).values())
    for upper, lower in zip(circuit.layers, circuit.layers[1:], strict=False):
        layer_edges = [e for e in circuit.edges if e.upper.rpartition(":")[0] == upper]
        expected = engine_group_edges([g for g in circuit.neuron_groups if g.layer == upper],
                                      [g for g in circuit.neuron_groups if g.layer == lower], layer_edges)
        got = [e for e in circuit.group_edges if e.upper.startswith(upper + "/")]
        assert [(e.upper, e.lower) for e in got] == [(e.upper, e.lower) for e in expected]
        assert all(math.isclose(a.weight, b.weight, rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(got, expected, strict=True))
    # every lower core neuron is chosen by an upper neuron, and sizes are realistic
    for layer in circuit.layers[1:]:
        assert all(n.parents for n in circuit.neurons[layer])
    assert 50 <= len(circuit.neurons["_blocks.13"]) <= 192
    other = synthetic_circuit(208, seed=3)
    shared = {n.key for ns in circuit.neurons.values() for n in ns} & {n.key for ns in other.neurons.values() for n in ns}
    assert shared, "circuits of different classes share neurons"


def test_rows_cover_every_part_of_the_circuit() -> None:
    circuit = small_synthetic(258)
    rows = store.circuit_rows(circuit, "/tmp/somewhere")
    assert len(rows.semantic_groups) == len(circuit.semantic_groups)
    assert sum(len(r["in"]) for r in rows.semantic_groups) == len(circuit.edges)
    assert sum(len(r["patches"]) for r in rows.semantic_groups) == sum(len(g.patches) for g in circuit.semantic_groups)
    assert len(rows.flows) == len(circuit.group_edges)
    assert rows.circuit["complete"] is False and rows.circuit["id"] == circuit.id
    assert rows.logit == "efficientnet-lite0@synthetic|_fc:258"
    assert all(p["thumbnailUri"].startswith("file:///tmp/somewhere/thumbnails/") for p in rows.patches)
    for r in rows.semantic_groups:  # rank 0 = the strongest patch
        ranked = sorted(r["patches"], key=lambda x: x[2])
        assert [x[1] for x in ranked] == sorted((x[1] for x in ranked), reverse=True)


def test_inconsistent_circuits_are_refused_before_writing() -> None:
    circuit = small_synthetic(258)
    circuit.edges.append(type(circuit.edges[0])("nope:1/0", "nope:1", circuit.edges[0].lower, 1.0, 1.0))
    with pytest.raises(store.StoreError, match="nope:1/0"):
        store.circuit_rows(circuit)


def test_group_flow_matches_brute_force_paths() -> None:
    circuit = small_synthetic(258, max_neuron_groups=3)
    flows = store.group_flow(circuit)
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


# --------------------------------------------------------------------------- with the server



def graph_counts(driver: neo4j.Driver, database: str) -> dict[str, int]:
    return store.graph_counts(driver, database)


@pytest.mark.neo4j
def test_schema_is_created_idempotently(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    store.ensure_schema(clean_graph, neo4j_settings.database)
    store.ensure_schema(clean_graph, neo4j_settings.database)
    with clean_graph.session(database=neo4j_settings.database) as session:
        names = {r["name"] for r in session.run("SHOW CONSTRAINTS YIELD name")}
        indexes = {r["name"] for r in session.run("SHOW INDEXES YIELD name, state WHERE state = 'ONLINE'")}
        data_model = session.run("MATCH (d:DataModel) RETURN d.version AS v").single()
    assert {"neuron_key", "circuit_id", "semantic_group_key", "neuron_group_key", "patch_key", "image_sha256"} <= names
    assert {"semantic_group_circuit", "neuron_group_circuit", "class_name"} <= indexes
    assert data_model is not None and data_model["v"] == store.DATA_MODEL_VERSION


@pytest.mark.neo4j
def test_another_data_model_version_is_refused(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    store.ensure_schema(clean_graph, neo4j_settings.database)
    clean_graph.execute_query("MATCH (d:DataModel) SET d.version = '2.0'", database_=neo4j_settings.database)
    try:
        with pytest.raises(store.DataModelVersionError, match="2.0"):
            store.ensure_schema(clean_graph, neo4j_settings.database)
    finally:
        clean_graph.execute_query("MATCH (d:DataModel) DETACH DELETE d", database_=neo4j_settings.database)


@pytest.mark.neo4j
def test_counts_match_the_circuits_and_ingestion_is_idempotent(clean_graph: neo4j.Driver, neo4j_settings,
                                                                tmp_path: Path) -> None:
    db = neo4j_settings.database
    circuits = [small_synthetic(i) for i in (258, 207, 259)]
    circuits.append(small_synthetic(258, seed=1))  # the same class with other parameters: a second circuit
    for circuit in circuits:
        result = store.write_circuit(clean_graph, circuit, save_synthetic(circuit, tmp_path / circuit.id), database=db)
        assert result.status == "written" and result.relationships > 0
    expected = expected_counts(circuits)
    assert expected["OVERLAPS"] > 0
    assert graph_counts(clean_graph, db) == expected
    again = [store.write_circuit(clean_graph, c, database=db) for c in circuits]
    assert {r.status for r in again} == {"skipped"}
    assert graph_counts(clean_graph, db) == expected
    forced = store.write_circuit(clean_graph, circuits[1], tmp_path / circuits[1].id, database=db, force=True)
    assert forced.status == "replaced"
    assert graph_counts(clean_graph, db) == expected
    assert store.incomplete_circuits(clean_graph, db) == []


class _Crash(Exception):
    pass


@pytest.mark.neo4j
def test_a_dead_ingestion_is_invisible_and_the_next_run_cleans_it(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    first, second = small_synthetic(258), small_synthetic(207)
    store.write_circuit(clean_graph, first, database=db)
    batches = 0

    def crash(step: str, done: int, total: int) -> None:
        nonlocal batches
        batches += 1
        if step == "semantic groups" and batches > 12:
            raise _Crash(step)

    with pytest.raises(_Crash):
        store.write_circuit(clean_graph, second, database=db, batch_rows=20, progress=crash)
    assert store.incomplete_circuits(clean_graph, db) == [second.id]
    assert store.circuit_status(clean_graph, second.id, db) == "incomplete"
    partial = graph_counts(clean_graph, db)
    assert 0 < partial["CONTRIBUTES_TO"] - len(first.edges) < len(second.edges)
    result = store.write_circuit(clean_graph, second, database=db)
    assert result.status == "rewritten"
    assert graph_counts(clean_graph, db) == expected_counts([first, second])


@pytest.mark.neo4j
def test_delete_circuit_removes_its_parts_and_orphans(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    keep, drop = small_synthetic(258), small_synthetic(207)
    store.write_circuit(clean_graph, keep, database=db)
    store.write_circuit(clean_graph, drop, database=db)
    assert store.delete_circuit(clean_graph, drop.id, db)
    assert not store.delete_circuit(clean_graph, drop.id, db)
    counts = graph_counts(clean_graph, db)
    expected = expected_counts([keep])
    # shared vocabulary stays: the model's layers and neurons, and the class
    for key in ("Layer", "Neuron", "HAS_LAYER", "HAS_NEURON", "Class"):
        counts.pop(key), expected.pop(key)
    assert counts == expected


@pytest.mark.neo4j
def test_real_circuits_are_written_with_provenance(clean_graph: neo4j.Driver, neo4j_settings,
                                                   real_circuit_dirs: list[Path]) -> None:
    db = neo4j_settings.database
    circuits = [load_circuit(f) for f in real_circuit_dirs]
    for circuit, folder in zip(circuits, real_circuit_dirs, strict=True):
        result = store.write_circuit(clean_graph, circuit, folder, database=db)
        assert result.status == "written" and result.seconds < 10
    assert graph_counts(clean_graph, db) == expected_counts(circuits)
    records, _, _ = clean_graph.execute_query(
        """
        MATCH (c:Circuit {id: $id})-[:HAS_GROUP]->(:NeuronGroup)-[:HAS_SEMANTIC_GROUP]->(s:SemanticGroup)
              <-[:EXEMPLIFIES]-(p:Patch)-[:CROPPED_FROM]->(i:Image)
        RETURN p.thumbnailUri AS uri, i.path AS path LIMIT 5
        """,
        id=circuits[0].id, database_=db,
    )
    assert records
    for record in records:
        assert record["uri"].startswith("file://") and Path(record["uri"][len("file://"):]).exists()
        assert Path(record["path"]).exists()
