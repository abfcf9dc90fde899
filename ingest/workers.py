"""Class builds on Ray workers (``pip install 'neurflow[ray]'``): one actor per worker loads the model once and
builds the classes it is given; the driver hands out classes as workers free up and gets each folder back as
soon as it is saved, to write it into Neo4j while the others build.

``workers=N`` starts a local Ray with N actors: one GPU each when there are GPUs, else the CPU cores split
between them (``torch.set_num_threads``). ``address`` joins an existing cluster (``ray start --head``); its
workers must see the image folder and ``--out`` at the same paths (a shared file system).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from neurflow.engine.config import BuildConfig
from neurflow.engine.plans import ClassPlan, save_planned
from neurflow.errors import NeurflowError

Built = tuple[ClassPlan, Path | None, str | None]


class RayUnavailableError(NeurflowError, RuntimeError):
    """Ray is not installed, or the cluster cannot be reached."""


class ClassBuilderActor:
    """A worker: the model loaded once, then one class built and saved per call."""

    def __init__(self, config: BuildConfig, out: str, threads: int):
        from neurflow.engine.builder import CircuitBuilder
        from neurflow.engine.models import load_model

        if threads > 0:
            torch.set_num_threads(threads)
        device = config.device
        if device is None and torch.cuda.is_available():
            device = "cuda"  # the GPU Ray gave this actor (CUDA_VISIBLE_DEVICES)
        loaded = load_model(config.model, config.weights, config.random_weights, device, config.layers,
                            config.seed)
        self.builder = CircuitBuilder(loaded, config, progress=False)
        self.out = Path(out)

    def build(self, plan: ClassPlan) -> str:
        from neurflow.pictures import draw_circuit_folders

        folder, _ = save_planned(self.builder, plan, self.out)
        draw_circuit_folders([folder])
        return str(folder)


def _ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError(
            "--workers and --ray-address need Ray: pip install 'neurflow[ray]' (or run without them)") from error
    return ray


def ray_builds(config: BuildConfig, plans: Sequence[ClassPlan], out: Path, workers: int, address: str | None,
               retries: int) -> Iterator[Built]:
    """Builds ``plans`` on Ray workers; yields each plan with its saved folder (or its error after
    ``retries`` more tries) in the order they finish."""
    ray = _ray()
    gpus = torch.cuda.device_count() if config.device in (None, "cuda") else 0
    started = not ray.is_initialized()
    if started:
        try:
            if address:
                ray.init(address=address, log_to_driver=False)
            else:
                ray.init(num_cpus=max(workers, os.cpu_count() or 1), num_gpus=gpus, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise RayUnavailableError(f"cannot start or join Ray ({address or 'local'}): {error}") from error
    try:
        count = workers or int(ray.cluster_resources().get("GPU", 0)) or 1
        per_gpu = 1 if gpus or (address and ray.cluster_resources().get("GPU", 0)) else 0
        threads = 0 if per_gpu else max(1, (os.cpu_count() or 1) // count)
        actor = ray.remote(num_cpus=1, num_gpus=per_gpu)(ClassBuilderActor)
        actors = [actor.remote(config, str(out), threads) for _ in range(min(count, len(plans)))]
        yield from _schedule(ray, actors, list(plans), retries)
    finally:
        if started:
            ray.shutdown()


def _schedule(ray: Any, actors: list[Any], plans: list[ClassPlan], retries: int) -> Iterator[Built]:
    """Gives each idle actor the next class; a failed class goes to the back of the queue while it has tries
    left. A failed actor (its process died) is replaced by nothing: the others finish the work."""
    queue = [(plan, 0) for plan in plans]
    running: dict[Any, tuple[ClassPlan, int, Any]] = {}
    idle = list(actors)
    while queue or running:
        while queue and idle:
            plan, tries = queue.pop(0)
            worker = idle.pop()
            running[worker.build.remote(plan)] = (plan, tries, worker)
        if not running:  # every actor died
            for plan, _ in queue:
                yield plan, None, "no Ray worker left"
            return
        [done], _ = ray.wait(list(running), num_returns=1)
        plan, tries, worker = running.pop(done)
        try:
            folder = ray.get(done)
        except Exception as error:  # noqa: BLE001 - the class's build raised on the worker, or the worker died
            if not isinstance(error, ray.exceptions.ActorDiedError):
                idle.append(worker)  # a dead actor is not given work again
            if tries < retries:
                queue.append((plan, tries + 1))
            else:
                yield plan, None, _reason(error)
            continue
        idle.append(worker)
        yield plan, Path(folder), None


def _reason(error: BaseException) -> str:
    cause = getattr(error, "cause", None) or error
    text = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {text[-1] if text else ''}"
