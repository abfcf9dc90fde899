"""Real tests of the local Neo4j server and connection settings (no mocks)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import neo4j
import pytest
from click.testing import CliRunner

from neurflow.cli.db import db
from neurflow.graph import assembly, connection
from neurflow.graph import server as ns
from neurflow.graph import server_config as sc
from neurflow.graph.deletion import clear_graph

ENV_VARS = ("NEO4J_URI", "NEO4J_USER", "NEO4J_PASSWORD", "NEO4J_DATABASE", sc.ENV_BOLT_PORT, sc.ENV_HTTP_PORT)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def local_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A local-server data folder with a password file, and no NEO4J_* settings in the environment."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(sc.ENV_DATA, str(tmp_path))
    (tmp_path / sc.PASSWORD_FILE).write_text("local-secret\n")
    return tmp_path


def test_resolve_connection_precedence(local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = connection.resolve_connection()  # no server runs in local_dir: its password stays home
    assert local == connection.ConnectionSettings("bolt://127.0.0.1:7687", "neo4j", None, "neo4j")
    assert "not running" in local.no_password_reason

    monkeypatch.setenv(sc.ENV_BOLT_PORT, "7999")
    assert connection.resolve_connection().uri == "bolt://127.0.0.1:7999"

    monkeypatch.setenv("NEO4J_URI", "bolt://localhost:7001")
    monkeypatch.setenv("NEO4J_USER", "env-user")
    monkeypatch.setenv("NEO4J_PASSWORD", "env-secret")
    monkeypatch.setenv("NEO4J_DATABASE", "envdb")
    assert connection.resolve_connection() == connection.ConnectionSettings(
        "bolt://localhost:7001", "env-user", "env-secret", "envdb"
    )

    explicit = connection.resolve_connection("neo4j://db.example:7687", "me", "explicit-secret", "mydb")
    assert explicit == connection.ConnectionSettings("neo4j://db.example:7687", "me", "explicit-secret", "mydb")


def test_local_password_never_sent_to_remote_uri(local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEO4J_URI", "bolt://db.example:7687")
    assert connection.resolve_connection().password is None
    assert "not the local server's address" in connection.resolve_connection().no_password_reason
    for uri in ("bolt://localhost:7688", "bolt://[::1]:7687", "bolt+s://127.0.0.1:7687"):
        assert connection.resolve_connection(uri=uri).password is None, uri
    for uri in ("http://127.0.0.1:7687", "127.0.0.1:7687", "bolt://"):  # not a URI the driver speaks: refused
        with pytest.raises(connection.Neo4jConnectionError, match="the URI must start with one of bolt://"):
            connection.resolve_connection(uri=uri)
    assert connection.resolve_connection(uri="bolt://db.example", password="given").password == "given"


class BoltListener:
    """A loopback listener that is not Neo4j: it answers the Bolt handshake (version 4.4, so that the driver
    sends its HELLO with the credentials) and keeps every byte it receives."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.socket.settimeout(0.1)
        self.port = self.socket.getsockname()[1]
        self.received = bytearray()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                client, _ = self.socket.accept()
            except TimeoutError:
                continue
            with client, contextlib.suppress(OSError):
                client.settimeout(0.5)
                self.received += client.recv(20)  # magic and four version proposals
                client.sendall(bytes([0, 0, 4, 4]))
                while chunk := client.recv(4096):  # HELLO, until the driver gives up waiting for an answer
                    self.received += chunk

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.socket.close()


@pytest.fixture
def listener() -> Iterator[BoltListener]:
    fake = BoltListener()
    yield fake
    fake.close()


def connect_and_capture(listener: BoltListener, settings: connection.ConnectionSettings) -> bytes:
    with pytest.raises(connection.Neo4jConnectionError):
        connection.open_driver(settings)
    deadline = time.monotonic() + 5
    while b"neo4j-python" not in listener.received and time.monotonic() < deadline:
        time.sleep(0.05)
    assert b"neo4j-python" in listener.received, "the driver never sent its HELLO"
    return bytes(listener.received)


