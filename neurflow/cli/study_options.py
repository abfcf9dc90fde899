"""The options the `neurflow validate` commands share, and the parsing of their list options."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from neurflow.cli.options import split_list
from neurflow.experiments.ablation import ABLATIONS

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Common:
    """The options every study command shares."""

    circuit_dir: str | None
    model: str | None
    class_: str | None
    circuit_id: str | None
    weights: str | None
    images: str | None
    layers: list[str] | None
    targets: int | None
    ablation: str | None
    """None for the studies that knock nothing out."""
    device: str | None
    out: str | None
    progress: bool
    record: bool


COMMON_NAMES = ("circuit_dir", "model", "class_", "circuit_id", "weights", "images", "layers", "targets",
                "ablation", "device", "out", "no_progress", "no_record")


def common_options(func: F) -> F:
    options = [
        click.option("--circuit-dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="A circuit folder, or a folder of circuits (then -c and -m pick one). Default: the "
                          "graph's circuit of -c CLASS, from the folder it was ingested from."),
        click.option("--model", "-m", default=None, help="Model name or key (name@weightsId); default: any."),
        click.option("--class", "-c", "class_", default=None, help="Class name, index or wnid."),
        click.option("--circuit-id", default=None, help="Circuit id; default: the newest complete one."),
        click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="State-dict file the circuit was built with; default: the pretrained weights."),
        click.option("--images", "-i", type=click.Path(exists=True, file_okay=False), default=None,
                     help="Where the circuit's images are now, when they moved (found by sha256)."),
        click.option("--layers", default=None,
                     help="Comma-separated upper layers to study; default: every layer but the bottom."),
        click.option("--targets", type=click.IntRange(1), default=None,
                     help="At most this many target neurons per layer; default: all core neurons."),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 ...; default: CUDA when present."),
        click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
                     help="Folder for <study>.csv and <study>.png; default: runs/validation/<study>-<circuit id> in the current folder."),
        click.option("--no-progress", is_flag=True, help="No progress bars."),
        click.option("--no-record", is_flag=True, help="Do not write a ValidationStudy node (no Neo4j needed "
                                                       "with --circuit-dir)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


# Only the studies that knock neurons out (correlation, optimality) take it: k-sensitivity and crops ablate nothing.
ablation_option = click.option(
    "--ablation", type=click.Choice(ABLATIONS), default="zero", show_default=True,
    help="Knocked-out neurons are set to 0 (the paper), or to their mean over the class's patches and positions.")


def pop_common(options: dict[str, Any]) -> Common:
    """Pops the shared options out of a command's keyword arguments."""
    values = {name: options.pop(name, None) for name in COMMON_NAMES}
    return Common(
        circuit_dir=values["circuit_dir"], model=values["model"], class_=values["class_"],
        circuit_id=values["circuit_id"], weights=values["weights"], images=values["images"],
        layers=split_list(values["layers"]), targets=values["targets"], ablation=values["ablation"],
        device=values["device"], out=values["out"], progress=not values["no_progress"],
        record=not values["no_record"],
    )


def parse_numbers(text: str | None, kind: type, name: str) -> list[Any] | None:
    """``"1,2,5"`` -> ``[1, 2, 5]``; None when not given (the study's default)."""
    parts = split_list(text)
    if parts is None:
        return None
    try:
        return [kind(part) for part in parts]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of {kind.__name__}s",
                                 param_hint=name) from None


def parse_mixes(text: str | None) -> list[tuple[float, ...]] | None:
    """``"1;1,0.5;0.5,0.25"`` -> ``[(1.0,), (1.0, 0.5), (0.5, 0.25)]``."""
    if text is None or not text.strip():
        return None
    mixes = []
    for part in text.split(";"):
        scales = parse_numbers(part, float, "--mixes")
        if not scales:
            raise click.BadParameter(f"{text!r} has an empty mix", param_hint="--mixes")
        mixes.append(tuple(scales))
    return mixes


def given_options(**values: Any) -> dict[str, Any]:
    """The study options the user gave: the others keep the study function's defaults."""
    return {name: value for name, value in values.items() if value is not None}


# --------------------------------------------------------------------------- the shared run
