"""``neurflow debug``: which neuron groups of a class circuit an image triggers (the paper's metric M), or the false
positives of a labelled folder checked by masking (neurflow.experiments.debugging)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import click

from neurflow.cli.db import connection_options
from neurflow.cli.model_options import echo_json, load, model_options, slug
from neurflow.experiments.sources import folder_views, image_view, resolve_classes
from neurflow.graph.connection import ConnectionSettings, open_driver
from neurflow.outputs import check_output_folder, default_output
from neurflow.workbench.client import GraphClient


def _group_thresholds(values: Sequence[str]) -> dict[str, float]:
    """``("_blocks.14/g0=0.6", ...)`` -> ``{"_blocks.14/g0": 0.6}``."""
    thresholds: dict[str, float] = {}
    for value in values:
        group, sep, number = value.rpartition("=")
        try:
            threshold = float(number)
        except ValueError:
            threshold = math.nan
        if not sep or not group.strip() or not threshold > 0:
            raise click.BadParameter(f"{value!r}: write GROUP=VALUE with VALUE > 0, e.g. _blocks.14/g0=0.6",
                                     param_hint="--group-threshold")
        thresholds[group.strip()] = threshold
    return thresholds


@click.command("debug")
@click.argument("image", type=click.Path(exists=True))
@model_options
@click.option("--class", "-c", "class_", required=True, help="Class name, index or wnid.")
@click.option("--circuit", "circuit_id", default=None, help="Circuit id; default: the newest complete one.")
@click.option("--circuit-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Where the circuit's folder is now (it or a folder of circuits); default: as ingested.")
@click.option("--threshold", default=0.8, show_default=True, type=click.FloatRange(0, None, min_open=True),
              help="Crops with M at or above it are outlined; groups at or above it count as high.")
@click.option("--group-threshold", "group_thresholds", multiple=True, metavar="GROUP=VALUE",
              help="A group's own threshold instead of --threshold, e.g. _blocks.14/g0=0.6; repeatable.")
@click.option("--out", "-o", type=click.Path(), default=None,
              help="PNG file (one image) or folder; default: runs/debug/<image>-<class>.png (one image) or "
                   "runs/debug/<folder>-<class>/ (a folder of images) in the current folder.")
@click.option("--panels", default=6, show_default=True, help="Groups drawn in a picture (best first).")
@click.option("--random-draws", default=3, show_default=True, help="Random neuron sets when verifying by masking.")
@click.option("--seed", default=0, show_default=True)
@click.option("--limit", type=int, default=None, help="At most this many false positives (most confident first).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@connection_options
def debug(settings: ConnectionSettings, image: str, model: str, weights: str | None, device: str | None,
          batch_size: int, no_progress: bool, class_: str, circuit_id: str | None, circuit_dir: str | None,
          threshold: float, group_thresholds: tuple[str, ...], out: str | None, panels: int, random_draws: int,
          seed: int, limit: int | None, as_json: bool) -> None:
    """Which neuron groups of a class circuit an image triggers: the paper's metric M per group.

    The circuit comes from the graph, or from --circuit-dir without any graph. IMAGE is one image: print each group's score M (the best crop's geometric mean of activation / maximum
    activation over the 5 neurons nearest the group's centre) and save a PNG outlining the crops with
    M >= threshold. IMAGE is a labelled folder: find the false positives (predicted as the class, labelled
    otherwise), report their high groups and mask those groups to see how much of the prediction they carry.

    \b
    Example:
      neurflow debug photo.jpg -m efficientnet-lite0 -c Samoyed
      neurflow debug ../shared/data/imagewoof-val -m efficientnet-lite0 -c Samoyed --out debug/
    """
    from neurflow.experiments.debugging import debug_image, draw_debug, false_positives, group_probes
    from neurflow.experiments.sources import model_key_of
    from neurflow.workbench.handle import CircuitHandle, open_circuit

    thresholds = _group_thresholds(group_thresholds)
    target = resolve_classes([class_])[0]
    source = Path(image)
    if source.is_file():
        png = default_output(out, "debug", f"{source.stem}-{slug(target.name)}.png")
        if png.suffix.lower() != ".png":
            png = png / f"{source.stem}-{slug(target.name)}.png"
        folder = check_output_folder(png.parent, "the picture")  # before the model loads
    else:
        named = f"{source.resolve().name}-{slug(target.name)}"
        folder = check_output_folder(default_output(out, "debug", named), "pictures")
    def opened(graph: GraphClient | None) -> CircuitHandle:
        # Metric M needs the circuit's vectors.npz: its folder as ingested, or found under --circuit-dir.
        loaded = load(model, weights, device)
        return open_circuit(graph, cls=target.index, model=model_key_of(loaded), circuit_id=circuit_id,
                            folder=circuit_dir, weights=weights, device=device, loaded=loaded)

    if circuit_dir is not None:  # a circuit folder needs no graph
        handle = opened(None)
    else:
        with open_driver(settings) as driver:
            handle = opened(GraphClient(settings, driver))
    circuit, vectors, loaded, circuit_id = handle.circuit, handle.vectors, handle.model, handle.circuit.id
    if source.is_file():
        view = image_view(source, loaded)
        result = debug_image(loaded, circuit, view, group_probes(circuit, vectors), threshold,
                             max(batch_size, 59), thresholds)
        draw_debug(view, result, png, panels)
        if as_json:
            echo_json(result.to_dict() | {"circuit_id": circuit_id, "png": str(png.resolve())})
            return
        click.echo(f"{source}: predicted {result.predicted!r}, p({target.name}) = {result.class_prob:.3f}; "
                   f"circuit {circuit_id}")
        click.echo(f"{'group':18s}{'layer':14s}{'M':>7s}{'threshold':>11s}{'crops above':>13s}   probe channels")
        for g in result.groups:
            click.echo(f"{g.group_id:18s}{g.layer:14s}{g.score:7.3f}{g.threshold:11g}{len(g.crops_above):13d}   "
                       f"{', '.join(map(str, g.channels))}")
        click.echo(f"Picture: {png.resolve()}")
        return

    views = folder_views(source, loaded)
    report = false_positives(loaded, circuit, vectors, views, threshold, random_draws, seed, limit, batch_size,
                             progress=not no_progress and not as_json, thresholds=thresholds)
    by_path = {str(v.file.path): v for v in views}
    pictures = [str(draw_debug(by_path[fp.debug.path], fp.debug, folder / f"{Path(fp.debug.path).stem}-debug.png",
                               panels).resolve()) for fp in report.false_positives]
    if as_json:
        echo_json(report.to_dict() | {"circuit_id": circuit_id, "pictures": pictures})
        return
    click.echo(f"{report.images} image(s): {report.predicted_as_class} predicted as {target.name!r}, "
               f"{report.labelled_as_class} labelled so; {len(report.false_positives)} false positive(s). "
               f"Circuit {circuit_id}.")
    for fp, picture in zip(report.false_positives, pictures, strict=True):
        d = fp.debug
        groups = ", ".join(f"{g.group_id} (M={g.score:.3f})" for g in d.groups
                           if g.group_id in fp.masked_groups)
        click.echo(f"\n{d.path}  label {d.label}, p({target.name}) = {d.class_prob:.3f}")
        click.echo(f"  {'high groups' if fp.above_threshold else 'no group >= threshold; best'}: {groups}")
        click.echo(f"  masking them ({fp.masked_neurons} neurons): p {fp.prob_before:.3f} -> {fp.prob_after:.3f} "
                   f"({fp.prob_change:+.3f}), now {fp.predicted_after!r}; random neurons: p -> "
                   f"{fp.random_prob_after:.3f}")
        click.echo(f"  picture: {picture}")
