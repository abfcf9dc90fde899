"""What a validation study runs on: a class circuit, the model it was built with, and the class's patches.

``StudyInputs`` is built by :func:`study_inputs` from a circuit folder (a built circuit, or the folder the
graph's circuit was ingested from). The studies only read it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import UnidentifiedImageError

from neurflow.circuit import Circuit
from neurflow.engine.config import LEGACY_GROUP_SPACE, LEGACY_STEPS_RULE, BuildConfig
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import ImageFile, PatchSet, ViewImage, list_images, load_view
from neurflow.engine.plans import PredictionCache
from neurflow.engine.recording import Recording, record_patches
from neurflow.errors import CircuitLookupError
from neurflow.experiments.ablation import ABLATIONS
from neurflow.experiments.held_out import HeldOut, circuit_held_out
from neurflow.format import file_sha256, load_circuit
from neurflow.registry import Preprocessing


@dataclass
class StudyInputs:
    """A circuit with what is needed to recompute its parts.

    ``views``: the class's images D_c as the circuit used them (same order: patch ids match the circuit's);
    ``patches``: their crops at the circuit's scales; ``config``: the circuit's build settings (tau, k, steps,
    quadrature, ranking, batch sizes, device); ``ablation``: ``zero`` or ``mean``; ``replacement``: per layer,
    the value each channel is set to when it is knocked out (``mean``: its mean over the class's patches and
    positions; absent or zeros for ``zero``).
    """

    loaded: LoadedModel
    circuit: Circuit
    folder: Path
    views: list[ViewImage]
    patches: PatchSet
    config: BuildConfig
    ablation: str = "zero"
    replacement: dict[str, torch.Tensor] = field(default_factory=dict)
    recorded: list[Recording] = field(default_factory=list)
    """The class's patches recorded once (:func:`class_recording`); a copy of the inputs for another ablation
    shares this list, and with it the recording."""
    held_out: HeldOut | None = None
    """Images of the class the circuit was not built on (:func:`with_held_out`); None: not looked for."""
    held_out_recorded: list[Recording] = field(default_factory=list)


# Settings that circuits built before they existed were built with: a circuit's params omit them then
# (docs/format.md), so a missing key means this value, not the current default.
LEGACY_SETTINGS: dict[str, Any] = {"group_space": LEGACY_GROUP_SPACE, "class_token": "exclude",
                                   "steps_rule": LEGACY_STEPS_RULE}
# BuildConfig fields that say how to run, not what the circuit is: never read from a circuit's params.
RUNTIME_SETTINGS = frozenset({"model", "weights", "random_weights", "device", "batch_size", "ig_batch_size",
                              "map_cache_mb", "stability_resamples", "extra"})


class StudyInputError(CircuitLookupError, ValueError):
    """A circuit whose model, weights or images cannot be reproduced here; the message says what to pass. A
    :class:`~neurflow.errors.CircuitLookupError`, like every failure to find or open a circuit."""


def study_inputs(
    circuit_folder: str | Path,
    *,
    weights: str | Path | None = None,
    random_weights: bool = False,
    device: str | None = None,
    ablation: str = "zero",
    images: str | Path | None = None,
    progress: bool = True,
    loaded: LoadedModel | None = None,
    circuit: Circuit | None = None,
    views: list[ViewImage] | None = None,
) -> StudyInputs:
    """Everything a validation study needs to recompute parts of the circuit in ``circuit_folder``.

    The model is loaded with ``weights`` (default: the pretrained ones; a circuit built with random weights gets
    them again from its seed) and must have the circuit's weights id. The build settings are the circuit's own
    (tau, k, steps, quadrature, ranking, layers, ...). The images are the circuit's, in its order, each checked
    against its recorded sha256; ``images``: a folder to find them in (by content) when they have moved. With
    ``ablation="mean"``, the class's recording (:func:`class_recording`, made now and kept for the studies)
    gives, for every layer below the top, each channel's mean over patches and positions (``replacement``, [C]
    float32 tensors on the CPU).
    """
    if ablation not in ABLATIONS:
        raise StudyInputError(f"ablation must be one of {ABLATIONS}, not {ablation!r}")
    folder = Path(circuit_folder)
    if circuit is None:  # ``circuit``: the folder's circuit, when the caller has read it already
        circuit = load_circuit(folder)
    random_weights = rebuilds_random_weights(circuit, weights, random_weights)
    loaded = circuit_model(circuit, weights, random_weights, device, loaded)
    config = circuit_config(circuit, weights, random_weights, device)
    if views is None:  # ``views``: the circuit's images (:func:`circuit_views`), when the caller has them already
        views = circuit_views(circuit, loaded.preprocessing, images)
    patches = PatchSet(views, loaded.preprocessing)
    check_patches(circuit, patches)
    return with_ablation(StudyInputs(loaded, circuit, folder, views, patches, config), ablation, progress)


def with_ablation(inputs: StudyInputs, ablation: str, progress: bool = True) -> StudyInputs:
    """The same inputs (model, images, recording shared) for ``ablation``: ``mean`` sets each layer's knocked-out
    channels to their means over the class's patches and positions, from the class's one recording."""
    if ablation not in ABLATIONS:
        raise StudyInputError(f"ablation must be one of {ABLATIONS}, not {ablation!r}")
    replacement: dict[str, torch.Tensor] = {}
    if ablation == "mean":
        means = class_recording(inputs, progress).means
        replacement = {layer: torch.from_numpy(means[layer].astype(np.float64).mean(0).astype(np.float32))
                       for layer in inputs.circuit.layers[1:]}
    return replace(inputs, ablation=ablation, replacement=replacement)


def with_held_out(inputs: StudyInputs, folder: str | Path | None = None, max_images: int | None = None,
                  cache: PredictionCache | None = None, progress: bool = False) -> StudyInputs:
    """The same inputs with the class's held-out images (:func:`~neurflow.experiments.held_out.circuit_held_out`:
    images of ``folder``, by default the one holding the circuit's images, that the circuit was not built on; at
    most ``max_images``, by default as many as the circuit has; ``cache``: the folder's predictions kept between
    runs)."""
    held = circuit_held_out(inputs.loaded, inputs.circuit, folder, max_images, cache=cache, progress=progress)
    return replace(inputs, held_out=held, held_out_recorded=[])


def held_out_recording(inputs: StudyInputs, progress: bool = True) -> Recording | None:
    """The held-out images' patches recorded with the circuit's layers and settings, on first use only; None
    when there are no held-out images."""
    if inputs.held_out is None or not inputs.held_out.views:
        return None
    if not inputs.held_out_recorded:
        patches = PatchSet(inputs.held_out.views, inputs.loaded.preprocessing)
        inputs.held_out_recorded.append(record_patches(inputs.loaded, inputs.circuit.layers, patches, inputs.config,
                                                       progress=progress))
    return inputs.held_out_recorded[0]


def class_recording(inputs: StudyInputs, progress: bool = True) -> Recording:
    """The class's patches recorded with the circuit's layers and settings, on first use only: every layer's
    spatial means, and the lower layers' full outputs that fit in the circuit's ``map_cache_mb``."""
    if not inputs.recorded:
        inputs.recorded.append(record_patches(inputs.loaded, inputs.circuit.layers, inputs.patches, inputs.config,
                                              progress=progress))
    return inputs.recorded[0]


def rebuilds_random_weights(circuit: Circuit, weights: str | Path | None, random_weights: bool) -> bool:
    """Whether the model is loaded with random weights: asked for, or (no ``weights`` given) the circuit was
    built with them, reproducible from its seed (the weights id confirms it)."""
    return random_weights or (weights is None and circuit.model.weights_id.startswith("random:"))


def circuit_model(circuit: Circuit, weights: str | Path | None = None, random_weights: bool = False,
                  device: str | None = None, loaded: LoadedModel | None = None) -> LoadedModel:
    """The model the circuit was built with: ``loaded`` (a model loaded already) or loaded now with ``weights``
    (default: the pretrained ones; a circuit built with random weights gets them again from its seed), its
    weights id checked against the circuit's (StudyInputError naming what to pass)."""
    from neurflow.engine.models import load_model

    wanted = circuit.model.weights_id
    random_weights = rebuilds_random_weights(circuit, weights, random_weights)
    if loaded is None:
        loaded = load_model(circuit.model.name, weights, random_weights, device, list(circuit.layers),
                            int(circuit.params.get("seed", 0)))
    if loaded.weights_id != wanted:
        raise StudyInputError(
            f"circuit {circuit.id} was built with {circuit.model.name} weights {wanted}, but the loaded weights "
            f"are {loaded.weights_id}: pass --weights FILE with the weights it was built with"
        )
    return loaded


