"""Held-out images of a circuit's class: images of D_c that the circuit was not built on.

A circuit's core neurons are chosen on its own images, so a study that measures them on those images measures
them where they were fitted. The optimality and fidelity studies measure on held-out images by default (and on
the circuit's own beside them, labelled ``in-sample``): the images of a folder (by default the folder that holds
all of the circuit's images) that belong to the class as the circuit chose its images (predicted as c, or
labelled c for a circuit built with ``--label-source folder``), less every image the circuit was built on (by
sha256), most confident first.

>>> held = circuit_held_out(loaded, circuit)             # doctest: +SKIP
>>> len(held.views), held.folder, held.reason            # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from neurflow.circuit import Circuit, ClassInfo
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import DataError, ViewImage, list_images, load_views, select_indices
from neurflow.engine.plans import PredictionCache, predict_folder

#: What a study measures on: the class's images the circuit was not built on, and the circuit's own.
EVIDENCE = ("held-out", "in-sample")


@dataclass
class HeldOut:
    """``views``: the held-out images (empty when there are none); ``folder``: where they were looked for;
    ``reason``: why there are none (empty when there are some); ``candidates``: the images of the folder that
    belong to the class, the circuit's own included."""

    views: list[ViewImage]
    folder: Path | None
    reason: str = ""
    candidates: int = 0


def ordered_evidence(found: Iterable[str]) -> list[str]:
    """The kinds of evidence among ``found``, held-out first (the one a study reads first)."""
    present = set(found)
    return [name for name in EVIDENCE if name in present]


def images_folder(paths: Sequence[str | Path]) -> Path | None:
    """The deepest folder holding every one of ``paths`` (None when there are none)."""
    if not paths:
        return None
    parents = [str(Path(p).resolve().parent) for p in paths]
    return Path(os.path.commonpath(parents))


def held_out_views(
    loaded: LoadedModel,
    target: ClassInfo,
    own_shas: Collection[str],
    own_paths: Sequence[str | Path],
    label_source: str = "predicted",
    folder: str | Path | None = None,
    max_images: int | None = None,
    batch_size: int = 32,
    cache: PredictionCache | None = None,
    progress: bool = False,
) -> HeldOut:
    """The images of ``target`` in ``folder`` (default: the folder holding all of ``own_paths``, the circuit's
    images) whose sha256 is not one of ``own_shas`` (the circuit's), most confident first, at most
    ``max_images`` (default: as many as the circuit has). ``label_source``: how the circuit chose its images
    (``predicted`` or ``folder``). ``cache``: where the folder's predictions are kept between runs
    (``neurflow-ingest``'s, :func:`~neurflow.engine.plans.default_cache_dir`; None: predicted now, not kept).
    ``progress``: a bar over the folder's predictions."""
    root = Path(folder) if folder is not None else images_folder(own_paths)
    if root is None or not root.is_dir():
        return HeldOut([], root, f"no folder to look for held-out images in ({root}): pass one")
    files = list_images(root)
    if not files:
        return HeldOut([], root, f"{root} holds no image")
    with tqdm(total=len(files), desc=f"held-out images of {root.name}", unit="image", disable=not progress,
              leave=False) as bar:
        predictions = predict_folder(loaded, files, cache, batch_size, bar.update)
    try:
        chosen = select_indices(target, [f.label for f in predictions.files], torch.from_numpy(predictions.logits),
                                label_source, None, loaded.categories)
    except DataError:
        return HeldOut([], root, f"no image of {root} is {target.name} ({label_source})")
    unseen = [i for i in chosen if predictions.shas[i] not in own_shas]
    if not unseen:
        return HeldOut([], root, f"every {target.name} image of {root} ({len(chosen)}) is one the circuit was built on",
                       len(chosen))
    cap = max_images if max_images is not None else len(own_shas)
    views, _ = load_views([predictions.files[i] for i in unseen[:cap]], loaded.preprocessing)
    return HeldOut(views, root, "" if views else "the held-out images could not be read", len(chosen))


def circuit_held_out(loaded: LoadedModel, circuit: Circuit, folder: str | Path | None = None,
                     max_images: int | None = None, batch_size: int = 32,
                     cache: PredictionCache | None = None, progress: bool = False) -> HeldOut:
    """:func:`held_out_views` of a circuit: its class, images and label source."""
    return held_out_views(loaded, circuit.target, {record.sha256 for record in circuit.images},
                          [record.path for record in circuit.images], str(circuit.params.get("label_source", "predicted")),
                          folder, max_images, batch_size, cache, progress)
