"""Shared Neo4j fixtures: tests talk to a real server (the local one from `neurflow db start`,
or whatever NEO4J_URI/NEO4J_PASSWORD point to) and fail, never skip, when it is not reachable."""

from __future__ import annotations

import os
from collections.abc import Iterator

import neo4j
import pytest

from neurflow.graph.connection import (
    ConnectionSettings,
    Neo4jConnectionError,
    open_driver,
    resolve_connection,
)
from neurflow.graph.server import clear_graph


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "neo4j: needs a running Neo4j server")


@pytest.fixture(scope="session")
def neo4j_settings() -> ConnectionSettings:
    """Connection settings from NEO4J_* env or the local server (password never shown)."""
    return resolve_connection()


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_settings: ConnectionSettings) -> Iterator[neo4j.Driver]:
    """A verified driver for the whole session; a missing server is a failure, in CI and locally."""
    try:
        driver = open_driver(neo4j_settings)
    except Neo4jConnectionError as e:
        # e.message already names URI and user and hints at `neurflow db start`.
        prefix = (
            "CI needs a Neo4j server for these tests (they are never skipped). "
            if os.environ.get("CI")
            else ""
        )
        pytest.fail(prefix + e.message, pytrace=False)
    yield driver
    driver.close()


@pytest.fixture
def clean_graph(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings) -> neo4j.Driver:
    """Delete all nodes (and so relationships) before the test; indexes and constraints stay."""
    clear_graph(neo4j_driver, neo4j_settings.database)
    return neo4j_driver
