"""Where an experiment's inputs come from: the classes asked for, the circuit of a class in the graph (by
:mod:`neurflow.graph.circuits`' one rule), its groups, core neurons and images, an image folder, or the
circuit's folder on disk.

The commands call these and only parse arguments and print. Errors are NeurflowErrors whose message says what
to pass instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import neo4j

from neurflow.circuit import ClassInfo
from neurflow.classes import imagenet_categories, resolve_class
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import DataError, ImageFile, ViewImage, list_images, load_views
from neurflow.engine.plans import PredictionCache
from neurflow.engine.segments import resolve_token_activations
from neurflow.experiments.ablation import ABLATIONS, Ablation, mean_ablation
from neurflow.experiments.channels import Channels
from neurflow.experiments.experiment_properties import model_key_of
from neurflow.experiments.held_out import HeldOut, held_out_views
from neurflow.graph.circuits import CircuitNotFoundError, CircuitRef, circuit_by_id, find_circuit
from neurflow.graph.experiment_records import (
    circuit_images,
    core_neurons,
)


def resolve_classes(names: Sequence[str]) -> list[ClassInfo]:
    """Classes by name, index or wnid, without repeats; resolved before anything slow (every registered model
    is an ImageNet-1k classifier)."""
    categories = imagenet_categories()
    return list({t.index: t for t in (resolve_class(n, categories) for n in names)}.values())


def circuit_of_class(driver: neo4j.Driver, loaded: LoadedModel, target: ClassInfo, circuit_id: str | None = None,
                     database: str | None = None) -> CircuitRef:
    """The circuit ``circuit_id`` or the newest complete circuit of the class for the loaded model and weights.

    The layouts its layers were built with (``--layout``, ``--class-token``) are set on the loaded model, so that
    masks reach the neurons the circuit names."""
    ref = find_circuit(driver, model_key_of(loaded), target.index, circuit_id, database, target.name)
    params = json.loads(ref.params) if ref.params else {}
    modules = set(loaded.module_names())
    resolve_token_activations(loaded.module, [layer for layer in ref.layers if layer in modules],
                              params.get("class_token", "exclude"), params.get("layouts"), loaded.preprocessing.crop)
    return ref


# --------------------------------------------------------------------------- images


def views_of_circuit(driver: neo4j.Driver, circuit: CircuitRef, loaded: LoadedModel,
                     database: str | None = None) -> list[ViewImage]:
    """The circuit's own images D_c, from the paths the graph records."""
    records = circuit_images(driver, circuit.id, database)
    files = [ImageFile(Path(path), label) for path, label in records if path]
    present = [f for f in files if f.path.is_file()]
    if not present:
        raise DataError(
            f"the {len(files)} image(s) of circuit {circuit.id} are not on this machine "
            f"({files[0].path if files else 'no paths recorded'} ...): pass --images DIR"
        )
    views, _ = load_views(present, loaded.preprocessing)
    if not views:
        raise DataError(f"none of the images of circuit {circuit.id} could be read: pass --images DIR")
    return views


def class_views(loaded: LoadedModel, folder: str | Path, targets: Sequence[ClassInfo], max_images: int | None,
                batch_size: int, progress: bool = False) -> dict[int, list[ViewImage]]:
    """D_c of each class from an image folder: the images the model predicts as c, most confident first
    (``progress``: a bar over the folder's predictions)."""
    from neurflow.engine.patches import predict_views, select_class_images

    views, _ = load_views(list_images(folder), loaded.preprocessing)
    if not views:
        raise DataError(f"none of the images in {folder} could be read")
    logits = predict_views(loaded, views, batch_size, progress)
    return {
        t.index: [views[i] for i in select_class_images(t, views, logits, "predicted", max_images, loaded.categories)]
        for t in targets
    }


def image_view(path: Path, loaded: LoadedModel) -> ViewImage:
    """The view of one image file (unlabelled)."""
    views, _ = load_views([ImageFile(path, None)], loaded.preprocessing)
    if not views:
        raise DataError(f"{path} is not a readable image")
    return views[0]


def folder_views(folder: Path, loaded: LoadedModel) -> list[ViewImage]:
    """The views of every readable image of a folder (flat or class folders)."""
    views, _ = load_views(list_images(folder), loaded.preprocessing)
    return views


