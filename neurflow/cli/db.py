"""``neurflow db start|stop|status|password``: the local Neo4j server; and shared connection options."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from neurflow.cli.errors import CleanErrorsGroup
from neurflow.graph import connection
from neurflow.graph import server as ns
from neurflow.graph import server_config as sc

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(func: F) -> F:
    """Add ``--uri --user --password --database`` (env ``NEO4J_URI`` ...) to a command.

    The command receives one ``settings: ConnectionSettings`` argument instead of the four options,
    resolved by :func:`neurflow.graph.connection.resolve_connection` (options, environment, local server).
    Open it with :func:`neurflow.graph.connection.open_driver`.
    """

    @functools.wraps(func)
    def wrapper(
        *args: Any,
        uri: str | None,
        user: str | None,
        password: str | None,
        database: str | None,
        **kwargs: Any,
    ) -> Any:
        settings = connection.resolve_connection(uri=uri, user=user, password=password, database=database)
        return func(*args, settings=settings, **kwargs)

    options = [
        click.option(
            "--uri", envvar="NEO4J_URI", help="Bolt URI [env NEO4J_URI; default: the local server]."
        ),
        click.option("--user", envvar="NEO4J_USER", help="User [env NEO4J_USER; default: neo4j]."),
        click.option(
            "--password",
            envvar="NEO4J_PASSWORD",
            show_envvar=False,
            help="Password [env NEO4J_PASSWORD; default: the local server's generated one].",
        ),
        click.option(
            "--database", envvar="NEO4J_DATABASE", help="Database [env NEO4J_DATABASE; default: neo4j]."
        ),
    ]
    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


def _server_options(func: F) -> F:
    """``--data-dir --bolt-port --http-port`` with their environment variables."""
    options = [
        click.option(
            "--data-dir",
            type=click.Path(file_okay=False, path_type=Path),
            envvar=sc.ENV_DATA,
            help=f"Data folder (data, logs, conf, password) [env {sc.ENV_DATA}; default ~/.local/share/neurflow/neo4j].",
        ),
        click.option(
            "--bolt-port",
            type=click.IntRange(1, 65535),
            envvar=sc.ENV_BOLT_PORT,
            help=f"Bolt port on 127.0.0.1 [env {sc.ENV_BOLT_PORT}; default {sc.DEFAULT_BOLT_PORT}, or as last started].",
        ),
        click.option(
            "--http-port",
            type=click.IntRange(1, 65535),
            envvar=sc.ENV_HTTP_PORT,
            help=f"HTTP port on 127.0.0.1 [env {sc.ENV_HTTP_PORT}; default {sc.DEFAULT_HTTP_PORT}, or as last started].",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _print_status(status: ns.ServerStatus) -> None:
    click.echo(f"URI:         {status.uri}")
    click.echo(f"Browser:     {status.browser_url}")
    click.echo(f"PID:         {status.pid if status.pid is not None else '-'}")
    click.echo(f"Data folder: {status.data_dir}")


@click.group(name="db", cls=CleanErrorsGroup)  # one-line errors also as `python -m neurflow.cli.db`
def db() -> None:
    """Run a local Neo4j Community server (no Docker) for neurflow."""


@db.command()
@_server_options
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for Bolt.")
def start(data_dir: Path | None, bolt_port: int | None, http_port: int | None, timeout: float) -> None:
    """Start the server (assembled from Maven Central on first use) and wait until it answers."""
    config = sc.server_config(data_dir, bolt_port, http_port)
    status = ns.start_server(config, progress=lambda msg: click.echo(msg, err=True), timeout=timeout)
    click.echo(f"Neo4j {sc.NEO4J_VERSION} is {'already ' if status.already_running else ''}running.")
    _print_status(status)
    click.echo("Password:    `neurflow db password`")


@db.command()
@_server_options
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds before SIGKILL.")
def stop(data_dir: Path | None, bolt_port: int | None, http_port: int | None, timeout: float) -> None:
    """Stop the server started for the data folder (SIGTERM, then SIGKILL after the timeout)."""
    config = sc.server_config(data_dir, bolt_port, http_port)
    stale = config.pid_file.exists()
    pid = ns.stop_server(config, timeout=timeout)
    if pid is not None:
        click.echo(f"Stopped Neo4j (PID {pid}).")
    else:
        click.echo("Neo4j is not running" + (" (removed a stale PID file)." if stale else "."))


@db.command()
@_server_options
@click.pass_context
def status(ctx: click.Context, data_dir: Path | None, bolt_port: int | None, http_port: int | None) -> None:
    """Show URI, PID, data folder and whether the server answers.

    Exit code 0: running and answering; 1: not running; 2: running but not answering.
    """
    result = ns.server_status(sc.server_config(data_dir, bolt_port, http_port))
    _print_status(result)
    click.echo(f"Running:     {'yes' if result.running else 'no'}")
    click.echo(f"Answers:     {'yes' if result.answers else 'no'} ({result.detail})")
    ctx.exit(0 if result.answers else 2 if result.running else 1)


@db.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar=sc.ENV_DATA,
    help=f"Data folder [env {sc.ENV_DATA}].",
)
def password(data_dir: Path | None) -> None:
    """Print the generated password of the local server (user neo4j)."""
    config = sc.server_config(data_dir)
    secret = sc.read_password(config.data_dir)
    if secret is None:
        raise click.ClickException(f"No password in {config.password_file}; run `neurflow db start` first.")
    click.echo(secret)


if __name__ == "__main__":
    db()
