"""The versioned on-disk circuit format (see docs/format.md).

A circuit folder holds:

- ``circuit.json``: the graph and its metadata (``formatVersion`` first), exact floats;
- ``vectors.npz``: per layer, the spatial-mean activations of the core neurons over the class's patches
  (``act/<layer>``, rows = patch ids, columns = ``channels/<layer>``) and the semantic groups' representative
  vectors (``sg/<layer>``, rows in ``sgkeys/<layer>`` order);
- ``thumbnails/<patch id>.jpg``: small JPEGs of every patch that appears in a concept.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from neurflow.circuit import (
    FORMAT_VERSION,
    Circuit,
    ClassInfo,
    CoreNeuron,
    Edge,
    GroupEdge,
    ImageRecord,
    ModelInfo,
    NeuronGroup,
    PatchRecord,
    SemanticGroup,
    Stability,
    TargetCoverage,
)
from neurflow.errors import NeurflowError

CIRCUIT_FILE = "circuit.json"
VECTORS_FILE = "vectors.npz"
THUMBNAIL_DIR = "thumbnails"


class FormatError(NeurflowError, ValueError):
    """A circuit folder that this version cannot read."""


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """sha256 of a file's bytes (images in provenance, weights files in a model's identity)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def jsonable(value: Any) -> Any:
    """``value`` as strict JSON data: NaN and infinities become null, numpy scalars and arrays plain numbers and
    lists, tuples lists, keys text. Every result neurflow writes as JSON goes through :func:`strict_json`.

    >>> jsonable({"a": float("nan"), "b": (1, np.float32(0.5))})
    {'a': None, 'b': [1, 0.5]}
    """
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    return value


def strict_json(value: Any, **options: Any) -> str:
    """JSON text of ``value`` that every JSON reader accepts (no NaN: see :func:`jsonable`)."""
    return json.dumps(jsonable(value), allow_nan=False, **options)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def class_folder_name(target: ClassInfo) -> str:
    """The folder name of a class circuit before format 1.1: ``0207-golden-retriever`` (still read)."""
    return f"{target.index:04d}-{_slug(target.name)}"


def folder_name(target: ClassInfo, model_name: str, circuit_id: str) -> str:
    """Folder name of a circuit: class, model and id, ``0207-golden-retriever.efficientnet-lite0.3f2a9c1d5e7b8a90``,
    so circuits of other models, weights, settings or images never replace each other in one ``--out``."""
    return f"{class_folder_name(target)}.{_slug(model_name)}.{circuit_id}"


def circuit_folder_name(circuit: Circuit) -> str:
    """:func:`folder_name` of ``circuit``."""
    return folder_name(circuit.target, circuit.model.name, circuit.id)


def thumbnail_uri(folder: str | Path, patch_id: int) -> str:
    return (Path(folder).resolve() / THUMBNAIL_DIR / f"{patch_id}.jpg").as_uri()


def circuit_to_dict(circuit: Circuit) -> dict[str, Any]:
    data = asdict(circuit)
    data.pop("format_version")
    if not data["integration"]:
        data.pop("integration")  # optional (format 1.1): only circuits built with steps="auto" have it
    if not data["layouts"]:
        data.pop("layouts")  # optional (format 1.1): only circuits with a channels-last or token layer have it
    # Both optional (format 1.2): absent from circuits built before them, or without the bootstrap. A share with
    # nothing to divide by is NaN: written as null, so that circuit.json stays strict JSON.
    for optional in ("coverage", "stability"):
        if data[optional]:
            data[optional] = jsonable(data[optional])
        else:
            data.pop(optional)
    return {"formatVersion": circuit.format_version, "id": circuit.id, **data}


def _number(value: Any) -> float:
    """A share read back: null (nothing to divide by) is NaN again."""
    return float("nan") if value is None else float(value)


def _target_coverage(row: dict[str, Any]) -> TargetCoverage:
    """A coverage record read back."""
    numbers = {k: _number(v) for k, v in row.items() if k not in ("layer", "channel", "lower_layer")}
    return TargetCoverage(layer=str(row["layer"]), channel=int(row["channel"]), lower_layer=str(row["lower_layer"]),
                          **numbers)


