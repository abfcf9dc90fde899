"""``--force``: rewriting a complete circuit in one transaction, keeping what users added to it.

The old circuit stays complete and visible until the transaction commits, which then holds the new one: the
class always has a complete circuit. Inside it, the old circuit's LLM labels, feature evolutions and masked
groups are read, its parts deleted (its Circuit node, and so the ON_CIRCUIT and VALIDATES links of
experiments and studies, stays), the new parts written and completed, and the labels, evolutions and MASKED
links carried over to every neuron group with the same id and the same member neurons. What belonged to a
group that changed is dropped with it and counted in ``not_carried``. One transaction holds the whole circuit
in the server's memory (a few hundred MB for the largest circuits); see docs/reliability.md.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import neo4j

from neurflow.graph.circuit_writes import (
    IngestResult,
    circuit_node,
    circuit_writes,
    complete_circuit,
    new_write_id,
    packed,
    run_pieces,
    writer_tag,
)
from neurflow.graph.comparisons import Comparisons
from neurflow.graph.cross_class import earlier_state
from neurflow.graph.deletion import CIRCUIT_SCOPED_LABELS, WriteConflictError, delete_orphans
from neurflow.graph.rows import CircuitRows, scoped_key
from neurflow.graph.statements import statement, with_label

#: More than any circuit has: the forced rewrite deletes the old parts in one statement per label and writes the
#: new ones in one transaction.
_ALL = 2**62


def _carry_rows(rows: CircuitRows, old_groups: list[Any], old_evolutions: list[Any]) -> tuple[
        dict[str, list[dict[str, Any]]], Counter[str]]:
    """The labels, evolutions and MASKED links to carry to the new groups, and what cannot be carried."""
    cid = rows.circuit_id
    new_members = {gkey: members for gkey, (_, members) in rows.group_members.items()}
    same: set[str] = set()
    carry: dict[str, list[dict[str, Any]]] = {"labels": [], "evolutions": [], "masked": []}
    dropped: Counter[str] = Counter()
    for g in old_groups:
        key = scoped_key(cid, g["groupId"])
        kept = new_members.get(key) == set(g["members"])
        if kept:
            same.add(g["groupId"])
        if g["label"] is not None:
            label = {k: v for k, v in dict(g["label"]).items() if v is not None}
            carry["labels"].append({"key": key, "label": label}) if kept else dropped.update(["labels"])
        for experiment in g["maskedBy"]:
            carry["masked"].append({"experiment": experiment, "group": key}) if kept else dropped.update(["masked"])
    for e in old_evolutions:
        if e["lower"] in same and e["upper"] in same:
            props = {k: v for k, v in dict(e["props"]).items() if k.startswith("evolution")}
            carry["evolutions"].append({"lower": scoped_key(cid, e["lower"]), "upper": scoped_key(cid, e["upper"]),
                                        "props": props})
        else:
            dropped.update(["evolutions"])
    return carry, dropped


def _replace(tx: neo4j.ManagedTransaction, rows: CircuitRows, old_write_id: str, write_id: str, writer: str,
             min_jaccard: float, prepared: Comparisons | None) -> dict[str, Any]:
    cid = rows.circuit_id
    tx.run(statement("writer/lock-model"), model=rows.model["key"]).consume()
    locked = tx.run(statement("replacement/lock-circuit"), circuitId=cid).single()
    if locked is None or locked["writeId"] != old_write_id:
        raise WriteConflictError(f"circuit {cid} was rewritten or deleted by another process while this --force "
                                 "rewrite started; nothing was changed by this one")
    old_groups = list(tx.run(statement("replacement/old-groups"), circuitId=cid))
    old_evolutions = list(tx.run(statement("replacement/old-evolutions"), circuitId=cid))
    carry, dropped = _carry_rows(rows, old_groups, old_evolutions)
    earlier = earlier_state(tx, cid, rows.family["key"], rows.target["index"])  # before the old parts go
    images = tx.run(statement("reads/circuit-images"), id=cid).single()
    patches: set[str] = set()
    for label in CIRCUIT_SCOPED_LABELS:
        found = tx.run(with_label("deletion/circuit-parts", CIRCUIT_SCOPED_LABELS, label), id=cid, limit=_ALL)
        patches.update(found.single()["patches"] or [])  # type: ignore[index] - one row always
    tx.run(statement("deletion/circuit-links"), id=cid).consume()
    tx.run(statement("replacement/reset-circuit"), circuitId=cid, circuit=rows.circuit, writeId=write_id,
           writer=writer).consume()
    # every piece in this one transaction: a budget no circuit reaches
    (pieces,) = packed(circuit_writes(rows), _ALL, first=[circuit_node(rows)])
    written = run_pieces(tx, cid, pieces)
    nodes, relationships = written.nodes_created, written.relationships_created
    carries = {"labels": statement("replacement/carry-labels"),
               "evolutions": statement("replacement/carry-evolutions"),
               "masked": statement("replacement/carry-masked")}
    carried = {kind: tx.run(query, rows=carry[kind]).single()["carried"]  # type: ignore[index] - one row always
               for kind, query in carries.items()}
    counters = complete_circuit(tx, rows, write_id, min_jaccard, earlier, prepared)
    relationships += counters.relationships_created
    return {"nodes": nodes, "relationships": relationships, "carried": carried, "dropped": dict(dropped),
            "patches": sorted(patches), "images": list(images["images"]) if images else []}


def replace_circuit(driver: neo4j.Driver, rows: CircuitRows, old_write_id: str | None, result: IngestResult, *,
                    database: str | None, start: float, min_jaccard: float,
                    prepared: Comparisons | None = None) -> IngestResult:
    """Rewrites the complete circuit ``rows.circuit_id`` (written by attempt ``old_write_id``) in one
    transaction; fills and returns ``result`` (status ``replaced``). ``prepared``: its comparisons with the other
    circuits computed before (:mod:`neurflow.graph.comparisons`)."""
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        done = session.execute_write(_replace, rows, old_write_id or "", new_write_id(), writer_tag(),
                                     min_jaccard, prepared)
    delete_orphans(driver, database, done["patches"], done["images"])
    result.status = "replaced"
    result.nodes, result.relationships = done["nodes"], done["relationships"]
    result.carried, result.not_carried = done["carried"], done["dropped"]
    result.seconds = time.perf_counter() - start
    return result
