"""ValidationStudy records through a real Neo4j: written from a StudyResult, read back, listed by the
`validation-summary` query for complete circuits only, refused (with nothing written) when the circuit or its
layers are not in the graph. Expected values are the StudyResult's own numbers, written by hand here."""

from __future__ import annotations

import json
import math
from pathlib import Path

import neo4j
import pytest

from neurflow.circuit import Circuit
from neurflow.experiments.validation.result import StudyResult
from neurflow.experiments.validation.study_properties import summary_property, validation_properties
from neurflow.graph.deletion import delete_circuit
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.named_queries import run_query
from neurflow.graph.reads import incomplete_circuits
from neurflow.graph.study_records import (
    ValidationRecordError,
    circuit_validation_studies,
    write_validation_study,
)
from tests.helpers import small_synthetic


def study_of(circuit: Circuit, study: str = "correlation", **summary: float) -> StudyResult:
    """A StudyResult of ``circuit`` with hand-set figures (what a study would return; the studies name the
    model, the record takes its key from the circuit)."""
    return StudyResult(
        study=study, circuit_id=circuit.id, model_key=circuit.model.name, class_index=circuit.target.index,
        class_name=circuit.target.name, layers=circuit.layers[:2],
        parameters={"sizes": [1, 2], "sets_per_size": 3, "seed": 7},
        summary=summary or {"mean_abs_r/size1": 0.5, "mean_abs_r/size2": math.nan, "k": 3},
        columns=["layer", "target", "size", "r"],
        rows=[{"layer": circuit.layers[0], "target": 1, "size": 1, "r": 0.5}],
    )


def count_studies(driver: neo4j.Driver, database: str) -> int:
    return len(run_query(driver, "validation-summary", {"limit": 1000}, database)[1])


def summaries(driver: neo4j.Driver, database: str, **params: object) -> list[dict]:
    return run_query(driver, "validation-summary", params, database)[1]


@pytest.fixture
def graph(clean_graph: neo4j.Driver, neo4j_settings) -> tuple[neo4j.Driver, str, list[Circuit]]:
    circuits = [small_synthetic(258), small_synthetic(207)]
    for circuit in circuits:
        assert write_circuit(clean_graph, circuit, database=neo4j_settings.database).status == "written"
    return clean_graph, neo4j_settings.database, circuits


def test_a_study_round_trips_and_the_query_lists_it(graph, tmp_path: Path) -> None:
    driver, db, (samoyed, other) = graph
    result = study_of(samoyed)
    props = validation_properties(result, "mean", tmp_path / "correlation.csv", tmp_path / "correlation.png")
    study_id = write_validation_study(driver, props, db)
    assert study_id == props["id"]

    [record] = circuit_validation_studies(driver, samoyed.id, database=db)
    stored = record.properties
    assert record.id == study_id and record.study == "correlation" and record.circuit_complete
    assert record.linked_layers == samoyed.layers[:2]  # the logit layer first
    assert stored["createdAt"] and stored["circuitId"] == samoyed.id and stored["classIndex"] == 258
    assert stored["modelKey"] == f"{samoyed.model.name}@{samoyed.model.weights_id}"
    assert stored["ablation"] == "mean" and stored["seed"] == 7 and stored["rows"] == 1
    assert stored["csvPath"] == str((tmp_path / "correlation.csv").resolve())
    assert record.parameters == {"ablation": "mean", "sizes": [1, 2], "sets_per_size": 3, "seed": 7}
    assert list(record.summary) == ["mean_abs_r/size1", "mean_abs_r/size2", "k"]
    assert record.summary["mean_abs_r/size1"] == 0.5 and record.summary["k"] == 3.0
    assert math.isnan(record.summary["mean_abs_r/size2"])
    assert json.loads(stored["summaryJson"]) == {"mean_abs_r/size1": 0.5, "mean_abs_r/size2": None, "k": 3.0}
    # flat figures: NaN is left out, so `WHERE v.summaryMeanAbsRSize2 > x` never matches a missing figure
    assert stored["summaryMeanAbsRSize1"] == 0.5 and stored["summaryK"] == 3.0
    assert summary_property("mean_abs_r/size2") not in stored
    assert circuit_validation_studies(driver, other.id, database=db) == []

    [row] = summaries(driver, db)
    assert (row["id"], row["study"], row["class"], row["circuit"]) == (study_id, "correlation", samoyed.target.name,
                                                                       samoyed.id)
    assert row["layers"] == samoyed.layers[:2] and row["ablation"] == "mean"
    assert row["summary"] == ["mean_abs_r/size1 = 0.5", "mean_abs_r/size2 = NaN", "k = 3.0"]
    assert row["png"] == str((tmp_path / "correlation.png").resolve())
    assert summaries(driver, db, study="optimality") == []
    assert summaries(driver, db, **{"class": "207"}) == []
    assert [r["id"] for r in summaries(driver, db, **{"class": "samoyed", "model": samoyed.model.name})] == [study_id]


