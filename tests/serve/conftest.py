"""The atlas server's fixtures: two real circuits in the test graph, one group labelled, and the app."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import neo4j
import pytest
from flask import Flask

from neurflow.format import load_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.deletion import clear_graph
from neurflow.graph.ingestion import write_circuit
from neurflow.graph.labels import write_caption
from neurflow.serve.app import create_app
from neurflow.workbench.client import GraphClient

LABEL = "fluffy white fur"


@pytest.fixture(scope="module")
def atlas_graph(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings,
                real_circuit_dirs: list[Path]) -> dict[str, Path]:
    """The Samoyed and golden retriever circuits, written to an emptied graph; Samoyed's strongest group below
    the logit labelled LABEL."""
    clear_graph(neo4j_driver, neo4j_settings.database)
    folders = {}
    for folder in real_circuit_dirs:
        circuit = load_circuit(folder)
        write_circuit(neo4j_driver, circuit, folder, database=neo4j_settings.database)
        folders[circuit.target.name] = folder
    samoyed = load_circuit(folders["Samoyed"])
    group = samoyed.groups_of_layer(samoyed.layers[1])[0]
    write_caption(neo4j_driver, samoyed.id, group.id, label=LABEL, caption="the dense white coat of a Samoyed",
                  common_features=["white", "fur"], model="test", prompt_version="v2", at=None, raw=None,
                  database=neo4j_settings.database)
    return folders


@pytest.fixture(scope="module")
def app(atlas_graph: dict[str, Path], neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings) -> Flask:
    return create_app(GraphClient(neo4j_settings, neo4j_driver))


@pytest.fixture(scope="module")
def served(app: Flask) -> Iterator[str]:
    """The app on 127.0.0.1 (a free port), as `neurflow serve` runs it: its base URL."""
    from waitress.server import create_server

    server = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.effective_port}"  # type: ignore[union-attr]
    server.close()
