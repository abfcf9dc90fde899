"""The `neurflow` command line: `build`, `models`, `classes`, and the command groups of the other cli modules.

The other commands are imported when they are called: `neurflow --help`, `models`, `classes` and `draw` start
without the Neo4j driver, `query`, `db` and `browser` without torch, and only the commands that run a model
(`build`, `mask`, `fidelity`, `debug`, `validate`) import it; `label` brings the OpenAI client.
"""

from __future__ import annotations

import difflib
import importlib
import logging
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from neurflow.circuit import Circuit
from neurflow.classes import imagenet_categories, imagenet_wnids, resolve_class
from neurflow.cli.errors import CleanErrorsGroup
from neurflow.cli.options import config_from_options, engine_options, split_list
from neurflow.registry import REGISTRY, ModelError


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    click.echo(f"warning: {message}", err=True)


#: Commands imported on use: name -> (module, the first line of its help, which `neurflow --help` lists without
#: importing it). tests/cli/test_main.py checks each line against the command's own.
LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "db": ("neurflow.cli.db", "Run a local Neo4j Community server (no Docker) for neurflow."),
    "query": ("neurflow.cli.query", "Run the named query NAME (see --list) in a read transaction and print its rows."),
    "browser": ("neurflow.cli.query", "Neo4j Browser: neurflow's stylesheet and guide (`:style` and `:play`)."),
    "mask": ("neurflow.cli.mask",
             "Mask (or retain) neuron groups of a class circuit and measure what the model loses."),
    "fidelity": ("neurflow.cli.fidelity",
                 "The paper's fidelity study (Figure 5): mask or retain each layer's core neurons."),
    "debug": ("neurflow.cli.debug",
              "Which neuron groups of a class circuit an image triggers: the paper's metric M per group."),
    "validate": ("neurflow.cli.validate",
                 "The paper's evidence for core concept neurons, recomputed on a class circuit (docs/validation.md)."),
    "label": ("neurflow.cli.label",
              "Label the neuron groups of a class circuit with a multimodal LLM and store the labels on the graph."),
    "export": ("neurflow.cli.export", "Export a circuit: CIRCUIT is its folder, or its id in the graph."),
    "search-image": ("neurflow.cli.serve",
                     "The neuron groups across the atlas that an image triggers most, with their classes."),
    "serve": ("neurflow.cli.serve",
              "Serve the atlas in a browser: classes, circuits as graphs, groups, neurons, search (read-only)."),
}


#: Every command's help ends with where its terms are defined.
GLOSSARY = "Terms (core neuron, concept, influence, coverage, family, depth, prune ...): README.md#glossary"


def with_glossary(command: click.Command) -> click.Command:
    """``command`` (and, for a group, its subcommands) with the glossary line as its help's epilog."""
    if not command.epilog:
        command.epilog = GLOSSARY
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            with_glossary(sub)
    return command


