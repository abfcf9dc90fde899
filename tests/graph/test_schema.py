"""The schema: constraints and indexes created idempotently, and another graph model version refused."""

from __future__ import annotations

import neo4j
import pytest

from neurflow.graph.schema import DATA_MODEL_VERSION, DataModelVersionError, ensure_schema


def test_schema_is_created_idempotently(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    ensure_schema(clean_graph, neo4j_settings.database)
    ensure_schema(clean_graph, neo4j_settings.database)
    with clean_graph.session(database=neo4j_settings.database) as session:
        names = {r["name"] for r in session.run("SHOW CONSTRAINTS YIELD name")}
        indexes = {r["name"] for r in session.run("SHOW INDEXES YIELD name, state WHERE state = 'ONLINE'")}
        data_model = session.run("MATCH (d:DataModel) RETURN d.version AS v").single()
    assert {"neuron_key", "circuit_id", "semantic_group_key", "neuron_group_key", "patch_key", "image_sha256"} <= names
    assert {"semantic_group_circuit", "neuron_group_circuit", "class_name"} <= indexes
    assert data_model is not None and data_model["v"] == DATA_MODEL_VERSION


def test_another_data_model_version_is_refused(clean_graph: neo4j.Driver, neo4j_settings) -> None:
    ensure_schema(clean_graph, neo4j_settings.database)
    clean_graph.execute_query("MATCH (d:DataModel) SET d.version = '2.0'", database_=neo4j_settings.database)
    try:
        with pytest.raises(DataModelVersionError, match="2.0"):
            ensure_schema(clean_graph, neo4j_settings.database)
    finally:
        clean_graph.execute_query("MATCH (d:DataModel) DETACH DELETE d", database_=neo4j_settings.database)
