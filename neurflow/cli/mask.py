"""``neurflow mask``: mask (or retain) neuron groups or neurons of a class circuit and measure what the model loses
(neurflow.experiments.masking); recorded as a MaskingExperiment."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from neurflow.cli.db import connection_options
from neurflow.cli.model_options import ablation_options, check_ablation, echo_json, load, model_options
from neurflow.errors import CircuitLookupError
from neurflow.experiments.channels import parse_neurons
from neurflow.experiments.masking import MaskingResult
from neurflow.experiments.runner import MODES
from neurflow.experiments.sources import resolve_classes
from neurflow.graph.circuits import CircuitRef
from neurflow.graph.connection import ConnectionSettings, open_driver
from neurflow.graph.experiment_records import GroupRef
from neurflow.workbench.client import GraphClient


def _ablation_words(kind: str, reference: str | None, inputs: int) -> str:
    if kind == "zero":
        return "zero (masked neurons set to 0)"
    return f"mean (masked neurons set to their mean over {inputs} {reference})"


def _print_masking(result: MaskingResult, circuit: CircuitRef | None, groups: Sequence[GroupRef], source: str,
                   top: int) -> None:
    e, r = result.effect, result.random
    what = (f"{len(groups)} group(s)" if groups else "the given neurons")
    click.echo(f"{'Masking' if result.mode == 'mask' else 'Retaining'} {what} of "
               f"'{result.target.name}' ({result.target.index}) on {result.model.name} ({result.model.weights_id})"
               + (f", circuit {circuit.id}" if circuit else ""))
    for g in groups:
        click.echo(f"  {g.group_id}: {len(g.channels)} neuron(s), channels {', '.join(map(str, g.channels))}")
    if not groups:
        for layer, chosen in result.channels.items():
            click.echo(f"  {layer}: channels {', '.join(map(str, chosen))}")
    click.echo(f"{e.images} image(s) ({source}), {e.neurons} neuron(s), {r.draws} random draw(s) (seed {r.seed})")
    click.echo(f"Ablation: {_ablation_words(result.ablation, result.ablation_reference, result.ablation_inputs)}\n")
    click.echo(f"{'':22s}{'chosen neurons':>18s}{'random neurons (mean +- std)':>34s}")
    click.echo(f"{'top-1 accuracy':22s}{f'{e.accuracy_before:.2f} -> {e.accuracy_after:.2f}':>18s}"
               f"{f'{e.accuracy_before:.2f} -> {r.accuracy_after_mean:.2f} +- {r.accuracy_after_std:.2f}':>34s}")
    click.echo(f"{'class probability':22s}{f'{e.mean_prob_change:+.3f}':>18s}"
               f"{f'{r.prob_change_mean:+.3f} +- {r.prob_change_std:.3f}':>34s}")
    click.echo(f"{'class logit':22s}{f'{e.mean_logit_change:+.3f}':>18s}"
               f"{f'{r.logit_change_mean:+.3f} +- {r.logit_change_std:.3f}':>34s}")
    if e.changed:
        went = ", ".join(f"{name} ({count})" for name, count in e.changed_to.items())
        click.echo(f"\n{e.changed} prediction(s) changed, to: {went}")
    else:
        click.echo("\nNo prediction changed.")
    click.echo("\nLargest logit drops, images (change of the class logit):")
    for image in result.images[:top]:
        click.echo(f"  {-image.drop:+8.3f}  {image.path}  p {image.prob_before:.2f} -> {image.prob_after:.2f}"
                   + (f"  now: {image.predicted_after}" if image.predicted_after != image.predicted_before else ""))
    if result.patches:
        click.echo("Largest logit drops, patches (box in the image's pixels):")
        for patch in result.patches[:top]:
            click.echo(f"  {-patch.drop:+8.3f}  {Path(patch.path).name}  box {patch.box}  scale {patch.scale:g}")


@click.command("mask")
@model_options
@click.option("--class", "-c", "class_", required=True, help="Class name, index or wnid.")
@click.option("--group", "-g", "groups", multiple=True,
              help="Neuron group id in the circuit (e.g. _blocks.15/g1) or its full key; repeatable.")
@click.option("--neurons", default=None, help="Neurons instead of groups: LAYER:CHANNEL,... e.g. _blocks.15:42.")
@click.option("--circuit", "circuit_id", default=None, help="Circuit id; default: the newest complete one.")
@click.option("--circuit-dir", type=click.Path(file_okay=False), default=None,
              help="The circuit's folder (or a folder of circuits), when it is not where it was ingested from.")
@click.option("--mode", type=click.Choice(MODES), default="mask", show_default=True,
              help="mask: zero the neurons; retain: zero every other channel of their layers.")
@click.option("--images", "-i", type=click.Path(file_okay=False), default=None,
              help="Image folder; D_c = its images predicted as the class. Default: the circuit's images.")
@click.option("--max-images", type=int, default=None, help="Cap on the images of --images.")
@click.option("--random-draws", default=10, show_default=True, help="Random neuron sets of the same size per layer.")
@click.option("--seed", default=0, show_default=True, help="Seed of the random draws.")
@click.option("--patch-images", default=2, show_default=True,
              help="Rank the 59 patches of this many worst-hit images (0: no patch ranking).")
@click.option("--top", default=5, show_default=True, help="Images and patches listed.")
@ablation_options
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--no-record", is_flag=True, help="Do not write a MaskingExperiment node.")
@connection_options
def mask(settings: ConnectionSettings, model: str, weights: str | None, device: str | None, batch_size: int,
         no_progress: bool, class_: str, groups: tuple[str, ...], neurons: str | None, circuit_id: str | None,
         circuit_dir: str | None, mode: str, images: str | None, max_images: int | None, random_draws: int, seed: int,
         patch_images: int,
         top: int, ablation: str, reference_images: str | None, as_json: bool, no_record: bool) -> None:
    """Mask (or retain) neuron groups of a class circuit and measure what the model loses.

    Reports, on the class's images: the change of class probability and logit, top-1 accuracy before and
    after, where changed predictions went, the same for random neurons (mean and spread over the draws), and
    the images and patches with the largest logit drop. Writes a MaskingExperiment node. Masked neurons are
    zeroed, or with --ablation mean set to their mean over the class's patches (or --reference-images).

    \b
    Example:
      neurflow mask -m efficientnet-lite0 -c Samoyed -g _blocks.15/g1 -g _blocks.14/g0
      neurflow mask -m efficientnet-lite0 -c Samoyed --neurons _blocks.15:12,_blocks.15:40 --mode retain
      neurflow mask -m efficientnet-lite0 -c Samoyed -g _blocks.14/g0 --ablation mean
    """
    from neurflow.experiments.sources import model_key_of
    from neurflow.workbench.handle import open_circuit
    from neurflow.workbench.runs import MaskSettings, run_mask, run_mask_on_images

    if bool(groups) == bool(neurons):
        raise click.UsageError("give either --group (one or more) or --neurons")
    check_ablation(ablation, reference_images)
    target = resolve_classes([class_])[0]
    try:  # every number checked by the library's settings, before the model loads
        mask_settings = MaskSettings(groups=groups, neurons=parse_neurons(neurons) if neurons else None, mode=mode,
                                     random_draws=random_draws, seed=seed, patch_images=patch_images, top=top,
                                     ablation=ablation, reference_images=reference_images, batch_size=batch_size,
                                     images=images, max_images=max_images)
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    # The graph is needed to find the circuit (no --circuit-dir) and to record the experiment (no --no-record).
    needs_graph = not no_record or (circuit_dir is None and (groups or images is None or circuit_id))
    driver = open_driver(settings) if needs_graph else None
    try:
        graph = GraphClient(settings, driver) if driver is not None else None
        loaded = load(model, weights, device)
        # A circuit is needed for groups, for its images, and when --circuit or --circuit-dir names one.
        if groups or images is None or circuit_id or circuit_dir:
            try:
                handle = open_circuit(graph, cls=target.index, model=model_key_of(loaded), circuit_id=circuit_id,
                                      folder=circuit_dir, weights=weights, device=device,
                                      progress=not no_progress, loaded=loaded)
            except CircuitLookupError as error:
                if groups or circuit_id or circuit_dir:
                    raise
                raise CircuitLookupError(f"{str(error).rstrip('.')}. With --neurons, --images DIR works without a "
                                         "circuit.") from error
            if not no_progress and not as_json:
                click.echo(f"{mask_settings.images_words}; {random_draws} random draw(s) ...", err=True)
            run = run_mask(handle, mask_settings)
        else:
            run = run_mask_on_images(loaded, target.index, mask_settings, graph, progress=not no_progress)
        experiment_id = None if no_record or graph is None else run.record(graph)
    finally:
        if driver is not None:
            driver.close()
    circuit = run.handle.entry if run.handle else None
    if as_json:
        echo_json(run.to_dict() | {"experiment_id": experiment_id})
        return
    _print_masking(run.result, circuit, run.groups, mask_settings.images_words, top)
    if experiment_id:
        click.echo(f"\nRecorded MaskingExperiment {experiment_id} (queries/masking-experiments.cypher).")
