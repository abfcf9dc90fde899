"""The local Neo4j server's settings: versions, loopback ports, the data and jar folders, and its password.

Explicit values win, then the environment (``NEURFLOW_NEO4J_*``), then the data folder's last ``neo4j.conf``,
then the defaults. Nothing here starts or stops a process (``neurflow.graph.server`` does).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from neurflow.errors import NeurflowError

NEO4J_VERSION = "5.26.30"
"""Newest 5.26 release on Maven Central (org.neo4j:neo4j), pinned."""
BROWSER_VERSION = "5.24.0"
"""org.neo4j.client:neo4j-browser; its jar holds the static files served at /browser/."""

DEFAULT_BOLT_PORT = 7687
DEFAULT_HTTP_PORT = 7474
HOST = "127.0.0.1"
USER = "neo4j"
DATABASE = "neo4j"

ENV_HOME = "NEURFLOW_NEO4J_HOME"
ENV_DATA = "NEURFLOW_NEO4J_DATA"
ENV_BOLT_PORT = "NEURFLOW_NEO4J_BOLT_PORT"
ENV_HTTP_PORT = "NEURFLOW_NEO4J_HTTP_PORT"

PASSWORD_FILE = "neo4j-password"
PID_FILE = "neo4j.pid"
CONSOLE_LOG = "console.log"


class Neo4jServerError(NeurflowError, RuntimeError):
    """The local server could not be assembled, started or stopped."""


def neo4j_home() -> Path:
    """Cache folder with the assembled jars: ``$NEURFLOW_NEO4J_HOME`` or ``~/.cache/neurflow/neo4j-<version>``."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".cache" / "neurflow" / f"neo4j-{NEO4J_VERSION}"


def default_data_dir() -> Path:
    """Data folder: ``$NEURFLOW_NEO4J_DATA`` or ``~/.local/share/neurflow/neo4j``."""
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser().resolve()
    return Path.home() / ".local" / "share" / "neurflow" / "neo4j"


@dataclass(frozen=True)
class ServerConfig:
    """Where one local server keeps its files and which loopback ports it uses."""

    data_dir: Path
    bolt_port: int
    http_port: int
    home: Path

    @property
    def conf_dir(self) -> Path:
        return self.data_dir / "conf"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / PID_FILE

    @property
    def password_file(self) -> Path:
        return self.data_dir / PASSWORD_FILE

    @property
    def uri(self) -> str:
        return f"bolt://{HOST}:{self.bolt_port}"

    @property
    def browser_url(self) -> str:
        return f"http://{HOST}:{self.http_port}/browser/"


def _port_from_env(name: str) -> int | None:
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise Neo4jServerError(f"{name}={value!r} is not a port number") from None


def _port_from_conf(data_dir: Path, key: str) -> int | None:
    """Port the server in ``data_dir`` was last started with (so stop/status find it without options)."""
    conf = data_dir / "conf" / "neo4j.conf"
    if not conf.is_file():
        return None
    match = re.search(rf"^{re.escape(key)}=[^:\n]*:(\d+)\s*$", conf.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else None


def server_config(
    data_dir: Path | str | None = None,
    bolt_port: int | None = None,
    http_port: int | None = None,
    home: Path | str | None = None,
) -> ServerConfig:
    """Resolve the server settings: explicit values, then environment, then the data folder's last conf, then defaults."""
    data = Path(data_dir).expanduser().resolve() if data_dir else default_data_dir()
    bolt = (
        bolt_port
        or _port_from_env(ENV_BOLT_PORT)
        or _port_from_conf(data, "server.bolt.listen_address")
        or DEFAULT_BOLT_PORT
    )
    http = (
        http_port
        or _port_from_env(ENV_HTTP_PORT)
        or _port_from_conf(data, "server.http.listen_address")
        or DEFAULT_HTTP_PORT
    )
    return ServerConfig(
        data_dir=data,
        bolt_port=bolt,
        http_port=http,
        home=Path(home).expanduser().resolve() if home else neo4j_home(),
    )


def read_password(data_dir: Path | None = None) -> str | None:
    """The generated password of the local server in ``data_dir``, or None if there is none yet."""
    path = (data_dir or default_data_dir()) / PASSWORD_FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
