"""Search by image on the graph: the groups whose representative vector (NeuronGroup.vector, the group_vector
index) is nearest an image's crops. The vectors are made by neurflow.graph.group_vectors at ingestion; the
crops' vectors by neurflow.experiments.search_image. Imports no torch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import neo4j

from neurflow.graph.statements import records, statement

CANDIDATES = 100
"""Groups the vector index returns per crop before they are narrowed to the model and layer."""


def searchable_layers(driver: neo4j.Driver, model_key: str, database: str | None = None) -> dict[str, int]:
    """vectorLayer -> how many groups of the model's complete circuits have a vector in it."""
    rows = records(driver, statement("reads/model-layers"), database, read=True, model=model_key)
    return {str(r["layer"]): int(r["groups"]) for r in rows}


def groups_like(driver: neo4j.Driver, model_key: str, queries: Sequence[Mapping[str, Any]], limit: int = 20,
                candidates: int = CANDIDATES, database: str | None = None) -> list[dict[str, Any]]:
    """The groups nearest the ``queries`` ({layer, crop, vector}), best first: class, index, circuit, family,
    group, layer, depth, influence, label, score (cosine), crop (the query that scored it)."""
    rows = records(driver, statement("reads/groups-like"), database, read=True, model=model_key,
                   queries=[dict(q) for q in queries], candidates=candidates, limit=limit)
    return [dict(r) for r in rows]
