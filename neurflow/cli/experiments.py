"""``neurflow mask | fidelity | debug``: experiments back on the model, with circuits read from Neo4j.

The commands parse arguments, call :mod:`neurflow.experiments` (its ``sources`` say which circuit, neurons
and images; ``records`` writes the results into the graph) and print. ``neurflow.cli.main`` registers them on
the main group, whose :class:`~neurflow.cli.errors.CleanErrorsGroup` turns expected failures into one line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from neurflow.cli.db import connection_options
from neurflow.engine.models import LoadedModel
from neurflow.experiments.ablation import ABLATIONS
from neurflow.experiments.channels import parse_neurons
from neurflow.experiments.masking import MaskingResult
from neurflow.experiments.runner import MODES
from neurflow.experiments.sources import (
    circuit_of_class,
    experiment_ablation,
    fidelity_inputs,
    folder_views,
    image_view,
    masking_inputs,
    resolve_classes,
)
from neurflow.format import strict_json
from neurflow.graph.circuits import CircuitRef
from neurflow.graph.connection import ConnectionSettings, open_driver
from neurflow.graph.experiments import GroupRef
from neurflow.workbench.circuits import circuit_in_folder, ingested_folder

F = TypeVar("F", bound=Callable[..., Any])


def _model_options(func: F) -> F:
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


def _ablation_options(func: F) -> F:
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


def _check_ablation(ablation: str, reference_images: str | None) -> None:
    if reference_images is not None and ablation != "mean":
        raise click.UsageError("--reference-images is for --ablation mean")


def _load(model: str, weights: str | None, device: str | None) -> LoadedModel:
    from neurflow.engine.models import load_model

    return load_model(model, weights, device=device)


def _echo_json(data: Any) -> None:
    click.echo(strict_json(data, indent=1))


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# --------------------------------------------------------------------------- mask


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
@_model_options
@click.option("--class", "-c", "class_", required=True, help="Class name, index or wnid.")
@click.option("--group", "-g", "groups", multiple=True,
              help="Neuron group id in the circuit (e.g. _blocks.15/g1) or its full key; repeatable.")
@click.option("--neurons", default=None, help="Neurons instead of groups: LAYER:CHANNEL,... e.g. _blocks.15:42.")
@click.option("--circuit", "circuit_id", default=None, help="Circuit id; default: the newest complete one.")
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
@_ablation_options
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option("--no-record", is_flag=True, help="Do not write a MaskingExperiment node.")
@connection_options
def mask(settings: ConnectionSettings, model: str, weights: str | None, device: str | None, batch_size: int,
         no_progress: bool, class_: str, groups: tuple[str, ...], neurons: str | None, circuit_id: str | None,
         mode: str, images: str | None, max_images: int | None, random_draws: int, seed: int, patch_images: int,
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
    from neurflow.experiments.masking import masking_experiment
    from neurflow.experiments.records import record_masking_experiment

    if bool(groups) == bool(neurons):
        raise click.UsageError("give either --group (one or more) or --neurons")
    if random_draws < 0 or patch_images < 0 or top < 1:
        raise click.BadParameter("--random-draws and --patch-images must be >= 0, --top >= 1")
    _check_ablation(ablation, reference_images)
    target = resolve_classes([class_])[0]
    requested = parse_neurons(neurons) if neurons else None
    with open_driver(settings) as driver:
        loaded = _load(model, weights, device)
        chosen = masking_inputs(driver, loaded, target, groups, requested, circuit_id, images, max_images,
                                batch_size, settings.database)
        if not no_progress and not as_json:
            click.echo(f"{len(chosen.views)} image(s); {random_draws} random draw(s) ...", err=True)
        values = experiment_ablation(loaded, ablation, list(chosen.channels), chosen.views, reference_images,
                                     batch_size, progress=not no_progress)
        result = masking_experiment(loaded, target, chosen.views, chosen.channels, mode, random_draws, seed,
                                    patch_images, max(top, 10), batch_size, progress=not no_progress,
                                    ablation=values)
        experiment_id = None
        if not no_record:
            experiment_id = record_masking_experiment(driver, result, chosen.circuit, chosen.groups,
                                                      chosen.images_source, settings.database)
    circuit = chosen.circuit
    if as_json:
        _echo_json(result.to_dict() | {"experiment_id": experiment_id, "circuit_id": circuit.id if circuit else None,
                                       "groups": [g.group_id for g in chosen.groups]})
        return
    _print_masking(result, circuit, chosen.groups, chosen.source, top)
    if experiment_id:
        click.echo(f"\nRecorded MaskingExperiment {experiment_id} (queries/masking-experiments.cypher).")


# --------------------------------------------------------------------------- fidelity


@click.command("fidelity")
@_model_options
@click.option("--classes", "-c", required=True, help='Comma-separated classes: "Samoyed,golden retriever".')
@click.option("--circuit", "circuit_ids", multiple=True,
              help="Circuit id for a class (repeatable); default: each class's newest complete circuit.")
@click.option("--images", "-i", type=click.Path(file_okay=False), default=None,
              help="Image folder; D_c = its images predicted as c. Default: each circuit's images.")
@click.option("--max-images", type=int, default=None, help="Cap on the images of each class.")
@click.option("--random-draws", default=5, show_default=True, help="Random neuron sets per layer and setting.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "-o", type=click.Path(file_okay=False), default="fidelity", show_default=True,
              help="Folder for fidelity.png and fidelity.csv.")
@_ablation_options
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--no-record", is_flag=True, help="Do not write a FidelityStudy node.")
@connection_options
def fidelity(settings: ConnectionSettings, model: str, weights: str | None, device: str | None, batch_size: int,
             no_progress: bool, classes: str, circuit_ids: tuple[str, ...], images: str | None,
             max_images: int | None, random_draws: int, seed: int, out: str, ablation: str,
             reference_images: str | None, as_json: bool, no_record: bool) -> None:
    """The paper's fidelity study (Figure 5): mask or retain each layer's core neurons.

    For every layer below the logit: its core neurons alone ("single") and those of every layer from the
    logit down to it ("multi-layer"), masked and retained, against as many random neurons per layer;
    accuracy relative to the unmasked model, averaged over the classes. Saves a PNG and a CSV, and stores a
    FidelityStudy in the graph. Masked neurons are zeroed, or with --ablation mean set to their mean over
    each class's patches (or --reference-images).

    \b
    Example:
      neurflow fidelity -m efficientnet-lite0 -c "Samoyed,golden retriever" --out fidelity/
      neurflow fidelity -m efficientnet-lite0 -c Samoyed --ablation mean --out fidelity-mean/
    """
    from neurflow.cli.options import split_list
    from neurflow.experiments.fidelity import (
        fidelity_study,
        mean_neurons,
        plot_fidelity,
        summarise_fidelity,
        write_fidelity_csv,
    )
    from neurflow.experiments.records import record_fidelity_study

    if random_draws < 1:
        raise click.BadParameter("--random-draws must be at least 1")
    _check_ablation(ablation, reference_images)
    names = split_list(classes) or []
    if not names:
        raise click.UsageError("--classes is empty")
    targets = resolve_classes(names)
    with open_driver(settings) as driver:
        loaded = _load(model, weights, device)
        study = fidelity_inputs(driver, loaded, targets, circuit_ids, images, max_images, batch_size,
                                settings.database, asked=names)
        below = list(dict.fromkeys(layer for t in targets for layer in list(study.cores[t.index])[1:]))
        # Reference means are the same for every class: one pass over the folder for all layers.
        shared = experiment_ablation(loaded, ablation, below, [], reference_images, batch_size, not no_progress) \
            if reference_images else None
        rows, reference = [], shared.reference if shared else None
        for target in targets:
            if not as_json:
                click.echo(f"{target.name}: {len(study.views[target.index])} image(s), layers "
                           f"{', '.join(study.cores[target.index])}", err=True)
            values = shared or experiment_ablation(loaded, ablation, list(study.cores[target.index])[1:],
                                                   study.views[target.index], None, batch_size, not no_progress)
            reference = values.reference
            rows += fidelity_study(loaded, target, study.views[target.index], study.cores[target.index],
                                   random_draws, seed, batch_size=batch_size, progress=not no_progress,
                                   ablation=values)
        folder = Path(out)
        csv_path = write_fidelity_csv(rows, folder / "fidelity.csv")
        png_path = plot_fidelity(rows, folder / "fidelity.png",
                                 f"{loaded.name}: fidelity of core neurons ({', '.join(t.name for t in targets)}), "
                                 f"{ablation} ablation")
        study_id = None
        if not no_record:
            study_id = record_fidelity_study(driver, rows, study.circuits, loaded.name, loaded.weights_id,
                                             random_draws, seed, str(csv_path.resolve()), str(png_path.resolve()),
                                             settings.database, ablation, reference)
    if as_json:
        _echo_json({"study_id": study_id, "csv": str(csv_path), "png": str(png_path), "ablation": ablation,
                    "ablation_reference": reference, "rows": [r.to_dict() for r in rows]})
        return
    click.echo(f"Ablation: {ablation}" + (f" (means over {reference})" if reference else ""))
    click.echo(f"{'layer':14s}{'setting':22s}{'neurons':>8s}{'core':>8s}{'random':>16s}   (accuracy / unmasked)")
    for s in summarise_fidelity(rows):
        setting = f"{'single' if s.scope == 'single' else 'multi-layer'} {s.mode}"
        click.echo(f"{s.layer:14s}{setting:22s}{mean_neurons(rows, s):8d}{s.core_relative:8.2f}"
                   f"{f'{s.random_relative:.2f} +- {s.random_relative_std:.2f}':>16s}")
    click.echo(f"\nCSV: {csv_path}\nPlot: {png_path}")
    if study_id:
        click.echo(f"Recorded FidelityStudy {study_id} (queries/fidelity-summary.cypher).")


# --------------------------------------------------------------------------- debug


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
@_model_options
@click.option("--class", "-c", "class_", required=True, help="Class name, index or wnid.")
@click.option("--circuit", "circuit_id", default=None, help="Circuit id; default: the newest complete one.")
@click.option("--circuit-dir", type=click.Path(exists=True, file_okay=False), default=None,
              help="Where the circuit's folder is now (it or a folder of circuits); default: as ingested.")
@click.option("--threshold", default=0.8, show_default=True, type=click.FloatRange(0, None, min_open=True),
              help="Crops with M at or above it are outlined; groups at or above it count as high.")
@click.option("--group-threshold", "group_thresholds", multiple=True, metavar="GROUP=VALUE",
              help="A group's own threshold instead of --threshold, e.g. _blocks.14/g0=0.6; repeatable.")
@click.option("--out", "-o", type=click.Path(), default=None,
              help="PNG file (one image) or folder (a folder of images); default: next to the working folder.")
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

    IMAGE is one image: print each group's score M (the best crop's geometric mean of activation / maximum
    activation over the 5 neurons nearest the group's centre) and save a PNG outlining the crops with
    M >= threshold. IMAGE is a labelled folder: find the false positives (predicted as the class, labelled
    otherwise), report their high groups and mask those groups to see how much of the prediction they carry.

    \b
    Example:
      neurflow debug photo.jpg -m efficientnet-lite0 -c Samoyed
      neurflow debug ../shared/data/imagewoof-val -m efficientnet-lite0 -c Samoyed --out debug/
    """
    from neurflow.experiments.debugging import debug_image, draw_debug, false_positives, group_probes
    from neurflow.format import load_circuit, load_vectors

    thresholds = _group_thresholds(group_thresholds)
    target = resolve_classes([class_])[0]
    with open_driver(settings) as driver:
        loaded = _load(model, weights, device)
        ref = circuit_of_class(driver, loaded, target, circuit_id, settings.database)
    # Metric M needs the circuit's vectors.npz: its folder as ingested, or found under --circuit-dir.
    folder = circuit_in_folder(circuit_dir, circuit_id=ref.id)[1] if circuit_dir else ingested_folder(ref)
    circuit = load_circuit(folder)
    vectors = load_vectors(folder)
    source = Path(image)
    if source.is_file():
        view = image_view(source, loaded)
        result = debug_image(loaded, circuit, view, group_probes(circuit, vectors), threshold,
                             max(batch_size, 59), thresholds)
        png = Path(out) if out else Path(f"{source.stem}-debug-{_slug(target.name)}.png")
        if png.suffix.lower() != ".png":
            png = png / f"{source.stem}-debug-{_slug(target.name)}.png"
        draw_debug(view, result, png, panels)
        if as_json:
            _echo_json(result.to_dict() | {"circuit_id": ref.id, "png": str(png)})
            return
        click.echo(f"{source}: predicted {result.predicted!r}, p({target.name}) = {result.class_prob:.3f}; "
                   f"circuit {ref.id}")
        click.echo(f"{'group':18s}{'layer':14s}{'M':>7s}{'threshold':>11s}{'crops above':>13s}   probe channels")
        for g in result.groups:
            click.echo(f"{g.group_id:18s}{g.layer:14s}{g.score:7.3f}{g.threshold:11g}{len(g.crops_above):13d}   "
                       f"{', '.join(map(str, g.channels))}")
        click.echo(f"Picture: {png}")
        return

    views = folder_views(source, loaded)
    report = false_positives(loaded, circuit, vectors, views, threshold, random_draws, seed, limit, batch_size,
                             progress=not no_progress and not as_json, thresholds=thresholds)
    folder = Path(out) if out else Path(f"debug-{_slug(target.name)}")
    by_path = {str(v.file.path): v for v in views}
    pictures = [str(draw_debug(by_path[fp.debug.path], fp.debug, folder / f"{Path(fp.debug.path).stem}-debug.png",
                               panels)) for fp in report.false_positives]
    if as_json:
        _echo_json(report.to_dict() | {"circuit_id": ref.id, "pictures": pictures})
        return
    click.echo(f"{report.images} image(s): {report.predicted_as_class} predicted as {target.name!r}, "
               f"{report.labelled_as_class} labelled so; {len(report.false_positives)} false positive(s). "
               f"Circuit {ref.id}.")
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
