"""Concept labels on the graph: a group caption on its ``NeuronGroup`` node, a feature evolution on the
``(lower)-[:FLOWS_TO]->(upper)`` edges of one request, and the check that a circuit is in the graph.

The statements are ``cypher/labels/*.cypher``. Callers pass plain values (ids, strings, dicts); what the LLM was
asked and how its answer was read is ``neurflow.labelling``'s business, which calls these functions.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import neo4j

from neurflow.graph.rows import scoped_key
from neurflow.graph.statements import statement


def utc_iso(value: str | None) -> str:
    """``value`` (ISO 8601) with a time zone, UTC when it has none; now when it is missing or unreadable."""
    if value:
        try:
            parsed = datetime.fromisoformat(value)
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=timezone.utc)
            return parsed.isoformat()
        except ValueError:
            pass
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def write_caption(driver: neo4j.Driver, circuit_id: str, group_id: str, *, label: str | None,
                  caption: str | None, common_features: Sequence[str], model: str, prompt_version: str,
                  at: str | None, raw: str | None, request_key: str | None = None,
                  database: str | None = None, depicts: str | None = None) -> int:
    """Stores a group caption on the group's node (``raw``: the answer when it did not parse, else None;
    ``depicts``: object, context or background, when the answer said); returns the number of nodes written (0:
    the group is not in the graph)."""
    records, _, _ = driver.execute_query(
        statement("labels/write-caption"), key=scoped_key(circuit_id, group_id), label=label, caption=caption,
        features=list(common_features), model=model, promptVersion=prompt_version, at=utc_iso(at), raw=raw,
        requestKey=request_key, depicts=depicts, database_=database,
    )
    return int(records[0]["written"])


@dataclass(frozen=True)
class LowerGroupEvolution:
    """What a feature-evolution answer says of one lower group: its features and its match with the upper
    group's (``matched``: False for "no match", None when the answer gave no match)."""

    group: str
    features: str | None
    match: str | None
    matched: bool | None


def write_evolution(driver: neo4j.Driver, circuit_id: str, upper_group: str,
                    lower: Sequence[LowerGroupEvolution], *, caption: str | None, upper_features: str | None,
                    features: Mapping[str, str], matches: Mapping[str, str], model: str, prompt_version: str,
                    at: str | None, raw: str | None, request_key: str | None = None,
                    database: str | None = None) -> int:
    """Stores a feature evolution on every ``(lower)-[:FLOWS_TO]->(upper_group)`` edge of the request.

    ``lower``: the request's lower groups, in its order; ``features`` and ``matches``: the whole answer by group
    id (stored as JSON objects, in the order given). Returns the number of edges written.
    """
    rows = [{"lower": scoped_key(circuit_id, g.group), "match": g.match, "features": g.features,
             "matched": g.matched} for g in lower]
    records, _, _ = driver.execute_query(
        statement("labels/write-evolution"), rows=rows, circuitId=circuit_id,
        upper=scoped_key(circuit_id, upper_group), caption=caption, upperFeatures=upper_features,
        features=json.dumps(dict(features)), matches=json.dumps(dict(matches)),
        groups=[upper_group, *(g.group for g in lower)], model=model, promptVersion=prompt_version,
        at=utc_iso(at), raw=raw, requestKey=request_key, database_=database,
    )
    return int(records[0]["written"])


def stored_group_count(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> int:
    """The neuron groups of the complete circuit ``circuit_id`` in the graph (0: missing or incomplete)."""
    records, _, _ = driver.execute_query(statement("labels/group-count"), id=circuit_id, database_=database,
                                         routing_=neo4j.RoutingControl.READ)
    return int(records[0]["n"])


def circuit_labels(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> list[dict[str, Any]]:
    """Every caption and feature evolution stored on the circuit (kind ``group`` or ``flow``; ``props``; ``at``),
    as an export carries them; :func:`restore_labels` writes them back."""
    rows, _, _ = driver.execute_query(statement("labels/circuit-labels"), id=circuit_id, database_=database,
                                      routing_=neo4j.RoutingControl.READ)
    return [{"kind": r["kind"], "group": r["group"], "upper": r["upper"],
             "props": {k: v for k, v in dict(r["props"]).items() if v is not None}, "at": r["at"]} for r in rows]


def restore_labels(driver: neo4j.Driver, circuit_id: str, labels: Sequence[Mapping[str, Any]],
                   database: str | None = None) -> int:
    """Writes labels read by :func:`circuit_labels` back on the circuit's groups and edges; returns how many."""
    groups = [{"key": scoped_key(circuit_id, r["group"]), "props": dict(r["props"]), "at": r.get("at")}
              for r in labels if r["kind"] == "group"]
    flows = [{"lower": scoped_key(circuit_id, r["group"]), "upper": scoped_key(circuit_id, r["upper"]),
              "props": dict(r["props"]), "at": r.get("at")} for r in labels if r["kind"] == "flow"]
    rows, _, _ = driver.execute_query(statement("labels/restore-labels"), groups=groups, flows=flows,
                                      circuitId=circuit_id, database_=database)
    return int(rows[0]["written"])