class NeurflowGroup(CleanErrorsGroup):
    """The top-level group: the commands of ``LAZY_COMMANDS`` are imported only when they run (or show their
    own --help)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *LAZY_COMMANDS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in LAZY_COMMANDS and cmd_name not in self.commands:
            module = importlib.import_module(LAZY_COMMANDS[cmd_name][0])
            self.add_command(getattr(module, cmd_name.replace("-", "_")), cmd_name)
        command = super().get_command(ctx, cmd_name)
        return with_glossary(command) if command is not None else None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            limit = formatter.width - 6 - len(name)
            if name in LAZY_COMMANDS and name not in self.commands:
                # a stand-in command gives the same short help without importing the command's module
                rows.append((name, click.Command(name, help=LAZY_COMMANDS[name][1]).get_short_help_str(limit)))
            elif not self.commands[name].hidden:
                rows.append((name, self.commands[name].get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=NeurflowGroup, epilog=GLOSSARY)
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
    """Build the circuit of each class and save it under OUT/<index>-<name>.<model>.<circuit id>/.

    \b
    Example:
      neurflow build --model efficientnet-lite0 --classes "golden retriever,Samoyed" \\
          --images ../shared/data/imagewoof-val --out circuits --max-images 10
    """
    from neurflow.engine.plans import build_circuits

    config = config_from_options(options)
    names = split_list(classes) or []
    folders = build_circuits(config, names, images, out, progress=not no_progress)
    if picture:
        from neurflow.pictures import draw_circuit_folders

        draw_circuit_folders(folders)
    from neurflow.format import load_circuit

    click.echo(f"\n{len(folders)} circuit(s) in {Path(out).resolve()}")
    for folder in folders:
        click.echo(f"  {folder}")
        click.echo(coverage_text(load_circuit(folder)))


@main.command()
@click.argument("folders", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False))
@click.option("--prune", "prune_share", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Draw the pruned view: per layer, the groups carrying this share of the influence (e.g. 0.8); "
                   "prints what each layer keeps.")
def draw(folders: tuple[str, ...], prune_share: float | None) -> None:
    """Draw circuit.png of saved circuit folders (pruned: circuit-pruned-80.png); sizes and widths: influence.

    Each FOLDER is a circuit folder or a folder of them (as neurflow-ingest --from and validate read them).

    \b
    Example:
      neurflow draw circuits/0258-samoyed.* --prune 0.8
      neurflow draw circuits/
    """
    from neurflow.analysis import circuit_influence, prune
    from neurflow.format import find_circuits, load_circuit
    from neurflow.pictures import draw_circuit, picture_path

    found = [circuit for folder in folders for circuit in find_circuits(folder)]
    empty = [folder for folder in folders if not find_circuits(folder)]
    if empty:
        raise click.ClickException(f"no circuit.json in {', '.join(empty)} or below it: give a circuit folder "
                                   "(neurflow build writes them) or a folder of them")
    for folder in found:
        circuit = load_circuit(folder)
        influence = circuit_influence(circuit)
        picture = draw_circuit(circuit, picture_path(folder, prune_share), folder, prune_share=prune_share,
                               influence=influence)
        click.echo(str(picture))
        click.echo(coverage_text(circuit))
        if prune_share is None:
            continue
        view = prune(circuit, prune_share, influence)
        for layer in circuit.layers[1:]:
            core = len(circuit.neurons.get(layer, []))
            groups = circuit.groups_of_layer(layer)
            kept_groups = sum(g.id in view.groups for g in groups)
            click.echo(f"  {layer}: {len(view.neurons[layer])} of {core} core neurons, "
                       f"{kept_groups} of {len(groups)} groups carry {prune_share:.0%} of the influence")


def coverage_text(circuit: Circuit) -> str:
    """What the circuit covers, layer by layer, in a few lines (docs/coverage.md)."""
    from neurflow.analysis import layer_coverage

    if not circuit.coverage:
        return "  coverage: not recorded (built before neurflow recorded it; build it again to see it)"
    lines = [f"  {row.layer}: the core sets keep {row.mean_core_share:.0%} of their targets' |attribution| on "
             f"average (lowest {row.min_core_share:.0%}); {row.reach:.1%} of the logit's attribution reaches it "
             "through core paths" for row in layer_coverage(circuit)]
    return "\n".join(["  coverage:", *lines])


@main.command()
def models() -> None:
    """List the registered models and their default layers (any torchvision classifier works with --layers)."""
    for spec in REGISTRY.values():
        click.echo(f"{spec.name}: {spec.description}")
        click.echo(f"  layers: {', '.join(spec.layers)}")
    click.echo("\nOther torchvision classification models: pass --model NAME --layers 'logit,...' (logit first).")


@main.command()
@click.option("--model", "-m", default="resnet50", show_default=True, help="Model whose classes to list.")
@click.option("--search", "-s", default=None,
              help="Only classes whose name contains TEXT, or whose index or wnid is TEXT.")
def classes(model: str, search: str | None) -> None:
    """List class indices, wnids and names (ImageNet-1k for the registered models and torchvision's)."""
    check_model_name(model)
    categories = imagenet_categories()
    wnids = imagenet_wnids() or [""] * len(categories)
    rows = list(enumerate(categories))
    if search:
        text = search.strip().lower()
        rows = [(i, name) for i, name in rows if text in name.lower() or text == wnids[i] or text == str(i)]
        if not rows:
            try:
                resolve_class(search, categories)
            except ModelError as error:
                raise click.ClickException(str(error)) from error
    for index, name in rows:
        click.echo(f"{index:4d}  {wnids[index]:10s}  {name}")


def check_model_name(model: str) -> None:
    """A one-line error for a model that is neither registered nor one of torchvision's classifiers (torch is
    imported only for a name that is not registered)."""
    if model.split("@")[0] in REGISTRY:
        return
    from neurflow.engine.models import torchvision_classifiers

    known = torchvision_classifiers()
    if model not in known:
        close = difflib.get_close_matches(model, list(dict.fromkeys([*REGISTRY, *known])), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else "; `neurflow models` lists the registered ones"
        raise click.ClickException(f"unknown model {model!r}{hint}")


if __name__ == "__main__":
    sys.exit(main())