def experiment_ablation(loaded: LoadedModel, kind: str, layers: Sequence[str], class_views: Sequence[ViewImage],
                        reference: str | Path | None = None, batch_size: int = 32,
                        progress: bool = False) -> Ablation:
    """What masked channels of ``layers`` are set to: ``zero``, or (``mean``) their mean over the class's
    patches (the 59 crops of each of ``class_views``) or over the whole images of the folder ``reference``."""
    if kind not in ABLATIONS:
        raise ValueError(f"ablation must be one of {ABLATIONS}, not {kind!r}")
    if kind == "zero":
        if reference is not None:
            raise ValueError("reference images are for mean ablation (--ablation mean) only")
        return Ablation()
    if reference is None:
        return mean_ablation(loaded, layers, class_views, batch_size=batch_size, progress=progress)
    folder = Path(reference)
    views = folder_views(folder, loaded) if folder.is_dir() else []
    if not views:
        raise DataError(f"no readable image in the reference folder {folder}")
    return mean_ablation(loaded, layers, class_views, views, str(folder), batch_size, progress)


# --------------------------------------------------------------------------- what `neurflow fidelity` studies


@dataclass
class FidelityInputs:
    """Per class of a fidelity study: its circuit, core neurons (logit layer first), the circuit's own images
    (``views``) and the class's held-out images (``held_out``: absent when not asked for)."""

    circuits: list[CircuitRef]
    cores: dict[int, Channels]
    views: dict[int, list[ViewImage]]
    held_out: dict[int, HeldOut] = field(default_factory=dict)


def study_circuits(driver: neo4j.Driver, loaded: LoadedModel, targets: Sequence[ClassInfo],
                   circuit_ids: Sequence[str] = (), database: str | None = None,
                   asked: Sequence[str] | None = None) -> list[CircuitRef]:
    """The circuit of each class: one of ``circuit_ids`` (each checked to be of the model and one of the
    classes) or the class's newest complete one. ``asked``: the classes as the user wrote them (messages)."""
    key = model_key_of(loaded)
    by_class: dict[int, str] = {}
    for cid in circuit_ids:
        ref = circuit_by_id(driver, cid, database)
        if ref.model_key != key or ref.class_index not in {t.index for t in targets}:
            names = list(asked) if asked is not None else [t.name for t in targets]
            raise CircuitNotFoundError(f"circuit {cid} is the circuit of {ref.class_name!r} ({ref.model_key}), "
                                       f"not of one of {names} ({key})")
        by_class[ref.class_index] = cid
    return [circuit_of_class(driver, loaded, t, by_class.get(t.index), database) for t in targets]


def fidelity_inputs(
    driver: neo4j.Driver,
    loaded: LoadedModel,
    targets: Sequence[ClassInfo],
    circuit_ids: Sequence[str] = (),
    images: str | None = None,
    max_images: int | None = None,
    batch_size: int = 32,
    database: str | None = None,
    asked: Sequence[str] | None = None,
    held_out: bool = True,
    cache: PredictionCache | None = None,
    progress: bool = False,
) -> FidelityInputs:
    """The circuits, core neurons and images of a fidelity study: each circuit's own images (at most
    ``max_images``) and, with ``held_out``, the class's images the circuit was not built on, from ``images``
    (default: the folder holding the circuit's images; at most ``max_images``, default as many as the circuit
    has)."""
    circuits = study_circuits(driver, loaded, targets, circuit_ids, database, asked)
    cores = {c.class_index: core_neurons(driver, c.id, database) for c in circuits}
    own = {c.class_index: views_of_circuit(driver, c, loaded, database) for c in circuits}
    views = {k: v[:max_images] if max_images else v for k, v in own.items()}
    held: dict[int, HeldOut] = {}
    if held_out:
        by_index = {t.index: t for t in targets}
        for c in circuits:
            params = json.loads(c.params) if c.params else {}
            held[c.class_index] = held_out_views(
                loaded, by_index[c.class_index], {v.sha256 for v in own[c.class_index]},
                [v.file.path for v in own[c.class_index]], str(params.get("label_source", "predicted")), images,
                max_images or len(views[c.class_index]), batch_size, cache, progress)
    return FidelityInputs(circuits, cores, views, held)
