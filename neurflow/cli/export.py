"""``neurflow export``: a circuit as circuit-tracer's attribution-graph JSON or as neurflow's own JSON document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from neurflow.cli.db import connection_options
from neurflow.graph.connection import ConnectionSettings, open_driver

FORMATS = ("circuit-tracer", "json")


@click.command("export")
@click.argument("circuit")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="json", show_default=True,
              help="circuit-tracer: the graph JSON of circuit-tracer's viewer (Neuronpedia's), with "
                   "graph-metadata.json; json: neurflow's document, which neurflow-ingest --from reads back.")
@click.option("--out", "-o", type=click.Path(), default=None,
              help="A folder for circuit-tracer (default: runs/export/circuit-tracer), a file for json "
                   "(default: runs/export/<circuit folder>.json), in the current folder.")
@click.option("--prune", "prune_share", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="circuit-tracer: keep the neurons carrying this share of each layer's influence.")
@click.option("--no-graph", is_flag=True, help="Export the folder's circuit without reading labels from the graph.")
@connection_options
def export(settings: ConnectionSettings, circuit: str, fmt: str, out: str | None, prune_share: float,
           no_graph: bool) -> None:
    """Export a circuit: CIRCUIT is its folder, or its id in the graph.

    Labels (captions, feature evolutions) come from the graph unless --no-graph. See docs/export.md for both
    formats.

    \b
    Example:
      neurflow export circuits/0258-samoyed.* --format circuit-tracer
      neurflow export circuits/0258-samoyed.* --format json --out samoyed.json
    """
    from neurflow.export import circuit_document, circuit_tracer_graph
    from neurflow.format import load_circuit, strict_json
    from neurflow.outputs import check_output_folder, default_output
    from neurflow.workbench.client import GraphClient
    from neurflow.workbench.locate import locate_circuit

    is_folder = Path(circuit).is_dir()
    if not is_folder and not re.fullmatch(r"[0-9a-f]{16}", circuit):  # neither: say so before connecting
        raise click.UsageError(f"{circuit!r} is neither a circuit folder nor a circuit id (16 hex digits, as "
                               "`neurflow query atlas-classes` lists them)")
    labels: list[dict] = []
    if no_graph:
        if not is_folder:
            raise click.UsageError(f"with --no-graph, CIRCUIT must be a circuit folder; {circuit!r} is not one")
        folder = Path(circuit)
        circuit_id = load_circuit(folder).id
    else:
        from neurflow.graph.labels import circuit_labels

        with open_driver(settings) as driver:
            graph = GraphClient(settings, driver)
            where = locate_circuit(graph, folder=circuit) if is_folder else locate_circuit(graph, circuit_id=circuit)
            folder, circuit_id = Path(where.folder), where.circuit.id
            labels = circuit_labels(driver, circuit_id, settings.database)
    if fmt == "json":
        path = Path(out) if out else default_output(None, "export", f"{folder.name}.json")
        check_output_folder(path.parent, "the export").mkdir(parents=True, exist_ok=True)
        path.write_text(strict_json(circuit_document(folder, labels)))
        click.echo(f"circuit {circuit_id}: {len(labels)} label(s) -> {path.resolve()} "
                   f"(neurflow-ingest --from {path} writes it back)")
        return
    target = check_output_folder(default_output(out, "export", "circuit-tracer"), "the export")
    target.mkdir(parents=True, exist_ok=True)
    group_labels = {r["group"]: r["props"].get("label") for r in labels if r["kind"] == "group"}
    graph_json = circuit_tracer_graph(load_circuit(folder), group_labels, prune_share)
    slug = graph_json["metadata"]["slug"]
    (target / f"{slug}.json").write_text(json.dumps(graph_json, indent=1))
    index = target / "graph-metadata.json"  # the viewer's list of graphs, as circuit-tracer's add_graph_metadata keeps it
    listed = json.loads(index.read_text()) if index.is_file() else {"graphs": []}
    listed["graphs"] = [g for g in listed["graphs"] if g.get("slug") != slug] + [graph_json["metadata"]]
    index.write_text(json.dumps(listed, indent=1))
    click.echo(f"circuit {circuit_id}: {len(graph_json['nodes'])} nodes, {len(graph_json['links'])} links, "
               f"{len(graph_json['qParams']['supernodes'])} supernodes -> {(target / slug).resolve()}.json "
               f"(circuit-tracer's viewer: from circuit_tracer.frontend import serve; serve('{target}'))")
