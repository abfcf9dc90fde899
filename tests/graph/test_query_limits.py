"""`neurflow query` within limits, against the real Neo4j (no mocks): a time limit per query, no LOAD CSV, integer
parameters Neo4j can hold, classes that exist (else the closest names), and `neurflow browser serve` on a taken
port. Every refusal is one line and a non-zero exit."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import neo4j
import pytest
from click.testing import CliRunner, Result

from neurflow.cli.main import main as neurflow_main
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.named_queries import (
    INT64,
    QueryError,
    QueryTimeoutError,
    UnknownClassError,
    bind_params,
    load_query,
    run_query,
)
from tests.graph.graphs import Graph, ingest
from tests.helpers import small_synthetic

SLOW = """// name: slow
// description: counts to a billion (about 40 s): only a time limit stops it
// param: limit (int, default 1) rows
UNWIND range(1, 1000000000) AS x
WITH x WHERE x < 0
RETURN count(x) AS n LIMIT $limit
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def env_of(settings: ConnectionSettings, **extra: str) -> dict[str, str]:
    return {"NEO4J_URI": settings.uri, "NEO4J_USER": settings.user, "NEO4J_PASSWORD": settings.password or "",
            "NEO4J_DATABASE": settings.database, **extra}


NOWHERE = {"NEO4J_URI": "bolt://127.0.0.1:1", "NEO4J_PASSWORD": "unused"}
"""Nothing listens there: a refusal that comes back as itself (not as a connection error) came before connecting."""


def one_line_error(result: Result, exit_code: int) -> str:
    """The single line of a refused command (click's "Error: ..."), after checking the exit code."""
    assert result.exit_code == exit_code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def write_query(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.cypher"
    path.write_text(f"// name: {name}\n// description: a test query\n{body}\n")
    return path


# --------------------------------------------------------------------------- time limit


@pytest.mark.neo4j
def test_a_query_stops_at_its_time_limit(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings,
                                         tmp_path: Path) -> None:
    (tmp_path / "slow.cypher").write_text(SLOW)
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match=r"query 'slow' stopped after the 1 s limit \(--timeout\)"):
        run_query(neo4j_driver, "slow", {}, neo4j_settings.database, folder=tmp_path, timeout=1)
    assert time.monotonic() - started < 15

    started = time.monotonic()
    result = CliRunner().invoke(neurflow_main, ["query", "slow", "--timeout", "1"],
                                env=env_of(neo4j_settings, NEURFLOW_QUERIES=str(tmp_path)))
    elapsed = time.monotonic() - started
    line = one_line_error(result, 1)
    assert line == ("Error: query 'slow' stopped after the 1 s limit (--timeout); raise --timeout or narrow the query "
                    "with --param (limit)")
    assert elapsed < 15, elapsed
    # the server is free again: the next query answers at once
    assert run_query(neo4j_driver, "graph-stats", {}, neo4j_settings.database, timeout=30)[0]
    with pytest.raises(QueryError, match="more than 0 s"):
        run_query(neo4j_driver, "graph-stats", {}, neo4j_settings.database, timeout=0)


def test_the_time_limit_option() -> None:
    result = CliRunner().invoke(neurflow_main, ["query", "--help"])
    assert "--timeout SECONDS" in result.output and "[default: 30.0;" in result.output
    result = CliRunner().invoke(neurflow_main, ["query", "graph-stats", "--timeout", "0"], env=NOWHERE)
    assert result.exit_code == 2 and "--timeout" in result.output


# --------------------------------------------------------------------------- LOAD CSV


def test_load_csv_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    bodies = {
        "passwd": "LOAD CSV FROM 'file:///etc/passwd' AS row RETURN row",
        "lower": "load  csv with headers from 'https://example.com/x.csv' as row return row",
        "hidden": "MATCH (n) WITH count(n) AS n\nLOAD /* from */\n  CSV FROM 'file:///etc/passwd' AS row RETURN row",
    }
    for name, body in bodies.items():
        write_query(tmp_path, name, body)
    nowhere = neo4j.GraphDatabase.driver(NOWHERE["NEO4J_URI"], auth=("neo4j", "unused"))
    with nowhere:
        for name in bodies:
            with pytest.raises(QueryError, match=f"query '{name}' .* uses LOAD CSV, which neurflow never runs"):
                run_query(nowhere, name, {}, folder=tmp_path)
    for name in bodies:
        result = CliRunner().invoke(neurflow_main, ["query", name], env={**NOWHERE, "NEURFLOW_QUERIES": str(tmp_path)})
        assert "uses LOAD CSV" in one_line_error(result, 2)


