"""The only files `neurflow serve` sends: a circuit's thumbnails (inside the circuit folder the graph records) and
the circuit's own images (paths the graph records as its images), drawn with a patch's box. Nothing else on disk
is read for a request: a path is found from the graph by circuit id, never taken from the request.

A Patch node is shared by the circuits that use it (merged by image and box), and its ``thumbnailUri`` names
the folder of the first circuit written with it, which may be gone. So a thumbnail is found in the asked
circuit's own folder instead: its ``circuit.json`` maps the patch's key (image sha256 and box) to the patch id,
the thumbnail's file name.
"""

from __future__ import annotations

import functools
import io
from pathlib import Path

from PIL import Image, ImageDraw

from neurflow.errors import NeurflowError
from neurflow.format import CIRCUIT_FILE, THUMBNAIL_DIR, load_circuit
from neurflow.graph.rows import patch_key

IMAGE_SIDE = 512
"""Served images are scaled to fit this side (the box is drawn before scaling)."""


class NotServedError(NeurflowError, LookupError):
    """A file that is not one a circuit owns, or that is gone."""


@functools.lru_cache(maxsize=64)
def _thumbnails_of(folder: str, stamp: int) -> dict[str, Path]:
    """Patch key -> thumbnail file of the circuit in ``folder`` (``stamp``: circuit.json's mtime, so an
    edited folder is read again)."""
    circuit = load_circuit(folder)
    root = Path(folder) / THUMBNAIL_DIR
    return {patch_key(circuit.images[p.image].sha256, p.box): root / f"{p.id}.jpg" for p in circuit.patches}


def thumbnail_file(folder: str | None, key: str) -> Path:
    """The thumbnail of the patch ``key`` in the circuit folder ``folder`` (the graph's record of it)."""
    if folder is None:
        raise NotServedError("the graph records no folder for this circuit")
    manifest = Path(folder) / CIRCUIT_FILE
    if not manifest.is_file():
        raise NotServedError(f"the circuit's folder {folder} is not on this machine")
    path = _thumbnails_of(str(Path(folder).resolve()), manifest.stat().st_mtime_ns).get(key)
    if path is None or not path.is_file():
        raise NotServedError(f"no thumbnail of patch {key[:24]} in the circuit's folder")
    return path


def boxed_image(path: str, box: list[int] | None) -> bytes:
    """The image at ``path`` (one the graph records for the circuit) as PNG, ``box`` outlined, scaled to fit
    :data:`IMAGE_SIDE`."""
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, ValueError) as error:
        raise NotServedError(f"the image {Path(path).name} cannot be read: {error}") from error
    if box and len(box) == 4:
        width = max(2, round(max(image.size) / 150))
        ImageDraw.Draw(image).rectangle([int(v) for v in box], outline=(255, 64, 32), width=width)
    image.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
