"""Named queries as Python functions (neurflow.workbench.queries): one per query file, typed keyword arguments
from its header, a DataFrame of exactly the rows `run_query` gives; and the graph client they take."""

from __future__ import annotations

import inspect
from pathlib import Path

import neo4j
import pytest

from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.named_queries import list_queries, run_query
from neurflow.workbench import GraphClient, connect, queries
from tests.graph.graphs import ingest
from tests.helpers import small_synthetic


def test_one_function_per_query_file_named_in_snake_case() -> None:
    assert sorted(queries.names()) == sorted(q.name.replace("-", "_") for q in list_queries())
    assert queries.python_name("minForeign") == "min_foreign" and queries.python_name("class") == "class_"
    assert queries.python_name("class-similarity") == "class_similarity"
    assert set(queries.names()) <= set(dir(queries))
    with pytest.raises(AttributeError, match="no named query 'no_such_query'; there are: atlas_classes, bias_paths"):
        queries.no_such_query  # noqa: B018


def test_a_functions_signature_and_help_come_from_the_query_header() -> None:
    function = queries.bias_paths
    signature = inspect.signature(function)
    params = signature.parameters
    assert list(params)[:2] == ["client", "class_"]
    assert params["class_"].kind is inspect.Parameter.KEYWORD_ONLY and params["class_"].default is inspect.Parameter.empty
    assert params["class_"].annotation is str
    assert params["n"].default == 5 and params["min_foreign"].default == 0.5 and params["from_depth"].default is None
    assert params["raw"].default is False and params["timeout"].default == 30.0
    assert function.__name__ == "bias_paths" and "min_foreign (float, default 0.5)" in (function.__doc__ or "")


def test_bad_arguments_are_refused_before_connecting() -> None:
    nowhere = GraphClient(ConnectionSettings("bolt://127.0.0.1:1", "neo4j", None, "neo4j"), None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"top_groups\(\) has no parameter klass; it takes class_, limit"):
        queries.top_groups(nowhere, klass="Samoyed")
    with pytest.raises(TypeError, match=r"top_groups\(\) needs class_"):
        queries.top_groups(nowhere)


@pytest.mark.neo4j
def test_every_function_returns_the_rows_of_its_query(clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings,
                                                      tmp_path: Path) -> None:
    circuits = [small_synthetic(i, max_neuron_groups=3, images=8) for i in (258, 207)]
    ingest(clean_graph, neo4j_settings.database, circuits, [tmp_path / str(c.target.index) for c in circuits])
    first, second = circuits
    values = {"class": first.target.name, "a": first.target.name, "b": second.target.name,
              "neuron": first.neurons[first.layers[1]][0].key, "text": first.target.name, "circuit": first.id,
              "group": first.groups_of_layer(first.layers[1])[0].id, "circuits": f"{first.id},{second.id}"}
    with connect(neo4j_settings.uri, neo4j_settings.user, neo4j_settings.password, neo4j_settings.database) as client:
        assert client.database == neo4j_settings.database
        for info in list_queries():
            required = {p.name: values[p.name] for p in info.params if p.required}
            columns, rows = run_query(clean_graph, info.name, required, neo4j_settings.database)
            function = getattr(queries, queries.python_name(info.name))
            arguments = {queries.python_name(k): v for k, v in required.items()}
            frame = function(client, **arguments)
            assert list(frame.columns) == columns, info.name
            # pandas shows a missing number as NaN; as rows, the frame is the query's rows
            assert frame.astype(object).where(frame.notna(), None).to_dict("records") == rows, info.name
            assert function(client, raw=True, **arguments) == rows
        limited = queries.top_groups(client, class_=first.target.name, limit=1)
        assert limited["rank"].max() == 1 and limited["layer"].nunique() == len(first.layers)
