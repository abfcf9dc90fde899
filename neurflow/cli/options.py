"""click options shared by the commands that build circuits (`neurflow build`, `neurflow-ingest`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

import click

from neurflow.engine.config import (
    CLASS_TOKEN_CHOICES,
    GROUP_SPACES,
    LABEL_SOURCES,
    QUADRATURES,
    RANKINGS,
    RULE_LEVELS,
    STABILITY_RESAMPLES,
    STEPS_RULE,
    STEPS_RULES,
    STEPS_TIE,
    STEPS_TOLERANCE,
    BuildConfig,
    StepsLimitError,
    parse_layout_overrides,
    parse_steps,
)
from neurflow.registry import default_quadrature

F = TypeVar("F", bound=Callable[..., Any])


def split_list(text: str | None) -> list[str] | None:
    """``"a, b,c"`` -> ``["a", "b", "c"]``; None or blank -> None."""
    if text is None or not text.strip():
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


class StepsType(click.ParamType):
    """``auto`` or a positive integer."""

    name = "auto|N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int | str:
        try:
            return parse_steps(value)
        except StepsLimitError as error:  # a number, too large: the library's message has the estimate
            self.fail(str(error), param, ctx)
        except ValueError:
            self.fail(f"{value!r} is neither 'auto' nor a positive integer (e.g. --steps auto, --steps 50)",
                      param, ctx)


@overload
def engine_options(func: F, *, model_required: bool = True) -> F: ...
@overload
def engine_options(func: None = None, *, model_required: bool = True) -> Callable[[F], F]: ...
def engine_options(func: F | None = None, *, model_required: bool = True) -> F | Callable[[F], F]:
    """Adds --model --weights --random-weights --layers --tau --k --steps ... to a command.

    ``@engine_options`` requires --model; ``@engine_options(model_required=False)`` leaves it to the command
    (`neurflow-ingest` needs a model only to build).
    """
    if func is None:
        return lambda f: _add_engine_options(f, model_required)
    return _add_engine_options(func, model_required)


def _add_engine_options(func: F, model_required: bool) -> F:
    options = [
        click.option("--model", "-m", required=model_required, help="Model name (see `neurflow models`)."),
        click.option("--weights", type=click.Path(exists=True, dir_okay=False), default=None,
                     help="State-dict file; default: the model's pretrained weights from the local cache."),
        click.option("--random-weights", is_flag=True, help="Random weights (for tests only)."),
        click.option("--layers", default=None,
                     help="Comma-separated module names from the logit layer down; default: the model's list."),
        click.option("--tau", default=16, show_default=True, help="Core concept neurons per target."),
        click.option("--tau-coverage", type=click.FloatRange(0, 1, min_open=True), default=None,
                     help="Per target, the fewest core neurons (at most --tau) whose |T(a, s)| carry this share of "
                          "its attribution over every lower neuron, e.g. 0.8 (docs/coverage.md); default: tau each."),
        click.option("--k", "k", default=50, show_default=True, help="Patches in a neuron's concept."),
        click.option("--steps", type=StepsType(), default="auto", show_default=True,
                     help="Integrated-gradient nodes N: a number (the paper: 50), or auto: per target of each "
                          f"layer pair, the levels of --steps-rule ({STEPS_RULE}: "
                          f"{RULE_LEVELS[STEPS_RULE][0]}, 7, 15, ... nodes, each level evaluating only the nodes it "
                          f"adds) until its top-tau set is the previous level's (ties within {STEPS_TIE:.0%} of the "
                          "tau-th score aside) and its completeness gap is within --steps-tolerance, at most "
                          "--steps-max (docs/integration.md)."),
        click.option("--steps-tolerance", type=click.FloatRange(0, 1, max_open=True),
                     default=STEPS_TOLERANCE, show_default=True,
                     help="With --steps auto: the largest completeness gap accepted, a fraction of |f(h) - f(0)|."),
        click.option("--steps-max", type=click.IntRange(2), default=None,
                     help="With --steps auto: the most nodes a target may get [default: the rule's last level, "
                          f"{RULE_LEVELS[STEPS_RULE][1]} with {STEPS_RULE}, {RULE_LEVELS['doubling'][1]} with "
                          "doubling]."),
        click.option("--steps-rule", type=click.Choice(STEPS_RULES), default=None,
                     help=f"With --steps auto: the levels' nodes, a nested family ({STEPS_RULE}, clenshaw-curtis, "
                          "trapezoid) or doubling (--quadrature's nodes 4, 8, 16, ... each from scratch, as before "
                          f"nested levels) [default: {STEPS_RULE} with gauss-legendre, doubling with another "
                          "--quadrature]."),
        click.option("--quadrature", type=click.Choice(QUADRATURES), default=None,
                     help="Integration nodes; default: the model's (gauss-legendre; gauss-legendre-graded for "
                          "vit_b_16 and swin_t, whose LayerNorm-first blocks need it: docs/layouts.md)."),
        click.option("--ranking", type=click.Choice(RANKINGS), default="sum", show_default=True,
                     help="sum: |sum over V_a| (paper); mean-abs: mean of |per-patch score| (authors' code)."),
        click.option("--max-semantic-groups", default=5, show_default=True, type=click.IntRange(1),
                     help="Most semantic groups per concept: silhouette picks 2..max (1: no split)."),
        click.option("--max-neuron-groups", default=8, show_default=True, type=click.IntRange(1),
                     help="Most neuron groups per layer: silhouette picks 2..max (1: one group)."),
        click.option("--group-space", type=click.Choice(GROUP_SPACES), default="paper", show_default=True,
                     help="paper: cluster on all channels of the layer below (Eq. 3, Section 3.5); core: on core "
                          "neurons only, as circuits built before this option (docs/grouping.md)."),
        click.option("--max-images", type=int, default=None, help="Cap on the images of each class."),
        click.option("--label-source", type=click.Choice(LABEL_SOURCES), default="predicted", show_default=True,
                     help="D_c = images predicted as c, or images the folder labels c."),
        click.option("--seed", default=0, show_default=True),
        click.option("--device", default=None, help="cpu, cuda, cuda:1 ...; default: CUDA when present."),
        click.option("--batch-size", type=click.IntRange(1), default=None,
                     help="Patches per recording forward pass (bounds memory) [default: 8 on CPU, 128 on CUDA]."),
        click.option("--ig-batch-size", type=click.IntRange(1), default=None,
                     help="(patch, step) inputs per integrated-gradients call [default: 16 on CPU, 256 on CUDA]."),
        click.option("--layout", "layouts", multiple=True, metavar="LAYER=KIND",
                     help="Where LAYER's output keeps its neurons, when detection from its shape and module is "
                          "not what you want: channels-first, channels-last or tokens (repeatable; docs/layouts.md)."),
        click.option("--class-token", type=click.Choice(CLASS_TOKEN_CHOICES), default=None,
                     help="What a token layer's hidden-unit activation averages: the patch tokens (exclude), every "
                          "token (include), the class token alone (only), or auto: the class token alone for a "
                          "layer whose upper layer reads only it (a ViT's last block under its head), the patch "
                          "tokens elsewhere (masks and attributions always cover every token) [default: auto for "
                          "vit_b_16, exclude otherwise]."),
        click.option("--stability-resamples", default=STABILITY_RESAMPLES, show_default=True, type=click.IntRange(0),
                     help="Bootstrap resamples of the images: each core neuron's selection frequency, each edge "
                          "weight's interval, each grouping's stability (docs/coverage.md; 0: none)."),
        click.option("--map-cache-mb", default=2048, show_default=True, type=click.IntRange(0),
                     help="Memory for lower-layer maps kept from the recording pass (0: recompute per layer pair)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


ENGINE_OPTION_NAMES = (
    "model", "weights", "random_weights", "layers", "tau", "tau_coverage", "k", "steps", "steps_tolerance", "steps_max",
    "steps_rule",
    "quadrature", "ranking", "max_semantic_groups", "max_neuron_groups", "group_space", "max_images", "label_source",
    "seed", "device", "batch_size", "ig_batch_size", "map_cache_mb", "stability_resamples", "layouts", "class_token",
)


def config_from_options(options: dict[str, Any]) -> BuildConfig:
    """Pops the engine options out of a command's keyword arguments and returns the BuildConfig."""
    values = {name: options.pop(name) for name in ENGINE_OPTION_NAMES if name in options}
    values["layers"] = split_list(values.get("layers"))
    try:
        if values.get("quadrature", "") is None:
            values["quadrature"] = default_quadrature(values.get("model"))
        if "layouts" in values:
            values["layouts"] = parse_layout_overrides(values["layouts"])
        return BuildConfig(**values)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
