"""Writes that stay right when something else happens meanwhile: a second ingestion of the same circuit, a
circuit of another class completed first, a batch run twice (a retried commit), a run killed between its
patches and its semantic groups, and --force over a circuit users have labelled and experimented on.

Expected counts come from tests/helpers.py (computed from the circuits, independently of neurflow.graph); the
interleavings are made deterministic by starting the other write from the first one's progress callback."""

from __future__ import annotations

import neo4j
import pytest

from neurflow.graph.circuit_writes import circuit_writes, run_rows
from neurflow.graph.deletion import WriteConflictError, delete_circuit
from neurflow.graph.experiment_records import write_masking_experiment
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.labels import LowerGroupEvolution, write_caption, write_evolution
from neurflow.graph.reads import circuit_status, graph_counts, incomplete_circuits
from neurflow.graph.rows import circuit_rows, scoped_key
from tests.helpers import expected_counts, small_synthetic


def test_a_later_ingestion_of_the_same_circuit_takes_over_and_the_earlier_one_stops(
        clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    circuit = small_synthetic(258)
    later: list[str] = []

    def start_another(step: str, done: int, total: int) -> None:
        if step == "neuron groups" and not later:  # the earlier attempt is half-way
            later.append(write_circuit(clean_graph, circuit, database=db).status)

    with pytest.raises(WriteConflictError, match="took it over"):
        write_circuit(clean_graph, circuit, database=db, batch_rows=10, progress=start_another)
    assert later == ["rewritten"]  # it found the earlier attempt's parts, deleted them and wrote its own
    assert circuit_status(clean_graph, circuit.id, db) == "complete"
    assert graph_counts(clean_graph, db) == expected_counts([circuit])


def test_overlaps_with_a_circuit_completed_during_the_write_are_made_at_completion(
        clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    first, second = small_synthetic(258), small_synthetic(207)
    done: list[str] = []

    def complete_the_other(step: str, rows: int, total: int) -> None:
        if step == "group flows" and not done:  # before its completion, after every part is written
            done.append(write_circuit(clean_graph, second, database=db).status)

    write_circuit(clean_graph, first, database=db, progress=complete_the_other)
    assert done == ["written"]
    expected = expected_counts([first, second])
    assert expected["OVERLAPS"] > 0
    assert graph_counts(clean_graph, db) == expected


def test_every_batch_can_run_twice_without_duplicates(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    circuit = small_synthetic(259)
    write_circuit(clean_graph, circuit, database=db)
    rows = circuit_rows(circuit)
    with clean_graph.session(database=db) as session:
        for step, query, step_rows, rels in circuit_writes(rows):
            expected = sum(rels(r) for r in step_rows) if rels is not None else None
            # what the driver does after an ambiguous commit: the same batch again
            session.execute_write(run_rows, circuit.id, step, query, list(step_rows), expected)
    assert graph_counts(clean_graph, db) == expected_counts([circuit])


def test_deleting_a_circuit_killed_before_its_semantic_groups_leaves_no_patches_or_images(
        clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    circuit = small_synthetic(258)

    def die(step: str, done: int, total: int) -> None:
        if step == "neuron groups":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # one row per transaction: none holds a semantic group yet
        write_circuit(clean_graph, circuit, database=db, batch_rows=1, progress=die)
    partial = graph_counts(clean_graph, db)
    assert partial["Patch"] > 0 and partial["SemanticGroup"] == 0
    assert delete_circuit(clean_graph, circuit.id, db)
    after = graph_counts(clean_graph, db)
    assert after["Patch"] == after["Image"] == after["Circuit"] == after["NeuronGroup"] == 0
    assert incomplete_circuits(clean_graph, db) == []


def _label_everything(driver: neo4j.Driver, db: str, circuit_id: str, groups: list[str], upper: str,
                      lower: list[str]) -> None:
    for group in groups:
        write_caption(driver, circuit_id, group, label=f"label of {group}", caption="dogs' ears",
                      common_features=["fur"], model="fake", prompt_version="v2", at=None, raw=None,
                      database=db, depicts="object")
    write_evolution(driver, circuit_id, upper, [LowerGroupEvolution(g, "fur", "ears", True) for g in lower],
                    caption="fur becomes ears", upper_features="ears", features={}, matches={}, model="fake",
                    prompt_version="v1", at=None, raw=None, database=db)


def test_force_keeps_labels_evolutions_and_experiment_links(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    circuit, other = small_synthetic(258), small_synthetic(207)
    write_circuit(clean_graph, other, database=db)
    write_circuit(clean_graph, circuit, database=db)
    groups = [g.id for g in circuit.neuron_groups]
    edge = circuit.group_edges[0]
    lower = [e.lower for e in circuit.group_edges if e.upper == edge.upper]
    _label_everything(clean_graph, db, circuit.id, groups, edge.upper, lower)
    model = {"key": circuit.model.key, "name": circuit.model.name}
    target = {"index": circuit.target.index, "name": circuit.target.name}
    write_masking_experiment(clean_graph, {"id": "m1", "modelKey": circuit.model.key, "circuitId": circuit.id},
                             model, target, [scoped_key(circuit.id, groups[-1])], database=db)
    before = graph_counts(clean_graph, db)

    result = write_circuit(clean_graph, circuit, database=db, force=True)
    assert result.status == "replaced"
    assert result.carried == {"labels": len(groups), "evolutions": len(lower), "masked": 1}
    assert result.not_carried == {}
    assert graph_counts(clean_graph, db) == before  # OVERLAPS with the other class included
    records, _, _ = clean_graph.execute_query(
        "MATCH (c:Circuit {id: $id, complete: true})-[:HAS_GROUP]->(g:NeuronGroup) "
        "RETURN g.groupId AS group, g.label AS label, g.depicts AS depicts", id=circuit.id, database_=db)
    assert {r["group"]: (r["label"], r["depicts"]) for r in records} == {
        g: (f"label of {g}", "object") for g in groups}
    records, _, _ = clean_graph.execute_query(
        "MATCH (:MaskingExperiment {id: 'm1'})-[:MASKED]->(g:NeuronGroup)<-[:HAS_GROUP]-(c:Circuit) "
        "MATCH (:MaskingExperiment {id: 'm1'})-[:ON_CIRCUIT]->(c) "
        "MATCH (:NeuronGroup)-[f:FLOWS_TO]->(:NeuronGroup {key: $upper}) "
        "RETURN c.id AS circuit, g.groupId AS group, collect(f.evolutionCaption) AS evolutions",
        upper=scoped_key(circuit.id, edge.upper), database_=db)
    assert [(r["circuit"], r["group"]) for r in records] == [(circuit.id, groups[-1])]
    assert records[0]["evolutions"] == ["fur becomes ears"] * len(lower)


def test_force_drops_the_labels_of_groups_that_changed_and_says_so(clean_graph: neo4j.Driver,
                                                                   neo4j_settings) -> None:
    db = neo4j_settings.database
    circuit = small_synthetic(258)
    write_circuit(clean_graph, circuit, database=db)
    changed = circuit.neuron_groups[-1]
    _label_everything(clean_graph, db, circuit.id, [g.id for g in circuit.neuron_groups], "none", [])
    # the same circuit with one group's members changed (as a rebuild by another neurflow version might)
    changed.neurons = changed.neurons[:-1]
    result = write_circuit(clean_graph, circuit, database=db, force=True)
    assert result.carried["labels"] == len(circuit.neuron_groups) - 1
    assert result.not_carried == {"labels": 1}
    records, _, _ = clean_graph.execute_query("MATCH (g:NeuronGroup {key: $key}) RETURN g.label AS label",
                                              key=scoped_key(circuit.id, changed.id), database_=db)
    assert records[0]["label"] is None


def test_what_a_write_reports_is_what_it_created(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    circuits = [small_synthetic(258), small_synthetic(207)]
    write_circuit(clean_graph, circuits[0], database=db)
    before = graph_counts(clean_graph, db)
    result = write_circuit(clean_graph, circuits[1], database=db)
    after = graph_counts(clean_graph, db)
    nodes = {"DataModel", "Model", "Layer", "Neuron", "Class", "Circuit", "SemanticGroup", "NeuronGroup", "Patch",
             "Image", "CircuitFamily"}
    assert result.nodes == sum(after[k] - before[k] for k in nodes)
    # FAMILY_INFLUENCE totals are merged by the completion's family refresh, not counted as the circuit's own
    assert result.relationships == sum(after[k] - before[k] for k in after if k not in nodes | {"FAMILY_INFLUENCE"})