@pytest.mark.neo4j
def test_load_csv_in_a_string_or_comment_is_not_refused(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings,
                                                        tmp_path: Path) -> None:
    write_query(tmp_path, "mentions", "// LOAD CSV is never run\nRETURN 'LOAD CSV' AS text, /* LOAD CSV */ 1 AS n")
    columns, rows = run_query(neo4j_driver, "mentions", {}, neo4j_settings.database, folder=tmp_path)
    assert rows == [{"text": "LOAD CSV", "n": 1}]


# --------------------------------------------------------------------------- integer parameters


def test_integers_beyond_64_bits_and_negative_limits_are_refused_before_connecting() -> None:
    info = load_query("top-groups")
    assert bind_params(info, {"class": "x", "limit": str(INT64[1])})["limit"] == INT64[1]
    with pytest.raises(QueryError, match="limit = 0 is outside its range: a number of rows, at least 1"):
        bind_params(info, {"class": "x", "limit": "0"})  # no rows asked for: refused, not answered empty
    for name, value, query, given in (("prune", "0", "class-similarity", {"class": "x"}),
                                      ("prune", "1.5", "class-similarity", {"class": "x"}),
                                      ("minJaccard", "1.01", "shared-groups", {"a": "x", "b": "y"})):
        with pytest.raises(QueryError, match=f"{name} = .* is outside its range"):
            bind_params(load_query(query), {**given, name: value})
    assert bind_params(load_query("class-similarity"), {"class": "x", "prune": "1"})["prune"] == 1.0
    for value in (str(INT64[1] + 1), "99999999999999999999", 2**64):
        with pytest.raises(QueryError, match="beyond Neo4j's 64-bit integers"):
            bind_params(info, {"class": "x", "limit": value})
    for name, value in (("limit", "-1"), ("thumbnails", -3)):
        with pytest.raises(QueryError, match=f"'{name}' must be 0 or more"):
            bind_params(info, {"class": "x", name: value})
    for value in ("nan", "inf", float("-inf")):
        with pytest.raises(QueryError, match="'prune' must be a finite number"):
            bind_params(load_query("class-similarity"), {"class": "x", "prune": value})

    runner = CliRunner()
    for option, message in (("limit=99999999999999999999", "beyond Neo4j's 64-bit integers"),
                            ("limit=-5", "'limit' must be 0 or more, not -5"),
                            ("n=-1", "'n' must be 0 or more")):
        query = "bias-paths" if option.startswith("n=") else "top-groups"
        result = runner.invoke(neurflow_main, ["query", query, "-p", "class=Samoyed", "-p", option], env=NOWHERE)
        assert message in one_line_error(result, 2)


# --------------------------------------------------------------------------- classes


@pytest.fixture
def two_breeds(clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings) -> Graph:
    circuits = [small_synthetic(258), small_synthetic(207)]  # Samoyed, golden retriever
    return ingest(clean_graph, neo4j_settings.database, circuits, [None, None])


@pytest.mark.neo4j
def test_an_unknown_class_names_the_closest_classes(two_breeds: Graph, neo4j_settings: ConnectionSettings) -> None:
    driver, database, _, _ = two_breeds
    with pytest.raises(UnknownClassError, match=r"query 'top-groups': no class 'Samoyd' in the graph "
                                                r"\(parameter 'class'\); closest: Samoyed$"):
        run_query(driver, "top-groups", {"class": "Samoyd"}, database)
    with pytest.raises(UnknownClassError, match=r"no class 'golden retreiver' .*parameter 'b'.*closest: golden retriever"):
        run_query(driver, "shared-groups", {"a": "Samoyed", "b": "golden retreiver"}, database)
    with pytest.raises(UnknownClassError, match=r"no class 'xyzzy' .*no class name is close \(2 classes"):
        run_query(driver, "validation-summary", {"class": "xyzzy"}, database)  # an optional class parameter too
    for value in ("SAMOYED", "258", "n02111889"):  # name in any case, index, wnid
        assert run_query(driver, "top-groups", {"class": value}, database)[1]
    assert run_query(driver, "validation-summary", {}, database)[1] == []  # no class given: nothing to check

    runner = CliRunner()
    result = runner.invoke(neurflow_main, ["query", "class-similarity", "-p", "class=samoyd"],
                           env=env_of(neo4j_settings))
    line = one_line_error(result, 2)
    assert "no class 'samoyd' in the graph" in line and "closest: Samoyed" in line
    result = runner.invoke(neurflow_main, ["query", "class-similarity", "-p", "class=samoyed"],
                           env=env_of(neo4j_settings))
    assert result.exit_code == 0 and "golden retriever" in result.output


# --------------------------------------------------------------------------- browser serve


def test_browser_serve_on_a_port_in_use() -> None:
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = CliRunner().invoke(neurflow_main, ["browser", "serve", "--port", str(port)])
    assert one_line_error(result, 1) == f"Error: port {port} is in use; pick another with --port"
