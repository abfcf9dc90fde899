"""The graph client: one Neo4j driver and its database, with the connection settings resolved once.

>>> from neurflow.workbench import connect
>>> with connect() as client:                                     # doctest: +SKIP
...     columns, rows = client.run_query("graph-stats")
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import neo4j

from neurflow.graph.connection import ConnectionSettings, open_driver, resolve_connection
from neurflow.graph.named_queries import DEFAULT_TIMEOUT, run_query


@dataclass
class GraphClient:
    """A verified driver for ``settings`` and the database every call uses.

    Close it (or use it as a context manager) when done; the library's graph functions take
    ``client.driver`` and ``client.database``.
    """

    settings: ConnectionSettings
    driver: neo4j.Driver = field(repr=False)

    @property
    def database(self) -> str:
        return self.settings.database

    def run_query(self, name: str, params: Mapping[str, Any] | None = None,
                  timeout: float | None = DEFAULT_TIMEOUT) -> tuple[list[str], list[dict[str, Any]]]:
        """The named query ``name`` (``queries/NAME.cypher``) in a read transaction: its columns and rows."""
        return run_query(self.driver, name, params, self.database, timeout=timeout)

    def close(self) -> None:
        self.driver.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(uri: str | None = None, user: str | None = None, password: str | None = None,
            database: str | None = None) -> GraphClient:
    """A client of the server given, else of ``NEO4J_URI`` ... from the environment, else of the local server
    of ``neurflow db start``. Raises Neo4jConnectionError (naming the URI and user tried) when it cannot
    connect."""
    settings = resolve_connection(uri=uri, user=user, password=password, database=database)
    return GraphClient(settings, open_driver(settings))
