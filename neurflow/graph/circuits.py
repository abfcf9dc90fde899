"""Which circuit a command works on: one rule for "the circuit of a class".

The circuit of a class is its newest *complete* circuit (by ``ingestedAt``) for the model, or the circuit
named by an explicit id. Incomplete circuits (an ingestion in progress or killed) are never chosen. The named
queries in ``queries/`` follow the same rule in Cypher (``ORDER BY c.ingestedAt DESC, c.id``).

>>> ref = find_circuit(driver, "efficientnet-lite0", 258)            # doctest: +SKIP
>>> ref.class_name, ref.model_key                                    # doctest: +SKIP
('Samoyed', 'efficientnet-lite0@pretrained:...')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import neo4j

from neurflow.errors import CircuitLookupError
from neurflow.graph.statements import statement

READ = neo4j.RoutingControl.READ


class CircuitNotFoundError(CircuitLookupError):
    """No complete circuit matches; the message names what the graph holds instead."""


@dataclass(frozen=True)
class CircuitRef:
    """A circuit in the graph, as commands need it (not its parts)."""

    id: str
    model_key: str
    class_index: int
    class_name: str
    layers: list[str]
    folder: str | None
    created: str | None
    params: str | None
    ingested: str | None = None


def _ref(record: Any) -> CircuitRef:
    return CircuitRef(record["id"], record["modelKey"], record["classIndex"], record["className"],
                      list(record["layers"] or []), record["folder"], record["created"], record["params"],
                      record["ingested"])


def circuit_by_id(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> CircuitRef:
    """The complete circuit ``circuit_id``; CircuitNotFoundError when it is missing or incomplete."""
    records, _, _ = driver.execute_query(statement("circuits/by-id"), id=circuit_id, database_=database,
                                         routing_=READ)
    if not records:
        raise CircuitNotFoundError(f"no circuit {circuit_id!r} in the graph")
    if not records[0]["complete"]:
        raise CircuitNotFoundError(f"circuit {circuit_id} is incomplete (its ingestion has not finished)")
    return _ref(records[0])


def class_circuits(driver: neo4j.Driver, model: str | None, class_index: int,
                   database: str | None = None) -> list[CircuitRef]:
    """Complete circuits of the class for ``model`` (name or ``name@weights`` key; None: any), newest first."""
    records, _, _ = driver.execute_query(statement("circuits/newest-of-class"), model=model,
                                         classIndex=class_index, database_=database, routing_=READ)
    return [_ref(r) for r in records]


def find_circuit(driver: neo4j.Driver, model: str | None, class_index: int, circuit_id: str | None = None,
                 database: str | None = None, class_name: str | None = None) -> CircuitRef:
    """The circuit ``circuit_id`` (checked to be of this model and class), or the class's newest complete one.

    ``model``: a model name or key (``name@weightsId``); None accepts any model. Errors name what exists
    instead: the classes that have circuits of the model, or the models that have circuits of the class.
    """
    name = class_name or str(class_index)
    if circuit_id:
        ref = circuit_by_id(driver, circuit_id, database)
        if ref.class_index != class_index or (model is not None and model not in (
                ref.model_key, ref.model_key.split("@")[0])):
            raise CircuitNotFoundError(
                f"circuit {circuit_id} is the circuit of {ref.class_name!r} ({ref.model_key}), "
                f"not of {name!r} ({model or 'any model'})"
            )
        return ref
    found = class_circuits(driver, model, class_index, database)
    if found:
        return found[0]
    hint = ""
    if model is not None:
        others, _, _ = driver.execute_query(statement("circuits/classes-of-model"), model=model,
                                            database_=database, routing_=READ)
        if others:
            hint += f" Classes with circuits of {model}: {', '.join(r['name'] for r in others)}."
    models, _, _ = driver.execute_query(statement("circuits/models-of-class"), classIndex=class_index,
                                        database_=database, routing_=READ)
    if models and model is not None:
        hint += f" {name!r} has circuits of: {', '.join(r['key'] for r in models)} (other weights?)."
    if not hint:
        hint = " Build one with `neurflow build` and ingest it (`neurflow-ingest`)."
    raise CircuitNotFoundError(
        f"no complete circuit of {name!r} ({class_index}) for {model or 'any model'}.{hint}")
