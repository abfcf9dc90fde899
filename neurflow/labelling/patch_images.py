"""The patch images sent to the LLM: a crop of the original image at the patch box (original pixels), resized
and JPEG-encoded; the circuit folder's thumbnail when the original is missing, unreadable or changed.
"""

from __future__ import annotations

import base64
import io
import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from neurflow.circuit import Circuit
from neurflow.format import THUMBNAIL_DIR, file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodedImage:
    patch: int
    mime: str
    data: bytes
    width: int
    height: int
    source: str  # "original" or "thumbnail"

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def _encode(image: Image.Image, fmt: str = "JPEG", quality: int = 90) -> tuple[bytes, str]:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format=fmt, quality=quality)
    return buffer.getvalue(), Image.MIME[fmt]


class PatchImages:
    """Encodes a circuit's patches: crop of the original image at the patch box, longer side ``size``, JPEG;
    the folder's thumbnail (sent as stored, with its real MIME type) when the original is missing, unreadable
    or not the file the circuit was built from (other sha256)."""

    def __init__(self, circuit: Circuit, folder: str | Path | None, size: int = 224, check_sha256: bool = True):
        self.circuit = circuit
        self.folder = Path(folder) if folder is not None else None
        self.size = size
        self.check_sha256 = check_sha256
        self._patches = {p.id: p for p in circuit.patches}
        self._originals: dict[int, bool] = {}
        self._encoded: dict[int, EncodedImage | None] = {}
        self.fallbacks: list[int] = []

    def _original_ok(self, image_index: int) -> bool:
        if image_index not in self._originals:
            record = self.circuit.images[image_index]
            path = Path(record.path)
            ok = path.is_file()
            if ok and self.check_sha256:
                ok = file_sha256(path) == record.sha256
                if not ok:
                    log.warning("%s is not the image the circuit was built from (sha256 differs)", path)
            self._originals[image_index] = ok
        return self._originals[image_index]

    def get(self, patch_id: int) -> EncodedImage | None:
        if patch_id not in self._encoded:
            self._encoded[patch_id] = self._load(patch_id)
        return self._encoded[patch_id]

    def _load(self, patch_id: int) -> EncodedImage | None:
        record = self._patches[patch_id]
        if self._original_ok(record.image):
            try:
                with Image.open(self.circuit.images[record.image].path) as original:
                    crop = original.convert("RGB").crop(record.box)
                scale = self.size / max(crop.size)
                crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                                   Image.Resampling.BICUBIC)
                data, mime = _encode(crop)
                return EncodedImage(patch_id, mime, data, crop.width, crop.height, "original")
            except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
                log.warning("cannot crop patch %d from %s: %s", patch_id, self.circuit.images[record.image].path,
                            error)
        thumb = self.folder / THUMBNAIL_DIR / f"{patch_id}.jpg" if self.folder is not None else None
        if thumb is not None and thumb.is_file():
            try:
                data = thumb.read_bytes()
                with Image.open(io.BytesIO(data)) as image:
                    fmt, width, height = image.format, image.width, image.height
                    if fmt not in ("JPEG", "PNG", "WEBP", "GIF"):
                        data, mime = _encode(image, "PNG")
                        fmt = "PNG"
                mime = Image.MIME[fmt or "PNG"]
                self.fallbacks.append(patch_id)
                return EncodedImage(patch_id, mime, data, width, height, "thumbnail")
            except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
                log.warning("cannot read thumbnail %s: %s", thumb, error)
        warnings.warn(f"patch {patch_id}: neither the original image nor a thumbnail can be read; left out",
                      stacklevel=2)
        return None

    def of(self, patch_ids: Sequence[int]) -> list[EncodedImage]:
        return [image for image in (self.get(p) for p in patch_ids) if image is not None]
