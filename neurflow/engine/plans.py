"""The one build pipeline of ``neurflow build``, ``neurflow-ingest`` and its Ray workers: the folder's images
predicted once (and cached), every class planned before anything is built (its images D_c, chosen by one rule, and
its circuit id), then one class built at a time, seeded per class, here or on a worker. Pictures are drawn by the
callers, outside the engine.

The predictions of a folder are cached per model and weights, keyed by each image's sha256
(:class:`PredictionCache`), so a rerun or a parallel worker never predicts an image again. A plan knows its
circuit id before the build, which lets an ingestion skip a class whose circuit is already in the graph or
already saved under ``--out``.

>>> loaded = load_model("efficientnet-lite0")                                       # doctest: +SKIP
>>> predictions = predict_folder(loaded, list_images("imagewoof-val"), PredictionCache(cache_dir, loaded))  # doctest: +SKIP
>>> plans = [plan_class(loaded, config, t, predictions) for t in resolve_classes(loaded, ["all"], predictions, "predicted")]  # doctest: +SKIP
>>> folders = build_circuits(BuildConfig("efficientnet-lite0", k=10, steps=8, max_images=4),
...                          ["Samoyed"], "images/", "circuits/")                          # doctest: +SKIP
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from neurflow.circuit import Circuit, ClassInfo, circuit_id
from neurflow.engine.builder import CircuitBuilder, ClassResult, Echo
from neurflow.engine.config import BuildConfig
from neurflow.engine.models import LoadedModel, load_model
from neurflow.engine.patches import (
    DataError,
    ImageFile,
    list_images,
    load_views,
    predict_views,
    select_indices,
)
from neurflow.format import file_sha256, folder_name, save_circuit
from neurflow.outputs import writable_folder

#: Every class the model predicts for some image of the folder (or every folder label, with label source
#: ``folder``).
ALL_CLASSES = "all"


def default_cache_dir() -> Path:
    """``$NEURFLOW_CACHE/predictions``, else ``~/.cache/neurflow/predictions``."""
    root = os.environ.get("NEURFLOW_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "neurflow") / "predictions"


class PredictionCache:
    """The logits of images for one model and weights, keyed by image sha256, in one ``.npz`` file.

    Adding rows locks the file (``fcntl``), rereads it, merges and replaces it atomically, so processes
    predicting at the same time lose nothing.
    """

    def __init__(self, folder: str | Path, loaded: LoadedModel):
        slug = re.sub(r"[^a-z0-9]+", "-", loaded.name.lower()).strip("-")
        weights = hashlib.sha256(loaded.weights_id.encode()).hexdigest()[:16]
        self.path = Path(folder) / f"{slug}-{weights}.npz"
        self.weights_id = loaded.weights_id
        self.classes = len(loaded.categories)

    def load(self) -> dict[str, np.ndarray]:
        if not self.path.exists():
            return {}
        with np.load(self.path, allow_pickle=False) as data:
            if str(data["weights_id"]) != self.weights_id or data["logits"].shape[1:] != (self.classes,):
                return {}  # a hash collision of the file name, or another head: not ours
            return dict(zip(data["sha256"].tolist(), data["logits"], strict=True))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add(self, rows: dict[str, np.ndarray]) -> None:
        if not rows:
            return
        with self._locked():
            merged = {**self.load(), **rows}
            shas = sorted(merged)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".npz")
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, sha256=np.array(shas), logits=np.stack([merged[s] for s in shas]).astype(np.float32),
                         weights_id=np.array(self.weights_id))
            os.replace(tmp, self.path)


@dataclass
class FolderPredictions:
    """The readable images of a folder with their sha256 and logits [images, classes]; ``skipped``: the
    unreadable ones; ``predicted``: how many were predicted now (the others came from the cache)."""

    files: list[ImageFile]
    shas: list[str]
    logits: np.ndarray
    skipped: list[ImageFile]
    predicted: int


def predict_folder(loaded: LoadedModel, files: Sequence[ImageFile], cache: PredictionCache | None,
                   batch_size: int = 32, progress: Callable[[int], object] | None = None) -> FolderPredictions:
    """Logits of every readable image, from the cache where it has them; the others are predicted in batches
    (only ``batch_size`` images in memory at once) and added to the cache. ``progress(n)`` after each batch."""
    shas = [file_sha256(f.path) for f in files]
    known = cache.load() if cache is not None else {}
    missing = [i for i, sha in enumerate(shas) if sha not in known]
    new: dict[str, np.ndarray] = {}
    skipped: list[ImageFile] = []
    for start in range(0, len(missing), batch_size):
        batch = [files[i] for i in missing[start : start + batch_size]]
        views, unreadable = load_views(batch, loaded.preprocessing)
        skipped += unreadable
        if views:
            with torch.no_grad():
                logits = predict_views(loaded, views, batch_size).numpy()
            new.update({v.sha256: row for v, row in zip(views, logits, strict=True)})
        if progress is not None:
            progress(len(batch))
    if cache is not None:
        cache.add(new)
    rows = {**known, **new}
    kept = [i for i, sha in enumerate(shas) if sha in rows]
    logits = np.stack([rows[shas[i]] for i in kept]) if kept else np.zeros((0, len(loaded.categories)), np.float32)
    return FolderPredictions([files[i] for i in kept], [shas[i] for i in kept], logits.astype(np.float32), skipped,
                             len(new))


def readable_predictions(loaded: LoadedModel, files: Sequence[ImageFile], images: str | Path,
                         cache: PredictionCache | None, echo: Echo, batch_size: int = 32,
                         progress: Callable[[int], object] | None = None) -> FolderPredictions:
    """:func:`predict_folder` of the files of the folder ``images``, the unreadable ones reported through
    ``echo``; DataError when none can be read."""
    predictions = predict_folder(loaded, files, cache, batch_size, progress)
    if predictions.skipped:
        shown = ", ".join(str(f.path) for f in predictions.skipped[:3])
        more = f" and {len(predictions.skipped) - 3} more" if len(predictions.skipped) > 3 else ""
        echo(f"skipped {len(predictions.skipped)} unreadable image(s) of {len(files)}: {shown}{more}")
    if not predictions.files:
        raise DataError(f"none of the {len(files)} image(s) in {images} could be read")
    return predictions


def resolve_classes(loaded: LoadedModel, classes: Sequence[str], predictions: FolderPredictions,
                    label_source: str) -> list[ClassInfo]:
    """The classes to build: the names, indices or wnids given, or for ``all`` every class predicted for some
    image (``label_source="folder"``: every folder label that names a class), in class-index order."""
    if list(classes) != [ALL_CLASSES]:
        if ALL_CLASSES in classes:
            raise DataError(f"'{ALL_CLASSES}' stands alone: give it instead of class names, not among them")
        targets = [loaded.resolve_class(name) for name in classes]
    elif label_source == "folder":
        labels = sorted({f.label for f in predictions.files if f.label})
        if not labels:
            raise DataError("--classes all with --label-source folder needs an ImageFolder (<wnid or class>/file)")
        targets = [loaded.resolve_class(label) for label in labels]
    else:
        targets = [loaded.resolve_class(int(i)) for i in np.unique(predictions.logits.argmax(1))]
    unique = {t.index: t for t in targets}
    return [unique[i] for i in sorted(unique)]


@dataclass
class ClassPlan:
    """One class to build: its target, its images D_c (files, sha256, logits rows), the id its circuit will
    have and the folder it will be saved in (under ``--out``)."""

    target: ClassInfo
    files: list[ImageFile]
    shas: list[str]
    logits: np.ndarray
    circuit_id: str
    folder: str


def circuit_params(loaded: LoadedModel, config: BuildConfig) -> dict[str, Any]:
    """The ``params`` a circuit built with ``config`` records (and its id hashes)."""
    return config.circuit_params() | {"layers": list(loaded.check_layers(config.layers or loaded.layers))}


def plan_class(loaded: LoadedModel, config: BuildConfig, target: ClassInfo,
               predictions: FolderPredictions) -> ClassPlan:
    """D_c of ``target`` and the id of its circuit; DataError when no image is predicted (or labelled) c."""
    labels = [f.label for f in predictions.files]
    chosen = select_indices(target, labels, torch.from_numpy(predictions.logits), config.label_source,
                            config.max_images, loaded.categories)
    shas = [predictions.shas[i] for i in chosen]
    cid = circuit_id(loaded.info, target, circuit_params(loaded, config), shas)
    return ClassPlan(target, [predictions.files[i] for i in chosen], shas, predictions.logits[chosen], cid,
                     folder_name(target, loaded.name, cid))


def save_planned(builder: CircuitBuilder, plan: ClassPlan, out: Path) -> tuple[Path, Circuit]:
    """Builds a plan's circuit and saves it in ``out / plan.folder`` (its picture is the caller's); returns the
    folder and the circuit."""
    start = time.perf_counter()
    result = build_planned(builder, plan)
    result.circuit.timings["total"] = time.perf_counter() - start
    return save_circuit(result.circuit, out / plan.folder, result.vectors, result.thumbnails), result.circuit


def build_planned(builder: CircuitBuilder, plan: ClassPlan) -> ClassResult:
    """Builds the circuit of a plan (seeded per class, so the order and the worker do not matter); DataError
    when its images changed or became unreadable since they were predicted."""
    views, unreadable = load_views(plan.files, builder.loaded.preprocessing)
    if unreadable or [v.sha256 for v in views] != plan.shas:
        raise DataError(f"{plan.target.name}: its images changed since they were predicted; run again")
    torch.manual_seed(builder.config.seed)
    result = builder.build(plan.target, views, torch.from_numpy(plan.logits))
    if result.circuit.id != plan.circuit_id:
        raise RuntimeError(f"{plan.target.name}: built circuit {result.circuit.id}, planned {plan.circuit_id}")
    return result


def build_circuits(
    config: BuildConfig,
    classes: Sequence[str],
    images: str | Path,
    out: str | Path,
    echo: Echo = print,
    progress: bool = True,
    cache: PredictionCache | None = None,
) -> list[Path]:
    """Builds and saves the circuit of each class (``neurflow build``); returns their folders
    (``out/<index>-<name>.<model>.<id>``), without pictures.

    Classes are resolved before any work, so a typo fails fast with the closest names. The folder's images are
    predicted once (from ``cache`` where it has them), each class planned and built as ``neurflow-ingest`` does.
    A class without images is reported and skipped; the others are still built. Raises DataError at the end if
    any failed.
    """
    writable_folder(out, "circuits")
    loaded = load_model(config.model, config.weights, config.random_weights, config.device, config.layers,
                        config.seed)
    targets = [loaded.resolve_class(name) for name in classes]
    if not targets:
        raise DataError("no class given")
    builder = CircuitBuilder(loaded, config, progress=progress, echo=echo)  # checks the layers before the scan
    files = list_images(images)
    with tqdm(total=len(files), desc="predictions", unit="image", disable=not progress, leave=False) as bar:
        predictions = readable_predictions(loaded, files, images, cache, echo, config.patches_per_pass(loaded.device),
                                           progress=bar.update)
    echo(f"{loaded.name} ({loaded.weights_id}) on {loaded.device}; {len(predictions.files)} images; "
         f"layers {', '.join(config.layers or loaded.layers)}")
    folders: list[Path] = []
    failures: list[str] = []
    for target in targets:
        try:
            plan = plan_class(loaded, config, target, predictions)
        except DataError as error:
            echo(f"{target.name}: {error}")
            failures.append(target.name)
            continue
        echo(f"{target.name} ({target.index}): {len(plan.files)} images, {len(plan.files) * 59} patches")
        folder, c = save_planned(builder, plan, Path(out))
        folders.append(folder)
        echo(f"{target.name}: {sum(len(n) for n in c.neurons.values())} core neurons, "
             f"{len(c.semantic_groups)} semantic groups, {len(c.edges)} edges, {len(c.neuron_groups)} neuron "
             f"groups in {c.timings['total']:.1f} s -> {folder}")
    if failures:
        raise DataError(f"no circuit for {', '.join(failures)} (see above); built {len(folders)}")
    return folders
