"""``neurflow serve``: the atlas in a browser (neurflow.serve), on 127.0.0.1 unless another host is asked for."""

from __future__ import annotations

import ipaddress

import click

from neurflow.cli.db import connection_options
from neurflow.graph.connection import ConnectionSettings, open_driver


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback makes the atlas reachable from other machines.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Requests served at once.")
@connection_options
def serve(settings: ConnectionSettings, host: str, port: int, threads: int) -> None:
    """Serve the atlas in a browser: classes, circuits as graphs, groups, neurons, search (read-only).

    The classes with circuits by family; each circuit as an interactive layered graph (pruned, with a slider),
    its groups with their concept patches, neurons with the classes they serve, and search by words.

    Every page is named queries (read transactions stopped after 10 s). Files sent: the circuits' thumbnails
    and images only, looked up in the graph.

    \b
    Example:
      neurflow serve
      neurflow serve --port 9000
    """
    import logging

    from waitress.server import create_server

    from neurflow.serve.app import create_app
    from neurflow.workbench.client import GraphClient

    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "queue depth" lines mean nothing to a user
    driver = open_driver(settings)
    graph = GraphClient(settings, driver)
    try:
        try:
            server = create_server(create_app(graph), host=host, port=port, threads=threads)
        except OSError as error:
            raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}; "
                                       "pick another with --port") from error
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"neurflow atlas on http://{shown}:{port}/ (Neo4j at {settings.uri}); Ctrl-C stops it.")
        if not _loopback(host):
            click.echo(f"warning: listening on {host}: other machines can read the atlas", err=True)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    finally:
        graph.close()