def test_local_password_is_not_sent_to_another_loopback_listener(
    local_dir: Path, monkeypatch: pytest.MonkeyPatch, listener: BoltListener
) -> None:
    """The local password goes only to neurflow's own running server: not to another port on 127.0.0.1, not
    to its port while no server of ours runs there, not when the PID file names a process that is not ours."""
    uri = f"bolt://127.0.0.1:{listener.port}"
    # the listener captures a password when one is sent (so its silence below means something)
    given = connect_and_capture(listener, connection.resolve_connection(uri=uri, password="given-secret"))
    assert b"given-secret" in given
    listener.received.clear()

    monkeypatch.setenv(sc.ENV_BOLT_PORT, str(free_port()))  # another port than the listener's
    settings = connection.resolve_connection(uri=uri)
    assert settings.password is None and "Bolt port" in settings.no_password_reason
    assert b"local-secret" not in connect_and_capture(listener, settings)
    listener.received.clear()

    monkeypatch.setenv(sc.ENV_BOLT_PORT, str(listener.port))  # the local server's port, but no server of ours
    (local_dir / sc.PID_FILE).write_text(f"{os.getpid()}\n")  # alive, and not Neo4j
    settings = connection.resolve_connection()
    assert settings.uri == uri and settings.password is None and "not running" in settings.no_password_reason
    with pytest.raises(connection.Neo4jConnectionError) as error:
        connection.open_driver(settings)
    assert "--password" in error.value.message or "NEO4J_PASSWORD" in error.value.message
    assert b"local-secret" not in bytes(listener.received)


@pytest.mark.neo4j
def test_without_a_password_the_error_says_how_to_pass_one(
    local_dir: Path, neo4j_settings: connection.ConnectionSettings
) -> None:
    """The test server is not the local server of local_dir (none runs there): no password is sent."""
    settings = connection.resolve_connection(uri=neo4j_settings.uri)
    assert settings.password is None and settings.no_password_reason
    with pytest.raises(connection.Neo4jConnectionError) as error:
        connection.open_driver(settings)
    message = error.value.message
    assert message.startswith(f"Authentication failed for Neo4j at {neo4j_settings.uri}")
    assert settings.no_password_reason in message and "--password" in message and "NEO4J_PASSWORD" in message


def test_password_not_in_repr(local_dir: Path) -> None:
    settings = connection.resolve_connection(password="s3cret-value")
    for text in (repr(settings), str(settings), settings.describe()):
        assert "s3cret-value" not in text
        assert "bolt://127.0.0.1:7687" in text


def test_missing_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(sc.Neo4jServerError, match="apt-get install openjdk-17-jre-headless maven"):
        assembly.find_java()
    with pytest.raises(sc.Neo4jServerError, match="docker compose up neo4j"):
        assembly.find_maven()


def test_open_driver_wrong_port_names_uri() -> None:
    uri = f"bolt://127.0.0.1:{free_port()}"
    settings = connection.ConnectionSettings(uri, "neo4j", "wrong-port-secret", "neo4j")
    with pytest.raises(connection.Neo4jConnectionError) as err:
        connection.open_driver(settings)
    message = err.value.message
    assert uri in message and "'neo4j'" in message and "neurflow db start" in message
    assert "wrong-port-secret" not in message


@pytest.mark.neo4j
def test_open_driver_wrong_password(neo4j_settings: connection.ConnectionSettings) -> None:
    bad = f"wrong-{uuid.uuid4().hex}"
    settings = connection.ConnectionSettings(neo4j_settings.uri, neo4j_settings.user, bad, neo4j_settings.database)
    with pytest.raises(connection.Neo4jConnectionError) as err:
        connection.open_driver(settings)
    message = err.value.message
    assert neo4j_settings.uri in message and "NEO4J_PASSWORD" in message
    assert bad not in message