def _stability(data: dict[str, Any]) -> Stability:
    """A bootstrap record read back: rows as tuples."""
    return Stability(
        resamples=int(data["resamples"]), level=float(data["level"]), seed=int(data["seed"]),
        core=[(str(t), str(s), _number(f)) for t, s, f in data.get("core", [])],
        edges=[(str(g), str(s), _number(lo), _number(hi)) for g, s, lo, hi in data.get("edges", [])],
        semantic_groupings=[(str(n), int(c), _number(sil), _number(ari))
                            for n, c, sil, ari in data.get("semantic_groupings", [])],
        neuron_groupings=[(str(n), int(c), _number(sil), _number(ari))
                          for n, c, sil, ari in data.get("neuron_groupings", [])],
        semantic_groups=[(str(key), _number(v)) for key, v in data.get("semantic_groups", [])],
        neuron_groups=[(str(key), _number(v)) for key, v in data.get("neuron_groups", [])],
    )


def circuit_from_dict(data: dict[str, Any]) -> Circuit:
    version = str(data.get("formatVersion", ""))
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise FormatError(f"circuit format {version!r} is not readable by this neurflow (reads {FORMAT_VERSION})")
    return Circuit(
        model=ModelInfo(**data["model"]),
        target=ClassInfo(**data["target"]),
        layers=list(data["layers"]),
        params=dict(data["params"]),
        images=[ImageRecord(**r) for r in data["images"]],
        patches=[PatchRecord(id=r["id"], image=r["image"], box=tuple(r["box"]), scale=r["scale"]) for r in data["patches"]],
        neurons={layer: [CoreNeuron(**n) for n in ns] for layer, ns in data["neurons"].items()},
        semantic_groups=[SemanticGroup(**g) for g in data["semantic_groups"]],
        edges=[Edge(**e) for e in data["edges"]],
        neuron_groups=[NeuronGroup(**g) for g in data["neuron_groups"]],
        group_edges=[GroupEdge(**e) for e in data["group_edges"]],
        timings=dict(data.get("timings", {})),
        integration=[dict(pair) for pair in data.get("integration", [])],
        layouts={str(layer): str(kind) for layer, kind in data.get("layouts", {}).items()},
        coverage=[_target_coverage(row) for row in data.get("coverage", [])],
        stability=_stability(data["stability"]) if data.get("stability") else None,
        created=data.get("created", ""),
        format_version=version,
    )


