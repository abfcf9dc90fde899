"""``neurflow validate correlation|optimality|k-sensitivity|crops``: the paper's evidence for core concept neurons,
recomputed on one class circuit.

Each command opens the circuit (``--circuit-dir``, or the graph's circuit of ``-c CLASS``: the one rule of
:mod:`neurflow.workbench.locate`), runs the study on it (:func:`neurflow.workbench.runs.run_study`), writes
``<out>/<study>.csv`` and ``.png``, prints the summary and a short table, and records a ValidationStudy in the
graph (``--no-record`` skips the graph, so a built folder needs no Neo4j). Shared options: ``study_options``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from neurflow.cli.db import connection_options
from neurflow.cli.errors import CleanErrorsGroup
from neurflow.cli.study_options import (
    Common,
    ablation_option,
    common_options,
    given_options,
    parse_mixes,
    parse_numbers,
    pop_common,
)
from neurflow.experiments.validation.result import StudyResult
from neurflow.graph.connection import ConnectionSettings
from neurflow.outputs import check_output_folder, default_output
from neurflow.workbench.client import GraphClient


def _check_recordable(graph: GraphClient, circuit_id: str) -> None:
    """Before the long work: the circuit must be a complete circuit of the graph to be recorded."""
    from neurflow.graph.circuits import CircuitNotFoundError, circuit_by_id

    try:
        circuit_by_id(graph.driver, circuit_id, graph.database)
    except CircuitNotFoundError as error:
        raise CircuitNotFoundError(f"{error}: ingest it (`neurflow-ingest`), or pass --no-record") from error


def _run_study(study: str, common: Common, settings: ConnectionSettings, options: dict[str, Any],
               held_out: dict[str, Any] | None = None) -> None:
    """Finds and opens the circuit, runs the study on it (neurflow.workbench.runs), saves its CSV and PNG,
    records it and prints the summary."""
    from neurflow.experiments.validation.inputs import study_layers
    from neurflow.experiments.validation.result import write_csv
    from neurflow.graph.connection import open_driver
    from neurflow.pictures import save_figure
    from neurflow.workbench.handle import open_circuit
    from neurflow.workbench.runs import StudySettings, run_study

    if common.circuit_dir is None and common.class_ is None:
        raise click.UsageError("give --circuit-dir DIR, or -c CLASS (and -m MODEL) for the graph's circuit")
    # One connection for the look-up and the record; none for a folder's circuit that is not recorded.
    graph = GraphClient(settings, open_driver(settings)) if common.record or common.circuit_dir is None else None
    try:
        handle = open_circuit(None if common.circuit_dir else graph, cls=common.class_, model=common.model,
                              circuit_id=common.circuit_id, folder=common.circuit_dir, weights=common.weights,
                              device=common.device, images=common.images, progress=common.progress)
        circuit = handle.circuit
        layers = study_layers(circuit, common.layers)
        out = check_output_folder(default_output(common.out, "validation", f"{study}-{circuit.id}"))
        if graph is not None and common.record and common.circuit_dir is not None:
            _check_recordable(graph, circuit.id)  # a folder's circuit (one found in the graph is complete)
        click.echo(f"{study}: circuit {circuit.id} of {circuit.target.name!r} ({circuit.model.name}, "
                   f"{circuit.model.weights_id}) in {handle.folder}; layers {', '.join(layers)}"
                   + (f"; {common.ablation} ablation" if common.ablation else ""), err=True)
        run = run_study(handle, StudySettings(study, layers, common.targets, common.ablation or "zero",
                                              **(held_out or {"held_out": False}), **options))
        note = run.result.parameters.get("held_out_note")
        if note and held_out and held_out["held_out"]:
            click.echo(f"{study}: no held-out images ({note}); measured on the circuit's own images only", err=True)
        csv_path = write_csv(run.result, out / f"{study}.csv")
        png_path = save_figure(run.plot(), out / f"{study}.png")
        study_id = run.record(graph, str(csv_path), str(png_path)) if graph is not None and common.record else None
    finally:
        if graph is not None:
            graph.close()
    _print(run.result, csv_path, png_path, study_id)


def _print(result: StudyResult, csv_path: Path, png_path: Path, study_id: str | None) -> None:
    click.echo(f"{result.study} of {result.class_name!r} ({result.model_key}), circuit {result.circuit_id}, "
               f"layers {', '.join(result.layers)}")
    for line in result.summary_lines():
        click.echo(f"  {line}")
    click.echo("")
    click.echo(result.table(limit=20))
    click.echo(f"\nCSV: {csv_path.resolve()}\nPlot: {png_path.resolve()}")
    if study_id:
        click.echo(f"Recorded ValidationStudy {study_id} (`neurflow query validation-summary`).")


# --------------------------------------------------------------------------- the commands


@click.group("validate", cls=CleanErrorsGroup)
def validate() -> None:
    """The paper's evidence for core concept neurons, recomputed on a class circuit (docs/validation.md).

    \b
    Every command takes the circuit from --circuit-dir, or the graph's circuit of -c CLASS (-m MODEL), writes
    <out>/<study>.csv and <study>.png, prints a summary and records a ValidationStudy node.
    """


@validate.command("correlation")
@common_options
@ablation_option
@click.option("--sizes", default=None, help="Knockout set sizes [default: 1,2,5,10,20,30,50].")
@click.option("--sets-per-size", type=click.IntRange(2), default=None,
              help="Random neuron sets per size [default: 20]; size 1 also takes every single neuron.")
@click.option("--singles", type=click.IntRange(2), default=None,
              help="At size 1, a seeded sample of this many single neurons; default: every neuron (the paper).")
@click.option("--permutations", type=click.IntRange(1), default=None,
              help="Shuffles of the importance over the sets for each r's null (no relation) [default: 1000].")
@click.option("--seed", default=0, show_default=True, help="Seed of the random sets.")
@connection_options
def correlation(settings: ConnectionSettings, sizes: str | None, sets_per_size: int | None, singles: int | None,
                permutations: int | None, seed: int, **options: Any) -> None:
    """Figure 6: L(S, a) against the summed |T(a, s)| over random neuron sets S, per set size, each r with its
    permutation null, Spearman's rho and a Fisher-z interval.

    \b
    Example:
      neurflow validate correlation -m efficientnet-lite0 -c Samoyed --targets 8 --sizes 1,5,20
    """
    common = pop_common(options)
    chosen = given_options(sizes=parse_numbers(sizes, int, "--sizes"), sets_per_size=sets_per_size,
                           singles=singles, permutations=permutations)
    _run_study("correlation", common, settings, chosen | {"seed": seed})


@validate.command("optimality")
@common_options
@ablation_option
@click.option("--taus", default=None, help="Core set sizes [default: 10,30,50].")
@click.option("--random-sets", type=click.IntRange(2), default=None,
              help="Random sets of the same size per target [default: 100].")
@click.option("--seed", default=0, show_default=True, help="Seed of the random sets.")
@click.option("--held-out-images", type=click.Path(file_okay=False, exists=True), default=None,
              help="Where the class's held-out images are looked for (its images the circuit was not built on) "
                   "[default: the folder holding the circuit's images].")
@click.option("--held-out-max", type=click.IntRange(1), default=None,
              help="At most this many held-out images [default: as many as the circuit has].")
@click.option("--in-sample-only", is_flag=True,
              help="Measure on the circuit's own images only (the images its core sets were chosen on).")
@connection_options
def optimality(settings: ConnectionSettings, taus: str | None, random_sets: int | None, seed: int,
               held_out_images: str | None, held_out_max: int | None, in_sample_only: bool,
               **options: Any) -> None:
    """Figure 4: L(core set, a) against random sets and two baselines of the same size, measured on the
    class's held-out images (those the circuit was not built on) and on the circuit's own (in-sample).

    \b
    Example:
      neurflow validate optimality -m efficientnet-lite0 -c Samoyed --taus 10,30 --random-sets 50
    """
    common = pop_common(options)
    chosen = given_options(taus=parse_numbers(taus, int, "--taus"), random_sets=random_sets)
    held = {"held_out": not in_sample_only, "held_out_images": held_out_images, "held_out_max": held_out_max}
    _run_study("optimality", common, settings, chosen | {"seed": seed}, held)


@validate.command("k-sensitivity")
@common_options
@click.option("--ks", default=None,
              help="Concept sizes k [default: 30,50,70,...,190, those no larger than the class's patches].")
@click.option("--reference-k", type=click.IntRange(1), default=None, help="The k compared with [default: 50].")
@connection_options
def k_sensitivity(settings: ConnectionSettings, ks: str | None, reference_k: int | None, **options: Any) -> None:
    """Table 5: core sets for other k against k = 50 (mean overlap out of tau).

    \b
    Example:
      neurflow validate k-sensitivity -m efficientnet-lite0 -c Samoyed --ks 30,50,90,190
    """
    common = pop_common(options)
    chosen = given_options(ks=parse_numbers(ks, int, "--ks"), reference_k=reference_k)
    _run_study("k-sensitivity", common, settings, chosen)


@validate.command("crops")
@common_options
@click.option("--mixes", default=None,
              help='Patch scale mixes, ";" between mixes [default: "1;1,0.5;0.5,0.25;1,0.25;0.25"].')
@connection_options
def crops(settings: ConnectionSettings, mixes: str | None, **options: Any) -> None:
    """Figure 18: core sets with other patch scale mixes against the default 1 / 0.5 / 0.25.

    \b
    Example:
      neurflow validate crops -m efficientnet-lite0 -c Samoyed --mixes "1;1,0.5;0.25"
    """
    common = pop_common(options)
    _run_study("crops", common, settings, given_options(mixes=parse_mixes(mixes)))
