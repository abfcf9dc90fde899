"""Atlas ingestion: every class planned first, then each one built (here, or on Ray workers) and written into
Neo4j as soon as it is built; a rerun skips what is done.

For each planned class (``neurflow.engine.plans``: its images and its circuit id, known before building):
its complete circuit is already in the graph: *skipped*; its folder is already saved under ``--out``: written
from the folder (*from folder*, nothing rebuilt); else *built*, then written. A class that fails is reported
and built again up to ``retries`` times; the others go on. A summary line counts each kind.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import neo4j
from tqdm import tqdm

from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.config import BuildConfig
from neurflow.engine.models import LoadedModel, load_model
from neurflow.engine.patches import DataError, list_images
from neurflow.engine.plans import (
    ClassPlan,
    PredictionCache,
    default_cache_dir,
    plan_class,
    readable_predictions,
    resolve_classes,
    save_planned,
)
from neurflow.format import CIRCUIT_FILE
from neurflow.graph.reads import circuit_status
from neurflow.ingest.pipeline import Echo, FolderResult, ingest_folder
from neurflow.pictures import draw_circuit_folders

Built = tuple[ClassPlan, Path | None, str | None]
"""A plan with the folder its circuit was saved in, or the error that stopped it."""


@dataclass
class AtlasOptions:
    """How an atlas run goes: where circuits are saved and predictions cached, how many workers (0: build in
    this process), which Ray cluster, how often a failed class is tried again, whether complete circuits are
    rewritten, how many classes are written into Neo4j at once (threads of this process)."""

    out: Path
    cache_dir: Path | None = None
    workers: int = 0
    ray_address: str | None = None
    retries: int = 1
    force: bool = False
    batch_rows: int = 5000
    progress: bool = True
    writers: int = 1


@dataclass
class AtlasSummary:
    """What an atlas run did: classes built, written from saved folders, skipped (complete in the graph),
    failed (with the error), and the seconds it took."""

    built: list[str] = field(default_factory=list)
    from_folder: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self) -> str:
        failed = f", failed {len(self.failed)} ({', '.join(self.failed)})" if self.failed else ", failed 0"
        return (f"Classes: built {len(self.built)}, written from saved folders {len(self.from_folder)}, "
                f"skipped {len(self.skipped)} (complete in the graph){failed}; {self.seconds:.1f} s")


def plan_atlas(loaded: LoadedModel, config: BuildConfig, classes: Sequence[str], images: Path,
               cache_dir: Path | None, echo: Echo, progress: bool) -> tuple[list[ClassPlan], dict[str, str]]:
    """Predictions of the folder (cached) and the plan of each class; classes without images are returned as
    failures ``{name: reason}``, not raised."""
    CircuitBuilder(loaded, config, progress=False)  # the layers (names, order) checked before the scan
    files = list_images(images)
    cache = PredictionCache(cache_dir or default_cache_dir(), loaded)
    with tqdm(total=len(files), desc="predictions", unit="image", disable=not progress, leave=False) as bar:
        predictions = readable_predictions(loaded, files, images, cache, echo, progress=bar.update)
    echo(f"{loaded.name} ({loaded.weights_id}); {len(predictions.files)} images, {predictions.predicted} predicted "
         f"now, {len(predictions.files) - predictions.predicted} from the cache ({cache.path})")
    plans: list[ClassPlan] = []
    failed: dict[str, str] = {}
    for target in resolve_classes(loaded, classes, predictions, config.label_source):
        try:
            plans.append(plan_class(loaded, config, target, predictions))
        except DataError as error:
            echo(f"{target.name}: {error}")
            failed[target.name] = str(error)
    return plans, failed


def _build_here(loaded: LoadedModel, config: BuildConfig, plans: Sequence[ClassPlan], out: Path,
                retries: int) -> Iterator[Built]:
    builder = CircuitBuilder(loaded, config, progress=False)
    for plan in plans:
        error = None
        for _ in range(retries + 1):
            try:
                folder, _ = save_planned(builder, plan, out)
                draw_circuit_folders([folder])
                yield plan, folder, None
                break
            except Exception as failure:  # noqa: BLE001 - a failed class is reported; the others go on
                error = f"{type(failure).__name__}: {failure}"
        else:
            yield plan, None, error


def run_atlas(driver: neo4j.Driver, config: BuildConfig, classes: Sequence[str], images: Path,
              options: AtlasOptions, *, database: str | None = None, echo: Echo = print) -> tuple[
                  list[FolderResult], AtlasSummary]:
    """Plans, builds (or finds) and writes every class; returns the per-folder results and the summary."""
    start = time.perf_counter()
    loaded = load_model(config.model, config.weights, config.random_weights, config.device, config.layers,
                        config.seed)
    plans, failed = plan_atlas(loaded, config, classes, images, options.cache_dir, echo, options.progress)
    summary = AtlasSummary(failed=failed)
    results: list[FolderResult] = []
    to_build: list[ClassPlan] = []
    ready: list[ClassPlan] = []
    for plan in plans:
        if not options.force and circuit_status(driver, plan.circuit_id, database) == "complete":
            summary.skipped.append(plan.target.name)
        elif (options.out / plan.folder / CIRCUIT_FILE).exists():
            ready.append(plan)
        else:
            to_build.append(plan)
    echo(f"{len(plans)} classes planned: {len(summary.skipped)} complete in the graph, {len(ready)} saved under "
         f"{options.out}, {len(to_build)} to build"
         + (f" on {options.workers} Ray worker(s)" if options.workers or options.ray_address else ""))
    bar = tqdm(total=len(ready) + len(to_build), desc="classes", unit="class", disable=not options.progress)

    lock = threading.Lock()
    say = (lambda text: bar.write(text)) if options.progress else echo

    def write(plan: ClassPlan, folder: Path, kind: list[str]) -> None:
        item = ingest_folder(driver, folder, database=database, force=options.force,
                             batch_rows=options.batch_rows, echo=say)
        with lock:
            results.append(item)
            if item.result is None:
                summary.failed[plan.target.name] = item.error or "not written"
            else:
                kind.append(plan.target.name)
            bar.update(1)

    # Writes run beside the builds: on threads of their own, so a worker's next class never waits for Neo4j.
    with bar, ThreadPoolExecutor(max_workers=max(1, options.writers), thread_name_prefix="writer") as pool:
        pending = [pool.submit(write, plan, options.out / plan.folder, summary.from_folder) for plan in ready]
        for plan, folder, error in _builds(loaded, config, to_build, options):
            if folder is None:
                say(f"{plan.target.name}: build failed: {error}")
                with lock:
                    summary.failed[plan.target.name] = error or "failed"
                    bar.update(1)
            else:
                pending.append(pool.submit(write, plan, folder, summary.built))
        for future in pending:
            future.result()  # a lost server ends the run here, as in a serial ingestion
    summary.seconds = time.perf_counter() - start
    return results, summary


def _builds(loaded: LoadedModel, config: BuildConfig, plans: Sequence[ClassPlan],
            options: AtlasOptions) -> Iterator[Built]:
    if not plans:
        return iter(())
    if options.workers or options.ray_address:
        from neurflow.ingest.workers import ray_builds

        return ray_builds(config, plans, options.out, options.workers, options.ray_address, options.retries)
    return _build_here(loaded, config, plans, options.out, options.retries)


