"""Named Cypher queries over the circuit store: loading ``queries/*.cypher`` and running them read-only.

Each file starts with a header comment::

    // name: top-groups
    // description: The most influential neuron groups of one class's circuit, per layer ...
    //   (continuation lines are indented)
    // param: class (string, required) class name, index or wnid
    // param: limit (int, default 5) groups per layer

Parameter types are ``string``, ``int``, ``float`` and ``bool``; a default of ``null`` means "not set". Ints
must fit Neo4j's 64 bits and floats be finite; the limits (``limit``, ``n``, ``thumbnails``) must be >= 0. A
string parameter whose description says "index or wnid" names a class: when given, it must name a Class of the
graph (else :class:`UnknownClassError`, with the closest class names). Query text that uses ``LOAD CSV`` is
refused before anything is sent, and a ``timeout`` bounds the read transaction (:class:`QueryTimeoutError`).

>>> from neurflow.graph.named_queries import list_queries, run_query
>>> [q.name for q in list_queries()][:2]                                         # doctest: +SKIP
['bias-paths', 'class-circuit']
>>> columns, rows = run_query(driver, "top-groups", {"class": "Samoyed", "limit": 3})  # doctest: +SKIP
>>> columns[:4]                                                                     # doctest: +SKIP
['class', 'layer', 'depth', 'rank']
"""

from __future__ import annotations

import math
import os
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, LiteralString, cast

import neo4j
import neo4j.graph
import neo4j.time

from neurflow.graph.query_answers import resolve_classes, why_empty
from neurflow.graph.query_errors import EmptyAnswerError as EmptyAnswerError
from neurflow.graph.query_errors import QueryError as QueryError
from neurflow.graph.query_errors import QueryTimeoutError as QueryTimeoutError
from neurflow.graph.query_errors import UnknownClassError as UnknownClassError
from neurflow.graph.query_output import to_plain

ENV_QUERIES = "NEURFLOW_QUERIES"
TYPES = ("string", "int", "float", "bool")
INT64 = (-(2**63), 2**63 - 1)
"""The integers Neo4j stores (and the driver sends): a parameter outside them is refused before connecting."""
LIMIT_PARAMS = frozenset({"limit", "n", "thumbnails"})
"""Int parameters that count rows, paths or thumbnails: never negative."""
CLASS_PARAM_DOC = "index or wnid"
"""A string parameter whose header description holds these words names a class."""
DEFAULT_TIMEOUT = 30.0
"""Seconds a user's named query may run before Neo4j stops it: `neurflow query --timeout` and the workbench's
query functions default to it (the local server's own limit is 60 s)."""
TIMEOUT_CODES = frozenset({
    "Neo.ClientError.Transaction.TransactionTimedOut",
    "Neo.ClientError.Transaction.TransactionTimedOutClientConfiguration",  # Neo4j 5 also for the server's limit
})
_PARAM = re.compile(r"^(?P<name>[A-Za-z_][A-Za-z0-9_]*)\s*\((?P<type>[a-z]+)\s*,\s*(?P<spec>[^)]*)\)\s*(?P<doc>.*)$")
# Comments, string literals and quoted names: skipped when looking for clauses in a query's text.
_NOT_CODE = re.compile(r"//[^\n]*|/\*.*?\*/|'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|`[^`]*`", re.DOTALL)
_LOAD_CSV = re.compile(r"\bLOAD\s+CSV\b", re.IGNORECASE)


@dataclass(frozen=True)
class QueryParam:
    """One parameter of a named query, from its ``// param:`` header line."""

    name: str
    type: str
    required: bool
    default: Any
    description: str

    def signature(self) -> str:
        """``limit (int, default 5)``."""
        spec = "required" if self.required else f"default {_show(self.default)}"
        return f"{self.name} ({self.type}, {spec})"


@dataclass(frozen=True)
class QueryInfo:
    """A named query: its header and Cypher text."""

    name: str
    description: str
    params: tuple[QueryParam, ...]
    cypher: str
    path: Path

    def param(self, name: str) -> QueryParam | None:
        return next((p for p in self.params if p.name == name), None)

    @property
    def class_params(self) -> tuple[QueryParam, ...]:
        """The parameters that name a class (string, described as "name, index or wnid")."""
        return tuple(p for p in self.params if p.type == "string" and CLASS_PARAM_DOC in p.description)


