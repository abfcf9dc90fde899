"""Connection settings used by every command, and a verified driver.

Settings come from explicit values, then ``NEO4J_URI/USER/PASSWORD/DATABASE``, then the local server of
``neurflow db start``, whose password is only sent to that server itself: see :func:`resolve_connection`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import neo4j
from neo4j.exceptions import AuthError, DriverError, Neo4jError

from neurflow.errors import NeurflowError
from neurflow.graph import server as local_process
from neurflow.graph import server_config as local_server

BOLT_SCHEMES = ("bolt", "neo4j")
"""Unencrypted Bolt, as the local server speaks it (no TLS)."""
DEFAULT_BOLT_PORT = 7687


class Neo4jConnectionError(NeurflowError, ConnectionError):
    """No usable connection to Neo4j; the message names URI and user, never the password."""


@dataclass(frozen=True)
class ConnectionSettings:
    """Where and as whom to connect; ``repr``/``describe`` never show the password."""

    uri: str
    user: str
    password: str | None = field(repr=False)
    database: str
    no_password_reason: str = field(default="", repr=False, compare=False)
    """Why no password is sent, when none is (for the authentication error's hint)."""

    def describe(self) -> str:
        """One line for messages: URI, user and database (no password)."""
        return f"{self.uri} as {self.user!r}, database {self.database!r}"


def _only_local_addresses(host: str) -> bool:
    """``host`` is the local server's address, or a name that resolves to it alone (``localhost`` may also
    resolve to ``::1``, where the server does not listen and anyone else could)."""
    if host == local_server.HOST:
        return True
    if host != "localhost":
        return False
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError:
        return False
    return addresses == {local_server.HOST}


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` names this machine without a lookup: ``localhost`` or a loopback address (a server
    bound there is reachable from nowhere else; a name that needs DNS is not known to be local)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def local_server_at(uri: str, config: local_server.ServerConfig) -> tuple[bool, str]:
    """Whether ``uri`` reaches neurflow's own running local server of ``config``; else why not.

    True only for a plain Bolt URI to its loopback address and Bolt port while the PID file names a live
    process that runs that server (its entry point with this data folder's config), which then holds the port.
    """
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname, parts.port or DEFAULT_BOLT_PORT
    except ValueError:
        return False, f"{uri} is not a valid URI"
    if parts.scheme not in BOLT_SCHEMES or host is None or not _only_local_addresses(host):
        return False, f"{uri} is not the local server's address ({config.uri})"
    if port != config.bolt_port:
        return False, f"{uri} is not the local server's Bolt port ({config.bolt_port})"
    if local_process.running_pid(config) is None:
        return False, f"neurflow's local server of {config.data_dir} is not running"
    return True, ""


def resolve_connection(
    uri: str | None = None,
    user: str | None = None,
    password: str | None = None,
    database: str | None = None,
) -> ConnectionSettings:
    """Connection settings: explicit values, then ``NEO4J_URI/USER/PASSWORD/DATABASE``, then the local server.

    The local server is ``bolt://127.0.0.1:<port>`` (port from ``NEURFLOW_NEO4J_BOLT_PORT`` or the
    data folder's conf, else 7687), user ``neo4j``, database ``neo4j`` and the password from the
    local password file. That password is only sent to the local server itself (:func:`local_server_at`:
    its address and port, while its PID file names it running); anything else, on this machine or not, gets
    no password unless one is given (``--password`` or ``NEO4J_PASSWORD``).
    """
    env = os.environ
    local = local_server.server_config()
    uri = uri or env.get("NEO4J_URI") or local.uri
    user = user or env.get("NEO4J_USER") or local_server.USER
    password = password or env.get("NEO4J_PASSWORD")
    reason = ""
    if password is None:
        ours, reason = local_server_at(uri, local)
        if ours:
            password = local_server.read_password(local.data_dir)
            reason = "" if password is not None else f"no password file in {local.data_dir}"
    database = database or env.get("NEO4J_DATABASE") or local_server.DATABASE
    check_uri(uri)
    return ConnectionSettings(uri=uri, user=user, password=password, database=database,
                              no_password_reason=reason)


#: The URI schemes the Neo4j Python driver speaks (Bolt; HTTP is the Browser's, not the driver's).
URI_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")


def check_uri(uri: str) -> str:
    """``uri`` when the driver can use it; a Neo4jConnectionError naming the schemes otherwise (an ``http://``
    address is the Browser's port: the driver needs Bolt's)."""
    scheme, sep, rest = uri.partition("://")
    if not sep or scheme.lower() not in URI_SCHEMES or not rest:
        hint = (" (http is Neo4j Browser's port; the driver speaks Bolt, e.g. bolt://127.0.0.1:7687)"
                if scheme.lower() in ("http", "https") else "")
        raise Neo4jConnectionError(f"cannot connect to {uri!r}: the URI must start with one of "
                                   f"{', '.join(s + '://' for s in URI_SCHEMES)}{hint}")
    return uri


#: Seconds the driver keeps retrying a transaction after a transient error or a lost server (its own default).
ENV_RETRY_SECONDS = "NEURFLOW_NEO4J_RETRY_SECONDS"
DEFAULT_RETRY_SECONDS = 30.0


def retry_seconds() -> float:
    """``NEURFLOW_NEO4J_RETRY_SECONDS`` (default 30): how long a lost server is retried before the one-line
    error; lower it to hear sooner, raise it to ride out longer restarts."""
    text = os.environ.get(ENV_RETRY_SECONDS)
    if text is None:
        return DEFAULT_RETRY_SECONDS
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise Neo4jConnectionError(f"{ENV_RETRY_SECONDS}={text!r} is not a number of seconds (0 or more)")
    return value


def open_driver(settings: ConnectionSettings | None = None) -> neo4j.Driver:
    """A driver that passed ``verify_connectivity()``; raises ``Neo4jConnectionError`` with a hint otherwise.
    Transactions are retried for :func:`retry_seconds`."""
    settings = settings or resolve_connection()
    where = f"Neo4j at {settings.uri} as user {settings.user!r}"
    retry = retry_seconds()
    try:
        auth = (settings.user, settings.password) if settings.password is not None else None
        driver = neo4j.GraphDatabase.driver(settings.uri, auth=auth, max_transaction_retry_time=retry)
    except (DriverError, ValueError) as e:
        raise Neo4jConnectionError(f"Invalid connection settings for {where}: {e}") from None
    try:
        driver.verify_connectivity()
        return driver
    except AuthError as e:
        driver.close()
        if settings.password is None:
            why = f" ({settings.no_password_reason})" if settings.no_password_reason else ""
            hint = f"no password was sent{why}: pass --password or set NEO4J_PASSWORD"
        else:
            hint = "check --password / NEO4J_PASSWORD"
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


