"""What the graph says around a named query's answer: class parameters resolved to the graph's classes (a
unique part of a name is enough), and why an empty answer is empty when something it reads is missing."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import neo4j

from neurflow.graph.query_errors import UnknownClassError
from neurflow.graph.statements import statement

if TYPE_CHECKING:
    from neurflow.graph.named_queries import QueryInfo


def resolve_classes(tx: neo4j.ManagedTransaction, info: QueryInfo, bound: Mapping[str, Any]) -> dict[str, Any]:
    """``bound`` with each class parameter that names no Class of the graph replaced by the one class name
    that contains it (as `neurflow classes --search` finds it: ``golden`` -> ``golden retriever``); raises
    UnknownClassError when none or several do."""
    resolved = dict(bound)
    given = {p.name: bound[p.name] for p in info.class_params if bound.get(p.name) is not None}
    if not given:
        return resolved
    missing = {r["value"] for r in tx.run(statement("classes/missing"), values=sorted(set(given.values())))}
    if not missing:
        return resolved
    names = [r["name"] for r in tx.run(statement("classes/names"))]
    for name, value in given.items():
        if value not in missing:
            continue
        containing = sorted({n for n in names if str(value).lower() in n.lower()})
        if len(containing) == 1:
            resolved[name] = containing[0]
            continue
        by_lower = {n.lower(): n for n in names}
        close = [by_lower[n] for n in difflib.get_close_matches(str(value).lower(), list(by_lower), n=5, cutoff=0.6)]
        hint = (f"{len(containing)} class names contain it: {', '.join(containing[:8])}" if containing else
                f"closest: {', '.join(close)}" if close else
                f"no class name is close ({len(names)} classes in the graph; find one with "
                "`neurflow query search-concepts --param text=WORDS`)")
        raise UnknownClassError(f"query {info.name!r}: no class {value!r} in the graph (parameter {name!r}); {hint}")
    return resolved


#: Queries that search the groups' labels (``neurflow label``).
LABEL_QUERIES = frozenset({"search-concepts"})
#: Queries that compare a class with the other classes of its model.
COMPARING_QUERIES = frozenset({"class-similarity", "class-specific"})


def why_empty(tx: neo4j.ManagedTransaction, info: QueryInfo, values: Mapping[str, Any]) -> str | None:
    """Why a query's answer is empty when something upstream is missing; None when nothing is."""
    model = values.get("model") if info.param("model") else None
    if model is not None:
        row = tx.run(statement("empty/model-circuits"), model=model).single()
        if row is not None and row["found"] == 0:
            present = ", ".join(sorted(row["names"])) or "none"
            return (f"the graph holds no complete circuit of model {model!r} (models with circuits: {present}); "
                    f"build and ingest some: neurflow-ingest -m {model} --classes CLASS --images DIR")
    cls = values.get("class") if info.param("class") else None
    if cls is not None:
        row = tx.run(statement("empty/class-circuits"), {"class": str(cls)}).single()
        if row is not None and row["models"] == 0:
            return (f"{row['name']} has no complete circuit in the graph (none was written, or its writing was "
                    f"interrupted); build and ingest one: neurflow-ingest -m MODEL --classes {row['name']!r} "
                    "--images DIR")
        if row is not None and info.name in COMPARING_QUERIES and row["others"] == 0:
            return (f"no other class has a complete circuit of {row['name']}'s model to compare it with; ingest "
                    "more classes built with the same settings")
    if info.name in LABEL_QUERIES:
        row = tx.run(statement("empty/labelled-groups")).single()
        if row is not None and row["labelled"] == 0:
            return (f"none of the graph's {row['groups']} neuron groups is labelled, and this query searches labels; "
                    "label a circuit first: neurflow label -m MODEL -c CLASS")
    return None


def query_notes(driver: neo4j.Driver, name: str, values: Mapping[str, Any], rows: list[dict[str, Any]],
                database: str | None = None) -> list[str]:
    """Lines about a part of an answer that is missing because something upstream is (the answer itself is not
    empty): bias-paths without context paths because no group of the circuit says what it depicts."""
    notes = []
    if name == "bias-paths" and values.get("class") is not None and not any(r.get("kind") == "context" for r in rows):
        records, _, _ = driver.execute_query(statement("empty/depicted-groups"), {"class": str(values["class"])},
                                             database_=database, routing_=neo4j.RoutingControl.READ)
        if records and records[0]["depicting"] == 0:
            notes.append(f"no context paths: none of the {records[0]['groups']} groups of {records[0]['name']}'s "
                         "circuit says what it depicts; label them (caption prompt v2): "
                         f"neurflow label -m MODEL -c {records[0]['name']!r}")
    return notes
