"""``neurflow-ingest``: build class circuits and write them into Neo4j, or write circuits already built.

    neurflow-ingest --model efficientnet-lite0 --classes "Samoyed, golden retriever" --images DIR [engine options]
    neurflow-ingest --from circuits/

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

from ingest.pipeline import ingest_folders, summary_table
from neurflow.cli.db import connection_options
from neurflow.cli.errors import CleanErrorsCommand, lost_connection
from neurflow.cli.options import config_from_options, engine_options, split_list
from neurflow.format import find_circuits
from neurflow.graph.connection import ConnectionSettings, Neo4jConnectionError, open_driver
from neurflow.graph.schema import ensure_schema
from neurflow.graph.writer import DEFAULT_BATCH_ROWS


@click.command(
    "neurflow-ingest",
    cls=CleanErrorsCommand,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Already complete circuits are skipped unless --force. An ingestion that dies leaves its circuit "
    "incomplete (invisible to queries); the next run deletes and rewrites it.",
)
@click.option("--from", "from_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Write the circuits already built under this folder (by `neurflow build`); no model needed.")
@click.option("--classes", "-c", default=None, help="Comma-separated class names, indices or wnids to build.")
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
def main(settings: ConnectionSettings, from_dir: Path | None, classes: str | None, images: Path | None, out: Path,
         force: bool, batch_rows: int, verbose: bool, no_progress: bool, **options: Any) -> None:
    """Build NeurFlow class circuits and write them into Neo4j (or write circuits already built, --from)."""
    class_list = split_list(classes)
    if from_dir is not None:
        if class_list or images is not None or options.get("model"):
            raise click.UsageError("--from writes circuits already built: leave out --model, --classes and --images")
    elif not (options.get("model") and class_list and images is not None):
        raise click.UsageError("give --model, --classes and --images to build circuits, or --from DIR")
    if from_dir is None:
        _check_writable(out)  # before connecting or building: an unwritable --out fails at once

    driver = open_driver(settings)  # Neo4jConnectionError (names the URI) before anything is built
    try:
        ensure_schema(driver, settings.database)  # DataModelVersionError before anything is built
        if from_dir is not None:
            folders = find_circuits(from_dir)
            if not folders:
                raise click.ClickException(f"no circuit under {from_dir} (looked for */circuit.json)")
        else:
            assert class_list is not None and images is not None
            folders = _build(options, class_list, images, out, progress=not no_progress)
        results = ingest_folders(driver, folders, database=settings.database, force=force, batch_rows=batch_rows,
                                 echo=click.echo, verbose=verbose)
    except (ServiceUnavailable, SessionExpired) as error:
        # The general message of neurflow.cli.errors does not know the URI; this one names it. Only a lost
        # server: a file that cannot be written (OSError) is reported as what it is, by CleanErrorsCommand.
        raise Neo4jConnectionError(lost_connection(error, settings.uri)) from error
    finally:
        driver.close()
    click.echo("")
    click.echo(summary_table(results))
    failed = [r for r in results if r.result is None]
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(results)} circuit(s) were not written (see above)")


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


def _build(options: dict[str, Any], classes: list[str], images: Path, out: Path, progress: bool = True) -> list[Path]:
    from neurflow.engine.builder import build_circuits
    from neurflow.engine.models import ModelError
    from neurflow.engine.patches import DataError
    from neurflow.pictures import draw_circuit_folders

    config = config_from_options(options)
    try:
        folders = build_circuits(config, classes, images, out, echo=click.echo, progress=progress)
        draw_circuit_folders(folders)
        return folders
    except (DataError, ModelError) as error:
        built = find_circuits(out) if out.exists() else []
        raise click.ClickException(
            f"{error}" + (f"\nCircuits built so far are in {out}; write them with --from {out}" if built else "")
        ) from error


if __name__ == "__main__":  # pragma: no cover
    main()
