"""The `neurflow` command line: `build`, `models`, `classes`, and the command groups of the other cli modules.

May import: click and every neurflow package; nothing imports it but ``neurflow.cli``.
"""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from neurflow.cli.db import db
from neurflow.cli.errors import CleanErrorsGroup
from neurflow.cli.experiments import debug, fidelity, mask
from neurflow.cli.label import label
from neurflow.cli.options import config_from_options, engine_options, split_list
from neurflow.cli.query import browser, query
from neurflow.cli.validate import validate
from neurflow.engine.models import REGISTRY, ModelError, imagenet_categories, imagenet_wnids, resolve_class


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    click.echo(f"warning: {message}", err=True)


@click.group(cls=CleanErrorsGroup)
@click.version_option(package_name="neurflow")
def main() -> None:
    """NeurFlow circuits of image classifiers: build them, store them in Neo4j, query and test them."""
    warnings.showwarning = _show_warning
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")


@main.command()
@engine_options
@click.option("--classes", "-c", required=True, help='Comma-separated names, indices or wnids: "golden retriever,Samoyed".')
@click.option("--images", "-i", required=True, type=click.Path(file_okay=False), help="Image folder (flat or class folders).")
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False), help="Folder for the circuits.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.option("--picture/--no-picture", default=True, show_default=True, help="Also draw circuit.png per class.")
def build(classes: str, images: str, out: str, no_progress: bool, picture: bool, **options: Any) -> None:
    """Build the circuit of each class and save it under OUT/<index>-<name>/.

    \b
    Example:
      neurflow build --model efficientnet-lite0 --classes "golden retriever,Samoyed" \\
          --images ../shared/data/imagewoof-val --out circuits --max-images 10
    """
    from neurflow.engine.builder import build_circuits

    config = config_from_options(options)
    names = split_list(classes) or []
    folders = build_circuits(config, names, images, out, progress=not no_progress)
    if picture:
        from neurflow.pictures import draw_circuit_folders

        draw_circuit_folders(folders)
    click.echo(f"\n{len(folders)} circuit(s) in {Path(out).resolve()}")
    for folder in folders:
        click.echo(f"  {folder}")


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--prune", "prune_share", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Draw the pruned view: per layer, the groups carrying this share of the influence (e.g. 0.8); "
                   "prints what each layer keeps.")
def draw(folders: tuple[str, ...], prune_share: float | None) -> None:
    """Draw circuit.png of saved circuit folders (pruned: circuit-pruned-80.png); sizes and widths: influence.

    \b
    Example:
      neurflow draw circuits/0258-samoyed --prune 0.8
    """
    from neurflow.analysis import circuit_influence, prune
    from neurflow.format import load_circuit
    from neurflow.pictures import draw_circuit, picture_path

    for folder in folders:
        circuit = load_circuit(folder)
        influence = circuit_influence(circuit)
        picture = draw_circuit(circuit, picture_path(folder, prune_share), folder, prune_share=prune_share,
                               influence=influence)
        click.echo(str(picture))
        if prune_share is None:
            continue
        view = prune(circuit, prune_share, influence)
        for layer in circuit.layers[1:]:
            core = len(circuit.neurons.get(layer, []))
            groups = circuit.groups_of_layer(layer)
            kept_groups = sum(g.id in view.groups for g in groups)
            click.echo(f"  {layer}: {len(view.neurons[layer])} of {core} core neurons, "
                       f"{kept_groups} of {len(groups)} groups carry {prune_share:.0%} of the influence")


@main.command()
def models() -> None:
    """List the registered models and their default layers (any torchvision classifier works with --layers)."""
    for spec in REGISTRY.values():
        click.echo(f"{spec.name}: {spec.description}")
        click.echo(f"  layers: {', '.join(spec.layers)}")
    click.echo("\nOther torchvision classification models: pass --model NAME --layers 'logit,...' (logit first).")


@main.command()
@click.option("--model", "-m", default="resnet50", show_default=True, help="Model whose classes to list.")
@click.option("--search", "-s", default=None, help="Only classes whose name contains TEXT (or that match it).")
def classes(model: str, search: str | None) -> None:
    """List class indices, wnids and names (ImageNet-1k for the registered models)."""
    del model  # every registered model is an ImageNet-1k classifier
    categories = imagenet_categories()
    wnids = imagenet_wnids() or [""] * len(categories)
    rows = list(enumerate(categories))
    if search:
        text = search.lower()
        rows = [(i, name) for i, name in rows if text in name.lower() or text == wnids[i]]
        if not rows:
            try:
                resolve_class(search, categories)
            except ModelError as error:
                raise click.ClickException(str(error)) from error
    for index, name in rows:
        click.echo(f"{index:4d}  {wnids[index]:10s}  {name}")


for _command in (db, query, browser, mask, fidelity, debug, label, validate):
    main.add_command(_command)

if __name__ == "__main__":
    sys.exit(main())