def test_studies_are_listed_newest_first_and_filtered(graph) -> None:
    driver, db, (samoyed, other) = graph
    ids = []
    for circuit, study in ((samoyed, "correlation"), (other, "optimality"), (samoyed, "k-sensitivity")):
        result = study_of(circuit, study, overlap=14.0)
        ids.append(write_validation_study(driver, validation_properties(result, "zero"), db))
    assert [r["id"] for r in summaries(driver, db)] == ids[::-1]
    assert [r["id"] for r in summaries(driver, db, limit=1)] == [ids[2]]
    assert [r["id"] for r in summaries(driver, db, study="optimality")] == [ids[1]]
    assert [r["id"] for r in summaries(driver, db, **{"class": str(samoyed.target.index)})] == [ids[2], ids[0]]
    assert [r.study for r in circuit_validation_studies(driver, samoyed.id, database=db)] == ["k-sensitivity",
                                                                                              "correlation"]
    assert [r.id for r in circuit_validation_studies(driver, samoyed.id, "correlation", db)] == [ids[0]]


def test_only_studies_of_complete_circuits_are_listed(graph) -> None:
    driver, db, (samoyed, _) = graph
    result = study_of(samoyed)
    write_validation_study(driver, validation_properties(result, "zero"), db)
    unfinished = small_synthetic(259)

    def crash(step: str, done: int, total: int) -> None:
        if step == "semantic groups":
            raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        write_circuit(driver, unfinished, database=db, batch_rows=10, progress=crash)
    assert incomplete_circuits(driver, db) == [unfinished.id]
    hidden = study_of(unfinished)
    write_validation_study(driver, validation_properties(hidden, "zero"), db)
    assert [r["circuit"] for r in summaries(driver, db)] == [samoyed.id]
    [record] = circuit_validation_studies(driver, unfinished.id, database=db)
    assert not record.circuit_complete

    assert delete_circuit(driver, samoyed.id, db)
    assert summaries(driver, db) == []


def test_a_study_of_a_circuit_or_layer_not_in_the_graph_writes_nothing(graph) -> None:
    driver, db, (samoyed, _) = graph
    missing = study_of(small_synthetic(300))
    with pytest.raises(ValidationRecordError, match="not in the graph"):
        write_validation_study(driver, validation_properties(missing, "zero"), db)
    wrong_layer = study_of(samoyed)
    wrong_layer.layers = [samoyed.layers[0], "_blocks.99"]
    with pytest.raises(ValidationRecordError, match="only 1 of the layers"):
        write_validation_study(driver, validation_properties(wrong_layer, "zero"), db)
    assert circuit_validation_studies(driver, samoyed.id, database=db) == []


def test_study_ids_are_unique(graph) -> None:
    driver, db, (samoyed, _) = graph
    result = study_of(samoyed)
    props = validation_properties(result, "zero")
    write_validation_study(driver, props, db)
    with pytest.raises(neo4j.exceptions.ConstraintError):
        write_validation_study(driver, props, db)
    assert count_studies(driver, db) == 1