@pytest.mark.neo4j
def test_round_trip(neo4j_driver: neo4j.Driver, neo4j_settings: connection.ConnectionSettings) -> None:
    key = uuid.uuid4().hex
    db_name = neo4j_settings.database
    try:
        neo4j_driver.execute_query(
            "CREATE (:NeurflowTest {key: $key, value: 42})", key=key, database_=db_name
        )
        records, _, _ = neo4j_driver.execute_query(
            "MATCH (n:NeurflowTest {key: $key}) RETURN n.value AS value", key=key, database_=db_name
        )
        assert [r["value"] for r in records] == [42]
    finally:
        neo4j_driver.execute_query("MATCH (n:NeurflowTest {key: $key}) DELETE n", key=key, database_=db_name)


@pytest.mark.neo4j
def test_status_of_local_server(neo4j_driver: neo4j.Driver) -> None:
    config = sc.server_config()
    if ns.running_pid(config) is None:
        pytest.fail("These checks need the local server: run `neurflow db start`.", pytrace=False)
    result = CliRunner().invoke(db, ["status"])
    assert result.exit_code == 0, result.output
    expected = [
        f"URI:         {config.uri}",
        f"PID:         {ns.running_pid(config)}",
        f"Data folder: {config.data_dir}",
        "Answers:     yes",
    ]
    for line in expected:
        assert line in result.output
    assert (sc.read_password(config.data_dir) or "") not in result.output


@pytest.mark.neo4j
def test_local_server_binds_loopback_only(neo4j_driver: neo4j.Driver) -> None:
    config = sc.server_config()
    conf = (config.conf_dir / "neo4j.conf").read_text()
    assert f"server.bolt.listen_address=127.0.0.1:{config.bolt_port}" in conf
    assert f"server.http.listen_address=127.0.0.1:{config.http_port}" in conf
    assert "server.default_listen_address=127.0.0.1" in conf
    if shutil.which("ss") is None:
        return
    out = subprocess.run(["ss", "-ltnH"], capture_output=True, text=True, check=True).stdout
    for port in (config.bolt_port, config.http_port):
        local = [line.split()[3] for line in out.splitlines() if line.split()[3].endswith(f":{port}")]
        assert local, f"nothing listens on port {port}"
        assert all(a.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]") for a in local), local


@pytest.mark.neo4j
def test_local_server_keeps_transaction_logs_bounded(neo4j_driver: neo4j.Driver) -> None:
    conf = (sc.server_config().conf_dir / "neo4j.conf").read_text()
    assert "db.tx_log.rotation.retention_policy=1G size" in conf
    with neo4j_driver.session(database="system") as session:
        setting = session.run("SHOW SETTINGS YIELD name, value WHERE name = $name RETURN value",
                              name="db.tx_log.rotation.retention_policy").single()
    assert setting is not None and setting["value"] == "1G size"  # the server took it (not its 2 days)


