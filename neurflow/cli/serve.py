"""``neurflow serve``: the atlas in a browser (neurflow.serve), on 127.0.0.1 unless another host is asked for."""

from __future__ import annotations

import click

from neurflow.cli.db import connection_options
from neurflow.graph.connection import ConnectionSettings, is_loopback_host, open_driver


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback makes the atlas reachable from other machines.")
@click.option("--port", type=click.IntRange(1, 65535), default=8765, show_default=True)
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="Requests served at once.")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="State-dict file search by image loads; default: the model's pretrained weights.")
@click.option("--device", default=None, help="Where search by image runs the model; default: CUDA when present.")
@click.option("--images", type=click.Path(exists=True, file_okay=False), default=None,
              help="A folder whose images search by image offers to pick, besides uploads.")
@connection_options
def serve(settings: ConnectionSettings, host: str, port: int, threads: int, weights: str | None,
          device: str | None, images: str | None) -> None:
    """Serve the atlas in a browser: classes, circuits as graphs, groups, neurons, search (read-only).

    The classes with circuits by family; each circuit as an interactive layered graph (pruned, with a slider),
    its groups with their concept patches, neurons with the classes they serve, and search by words and by
    image (an upload; the model is loaded on the first one).

    Every page is named queries (read transactions stopped after 10 s). Files sent: the circuits' thumbnails
    and images only, looked up in the graph.

    \b
    Example:
      neurflow serve
      neurflow serve --port 9000 --images ../shared/data/imagewoof-val
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
            server = create_server(create_app(graph, weights, device, images), host=host, port=port, threads=threads)
        except OSError as error:
            raise click.ClickException(f"cannot listen on {host}:{port}: {error.strerror or error}; "
                                       "pick another with --port") from error
        shown = f"[{host}]" if ":" in host else host
        click.echo(f"neurflow atlas on http://{shown}:{port}/ (Neo4j at {settings.uri}); Ctrl-C stops it.")
        if not is_loopback_host(host):
            click.echo(f"warning: listening on {host}: other machines can read the atlas", err=True)
        try:
            server.run()
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    finally:
        graph.close()


@click.command("search-image")
@click.argument("image", type=click.Path(exists=True, dir_okay=False))
@click.option("--model", "-m", required=True, help="Model name (see `neurflow models`).")
@click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
              help="State-dict file; default: the model's pretrained weights.")
@click.option("--device", default=None, help="cpu, cuda, cuda:1 ...; default: CUDA when present.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True, help="Groups listed.")
@click.option("--json", "as_json", is_flag=True, help="Print the matches as JSON.")
@connection_options
def search_image(settings: ConnectionSettings, image: str, model: str, weights: str | None, device: str | None,
                 limit: int, as_json: bool) -> None:
    """The neuron groups across the atlas that an image triggers most, with their classes.

    The image's 59 crops are recorded at every layer where the graph holds group vectors for the model; a
    group's score is the largest cosine between its representative vector and a crop's (a Neo4j vector index).

    \b
    Example:
      neurflow search-image photo.jpg -m efficientnet-lite0
    """
    from neurflow.format import strict_json
    from neurflow.workbench.client import GraphClient
    from neurflow.workbench.search import search_image as search

    with open_driver(settings) as driver:
        matches = search(GraphClient(settings, driver), image, model=model, weights=weights, device=device,
                         limit=limit, raw=True)
    if as_json:
        click.echo(strict_json([m.to_dict() for m in matches], indent=1))
        return
    click.echo(f"{'score':>7s}  {'class':24s}{'index':>6s}  {'group':16s}{'influence':>10s}  crop  label")
    for m in matches:
        click.echo(f"{m.score:7.4f}  {m.class_name[:23]:24s}{m.class_index:6d}  {m.group:16s}{m.influence:10.3f}  "
                   f"{m.crop:4d}  {m.label or ''}")
