"""A local Neo4j Community server without Docker: its password, start, status and stop.

The server (assembled on first use by ``neurflow.graph.assembly``) runs as a plain
``java -cp 'lib/*' org.neo4j.server.CommunityEntryPoint`` process with a generated ``neo4j.conf``. Data, logs,
configuration, PID file and the generated password live in one data folder (``neurflow.graph.server_config``).
See docs/neo4j.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import neo4j
from neo4j.exceptions import AuthError, DriverError, Neo4jError

from neurflow.graph.assembly import assemble, fill, find_java, resource_template
from neurflow.graph.server_config import (
    CONSOLE_LOG,
    HOST,
    NEO4J_VERSION,
    PASSWORD_FILE,
    USER,
    Neo4jServerError,
    ServerConfig,
    read_password,
    server_config,
)

MAIN_CLASS = "org.neo4j.server.CommunityEntryPoint"
ADMIN_CLASS = "org.neo4j.cli.AdminTool"

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

PRIVATE_UMASK = 0o077
"""The server and the admin tool create their files with this mask: data, logs and auth files 0600, folders 0700."""
PRIVATE_FOLDERS = ("conf", "data", "logs", "run", "import", "plugins")

# Servers started by this Python process: kept so they are reaped (no zombie looks alive) and so
# Popen does not warn about a child still running when it is garbage collected.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}


# --------------------------------------------------------------------------- private files


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by its owner only (0600, also when the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


def _make_private(config: ServerConfig) -> None:
    """The data folder and its folders 0700; the password, PID, conf and log files 0600.

    Also repairs a data folder made before these modes (the server's own later files follow its umask,
    ``PRIVATE_UMASK``); deeper files are out of reach anyway once the data folder is 0700.
    """
    config.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(config.data_dir, 0o700)
    for sub in PRIVATE_FOLDERS:
        folder = config.data_dir / sub
        folder.mkdir(exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    files = [config.password_file, config.pid_file, config.conf_dir / "neo4j.conf", *config.logs_dir.iterdir()]
    for path in files:
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o600)


# --------------------------------------------------------------------------- password


def new_password() -> str:
    """A random password for the local server. Never one that starts with "-": neo4j-admin would read it as an
    option and refuse the start (a token_urlsafe token starts with "-" once in 64)."""
    while True:
        password = secrets.token_urlsafe(24)
        if not password.startswith("-"):
            return password


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
        password = new_password()
        _write_private(config.password_file, password + "\n")
    # An @file (expanded by picocli) keeps the password off the process list.
    args_file = config.data_dir / "run" / "set-password.args"
    _write_private(args_file, f"dbms\nset-initial-password\n{password}\n")
    try:
        result = subprocess.run(
            [java, "-cp", f"{config.lib_dir}/*", ADMIN_CLASS, f"@{args_file}"],
            env={**os.environ, "NEO4J_HOME": str(config.data_dir), "NEO4J_CONF": str(config.conf_dir)},
            cwd=config.data_dir,
            capture_output=True,
            text=True,
            check=False,
            umask=PRIVATE_UMASK,  # data/dbms/auth.ini
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
    _make_private(config)
    conf = fill(
        resource_template("neo4j.conf"),
        {
            "DATA_DIR": str(config.data_dir),
            "LIB_DIR": str(config.lib_dir),
            "BOLT_PORT": str(config.bolt_port),
            "HTTP_PORT": str(config.http_port),
        },
    )
    _write_private(config.conf_dir / "neo4j.conf", conf)
    _ensure_password(config, java)

    cmd = [
        java, *JVM_OPTIONS, "-cp", f"{config.lib_dir}/*", MAIN_CLASS,
        f"--home-dir={config.data_dir}", f"--config-dir={config.conf_dir}",
    ]  # fmt: skip
    fd = os.open(config.logs_dir / CONSOLE_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=config.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # survives the terminal / the calling process
            umask=PRIVATE_UMASK,  # Neo4j's own logs, store files and folders: the owner's only
        )
    _CHILDREN[proc.pid] = proc
    _write_private(config.pid_file, f"{proc.pid}\n")

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
