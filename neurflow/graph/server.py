"""A local Neo4j Community server without Docker: assembly, configuration, start, status and stop.

The server is assembled on first use from Maven Central (``mvn dependency:copy-dependencies`` into a
cache folder), then run as a plain ``java -cp 'lib/*' org.neo4j.server.CommunityEntryPoint`` process
with a generated ``neo4j.conf``. Data, logs, configuration, PID file and the generated password live
in one data folder. See docs/neo4j.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import neo4j
from neo4j.exceptions import AuthError, DriverError, Neo4jError

from neurflow.errors import NeurflowError

NEO4J_VERSION = "5.26.30"
"""Newest 5.26 release on Maven Central (org.neo4j:neo4j), pinned."""
BROWSER_VERSION = "5.24.0"
"""org.neo4j.client:neo4j-browser; its jar holds the static files served at /browser/."""

MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
ADMIN_CLASS = "org.neo4j.cli.AdminTool"
DEFAULT_BOLT_PORT = 7687
DEFAULT_HTTP_PORT = 7474
HOST = "127.0.0.1"
USER = "neo4j"
DATABASE = "neo4j"
MIN_JAVA = 17

JVM_OPTIONS: tuple[str, ...] = (
    "-Xms512m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:-OmitStackTraceInFastThrow",
    "-XX:+ExitOnOutOfMemoryError",
    "-Dfile.encoding=UTF-8",
    "-Djdk.nio.maxCachedBufferSize=1024",
    "-Dio.netty.tryReflectionSetAccessible=true",
    "-Dlog4j2.disable.jmx=true",
    # What the neo4j launcher script adds on Java 17+ (netty and the page cache use these).
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    "--add-opens=java.base/java.io=ALL-UNNAMED",
    "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED",
)

ENV_HOME = "NEURFLOW_NEO4J_HOME"
ENV_DATA = "NEURFLOW_NEO4J_DATA"
ENV_BOLT_PORT = "NEURFLOW_NEO4J_BOLT_PORT"
ENV_HTTP_PORT = "NEURFLOW_NEO4J_HTTP_PORT"

PASSWORD_FILE = "neo4j-password"
PID_FILE = "neo4j.pid"
CONSOLE_LOG = "console.log"

INSTALL_HINT = (
    "Install them with `apt-get install openjdk-17-jre-headless maven`, "
    "or run Neo4j with Docker instead: `docker compose up neo4j`."
)

# Servers started by this Python process: kept so they are reaped (no zombie looks alive) and so
# Popen does not warn about a child still running when it is garbage collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


class Neo4jServerError(NeurflowError, RuntimeError):
    """The local server could not be assembled, started or stopped."""


# --------------------------------------------------------------------------- locations and config


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


def _resource(name: str) -> str:
    return resources.files("neurflow").joinpath("resources", "neo4j", name).read_text()


def _fill(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace(f"@{key}@", value)
    return template


# --------------------------------------------------------------------------- tools and assembly


def find_java() -> str:
    """Path of a Java >= 17 executable (``$JAVA_HOME/bin/java`` first); raises with an install hint."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if not java:
        raise Neo4jServerError(f"Java {MIN_JAVA}+ is needed to run the local Neo4j server. {INSTALL_HINT}")
    out = subprocess.run([java, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(match.group(1)) if match else 0
    if major == 1 and match and match.group(2):  # "1.8.0" style
        major = int(match.group(2))
    if major < MIN_JAVA:
        raise Neo4jServerError(
            f"Neo4j {NEO4J_VERSION} needs Java {MIN_JAVA}+, but {java} is Java {major or '?'}. {INSTALL_HINT}"
        )
    return java


def find_maven() -> str:
    """Path of ``mvn``; raises with an install hint."""
    mvn = shutil.which("mvn")
    if not mvn:
        raise Neo4jServerError(
            f"Maven is needed once, to download Neo4j {NEO4J_VERSION} from Maven Central. {INSTALL_HINT}"
        )
    return mvn


def is_assembled(home: Path | None = None) -> bool:
    """True when the jars for ``NEO4J_VERSION`` are complete in ``home``."""
    home = home or neo4j_home()
    marker = home / ".assembled"
    return marker.is_file() and marker.read_text().strip() == NEO4J_VERSION


def assemble(home: Path | None = None, progress: Callable[[str], None] | None = None) -> Path:
    """Download Neo4j and Neo4j Browser jars into ``home/lib`` unless already there; return the lib folder.

    Runs ``mvn -B -q dependency:copy-dependencies`` on the packaged pom.xml. A lock file makes
    concurrent callers wait for one download; a marker file is written last, so an interrupted
    download is redone rather than used.
    """
    home = home or neo4j_home()
    lib = home / "lib"
    if is_assembled(home):
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with open(home / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_assembled(home):
            return lib
        mvn = find_maven()
        find_java()
        if progress:
            progress(
                f"Assembling Neo4j {NEO4J_VERSION} from Maven Central into {home} (first use, ~140 MB)..."
            )
        pom = home / "pom.xml"
        pom.write_text(
            _fill(_resource("pom.xml"), {"NEO4J_VERSION": NEO4J_VERSION, "BROWSER_VERSION": BROWSER_VERSION})
        )
        partial = home / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        cmd = [
            mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
            f"-DoutputDirectory={partial}", "-DincludeScope=runtime",
        ]  # fmt: skip
        result = subprocess.run(cmd, cwd=home, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
            raise Neo4jServerError(
                f"Maven could not download Neo4j {NEO4J_VERSION} (exit {result.returncode}):\n{tail}"
            )
        shutil.rmtree(lib, ignore_errors=True)
        partial.rename(lib)
        (home / ".assembled").write_text(NEO4J_VERSION + "\n")
    return lib


# --------------------------------------------------------------------------- password


def read_password(data_dir: Path | None = None) -> str | None:
    """The generated password of the local server in ``data_dir``, or None if there is none yet."""
    path = (data_dir or default_data_dir()) / PASSWORD_FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def _ensure_password(config: ServerConfig, java: str) -> None:
    """Generate the password file (0600) and set it as the initial password before the first start."""
    system_db = config.data_dir / "data" / "databases" / "system"
    password = read_password(config.data_dir)
    if system_db.exists():
        if password is None:
            raise Neo4jServerError(
                f"{config.data_dir} holds a database but no {PASSWORD_FILE} file, so its password is unknown. "
                "Use another --data-dir, or delete this folder to start afresh."
            )
        return  # The initial password only counts before the first start.
    if password is None:
        password = secrets.token_urlsafe(24)
        fd = os.open(config.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        os.chmod(config.password_file, 0o600)  # in case an empty file with other bits was there
    # An @file (expanded by picocli) keeps the password off the process list.
    args_file = config.data_dir / "run" / "set-password.args"
    fd = os.open(args_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(f"dbms\nset-initial-password\n{password}\n")
    try:
        result = subprocess.run(
            [java, "-cp", f"{config.lib_dir}/*", ADMIN_CLASS, f"@{args_file}"],
            env={**os.environ, "NEO4J_HOME": str(config.data_dir), "NEO4J_CONF": str(config.conf_dir)},
            cwd=config.data_dir,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        args_file.unlink(missing_ok=True)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).replace(password, "***").strip()
        raise Neo4jServerError(
            f"Setting the initial Neo4j password failed (exit {result.returncode}):\n{output}"
        )


# --------------------------------------------------------------------------- process handling


def _read_pid(config: ServerConfig) -> int | None:
    try:
        return int(config.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    child = _CHILDREN.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        # "pid (comm) Z ..." is a zombie: dead, waiting for its parent.
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _is_our_server(pid: int, config: ServerConfig) -> bool:
    """The PID runs the Neo4j entry point with this data folder's config (guards against PID reuse)."""
    if not _alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # No /proc: trust the PID file.
    args = [a.decode(errors="replace") for a in cmdline]
    return MAIN_CLASS in args and f"--config-dir={config.conf_dir}" in args


def running_pid(config: ServerConfig) -> int | None:
    """PID of the server started for ``config.data_dir`` if it is running, else None."""
    pid = _read_pid(config)
    return pid if pid is not None and _is_our_server(pid, config) else None


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def bolt_answers(uri: str, password: str | None, timeout: float = 3.0) -> tuple[bool, str]:
    """Whether Bolt at ``uri`` answers and accepts ``neo4j``/``password``; with a short reason."""
    driver = neo4j.GraphDatabase.driver(
        uri, auth=(USER, password) if password else None, connection_timeout=timeout
    )
    try:
        driver.verify_connectivity()
        return True, "answers"
    except AuthError:
        return False, "answers, but the password was refused"
    except (DriverError, Neo4jError, OSError) as e:
        return False, type(e).__name__
    finally:
        driver.close()


def _log_tail(config: ServerConfig, lines: int = 15) -> str:
    chunks = []
    for name in (CONSOLE_LOG, "neo4j.log"):
        path = config.logs_dir / name
        if path.is_file():
            text = path.read_text(errors="replace").strip().splitlines()[-lines:]
            if text:
                chunks.append(f"--- {path}\n" + "\n".join(text))
    return "\n".join(chunks)


@dataclass(frozen=True)
class ServerStatus:
    """State of the local server for one data folder."""

    running: bool
    answers: bool
    pid: int | None
    uri: str
    browser_url: str
    data_dir: Path
    detail: str = ""
    already_running: bool = field(default=False, compare=False)


def server_status(config: ServerConfig | None = None) -> ServerStatus:
    """Whether the server for ``config`` runs (PID file and process) and answers on Bolt."""
    config = config or server_config()
    pid = running_pid(config)
    answers, detail = False, "not running"
    if pid is not None:
        answers, detail = bolt_answers(config.uri, read_password(config.data_dir))
    elif config.pid_file.exists():
        detail = "not running; stale PID file"
    return ServerStatus(
        running=pid is not None,
        answers=answers,
        pid=pid,
        uri=config.uri,
        browser_url=config.browser_url,
        data_dir=config.data_dir,
        detail=detail,
    )


def start_server(
    config: ServerConfig | None = None,
    progress: Callable[[str], None] | None = None,
    timeout: float = 120.0,
) -> ServerStatus:
    """Start the local server detached and wait until Bolt answers; idempotent.

    Assembles the jars on first use, writes ``conf/neo4j.conf``, sets the generated password before
    the first start, runs the JVM in a new session with output to ``logs/console.log`` and writes the
    PID file. Returns the status (``already_running=True`` if it was running). Raises
    ``Neo4jServerError`` when Java/Maven are missing, a port is taken, the JVM exits, or Bolt does not
    answer within ``timeout`` seconds (the process is then left running for inspection).
    """
    config = config or server_config()
    say = progress or (lambda _msg: None)
    if running_pid(config) is not None:
        return dataclasses.replace(server_status(config), already_running=True)
    config.pid_file.unlink(missing_ok=True)  # stale
    for port in (config.bolt_port, config.http_port):
        if _port_in_use(port):
            raise Neo4jServerError(
                f"Port {HOST}:{port} is already in use (another Neo4j? `docker compose down`, "
                "or choose --bolt-port/--http-port)."
            )
    java = find_java()
    assemble(config.home, progress)
    for sub in ("conf", "data", "logs", "run", "import", "plugins"):
        (config.data_dir / sub).mkdir(parents=True, exist_ok=True)
    conf = _fill(
        _resource("neo4j.conf"),
        {
            "DATA_DIR": str(config.data_dir),
            "LIB_DIR": str(config.lib_dir),
            "BOLT_PORT": str(config.bolt_port),
            "HTTP_PORT": str(config.http_port),
        },
    )
    (config.conf_dir / "neo4j.conf").write_text(conf)
    _ensure_password(config, java)

    cmd = [
        java, *JVM_OPTIONS, "-cp", f"{config.lib_dir}/*", MAIN_CLASS,
        f"--home-dir={config.data_dir}", f"--config-dir={config.conf_dir}",
    ]  # fmt: skip
    with open(config.logs_dir / CONSOLE_LOG, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=config.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the terminal / the calling process
        )
    _CHILDREN[proc.pid] = proc
    config.pid_file.write_text(f"{proc.pid}\n")

    say(f"Started Neo4j {NEO4J_VERSION} (PID {proc.pid}); waiting for {config.uri} to answer...")
    password = read_password(config.data_dir)
    started = time.monotonic()
    next_note = 15.0
    while True:
        if proc.poll() is not None:
            config.pid_file.unlink(missing_ok=True)
            raise Neo4jServerError(
                f"Neo4j exited with code {proc.returncode} while starting.\n{_log_tail(config)}"
            )
        ok, detail = bolt_answers(config.uri, password, timeout=2.0)
        if ok:
            break
        elapsed = time.monotonic() - started
        if "refused" in detail:
            raise Neo4jServerError(f"Neo4j started but refused the password in {config.password_file}.")
        if elapsed > timeout:
            raise Neo4jServerError(
                f"Neo4j (PID {proc.pid}) did not answer on {config.uri} within {timeout:.0f} s; "
                f"it is left running, see {config.logs_dir} or run `neurflow db stop`.\n{_log_tail(config)}"
            )
        if elapsed > next_note:
            say(f"  still waiting ({elapsed:.0f} s)...")
            next_note += 15.0
        time.sleep(1.0)
    return server_status(config)


def stop_server(config: ServerConfig | None = None, timeout: float = 60.0) -> int | None:
    """Stop the server started for ``config.data_dir`` by PID: SIGTERM, wait, SIGKILL after ``timeout`` s.

    Removes the PID file (also a stale one). Returns the PID stopped, or None if none was running.
    """
    config = config or server_config()
    pid = running_pid(config)
    if pid is None:
        config.pid_file.unlink(missing_ok=True)
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.1)
    _CHILDREN.pop(pid, None)
    config.pid_file.unlink(missing_ok=True)
    return pid


def clear_graph(driver: neo4j.Driver, database: str = DATABASE) -> None:
    """Delete every node and relationship of ``database``; indexes and constraints stay.

    ``CALL {} IN TRANSACTIONS`` needs an auto-commit transaction, hence ``session.run``.
    """
    with driver.session(database=database) as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS").consume()