def _show(value: Any) -> str:
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def describe_queries(infos: Sequence[QueryInfo], columns: bool = False) -> str:
    """The text of ``neurflow query --list`` (with ``columns``: each query's columns too, as
    ``neurflow query NAME --help`` shows them)."""
    blocks = []
    for info in infos:
        lines = [info.name, textwrap.fill(info.description, 110, initial_indent="    ", subsequent_indent="    ")]
        lines += [textwrap.fill(f"--param {p.signature()}: {p.description}", 110, initial_indent="    ",
                                subsequent_indent="        ") for p in info.params]
        if columns:
            lines.append(textwrap.fill(f"columns: {', '.join(query_columns(info))}", 110, initial_indent="    ",
                                       subsequent_indent="        "))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def query_columns(info: QueryInfo) -> list[str]:
    """The columns a query returns, read from its last top-level ``RETURN`` (each item's alias, or the item
    itself): what ``neurflow query NAME --help`` lists before anything runs."""
    code = "\n".join(line.split("//")[0] if not line.lstrip().startswith("//") else "" for line in info.cypher.splitlines())
    starts = [m.end() for m in re.finditer(r"(?m)^RETURN\s", code)]
    if not starts:
        return []
    clause = re.split(r"(?m)^(?:ORDER BY|LIMIT|SKIP|UNION)\b", code[starts[-1]:])[0]
    items, depth, current = [], 0, ""
    for char in clause:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    names = []
    for item in (" ".join(i.split()) for i in items):
        alias = re.search(r"\sAS\s+(`?)(\w+)\1$", item, flags=re.IGNORECASE)
        names.append(alias.group(2) if alias else item)
    return [name for name in names if name]


def queries_dir() -> Path:
    """The folder of named queries: ``$NEURFLOW_QUERIES``, else the ones installed with neurflow.

    The installed ones are ``queries/*.cypher`` of the repository, shipped as the package ``neurflow.queries``
    (an editable install reads the checkout's folder itself), so the current directory never matters.
    """
    env = os.environ.get(ENV_QUERIES)
    if env:
        folder = Path(env)
        if folder.is_dir() and any(folder.glob("*.cypher")):
            return folder
        raise QueryError(f"{ENV_QUERIES}={env} is not a folder of .cypher files")
    installed = Path(str(resources.files("neurflow.queries")))
    if not any(installed.glob("*.cypher")):
        raise QueryError(f"no named queries installed in {installed}; reinstall neurflow or set {ENV_QUERIES}")
    return installed


def convert(value: str | None, type_: str, name: str = "value") -> Any:
    """Text (from ``--param key=value``) to the parameter's type; ``null`` or None gives None.

    >>> convert("5", "int"), convert("0.5", "float"), convert("yes", "bool"), convert("null", "string")
    (5, 0.5, True, None)
    """
    if value is None or value.strip().lower() in ("null", "none"):
        return None
    text = value.strip()
    try:
        if type_ == "int":
            number: int | float = int(text)
        elif type_ == "float":
            number = float(text)
        elif type_ == "bool":
            lowered = text.lower()
            if lowered in ("true", "yes", "1", "on"):
                return True
            if lowered in ("false", "no", "0", "off"):
                return False
            raise ValueError(text)
        else:
            return value
    except ValueError:
        raise QueryError(f"parameter {name!r} must be {'an' if type_ == 'int' else 'a'} {type_}, not {value!r}") from None
    return _checked_int(int(number), name) if type_ == "int" else _checked_float(number, name)


def _checked_int(value: int, name: str) -> int:
    if not INT64[0] <= value <= INT64[1]:
        raise QueryError(f"parameter {name!r} is {value}, beyond Neo4j's 64-bit integers "
                         f"({INT64[0]} to {INT64[1]})")
    if name in LIMIT_PARAMS and value < 0:
        raise QueryError(f"parameter {name!r} must be 0 or more, not {value}")
    return value


def _checked_float(value: float, name: str) -> float:
    if not math.isfinite(value):
        raise QueryError(f"parameter {name!r} must be a finite number, not {value}")
    return value


