"""Validation studies in the graph (``neurflow validate ...``): written and read back. Statements live in
``cypher/validation/``::

    (:ValidationStudy {id, study, createdAt, circuitId, modelKey, layers, ablation, parametersJson,
                       summaryNames, summaryValues, summaryJson, summary<Figure>..., csvPath, pngPath, ...})
        -[:VALIDATES]->(:Circuit), -[:ON_LAYER]->(:Layer) (each studied layer)

The properties are built by :mod:`neurflow.experiments.validation.study_properties`; the named query
``validation-summary`` lists the studies of complete circuits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import neo4j

from neurflow.errors import NeurflowError
from neurflow.graph.schema import ensure_schema_once
from neurflow.graph.statements import records, statement


class ValidationRecordError(NeurflowError, ValueError):
    """A validation study that cannot be recorded: its circuit or layers are not in the graph."""


@dataclass(frozen=True)
class ValidationRecord:
    """A ValidationStudy read back: its properties (``createdAt`` as text), the names of the layers it is
    linked to (logit side first) and whether its circuit is complete."""

    properties: dict[str, Any]
    linked_layers: list[str]
    circuit_complete: bool

    @property
    def id(self) -> str:
        return str(self.properties["id"])

    @property
    def study(self) -> str:
        return str(self.properties["study"])

    @property
    def summary(self) -> dict[str, float]:
        """The summary figures, name -> value (NaN kept)."""
        return dict(zip(self.properties.get("summaryNames", []), self.properties.get("summaryValues", []),
                        strict=True))

    @property
    def parameters(self) -> dict[str, Any]:
        return json.loads(self.properties.get("parametersJson") or "{}")


def write_validation_study(driver: neo4j.Driver, props: Mapping[str, Any], database: str | None = None) -> str:
    """Writes a ValidationStudy (``props``, with ``id``, ``circuitId`` and ``layers``: layer names) linked to its
    circuit and to the Layer node of each layer, in one transaction; returns its id. ``modelKey`` is set from
    the circuit, so it is the key its Model and Layer nodes have.

    Raises ValidationRecordError, writing nothing, when the circuit or one of the layers is not in the graph.
    """
    ensure_schema_once(driver, database)  # the ValidationStudy.id constraint, on graphs ingested before it
    circuit_id, layers = props["circuitId"], list(props["layers"])

    def work(tx: neo4j.ManagedTransaction) -> None:
        record = tx.run(statement("validation/write-study"), props=dict(props)).single()
        if record is None:
            raise ValidationRecordError(f"circuit {circuit_id} is not in the graph: ingest it first "
                                        "(`neurflow-ingest`), or pass --no-record")
        if record["linked"] != len(set(layers)):
            raise ValidationRecordError(
                f"only {record['linked']} of the layers {', '.join(layers)} are layers of circuit {circuit_id}'s "
                "model in the graph: the study's layers must be the circuit's"
            )

    with driver.session(database=database, notifications_min_severity="OFF") as session:
        session.execute_write(work)
    return str(props["id"])


def circuit_validation_studies(driver: neo4j.Driver, circuit_id: str, study: str | None = None,
                               database: str | None = None) -> list[ValidationRecord]:
    """The validation studies of a circuit (complete or not), newest first; ``study``: only this kind."""
    found = records(driver, statement("validation/of-circuit"), database, read=True, circuitId=circuit_id,
                    study=study)
    return [ValidationRecord(dict(r["study"]), list(r["linkedLayers"]), bool(r["complete"])) for r in found]
