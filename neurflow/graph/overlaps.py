"""OVERLAPS edges: which neuron groups of a circuit share enough member neurons with groups of other classes.

Groups of complete circuits of other classes of the same model, in the same layer below the logit, get an
edge when the Jaccard index of their member neurons is at least :data:`OVERLAP_MIN_JACCARD` (recorded on the
DataModel node by :mod:`neurflow.graph.schema`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

import neo4j

from neurflow.graph.schema import OVERLAP_MIN_JACCARD
from neurflow.graph.statements import statement

if TYPE_CHECKING:
    from neurflow.graph.rows import CircuitRows

#: Pairs of neuron groups (same model and layer, different classes) at least this similar get an OVERLAPS edge.


def overlap_rows(tx: neo4j.ManagedTransaction, rows: CircuitRows,
                 min_jaccard: float = OVERLAP_MIN_JACCARD) -> list[list[Any]]:
    """OVERLAPS rows ``[group key, other group key, jaccard, shared neurons]`` from this circuit's groups to
    the groups of complete circuits of other classes, read in ``tx`` (the completing transaction, which holds
    the model's lock, so circuits completed concurrently are seen)."""
    found = tx.run(statement("overlaps/other-groups"), model=rows.model["key"], classIndex=rows.target["index"])
    by_layer: dict[str, list[tuple[str, set[str]]]] = defaultdict(list)
    for record in found:
        by_layer[record["layer"]].append((record["key"], set(record["members"])))
    lower_groups = {g["key"] for g in rows.groups if g["depth"] > 0}
    result = []
    for gkey, (layer, members) in sorted(rows.group_members.items()):
        if not members or gkey not in lower_groups:
            continue
        for other, other_members in by_layer.get(layer, []):
            shared = len(members & other_members)
            if shared == 0:
                continue
            jaccard = shared / len(members | other_members)
            if jaccard >= min_jaccard:
                result.append([gkey, other, jaccard, shared])
    return result