def parse_query(text: str, path: Path) -> QueryInfo:
    """A query file's header and body; raises QueryError naming the file when the header is malformed."""
    header: list[str] = []
    for line in text.splitlines():
        if not line.startswith("//"):
            break
        header.append(line[2:])
    fields: list[tuple[str, str]] = []
    for line in header:
        if line.startswith("  ") and fields:  # continuation
            key, value = fields[-1]
            fields[-1] = (key, f"{value} {line.strip()}")
            continue
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        fields.append((key.strip().lower(), value.strip()))
    values: dict[str, str] = {}
    params: list[QueryParam] = []
    for key, value in fields:
        if key == "param":
            match = _PARAM.match(value)
            if not match:
                raise QueryError(f"{path}: malformed param line {value!r}; expected 'name (type, required|default X) doc'")
            type_ = match["type"]
            if type_ not in TYPES:
                raise QueryError(f"{path}: parameter {match['name']!r} has unknown type {type_!r} (use {', '.join(TYPES)})")
            spec = match["spec"].strip()
            if spec == "required":
                params.append(QueryParam(match["name"], type_, True, None, match["doc"].strip()))
            elif spec.startswith("default"):
                default = convert(spec[len("default"):].strip(), type_, match["name"])
                params.append(QueryParam(match["name"], type_, False, default, match["doc"].strip()))
            else:
                raise QueryError(f"{path}: parameter {match['name']!r}: say 'required' or 'default VALUE', not {spec!r}")
        else:
            values[key] = value
    name = values.get("name")
    if not name:
        raise QueryError(f"{path}: the header has no '// name:' line")
    if name != path.stem:
        raise QueryError(f"{path}: the header names the query {name!r}; rename the file or the query")
    return QueryInfo(name, values.get("description", ""), tuple(params), text, path)


def list_queries(folder: str | Path | None = None) -> list[QueryInfo]:
    """Every named query, sorted by name.

    >>> [q.name for q in list_queries()]                                 # doctest: +SKIP
    ['bias-paths', 'class-circuit', 'class-similarity', 'concept-reuse', 'graph-stats', 'top-groups']
    """
    root = Path(folder) if folder is not None else queries_dir()
    return [parse_query(path.read_text(), path) for path in sorted(root.glob("*.cypher"))]


def load_query(name: str, folder: str | Path | None = None) -> QueryInfo:
    """The named query; an unknown name raises QueryError listing the queries that exist."""
    root = Path(folder) if folder is not None else queries_dir()
    path = root / f"{name}.cypher"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", name) or not path.is_file():
        names = ", ".join(q.name for q in list_queries(root))
        raise QueryError(f"unknown query {name!r}. Queries: {names}")
    return parse_query(path.read_text(), path)


def parse_param_options(options: Sequence[str]) -> dict[str, str]:
    """``["class=Samoyed", "limit=3"]`` -> ``{"class": "Samoyed", "limit": "3"}``."""
    result: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or not key.strip():
            raise QueryError(f"--param wants key=value, not {option!r}")
        result[key.strip()] = value
    return result


