"""Small reads of the circuit store: a circuit's status, the incomplete circuits, and what the graph holds.
"""

from __future__ import annotations

from dataclasses import dataclass

import neo4j

from neurflow.graph.statements import records, statement, with_label

#: Every node label neurflow's circuit writes create (docs/graph-model.md).
LABELS: tuple[str, ...] = (
    "DataModel", "Model", "Layer", "Neuron", "Class", "Circuit", "SemanticGroup", "NeuronGroup", "Patch", "Image",
    "CircuitFamily",
)
#: Every relationship type neurflow's circuit writes create.
RELATIONSHIP_TYPES: tuple[str, ...] = (
    "HAS_LAYER", "HAS_NEURON", "OF_MODEL", "FOR_CLASS", "HAS_LOGIT", "HAS_CORE_NEURON", "HAS_IMAGE", "HAS_GROUP",
    "HAS_SEMANTIC_GROUP", "OF_NEURON", "HAS_MEMBER", "CONTRIBUTES_TO", "FLOWS_TO", "OVERLAPS", "EXEMPLIFIES",
    "CROPPED_FROM", "IN_FAMILY", "FAMILY_INFLUENCE", "SIMILAR_TO",
)


@dataclass(frozen=True)
class CircuitState:
    """``status``: ``"complete"``, ``"incomplete"`` or ``"outdated"`` (complete, but written by graph model 1.0:
    no influence, no family, so cross-class queries leave it out); ``write_id``: the ingestion attempt that
    claimed it (None before graph model 1.2)."""

    status: str
    write_id: str | None


def circuit_state(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> CircuitState | None:
    """The circuit's :class:`CircuitState`, or None when it is not in the graph."""
    found = records(driver, statement("reads/circuit-status"), database, read=True, id=circuit_id)
    if not found:
        return None
    record = found[0]
    status = "incomplete" if not record["complete"] else "complete" if record["current"] else "outdated"
    return CircuitState(status, record["writeId"])


def circuit_status(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> str | None:
    """``"complete"``, ``"incomplete"``, ``"outdated"`` (see :class:`CircuitState`) or None (not in the graph)."""
    state = circuit_state(driver, circuit_id, database)
    return state.status if state is not None else None


def incomplete_circuits(driver: neo4j.Driver, database: str | None = None) -> list[str]:
    """Ids of circuits whose ingestion has not finished (or died)."""
    return [r["id"] for r in records(driver, statement("reads/incomplete-circuits"), database, read=True)]


def graph_counts(driver: neo4j.Driver, database: str | None = None) -> dict[str, int]:
    """Nodes per label and relationships per type (from the count store, so instant at any size)."""
    counts: dict[str, int] = {}
    for label in LABELS:
        query = with_label("reads/count-label", LABELS, label)
        counts[label] = records(driver, query, database, read=True)[0]["n"]
    for rel in RELATIONSHIP_TYPES:
        query = with_label("reads/count-type", RELATIONSHIP_TYPES, rel, placeholder="type")
        counts[rel] = records(driver, query, database, read=True)[0]["n"]
    return counts
