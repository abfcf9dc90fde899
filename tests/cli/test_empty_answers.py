"""Empty answers, table-driven, as a user meets them (`neurflow query` against the test Neo4j): an answer empty
because something upstream is missing exits 2 (as other bad input to a query) with one line saying what and the command that fixes it; an answer
that is truly empty exits 0; a class is found by what `classes --search` finds (a unique part of its name)."""

from __future__ import annotations

import neo4j
import pytest
from click.testing import CliRunner

from neurflow.cli.main import main
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.ingestion import write_circuit
from tests.helpers import small_synthetic

CASES = [  # (what, query and parameters, exit code, what the output says)
    ("labels missing", ["search-concepts", "-p", "text=stripes"], 2, "neurflow label"),
    ("no circuit of the model", ["class-similarity", "-p", "class=Samoyed", "-p", "model=resnet50"], 2,
     "no complete circuit of model 'resnet50'"),
    ("a class not in the graph", ["top-groups", "-p", "class=tabby"], 2, "no class 'tabby' in the graph"),
    ("no other class to compare", ["class-similarity", "-p", "class=Samoyed"], 2, "no other class"),
    ("a unique part of a class name", ["top-groups", "-p", "class=samoy"], 0, "Samoyed"),
    ("truly nothing", ["neuron-classes", "-p", "neuron=_blocks.15:99999"], 0, "(0 rows)"),
    ("context paths need labels: a note", ["bias-paths", "-p", "class=Samoyed"], 0, "no context paths"),
]


@pytest.fixture(scope="module")
def one_circuit(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings) -> dict[str, str]:
    neo4j_driver.execute_query("MATCH (n) DETACH DELETE n", database_=neo4j_settings.database)
    write_circuit(neo4j_driver, small_synthetic(258), database=neo4j_settings.database)
    return {"NEO4J_URI": neo4j_settings.uri, "NEO4J_USER": neo4j_settings.user,
            "NEO4J_PASSWORD": neo4j_settings.password or "", "NEO4J_DATABASE": neo4j_settings.database}


@pytest.mark.parametrize("what,args,code,says", CASES, ids=[c[0] for c in CASES])
def test_an_empty_answer_says_why(what: str, args: list[str], code: int, says: str, one_circuit: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["query", *args, "--wide"], env=one_circuit)
    assert result.exit_code == code, f"{what}: {result.output}"
    assert "Traceback" not in result.output and says in " ".join(result.output.split()), f"{what}: {result.output}"
    if code:
        assert len([line for line in result.output.splitlines() if line.strip()]) == 1, result.output
