"""Options and helpers shared by the commands that run a model on a circuit (`mask`, `fidelity`, `debug`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from neurflow.experiments.ablation import ABLATIONS
from neurflow.format import strict_json

if TYPE_CHECKING:
    from neurflow.engine.models import LoadedModel

F = TypeVar("F", bound=Callable[..., Any])


def model_options(func: F) -> F:
    options = [
        click.option("--model", "-m", required=True, help="Model name (see `neurflow models`)."),
        click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="State-dict file; default: the model's pretrained weights."),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 ...; default: CUDA when present."),
        click.option("--batch-size", default=32, show_default=True, help="Images per forward pass."),
        click.option("--no-progress", is_flag=True, help="No progress bars."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def ablation_options(func: F) -> F:
    options = [
        click.option("--ablation", type=click.Choice(ABLATIONS), default="zero", show_default=True,
                     help="What a masked neuron is set to: zero (the paper) or its mean activation (fits linear "
                          "block outputs such as EfficientNet-Lite's)."),
        click.option("--reference-images", type=click.Path(exists=True, file_okay=False), default=None,
                     help="With --ablation mean: average over the whole images of this folder instead of the "
                          "class's patches."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def check_ablation(ablation: str, reference_images: str | None) -> None:
    if reference_images is not None and ablation != "mean":
        raise click.UsageError("--reference-images is for --ablation mean")


def load(model: str, weights: str | None, device: str | None) -> LoadedModel:
    from neurflow.engine.models import load_model

    return load_model(model, weights, device=device)


def echo_json(data: Any) -> None:
    click.echo(strict_json(data, indent=1))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