def circuit_config(circuit: Circuit, weights: str | Path | None = None, random_weights: bool = False,
                   device: str | None = None) -> BuildConfig:
    """The circuit's build settings as a BuildConfig (how to run: from the arguments).

    Keys this neurflow does not know are kept in ``extra``; settings newer than the circuit take the value
    circuits were built with before they existed (``LEGACY_SETTINGS``).
    """
    known = {f.name for f in fields(BuildConfig)} - RUNTIME_SETTINGS
    values = {name: value for name, value in LEGACY_SETTINGS.items() if name in known}
    values |= {name: value for name, value in circuit.params.items() if name in known}
    values["layers"] = list(circuit.layers)
    unknown = {name: value for name, value in circuit.params.items() if name not in known}
    try:
        return BuildConfig(model=circuit.model.name, weights=None if weights is None else str(weights),
                           random_weights=random_weights, device=device, extra=unknown, **values)
    except (TypeError, ValueError) as error:
        raise StudyInputError(f"circuit {circuit.id} has build settings this neurflow cannot use: {error}") from error


def circuit_views(circuit: Circuit, prep: Preprocessing, images: str | Path | None = None) -> list[ViewImage]:
    """The circuit's images D_c in its order, each checked against its recorded sha256.

    A recorded path that is missing or holds other bytes is looked up by content in ``images`` when given.
    """
    moved: dict[str, Path] | None = None
    views = []
    for position, record in enumerate(circuit.images):
        path = Path(record.path)
        if images is not None and not (path.is_file() and file_sha256(path) == record.sha256):
            if moved is None:
                moved = {file_sha256(f.path): f.path for f in list_images(images)}
            path = moved.get(record.sha256, path)
        where = f"image {position} of circuit {circuit.id}"
        if not path.is_file():
            hint = f"nor in {images}" if images is not None else "pass --images DIR holding it"
            raise StudyInputError(f"{where} is missing: {record.path} ({hint})")
        try:
            view = load_view(ImageFile(path, record.label), prep)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
            raise StudyInputError(f"{where} cannot be read: {path} ({error})") from error
        if view.sha256 != record.sha256:
            raise StudyInputError(
                f"{where} has changed: {path} has sha256 {view.sha256[:16]}..., the circuit recorded "
                f"{record.sha256[:16]}...; pass --images DIR holding the original"
            )
        views.append(view)
    return views


