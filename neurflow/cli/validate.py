"""``neurflow validate correlation|optimality|k-sensitivity|crops``: the paper's evidence for core concept neurons,
recomputed on one class circuit.

Each command finds the circuit (``--circuit-dir``, or the graph's circuit of ``-c CLASS`` by the one rule of
:mod:`neurflow.graph.circuits`), loads what it was built from (:func:`~neurflow.experiments.validation.inputs.
study_inputs`), runs the study of :mod:`neurflow.experiments.validation`, writes ``<out>/<study>.csv`` and
``.png``, prints the summary and a short table, and records a ValidationStudy in the graph
(:mod:`neurflow.graph.validation`; ``--no-record`` skips the graph, so a built folder needs no Neo4j).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from neurflow.cli.db import connection_options
from neurflow.cli.errors import CleanErrorsGroup
from neurflow.cli.options import split_list
from neurflow.experiments.ablation import ABLATIONS
from neurflow.experiments.validation.result import StudyResult
from neurflow.graph.connection import ConnectionSettings
from neurflow.workbench.client import GraphClient

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


def _common_options(func: F) -> F:
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
                     help="Folder for <study>.csv and <study>.png; default: runs/validation/<study>-<circuit id>."),
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


def _common(options: dict[str, Any]) -> Common:
    """Pops the shared options out of a command's keyword arguments."""
    values = {name: options.pop(name, None) for name in COMMON_NAMES}
    return Common(
        circuit_dir=values["circuit_dir"], model=values["model"], class_=values["class_"],
        circuit_id=values["circuit_id"], weights=values["weights"], images=values["images"],
        layers=split_list(values["layers"]), targets=values["targets"], ablation=values["ablation"],
        device=values["device"], out=values["out"], progress=not values["no_progress"],
        record=not values["no_record"],
    )


def _numbers(text: str | None, kind: type, name: str) -> list[Any] | None:
    """``"1,2,5"`` -> ``[1, 2, 5]``; None when not given (the study's default)."""
    parts = split_list(text)
    if parts is None:
        return None
    try:
        return [kind(part) for part in parts]
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of {kind.__name__}s",
                                 param_hint=name) from None


def _mixes(text: str | None) -> list[tuple[float, ...]] | None:
    """``"1;1,0.5;0.5,0.25"`` -> ``[(1.0,), (1.0, 0.5), (0.5, 0.25)]``."""
    if text is None or not text.strip():
        return None
    mixes = []
    for part in text.split(";"):
        scales = _numbers(part, float, "--mixes")
        if not scales:
            raise click.BadParameter(f"{text!r} has an empty mix", param_hint="--mixes")
        mixes.append(tuple(scales))
    return mixes


def _given(**values: Any) -> dict[str, Any]:
    """The study options the user gave: the others keep the study function's defaults."""
    return {name: value for name, value in values.items() if value is not None}


# --------------------------------------------------------------------------- the shared run


def _check_recordable(graph: GraphClient, circuit_id: str) -> None:
    """Before the long work: the circuit must be a complete circuit of the graph to be recorded."""
    from neurflow.graph.circuits import CircuitNotFoundError, circuit_by_id

    try:
        circuit_by_id(graph.driver, circuit_id, graph.database)
    except CircuitNotFoundError as error:
        raise CircuitNotFoundError(f"{error}: ingest it (`neurflow-ingest`), or pass --no-record") from error


def _run_study(study: str, common: Common, settings: ConnectionSettings, options: dict[str, Any]) -> None:
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
        if graph is not None and common.record:
            _check_recordable(graph, circuit.id)
        click.echo(f"{study}: circuit {circuit.id} of {circuit.target.name!r} ({circuit.model.name}, "
                   f"{circuit.model.weights_id}) in {handle.folder}; layers {', '.join(layers)}"
                   + (f"; {common.ablation} ablation" if common.ablation else ""), err=True)
        run = run_study(handle, StudySettings(study, layers, common.targets, common.ablation or "zero", **options))
        out = Path(common.out) if common.out else Path("runs") / "validation" / f"{study}-{circuit.id}"
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
    click.echo(f"\nCSV: {csv_path}\nPlot: {png_path}")
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
@_common_options
@ablation_option
@click.option("--sizes", default=None, help="Knockout set sizes [default: 1,2,5,10,20,30,50].")
@click.option("--sets-per-size", type=click.IntRange(2), default=None,
              help="Random neuron sets per size [default: 20]; size 1 also takes every single neuron.")
@click.option("--singles", type=click.IntRange(2), default=None,
              help="At size 1, a seeded sample of this many single neurons; default: every neuron (the paper).")
@click.option("--seed", default=0, show_default=True, help="Seed of the random sets.")
@connection_options
def correlation(settings: ConnectionSettings, sizes: str | None, sets_per_size: int | None, singles: int | None,
                seed: int, **options: Any) -> None:
    """Figure 6: L(S, a) against the summed |T(a, s)| over random neuron sets S, per set size.

    \b
    Example:
      neurflow validate correlation -m efficientnet-lite0 -c Samoyed --targets 8 --sizes 1,5,20
    """
    common = _common(options)
    chosen = _given(sizes=_numbers(sizes, int, "--sizes"), sets_per_size=sets_per_size, singles=singles)
    _run_study("correlation", common, settings, chosen | {"seed": seed})


@validate.command("optimality")
@_common_options
@ablation_option
@click.option("--taus", default=None, help="Core set sizes [default: 10,30,50].")
@click.option("--random-sets", type=click.IntRange(2), default=None,
              help="Random sets of the same size per target [default: 100].")
@click.option("--seed", default=0, show_default=True, help="Seed of the random sets.")
@connection_options
def optimality(settings: ConnectionSettings, taus: str | None, random_sets: int | None, seed: int,
               **options: Any) -> None:
    """Figure 4: L(core set, a) against random sets and two baselines of the same size.

    \b
    Example:
      neurflow validate optimality -m efficientnet-lite0 -c Samoyed --taus 10,30 --random-sets 50
    """
    common = _common(options)
    chosen = _given(taus=_numbers(taus, int, "--taus"), random_sets=random_sets)
    _run_study("optimality", common, settings, chosen | {"seed": seed})


@validate.command("k-sensitivity")
@_common_options
@click.option("--ks", default=None, help="Concept sizes k [default: 30,50,70,...,190].")
@click.option("--reference-k", type=click.IntRange(1), default=None, help="The k compared with [default: 50].")
@connection_options
def k_sensitivity(settings: ConnectionSettings, ks: str | None, reference_k: int | None, **options: Any) -> None:
    """Table 5: core sets for other k against k = 50 (mean overlap out of tau).

    \b
    Example:
      neurflow validate k-sensitivity -m efficientnet-lite0 -c Samoyed --ks 30,50,90,190
    """
    common = _common(options)
    _run_study("k-sensitivity", common, settings, _given(ks=_numbers(ks, int, "--ks"), reference_k=reference_k))


@validate.command("crops")
@_common_options
@click.option("--mixes", default=None,
              help='Patch scale mixes, ";" between mixes [default: "1;1,0.5;0.5,0.25;1,0.25;0.25"].')
@connection_options
def crops(settings: ConnectionSettings, mixes: str | None, **options: Any) -> None:
    """Figure 18: core sets with other patch scale mixes against the default 1 / 0.5 / 0.25.

    \b
    Example:
      neurflow validate crops -m efficientnet-lite0 -c Samoyed --mixes "1;1,0.5;0.25"
    """
    common = _common(options)
    _run_study("crops", common, settings, _given(mixes=_mixes(mixes)))