def file_mode() -> int:
    """The mode a new file gets (0666 less the umask): a temporary file made private by ``mkstemp`` gets it
    before it takes its final name, so every file of a circuit folder has the same permissions."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    # A crash mid-write must never leave a truncated circuit file behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_circuit(
    circuit: Circuit,
    folder: str | Path,
    vectors: dict[str, np.ndarray] | None = None,
    thumbnails: dict[int, Image.Image] | None = None,
) -> Path:
    """Write ``circuit`` (and optional vectors and thumbnails) into ``folder``; returns the folder."""
    folder = Path(folder)
    (folder / THUMBNAIL_DIR).mkdir(parents=True, exist_ok=True)
    for patch_id, thumb in (thumbnails or {}).items():
        thumb.convert("RGB").save(folder / THUMBNAIL_DIR / f"{patch_id}.jpg", quality=85)
    if vectors is not None:
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".npz")
        os.close(fd)
        np.savez_compressed(tmp, **vectors)  # type: ignore[arg-type]
        os.chmod(tmp, file_mode())
        os.replace(tmp, folder / VECTORS_FILE)
    # circuit.json last: its presence marks a complete folder.
    payload = json.dumps(circuit_to_dict(circuit), indent=1, allow_nan=False).encode()
    _atomic_write_bytes(folder / CIRCUIT_FILE, payload)
    return folder


def circuit_json_problem(data: Any) -> str | None:
    """What makes ``data`` (a parsed ``circuit.json``) no consistent circuit, in a few words; None when nothing
    does. Checks what a hand edit breaks and the writer would trip over: the parts present, a non-empty list of
    layers, every neuron and group in one of them, every patch box four integers of a listed image. A circuit
    of another format version is left to :func:`circuit_from_dict`, which names the versions it reads."""
    if not isinstance(data, dict):
        return f"holds a JSON {type(data).__name__}, not a circuit object"
    if str(data.get("formatVersion", "")).split(".")[0] != FORMAT_VERSION.split(".")[0]:
        return None
    missing = [part for part in ("model", "target", "layers", "params", "images", "patches", "neurons",
                                 "semantic_groups", "edges", "neuron_groups", "group_edges") if part not in data]
    if missing:
        return f"has no {', '.join(map(repr, missing))}"
    layers = data["layers"]
    if not isinstance(layers, list) or not all(isinstance(layer, str) and layer for layer in layers):
        return f"'layers' is {layers!r}, not a list of layer names"
    if not layers:
        return "'layers' is empty: a circuit has at least its logit layer"
    known = set(layers)

    def outside(what: str, layer: object) -> str:
        return f"{what} is in layer {layer!r}, which is not in 'layers' ({', '.join(layers)})"

    if not isinstance(data["neurons"], dict):
        return "'neurons' is not an object of layers"
    for layer, neurons in data["neurons"].items():
        if layer not in known:
            return outside("'neurons' has a list that", layer)
        for neuron in neurons if isinstance(neurons, list) else [None]:
            if not isinstance(neuron, dict) or neuron.get("layer") != layer:
                return f"'neurons' of layer {layer!r} holds {neuron!r}, not a neuron of that layer"
    for part, kind in (("semantic_groups", "semantic group"), ("neuron_groups", "neuron group")):
        if not isinstance(data[part], list):
            return f"'{part}' is not a list"
        for number, group in enumerate(data[part]):
            if not isinstance(group, dict):
                return f"{kind} {number} is {group!r}, not an object"
            if group.get("layer") not in known:
                name = group.get("id") or f"{group.get('layer')}:{group.get('channel')}/{group.get('index')}"
                return outside(f"{kind} {name!r}", group.get("layer"))
    images = data["images"]
    if not isinstance(images, list) or not isinstance(data["patches"], list):
        return "'images' and 'patches' must be lists"
    for number, patch in enumerate(data["patches"]):
        if not isinstance(patch, dict):
            return f"patch {number} is {patch!r}, not an object"
        box, image = patch.get("box"), patch.get("image")
        if not (isinstance(box, list) and len(box) == 4
                and all(isinstance(v, int) and not isinstance(v, bool) for v in box)):
            return f"patch {patch.get('id', number)} has box {box!r}, not four integers (left, top, right, bottom)"
        if not isinstance(image, int) or isinstance(image, bool) or not 0 <= image < len(images):
            return f"patch {patch.get('id', number)} is of image {image!r}, not one of the {len(images)} images"
    return None


def _read_circuit_json(path: Path) -> Circuit:
    """The circuit in ``path``, checked: a FormatError naming the file and the problem when it is not JSON
    (truncated, damaged) or not a consistent circuit (hand-edited: see :func:`circuit_json_problem`)."""
    try:
        data = json.loads(path.read_text())
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise FormatError(f"{path} is not valid JSON, truncated or damaged ({error}); build the circuit again "
                          "or restore the file") from None
    problem = circuit_json_problem(data)
    try:
        if problem is None:
            return circuit_from_dict(data)
    except FormatError as error:
        problem = str(error)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        problem = f"is not a circuit this neurflow reads ({type(error).__name__}: {error})"
    raise FormatError(f"{path}: {problem}")


def load_circuit(folder: str | Path) -> Circuit:
    """Read a circuit folder written by :func:`save_circuit` (or a ``circuit.json`` path)."""
    path = Path(folder)
    if path.is_dir():
        path = path / CIRCUIT_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {CIRCUIT_FILE} in {path.parent}: build one with `neurflow build`")
    return _read_circuit_json(path)


def load_vectors(folder: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(folder) / VECTORS_FILE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def find_circuits(root: str | Path) -> list[Path]:
    """Every circuit folder under ``root`` (``root`` itself included), sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(CIRCUIT_FILE))
