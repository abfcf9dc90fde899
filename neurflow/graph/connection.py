"""Connection settings used by every command, and a verified driver.

Settings come from explicit values, then ``NEO4J_URI/USER/PASSWORD/DATABASE``, then the local server of
``neurflow db start`` (whose password is only sent to a loopback address).

May import: neo4j, ``neurflow.errors``, ``neurflow.graph.server_config``.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import neo4j
from neo4j.exceptions import AuthError, DriverError, Neo4jError

from neurflow.errors import NeurflowError
from neurflow.graph import server_config as local_server


class Neo4jConnectionError(NeurflowError, ConnectionError):
    """No usable connection to Neo4j; the message names URI and user, never the password."""


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and as whom to connect; ``repr``/``describe`` never show the password."""

    uri: str
    user: str
    password: str | None = field(repr=False)
    database: str

    def describe(self) -> str:
        """One line for messages: URI, user and database (no password)."""
        return f"{self.uri} as {self.user!r}, database {self.database!r}"


def _is_loopback(uri: str) -> bool:
    with contextlib.suppress(ValueError):
        return urlsplit(uri).hostname in {"127.0.0.1", "localhost", "::1"}
    return False


def resolve_connection(
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> ConnectionSettings:
    """Connection settings: explicit values, then ``NEO4J_URI/USER/PASSWORD/DATABASE``, then the local server.

    The local server is ``bolt://127.0.0.1:<port>`` (port from ``NEURFLOW_NEO4J_BOLT_PORT`` or the
    data folder's conf, else 7687), user ``neo4j``, database ``neo4j`` and the password from the
    local password file. That password is only used for a loopback URI, so it is never sent to a
    remote server.
    """
    env = os.environ
    local = local_server.server_config()
    uri = uri or env.get("NEO4J_URI") or local.uri
    user = user or env.get("NEO4J_USER") or local_server.USER
    password = password or env.get("NEO4J_PASSWORD")
    if password is None and _is_loopback(uri):
        password = local_server.read_password(local.data_dir)
    database = database or env.get("NEO4J_DATABASE") or local_server.DATABASE
    return ConnectionSettings(uri=uri, user=user, password=password, database=database)


def open_driver(settings: ConnectionSettings | None = None) -> neo4j.Driver:
    """A driver that passed ``verify_connectivity()``; raises ``Neo4jConnectionError`` with a hint otherwise."""
    settings = settings or resolve_connection()
    where = f"Neo4j at {settings.uri} as user {settings.user!r}"
    try:
        auth = (settings.user, settings.password) if settings.password is not None else None
        driver = neo4j.GraphDatabase.driver(settings.uri, auth=auth)
    except (DriverError, ValueError) as e:
        raise Neo4jConnectionError(f"Invalid connection settings for {where}: {e}") from None
    try:
        driver.verify_connectivity()
        return driver
    except AuthError as e:
        driver.close()
        hint = (
            "no password known: set NEO4J_PASSWORD" if settings.password is None else "check NEO4J_PASSWORD"
        )
        raise Neo4jConnectionError(
            f"Authentication failed for {where}; {hint} (for the local server: `neurflow db password`)."
        ) from e
    except (DriverError, Neo4jError, OSError) as e:
        driver.close()
        reason = str(e).replace(settings.password, "***") if settings.password else str(e)
        raise Neo4jConnectionError(
            f"Cannot connect to {where}: {type(e).__name__}: {reason}\n"
            "Start the local server with `neurflow db start`, or check NEO4J_URI / NEO4J_PASSWORD."
        ) from e


