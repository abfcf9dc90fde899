"""``neurflow fidelity``: the paper's fidelity study (Figure 5) over the circuits of several classes, through
``neurflow.workbench.runs.run_fidelity``; saved as CSV and PNG and recorded as a FidelityStudy."""

from __future__ import annotations

from pathlib import Path

import click

from neurflow.cli.db import connection_options
from neurflow.cli.model_options import ablation_options, check_ablation, echo_json, load, model_options, slug
from neurflow.cli.options import split_list
from neurflow.experiments.fidelity import mean_neurons, summarise_fidelity, write_fidelity_csv
from neurflow.experiments.sources import resolve_classes
from neurflow.graph.connection import ConnectionSettings, open_driver
from neurflow.outputs import check_output_folder, default_output
from neurflow.pictures import save_figure
from neurflow.workbench.client import GraphClient
from neurflow.workbench.runs import FidelityRun, FidelitySettings, run_fidelity


@click.command("fidelity")
@model_options
@click.option("--classes", "-c", required=True, help='Comma-separated classes: "Samoyed,golden retriever".')
@click.option("--circuit", "circuit_ids", multiple=True,
              help="Circuit id for a class (repeatable); default: each class's newest complete circuit.")
@click.option("--images", "-i", type=click.Path(file_okay=False, exists=True), default=None,
              help="Where each class's held-out images are looked for (its images the circuit was not built on) "
                   "[default: the folder holding the circuit's images].")
@click.option("--max-images", type=click.IntRange(1), default=None,
              help="Cap on each class's images, the circuit's own and the held-out ones [default: all of the "
                   "circuit's, and as many held-out].")
@click.option("--in-sample-only", is_flag=True,
              help="Measure on the circuits' own images only (the images their core neurons were chosen on).")
@click.option("--random-draws", default=5, show_default=True, help="Random neuron sets per layer and setting.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", "-o", type=click.Path(file_okay=False), default=None,
              help="Folder for fidelity.png and fidelity.csv; default: runs/fidelity/<model>-<ablation> in the "
                   "current folder.")
@ablation_options
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
@click.option("--no-record", is_flag=True, help="Do not write a FidelityStudy node.")
@connection_options
def fidelity(settings: ConnectionSettings, model: str, weights: str | None, device: str | None, batch_size: int,
             no_progress: bool, classes: str, circuit_ids: tuple[str, ...], images: str | None,
             max_images: int | None, in_sample_only: bool, random_draws: int, seed: int, out: str | None, ablation: str,
             reference_images: str | None, as_json: bool, no_record: bool) -> None:
    """The paper's fidelity study (Figure 5): mask or retain each layer's core neurons.

    For every layer below the logit: its core neurons alone ("single") and those of every layer from the
    logit down to it ("multi-layer"), masked and retained, against as many random neurons per layer;
    accuracy relative to the unmasked model, averaged over the classes. Measured on each class's held-out
    images (those its circuit was not built on) and, beside them, on the circuit's own (in-sample). Saves a PNG and a CSV, and stores a
    FidelityStudy in the graph. Masked neurons are zeroed, or with --ablation mean set to their mean over
    each class's patches (or --reference-images).

    \b
    Example:
      neurflow fidelity -m efficientnet-lite0 -c "Samoyed,golden retriever" --out fidelity/
      neurflow fidelity -m efficientnet-lite0 -c Samoyed --ablation mean --out fidelity-mean/
    """
    if random_draws < 1:
        raise click.BadParameter("--random-draws must be at least 1")
    check_ablation(ablation, reference_images)
    names = split_list(classes) or []
    if not names:
        raise click.UsageError("--classes is empty")
    resolve_classes(names)  # an unknown class fails before the model loads
    folder = check_output_folder(default_output(out, "fidelity", f"{slug(model)}-{ablation}"))
    study = FidelitySettings(random_draws, seed, ablation, reference_images, images, max_images, batch_size,
                             held_out=not in_sample_only)
    with open_driver(settings) as driver:
        graph = GraphClient(settings, driver)
        run = run_fidelity(graph, load(model, weights, device), names, study, circuit_ids, not no_progress,
                           echo=None if as_json else lambda line: click.echo(line, err=True))
        csv_path = write_fidelity_csv(run.rows, folder / "fidelity.csv")
        png_path = save_figure(run.plot(), folder / "fidelity.png", dpi=110)
        study_id = None if no_record else run.record(graph, str(csv_path.resolve()), str(png_path.resolve()))
    rows, reference = run.rows, run.ablation_reference
    if as_json:
        echo_json({"study_id": study_id, "csv": str(csv_path.resolve()), "png": str(png_path.resolve()), "ablation": ablation,
                   "ablation_reference": reference, "rows": [r.to_dict() for r in rows]})
        return
    _print_summary(run, ablation, reference, csv_path, png_path, study_id)


def _print_summary(run: FidelityRun, ablation: str, reference: str | None, csv_path: Path, png_path: Path,
                   study_id: str | None) -> None:
    click.echo(f"Ablation: {ablation}" + (f" (means over {reference})" if reference else ""))
    click.echo(f"{'evidence':11s}{'images':>7s}  {'layer':14s}{'setting':22s}{'neurons':>8s}{'core':>8s}"
               f"{'random':>16s}   (accuracy / unmasked)")
    for s in summarise_fidelity(run.rows):
        setting = f"{'single' if s.scope == 'single' else 'multi-layer'} {s.mode}"
        click.echo(f"{s.evidence:11s}{s.images:7d}  {s.layer:14s}{setting:22s}{mean_neurons(run.rows, s):8d}"
                   f"{s.core_relative:8.2f}{f'{s.random_relative:.2f} +- {s.random_relative_std:.2f}':>16s}")
    click.echo(f"\nCSV: {csv_path.resolve()}\nPlot: {png_path.resolve()}")
    if study_id:
        click.echo(f"Recorded FidelityStudy {study_id} (queries/fidelity-summary.cypher).")
