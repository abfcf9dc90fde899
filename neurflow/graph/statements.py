"""Loads the graph package's Cypher statements from ``.cypher`` files beside it (``neurflow/graph/cypher/``).

Statements are read once and cached. They are the package's own files, never user text; every value they use
is a parameter. A few statements take a label or relationship type from a fixed tuple of this package
(``{label}`` in the file), since Cypher cannot bind labels as parameters.

>>> statement("circuits/by-id")[:5]
'MATCH'
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import LiteralString, cast


@functools.cache
def statement(name: str) -> LiteralString:
    """The text of ``cypher/<name>.cypher`` (``//`` comment lines at its top removed)."""
    text = resources.files("neurflow.graph").joinpath("cypher", f"{name}.cypher").read_text()
    lines = text.splitlines()
    while lines and (lines[0].startswith("//") or not lines[0].strip()):
        lines.pop(0)
    return cast(LiteralString, "\n".join(lines).strip() + "\n")


def with_label(name: str, allowed: tuple[str, ...], label: str) -> LiteralString:
    """Statement ``name`` with ``{label}`` filled by one of the package's own ``allowed`` names."""
    if label not in allowed:
        raise ValueError(f"{label!r} is not one of {allowed}")
    return cast(LiteralString, statement(name).replace("{label}", label))
