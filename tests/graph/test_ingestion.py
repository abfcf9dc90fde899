"""Writing circuits: counts as computed from the circuits, idempotency, recovery from a dead ingestion, and
provenance of real circuits. Expected values come from tests/helpers.py, independently of neurflow.graph."""

from __future__ import annotations

from pathlib import Path

import neo4j
import pytest

from neurflow.format import load_circuit
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.reads import circuit_status, graph_counts, incomplete_circuits
from neurflow.synthetic import save_synthetic
from tests.helpers import expected_counts, small_synthetic


def test_counts_match_the_circuits_and_ingestion_is_idempotent(clean_graph: neo4j.Driver, neo4j_settings,
                                                                tmp_path: Path) -> None:
    db = neo4j_settings.database
    circuits = [small_synthetic(i) for i in (258, 207, 259)]
    circuits.append(small_synthetic(258, seed=1))  # the same class with other parameters: a second circuit
    for circuit in circuits:
        result = write_circuit(clean_graph, circuit, save_synthetic(circuit, tmp_path / circuit.id), database=db)
        assert result.status == "written" and result.relationships > 0
    expected = expected_counts(circuits)
    assert expected["OVERLAPS"] > 0
    assert graph_counts(clean_graph, db) == expected
    again = [write_circuit(clean_graph, c, database=db) for c in circuits]
    assert {r.status for r in again} == {"skipped"}
    assert graph_counts(clean_graph, db) == expected
    forced = write_circuit(clean_graph, circuits[1], tmp_path / circuits[1].id, database=db, force=True)
    assert forced.status == "replaced"
    assert graph_counts(clean_graph, db) == expected
    assert incomplete_circuits(clean_graph, db) == []


def test_a_circuit_of_graph_model_1_0_is_reported_and_rewritten_only_with_force(clean_graph: neo4j.Driver,
                                                                               neo4j_settings) -> None:
    db = neo4j_settings.database
    circuit = small_synthetic(258)
    write_circuit(clean_graph, circuit, database=db)
    clean_graph.execute_query("MATCH (c:Circuit {id: $id}) REMOVE c.familyKey", id=circuit.id, database_=db)
    assert circuit_status(clean_graph, circuit.id, db) == "outdated"
    assert write_circuit(clean_graph, circuit, database=db).status == "outdated"
    assert circuit_status(clean_graph, circuit.id, db) == "outdated"  # nothing changed without --force
    assert write_circuit(clean_graph, circuit, database=db, force=True).status == "replaced"
    assert circuit_status(clean_graph, circuit.id, db) == "complete"


class _Crash(Exception):
    pass


def test_a_dead_ingestion_is_invisible_and_the_next_run_cleans_it(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    db = neo4j_settings.database
    first, second = small_synthetic(258), small_synthetic(207)
    write_circuit(clean_graph, first, database=db)
    batches = 0

    def crash(step: str, done: int, total: int) -> None:
        nonlocal batches
        batches += 1
        if step == "semantic groups" and batches > 12:
            raise _Crash(step)

    with pytest.raises(_Crash):
        write_circuit(clean_graph, second, database=db, batch_rows=20, progress=crash)
    assert incomplete_circuits(clean_graph, db) == [second.id]
    assert circuit_status(clean_graph, second.id, db) == "incomplete"
    partial = graph_counts(clean_graph, db)
    assert 0 < partial["CONTRIBUTES_TO"] - len(first.edges) < len(second.edges)
    result = write_circuit(clean_graph, second, database=db)
    assert result.status == "rewritten"
    assert graph_counts(clean_graph, db) == expected_counts([first, second])


def test_real_circuits_are_written_with_provenance(clean_graph: neo4j.Driver, neo4j_settings,
                                                   real_circuit_dirs: list[Path]) -> None:
    db = neo4j_settings.database
    circuits = [load_circuit(f) for f in real_circuit_dirs]
    for circuit, folder in zip(circuits, real_circuit_dirs, strict=True):
        result = write_circuit(clean_graph, circuit, folder, database=db)
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
