"""Loads the graph package's Cypher statements from ``.cypher`` files beside it (``neurflow/graph/cypher/``),
and runs one in a managed transaction.

Statements are read once and cached. They are the package's own files, never user text; every value they use
is a parameter. A few statements take a label or relationship type from a fixed tuple of this package
(``{label}`` or ``{type}`` in the file), since Cypher cannot bind labels as parameters. A file may hold several
statements (schema commands), each ending with ``;`` at the end of a line.

>>> statement("circuits/by-id")[:5]
'MATCH'
"""

from __future__ import annotations

import functools
import re
from importlib import resources
from typing import Any, LiteralString, cast

import neo4j


def _without_comment_lines(text: str) -> str:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("//")]
    return "\n".join(lines).strip()


@functools.cache
def statement(name: str) -> LiteralString:
    """The text of ``cypher/<name>.cypher`` (``//`` comment lines at its top removed)."""
    text = resources.files("neurflow.graph").joinpath("cypher", f"{name}.cypher").read_text()
    lines = text.splitlines()
    while lines and (lines[0].startswith("//") or not lines[0].strip()):
        lines.pop(0)
    return cast(LiteralString, "\n".join(lines).strip() + "\n")


def each_statement(text: LiteralString) -> tuple[LiteralString, ...]:
    """The statements of a file that holds several (schema commands), each ending with ``;`` at the end of a
    line; ``//`` comment lines dropped."""
    parts = (_without_comment_lines(part) for part in re.split(r";[ \t]*$", text, flags=re.MULTILINE))
    return tuple(cast(LiteralString, part + "\n") for part in parts if part)


def with_label(name: str, allowed: tuple[str, ...], label: str, placeholder: str = "label") -> LiteralString:
    """Statement ``name`` with ``{label}`` (or ``{<placeholder>}``) filled by one of the package's own
    ``allowed`` names."""
    if label not in allowed:
        raise ValueError(f"{label!r} is not one of {allowed}")
    return cast(LiteralString, statement(name).replace(f"{{{placeholder}}}", label))


def records(driver: neo4j.Driver, query: LiteralString, database: str | None = None, *, read: bool = False,
            **params: Any) -> list[neo4j.Record]:
    """Runs one statement in a managed transaction (read or write) and returns its records.

    Server notifications (hints about the plan) are turned off: they would only be logged as warnings.
    """
    def work(tx: neo4j.ManagedTransaction) -> list[neo4j.Record]:
        return list(tx.run(query, params))

    with driver.session(database=database, notifications_min_severity="OFF") as session:
        return session.execute_read(work) if read else session.execute_write(work)