def bind_params(info: QueryInfo, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The Cypher parameters: given values typed by the header (text is converted), defaults for the rest.

    Raises QueryError for an unknown or missing parameter, listing the query's parameters.
    """
    params = dict(params or {})
    listing = "; ".join(p.signature() for p in info.params) or "none"
    unknown = sorted(set(params) - {p.name for p in info.params})
    if unknown:
        raise QueryError(f"query {info.name!r} has no parameter {', '.join(map(repr, unknown))}. Parameters: {listing}")
    bound: dict[str, Any] = {}
    for p in info.params:
        if p.name not in params:
            if p.required:
                raise QueryError(f"query {info.name!r} needs parameter {p.name!r} ({p.description}). "
                                 f"Parameters: {listing}")
            bound[p.name] = p.default
            continue
        value = params[p.name]
        if isinstance(value, str) or value is None:
            value = convert(value, p.type, p.name)
        elif p.type == "string":
            value = str(value)
        elif p.type == "float" and isinstance(value, int | float) and not isinstance(value, bool):
            value = _checked_float(float(value), p.name)
        elif p.type == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
            raise QueryError(f"parameter {p.name!r} must be an int, not {value!r}")
        elif p.type == "int":
            value = _checked_int(value, p.name)
        elif p.type == "bool" and not isinstance(value, bool):
            raise QueryError(f"parameter {p.name!r} must be a bool, not {value!r}")
        if value is None and p.required:
            raise QueryError(f"query {info.name!r} needs a value for parameter {p.name!r}")
        check_range(info.name, p.name, value)
        if p.name == "neuron" and value is not None and not NEURON_KEY.fullmatch(str(value)):
            raise QueryError(f"query {info.name!r}: neuron must be LAYER:CHANNEL, e.g. _blocks.15:201, not {value!r}")
        bound[p.name] = value
    return bound


#: A neuron parameter: ``layer:channel``.
NEURON_KEY = re.compile(r"[^:\s]+:\d+")
#: What the shared parameters mean, so that a value outside it is refused rather than answered wrongly:
#: name -> (lowest, highest, whether the lowest is allowed, what the value is).
PARAM_RANGES: dict[str, tuple[float, float, bool, str]] = {
    "prune": (0.0, 1.0, False, "a share of each layer's influence, in (0, 1]"),
    "minJaccard": (0.0, 1.0, True, "a Jaccard index, in [0, 1]"),
    "minStability": (0.0, 1.0, True, "a stability, in [0, 1]"),
    "minShare": (0.0, 1.0, True, "a share, in [0, 1]"),
    "minForeign": (0.0, 1.0, True, "a share, in [0, 1]"),
    "limit": (1, math.inf, True, "a number of rows, at least 1"),
    "n": (1, math.inf, True, "a number of paths, at least 1"),
    "thumbnails": (0, math.inf, True, "a number of patches, 0 or more"),
    "minClasses": (1, math.inf, True, "a number of classes, at least 1"),
    "fromDepth": (0, math.inf, True, "a layer depth (0 = the logit layer), 0 or more"),
}


def check_range(query: str, name: str, value: Any) -> None:
    """A QueryError when a shared numeric parameter is outside what it means (PARAM_RANGES); None passes."""
    if name not in PARAM_RANGES or value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return
    low, high, low_allowed, meaning = PARAM_RANGES[name]
    if value < low or value > high or (value == low and not low_allowed):
        raise QueryError(f"query {query!r}: {name} = {value} is outside its range: {meaning}")


def refuse_load_csv(info: QueryInfo) -> None:
    """Raises QueryError when the query's text uses ``LOAD CSV`` (outside comments, strings and quoted names):
    named queries only read the graph, never files or URLs of the server's machine."""
    if _LOAD_CSV.search(_NOT_CODE.sub(" ", info.cypher)):
        raise QueryError(f"query {info.name!r} ({info.path}) uses LOAD CSV, which neurflow never runs: "
                         "named queries read the graph only")


def _timed_out(info: QueryInfo, timeout: float | None) -> QueryTimeoutError:
    optional = ", ".join(p.name for p in info.params if not p.required)
    narrow = f" or narrow the query with --param ({optional})" if optional else ""
    if timeout is None:
        return QueryTimeoutError(f"query {info.name!r} stopped at the server's transaction time limit "
                                 f"(db.transaction.timeout); set a longer one with --timeout{narrow}")
    return QueryTimeoutError(f"query {info.name!r} stopped after the {timeout:g} s limit (--timeout); raise "
                             f"--timeout{narrow}")


def run_query(
    driver: neo4j.Driver,
    name: str,
    params: Mapping[str, Any] | None = None,
    database: str | None = None,
    folder: str | Path | None = None,
    timeout: float | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    """Runs a named query in a read transaction; returns its columns and rows (plain values, see to_plain).

    A query that tries to write fails (the transaction is read-only); one that uses LOAD CSV is refused before
    anything is sent (QueryError). A class parameter that names no class of the graph raises
    UnknownClassError. ``timeout`` (seconds) bounds the transaction: past it Neo4j stops the query and
    QueryTimeoutError names the limit; None leaves the server's own limit (neurflow's local server: 60 s).

    >>> columns, rows = run_query(driver, "graph-stats", timeout=30)                 # doctest: +SKIP
    >>> {r["name"]: r["count"] for r in rows}["Circuit"]                             # doctest: +SKIP
    2
    """
    if timeout is not None and not timeout > 0:
        raise QueryError(f"the time limit must be more than 0 s, not {timeout}")
    info = load_query(name, folder)
    refuse_load_csv(info)
    bound = bind_params(info, params)

    def work(tx: neo4j.ManagedTransaction) -> tuple[list[str], list[dict[str, Any]]]:
        values = resolve_classes(tx, info, bound)
        # Query files are the project's or the user's own (queries/, $NEURFLOW_QUERIES), never text from a
        # command line; parameters are always bound.
        result = tx.run(cast(LiteralString, info.cypher), values)
        keys = list(result.keys())
        rows = [{k: to_plain(record[k]) for k in keys} for record in result]
        if not rows:
            reason = why_empty(tx, info, values)
            if reason:
                raise EmptyAnswerError(f"query {info.name!r} answered nothing: {reason}")
        return keys, rows

    try:
        with driver.session(database=database, default_access_mode=neo4j.READ_ACCESS,
                            notifications_min_severity="OFF") as session:
            return session.execute_read(neo4j.unit_of_work(timeout=timeout)(work))
    except neo4j.exceptions.Neo4jError as error:
        if error.code in TIMEOUT_CODES:
            raise _timed_out(info, timeout) from error
        raise


# --------------------------------------------------------------------------- output