def test_status_and_stop_without_server(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / sc.PID_FILE).write_text(f"{dead.pid}\n")
    runner = CliRunner()
    result = runner.invoke(db, ["status", "--data-dir", str(tmp_path), "--bolt-port", str(free_port())])
    assert result.exit_code == 1
    assert "Running:     no" in result.output and "stale" in result.output
    result = runner.invoke(db, ["stop", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0 and "stale PID file" in result.output
    assert not (tmp_path / sc.PID_FILE).exists()


def assert_private(config: sc.ServerConfig) -> None:
    """The data folder and every folder in it 0700; the password, PID, conf and log files 0600; nothing in it
    (store files, transaction logs, auth) readable or writable by group or others."""
    assert stat.S_IMODE(config.data_dir.stat().st_mode) == 0o700
    for sub in ns.PRIVATE_FOLDERS:
        assert stat.S_IMODE((config.data_dir / sub).stat().st_mode) == 0o700, sub
    logs = sorted(config.logs_dir.iterdir())
    assert {p.name for p in logs} >= {sc.CONSOLE_LOG, "neo4j.log", "debug.log"}
    for path in [config.password_file, config.pid_file, config.conf_dir / "neo4j.conf", *logs]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    opened = [p for p in config.data_dir.rglob("*") if not p.is_symlink() and p.stat().st_mode & 0o077]
    assert opened == [], [f"{oct(stat.S_IMODE(p.stat().st_mode))} {p}" for p in opened]


def assert_refuses_load_csv_and_bounds_transactions(driver: neo4j.Driver, config: sc.ServerConfig) -> None:
    """The server itself refuses LOAD CSV from files and URLs in a read transaction, and its transactions have a
    default time limit."""
    for url in ("file:///etc/passwd", "file:///neo4j.conf", f"http://127.0.0.1:{config.http_port}/"):
        with driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
            with pytest.raises(neo4j.exceptions.Neo4jError) as error:
                session.execute_read(lambda tx, url=url: tx.run("LOAD CSV FROM $url AS row RETURN row", url=url).data())
        assert error.value.code == "Neo.ClientError.Statement.ExternalResourceFailed", url
        assert "root:" not in str(error.value)
    records, _, _ = driver.execute_query(
        "SHOW SETTINGS YIELD name, value WHERE name IN $names RETURN name, value",
        names=["db.transaction.timeout", "dbms.security.allow_csv_import_from_file_urls"])
    assert {r["name"]: r["value"] for r in records} == {
        "db.transaction.timeout": "1m", "dbms.security.allow_csv_import_from_file_urls": "false"}


@pytest.mark.neo4j
@pytest.mark.slow
def test_second_server_start_browser_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second server on other ports in a tmp data folder, reusing the cached jars; its files are private, it
    refuses LOAD CSV, and neurflow sends it the local password without being told."""
    config = sc.server_config(tmp_path / "data", bolt_port=free_port(), http_port=free_port())
    status = ns.start_server(config)
    try:
        pid = status.pid
        assert status.running and status.answers and pid is not None
        assert_private(config)
        assert ns.start_server(config).already_running

        for name in ENV_VARS:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(sc.ENV_DATA, str(config.data_dir))  # bolt port: from its conf
        settings = connection.resolve_connection()
        assert settings.uri == config.uri and settings.password == sc.read_password(config.data_dir)
        with connection.open_driver(settings) as driver:
            assert_refuses_load_csv_and_bounds_transactions(driver, config)

        password = sc.read_password(config.data_dir)
        driver = connection.open_driver(connection.ConnectionSettings(config.uri, "neo4j", password, "neo4j"))
        with driver:
            driver.execute_query("UNWIND range(1, 3) AS i CREATE (:T {i: i})-[:R]->(:T)")
            clear_graph(driver)
            records, _, _ = driver.execute_query("MATCH (n) RETURN count(n) AS c")
            assert records[0]["c"] == 0

        with urllib.request.urlopen(config.browser_url, timeout=10) as response:
            assert "<title>Neo4j Browser</title>" in response.read().decode()

        other = sc.server_config(tmp_path / "other", bolt_port=config.bolt_port, http_port=free_port())
        with pytest.raises(sc.Neo4jServerError, match="already in use"):
            ns.start_server(other)
    finally:
        stopped = ns.stop_server(config)
    assert stopped == pid
    assert not ns.server_status(config).running
    assert not config.pid_file.exists()
    assert not Path(f"/proc/{pid}").exists()


def test_a_generated_password_never_starts_with_a_dash(monkeypatch: pytest.MonkeyPatch) -> None:
    """neo4j-admin reads an argument that starts with "-" as an option: such a password failed a fresh start."""
    tokens = iter(["-starts-like-an-option", "_fine-token"])
    monkeypatch.setattr(ns.secrets, "token_urlsafe", lambda _: next(tokens))
    assert ns.new_password() == "_fine-token"
