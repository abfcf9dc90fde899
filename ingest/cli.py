"""``neurflow-ingest``: build class circuits and write them into Neo4j, or write circuits already built.

    neurflow-ingest --model efficientnet-lite0 --classes "Samoyed, golden retriever" --images DIR [engine options]
    neurflow-ingest --model efficientnet-lite0 --classes all --images DIR --workers 2    # an atlas, on Ray
    neurflow-ingest --from circuits/

Building is streaming and resumable (``ingest.atlas``): every class is planned first (its images and circuit
id), then each class is built and written as soon as it is built; a rerun skips classes complete in the graph
and writes those already saved under ``--out`` without building them again.

Connection: ``--uri --user --password --database`` (env ``NEO4J_URI`` ...; default: the local server of
``neurflow db start``). The connection is checked before anything is built or written. Expected failures
(``NeurflowError``, Neo4j's errors) become one line through ``CleanErrorsCommand`` (``neurflow.cli.errors``).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click
from neo4j.exceptions import ServiceUnavailable, SessionExpired

from neurflow.cli.db import connection_options
from neurflow.cli.errors import CleanErrorsCommand, lost_connection
from neurflow.cli.options import config_from_options, engine_options, split_list
from neurflow.format import find_circuits
from neurflow.graph.connection import ConnectionSettings, Neo4jConnectionError, open_driver
from neurflow.graph.ingestion import DEFAULT_BATCH_ROWS
from neurflow.graph.schema import ensure_schema
from neurflow.ingest.pipeline import ingest_folders, summary_table


@click.command(
    "neurflow-ingest",
    cls=CleanErrorsCommand,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Already complete circuits are skipped unless --force, and classes saved under --out are written "
    "without building them again. An ingestion that dies leaves its circuit incomplete (invisible to queries); "
    "the next run deletes and rewrites it.",
)
@click.option("--from", "from_dir", type=click.Path(exists=True, path_type=Path), default=None,
              help="Write the circuits already built under this folder (by `neurflow build`), or the one of a "
                   "`neurflow export --format json` file (unpacked under --out first, its labels restored); no "
                   "model needed.")
@click.option("--classes", "-c", default=None,
              help="Comma-separated class names, indices or wnids to build, or 'all': every class the model "
                   "predicts for some image (every folder label with --label-source folder).")
@click.option("--classes-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A file of classes to build, one per line (# comments).")
@click.option("--workers", type=click.IntRange(0), default=0, show_default=True,
              help="Build on a local Ray with this many workers (one GPU each, else the CPU cores split); 0: "
                   "in this process. Needs pip install 'neurflow[ray]'.")
@click.option("--ray-address", default=None, help="Build on this Ray cluster (e.g. ray://head:10001, auto).")
@click.option("--writers", type=click.IntRange(1), default=1, show_default=True,
              help="Classes written into Neo4j at once (threads): beside the builds, or of the folders of --from.")
@click.option("--retries", type=click.IntRange(0), default=1, show_default=True,
              help="Times a class whose build failed is built again before it is reported as failed.")
@click.option("--predictions-cache", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the cached predictions (per model and weights, by image sha256); default: "
                   "$NEURFLOW_CACHE/predictions or ~/.cache/neurflow/predictions.")
@click.option("--images", "-i", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Image folder (flat, or ImageFolder <wnid>/file) to build the circuits from.")
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), default=Path("circuits"),
              show_default=True, help="Where built circuits are saved before they are written.")
@click.option("--force", is_flag=True,
              help="Rewrite complete circuits in one transaction, keeping labels and experiment links of the "
                   "groups that stay the same.")
@click.option("--batch-rows", type=click.IntRange(1), default=DEFAULT_BATCH_ROWS, show_default=True,
              help="Rows (about: relationships) per write transaction.")
@click.option("--verbose", "-v", is_flag=True, help="Print every write step.")
@click.option("--no-progress", is_flag=True, help="No progress bars while building.")
@engine_options(model_required=False)  # a model is only needed to build
@connection_options
def main(settings: ConnectionSettings, from_dir: Path | None, classes: str | None, classes_file: Path | None,
         workers: int, ray_address: str | None, writers: int, retries: int, predictions_cache: Path | None,
         images: Path | None, out: Path, force: bool, batch_rows: int, verbose: bool, no_progress: bool, **options: Any) -> None:
    """Build NeurFlow class circuits and write them into Neo4j (or write circuits already built, --from)."""
    class_list = _class_list(classes, classes_file)
    if from_dir is not None:
        if class_list or images is not None or options.get("model"):
            raise click.UsageError("--from writes circuits already built: leave out --model, --classes and --images")
    elif not (options.get("model") and class_list and images is not None):
        raise click.UsageError("give --model, --classes (or --classes-file) and --images to build circuits, or "
                               "--from DIR")
    document = None
    if from_dir is not None and from_dir.is_file():
        from neurflow.export import read_document, unpack_document

        document = read_document(from_dir)  # a DocumentError before connecting when it is no export
        _check_writable(out)
        from_dir = unpack_document(document, out)
    if from_dir is None:
        _check_writable(out)  # before connecting or building: an unwritable --out fails at once

    driver = open_driver(settings)  # Neo4jConnectionError (names the URI) before anything is built
    try:
        ensure_schema(driver, settings.database)  # DataModelVersionError before anything is built
        summary = None
        if from_dir is not None:
            folders = find_circuits(from_dir)
            if not folders:
                raise click.ClickException(f"no circuit under {from_dir} (looked for */circuit.json)")
            results = ingest_folders(driver, folders, database=settings.database, force=force,
                                     batch_rows=batch_rows, echo=click.echo, verbose=verbose, writers=writers)
            if document is not None and document.get("labels") and all(r.result is not None for r in results):
                from neurflow.graph.labels import restore_labels

                restored = restore_labels(driver, str(document["circuit"]["id"]), document["labels"],
                                          settings.database)
                click.echo(f"restored {restored} label(s) of the export")
        else:
            assert class_list is not None and images is not None
            from neurflow.ingest.atlas import AtlasOptions, run_atlas  # the engine (torch) only when building

            atlas = AtlasOptions(out=out, cache_dir=predictions_cache, workers=workers, ray_address=ray_address,
                                 retries=retries, force=force, batch_rows=batch_rows, progress=not no_progress,
                                 writers=writers)
            results, summary = run_atlas(driver, config_from_options(options), class_list, images, atlas,
                                         database=settings.database, echo=click.echo)
    except (ServiceUnavailable, SessionExpired) as error:
        # The general message of neurflow.cli.errors does not know the URI; this one names it. Only a lost
        # server: a file that cannot be written (OSError) is reported as what it is, by CleanErrorsCommand.
        raise Neo4jConnectionError(lost_connection(error, settings.uri)) from error
    finally:
        driver.close()
    click.echo("")
    click.echo(summary_table(results))
    if summary is not None:
        click.echo(summary.line())
        if summary.failed:
            raise click.ClickException(f"{len(summary.failed)} class(es) were not built or written (see above); "
                                       "run the same command again to retry them")
        return
    failed = [r for r in results if r.result is None]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} circuit(s) were not written (see above)")


def _class_list(classes: str | None, classes_file: Path | None) -> list[str] | None:
    """The classes of --classes and of --classes-file (one per line, ``#`` comments), in that order."""
    names = split_list(classes) or []
    if classes_file is not None:
        for line in classes_file.read_text().splitlines():
            name = line.split("#", 1)[0].strip()
            if name:
                names.append(name)
        if not names:
            raise click.UsageError(f"--classes-file {classes_file} names no class")
    return names or None


def _check_writable(out: Path) -> None:
    """``out`` exists (created if needed) and takes files; a one-line error naming it otherwise."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as error:
        raise click.ClickException(
            f"cannot write the circuits to --out {out}: {error.strerror or error}; choose another folder with --out"
        ) from error


if __name__ == "__main__":  # pragma: no cover
    main()
