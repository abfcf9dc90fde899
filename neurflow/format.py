"""The versioned on-disk circuit format (see docs/format.md).

A circuit folder holds:

- ``circuit.json``: the graph and its metadata (``formatVersion`` first), exact floats;
- ``vectors.npz``: per layer, the spatial-mean activations of the core neurons over the class's patches
  (``act/<layer>``, rows = patch ids, columns = ``channels/<layer>``) and the semantic groups' representative
  vectors (``sg/<layer>``, rows in ``sgkeys/<layer>`` order);
- ``thumbnails/<patch id>.jpg``: small JPEGs of every patch that appears in a concept.

May import: numpy, Pillow, ``neurflow.circuit``, ``neurflow.errors``; no torch, Neo4j or subpackage.
"""

from __future__ import annotations

import hashlib
import json
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


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def class_folder_name(target: ClassInfo) -> str:
    """The folder name of a class circuit before format 1.1: ``0207-golden-retriever`` (still read)."""
    return f"{target.index:04d}-{_slug(target.name)}"


def circuit_folder_name(circuit: Circuit) -> str:
    """Folder name of a circuit: class, model and id, ``0207-golden-retriever.efficientnet-lite0.3f2a9c1d5e7b8a90``,
    so circuits of other models, weights, settings or images never replace each other in one ``--out``."""
    return f"{class_folder_name(circuit.target)}.{_slug(circuit.model.name)}.{circuit.id}"


def thumbnail_uri(folder: str | Path, patch_id: int) -> str:
    return (Path(folder).resolve() / THUMBNAIL_DIR / f"{patch_id}.jpg").as_uri()


def circuit_to_dict(circuit: Circuit) -> dict[str, Any]:
    data = asdict(circuit)
    data.pop("format_version")
    return {"formatVersion": circuit.format_version, "id": circuit.id, **data}


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
        created=data.get("created", ""),
        format_version=version,
    )


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    # A crash mid-write must never leave a truncated circuit file behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
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
        os.replace(tmp, folder / VECTORS_FILE)
    # circuit.json last: its presence marks a complete folder.
    payload = json.dumps(circuit_to_dict(circuit), indent=1, allow_nan=False).encode()
    _atomic_write_bytes(folder / CIRCUIT_FILE, payload)
    return folder


def load_circuit(folder: str | Path) -> Circuit:
    """Read a circuit folder written by :func:`save_circuit` (or a ``circuit.json`` path)."""
    path = Path(folder)
    if path.is_dir():
        path = path / CIRCUIT_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {CIRCUIT_FILE} in {path.parent}: build one with `neurflow build`")
    return circuit_from_dict(json.loads(path.read_text()))


def load_vectors(folder: str | Path) -> dict[str, np.ndarray]:
    with np.load(Path(folder) / VECTORS_FILE, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def find_circuits(root: str | Path) -> list[Path]:
    """Every circuit folder under ``root`` (``root`` itself included), sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.rglob(CIRCUIT_FILE))