def check_patches(circuit: Circuit, patches: PatchSet) -> None:
    """The patches must be the circuit's (same ids, boxes and scales), or the studies' patch ids would lie."""
    if len(patches) != len(circuit.patches):
        raise StudyInputError(f"circuit {circuit.id} has {len(circuit.patches)} patches, its images give "
                              f"{len(patches)}: it was built with other patch scales")
    for record in circuit.patches:
        if (patches.refs[record.id].scale != record.scale or patches.original_box(record.id) != tuple(record.box)
                or patches.refs[record.id].image != record.image):
            raise StudyInputError(f"patch {record.id} of circuit {circuit.id} is not where its images put it "
                                  f"({record.box} at scale {record.scale}): other preprocessing?")


# --------------------------------------------------------------------------- which circuit, which layers


def study_layers(circuit: Circuit, layers: Sequence[str] | None = None) -> list[str]:
    """The upper layers a study looks at: ``layers`` (checked to be the circuit's, bottom excluded: it has no
    layer below), by default every layer but the bottom, logit side first."""
    uppers = list(circuit.layers[:-1])
    if not layers:
        return uppers
    unknown = [layer for layer in layers if layer not in uppers]
    if unknown:
        raise StudyInputError(
            f"{', '.join(map(repr, unknown))} is not an upper layer of circuit {circuit.id}: choose from "
            f"{', '.join(uppers)} (the bottom layer {circuit.layers[-1]} has no layer below it in the circuit)"
        )
    return [layer for layer in uppers if layer in layers]
