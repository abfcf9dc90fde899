"""``neurflow query``: run the named Cypher queries of ``queries/`` read-only; ``neurflow browser``: the Browser
stylesheet and guide.

    neurflow query --list
    neurflow query top-groups --param class=Samoyed --param limit=3 --format json --timeout 60
"""

from __future__ import annotations

import errno
import functools
import http.server
import shutil
import tempfile
import webbrowser
from importlib import resources
from pathlib import Path
from typing import Any

import click
import neo4j

from neurflow.cli.db import connection_options
from neurflow.graph.connection import ConnectionSettings, open_driver
from neurflow.graph.named_queries import (
    DEFAULT_TIMEOUT,
    QueryError,
    QueryTimeoutError,
    bind_params,
    describe_queries,
    list_queries,
    load_query,
    parse_param_options,
    refuse_load_csv,
    run_query,
)
from neurflow.graph.query_answers import query_notes
from neurflow.graph.query_output import FORMATS, format_rows, html_page

BROWSER_DIR = Path(str(resources.files("neurflow").joinpath("resources", "browser")))
GUIDE = "neurflow-guide.html"
STYLE = "neurflow.grass"


class QueryUsageError(click.UsageError):
    """A bad query name, query file or parameter, or an unknown class: one line (no usage text), exit 2."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", file=file, err=file is None)


class QueryCommand(click.Command):
    """``neurflow query NAME --help`` describes the query NAME (its parameters and columns); ``--help`` alone
    describes the command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--help" in args and args and not args[0].startswith("-"):
            try:
                info = load_query(args[0])
            except QueryError:
                pass  # not a query's name: the command's own help
            else:
                click.echo(f"Usage: neurflow query {info.name} [--param KEY=VALUE]... [--format "
                           f"{'|'.join(FORMATS)}] [--timeout SECONDS] [connection options]\n")
                click.echo(describe_queries([info], columns=True))
                click.echo("\nEvery option: neurflow query --help; terms: README.md#glossary")
                ctx.exit(0)
        return super().parse_args(ctx, args)


@click.command("query", cls=QueryCommand)
@click.argument("name", required=False)
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="A query parameter (repeat); values are typed by the query's header.")
@click.option("--format", "-f", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--list", "-l", "list_only", is_flag=True, help="List the queries and their parameters.")
@click.option("--show", is_flag=True, help="Print the query's Cypher instead of running it.")
@click.option("--html-out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="With --format html: the page's file [default: neurflow-queries/NAME.html in the temporary folder].")
@click.option("--open", "open_page", is_flag=True, help="With --format html: open the page in the web browser.")
@click.option("--wide", is_flag=True,
              help="Never fold a table wider than the terminal (folded: one `column : value` line per cell).")
@click.option("--timeout", type=click.FloatRange(0, min_open=True), default=DEFAULT_TIMEOUT, show_default=True,
              metavar="SECONDS", help="Stop the query after this many seconds (Neo4j ends the read transaction).")
@connection_options
def query(settings: ConnectionSettings, name: str | None, params: tuple[str, ...], fmt: str, list_only: bool,
          show: bool, html_out: Path | None, open_page: bool, wide: bool, timeout: float) -> None:
    """Run the named query NAME (see --list) in a read transaction and print its rows.

    `neurflow query NAME --help` describes one query: its parameters and columns."""
    try:
        if list_only or name is None:
            if name is None and not list_only:
                raise click.UsageError("give a query NAME, or --list to see them")
            # --list with a NAME: that query alone, with its columns
            click.echo(describe_queries([load_query(name)], columns=True) if name else describe_queries(list_queries()))
            return
        info = load_query(name)
        if show:
            click.echo(info.cypher.rstrip())
            return
        refuse_load_csv(info)
        values = parse_param_options(params)
        bound = bind_params(info, values)  # parameter errors before connecting
    except QueryError as error:
        raise QueryUsageError(str(error)) from error
    driver = open_driver(settings)
    try:
        columns, rows = run_query(driver, name, values, settings.database, timeout=timeout)
        for note in query_notes(driver, name, bound, rows, settings.database):
            click.echo(f"note: {note}", err=True)
    except QueryError as error:  # an unknown class
        raise QueryUsageError(str(error)) from error
    except QueryTimeoutError as error:
        raise click.ClickException(str(error)) from error
    except neo4j.exceptions.Neo4jError as error:
        raise click.ClickException(f"query {name!r} failed on {settings.uri}: {error.message or error}") from error
    finally:
        driver.close()
    if fmt == "html":  # a page of the rows, thumbnails as images
        page = html_out or Path(tempfile.gettempdir()) / "neurflow-queries" / f"{name}.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        page.write_text(html_page(columns, rows, f"neurflow query {name}"), encoding="utf-8")
        click.echo(f"{len(rows)} row(s): {page}")
        if open_page:
            webbrowser.open(page.resolve().as_uri())
        return
    click.echo(format_rows(columns, rows, fmt, width=None if wide else shutil.get_terminal_size().columns))


@click.group("browser")
def browser() -> None:
    """Neo4j Browser: neurflow's stylesheet and guide (`:style` and `:play`)."""


@browser.command("files")
@click.option("--copy-to", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Copy the stylesheet and guide into this folder.")
def browser_files(copy_to: Path | None) -> None:
    """Print where the stylesheet and guide are (optionally copy them)."""
    for file in (STYLE, GUIDE):
        path = BROWSER_DIR / file
        if copy_to is not None:
            copy_to.mkdir(parents=True, exist_ok=True)
            path = Path(shutil.copy(path, copy_to / file))
        click.echo(str(path))


class _CorsHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with CORS headers: Browser (on :7474) fetches guides and styles from another origin."""

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def do_OPTIONS(self) -> None:  # noqa: N802 - the handler's method naming
        # Browser's fetches carry cache-control, pragma and sentry-trace headers, so Chromium preflights them.
        self.send_response(204)
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", self.headers.get("Access-Control-Request-Headers") or "*")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        return None


@browser.command("serve")
@click.option("--port", type=click.IntRange(1, 65535), default=8001, show_default=True)
def browser_serve(port: int) -> None:
    """Serve the stylesheet and guide on http://localhost:PORT for `:style URL` and `:play URL`."""
    handler = functools.partial(_CorsHandler, directory=str(BROWSER_DIR))
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise click.ClickException(f"port {port} is in use; pick another with --port") from error
        raise click.ClickException(f"cannot serve on 127.0.0.1:{port}: {error.strerror or error}") from error
    click.echo(f"In Neo4j Browser run:\n  :style http://localhost:{port}/{STYLE}\n  :play http://localhost:{port}/{GUIDE}")
    click.echo("Ctrl-C stops serving.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
