"""Search by image on the atlas page: an uploaded image checked before any model sees it, and the model loaded
once per model key, on first use (the pages that run no model never import torch).

Checks, each one clear message (UploadError): larger than MAX_UPLOAD_BYTES (refused by Flask before it is read),
not an image PIL can read, more than MAX_PIXELS pixels (a decompression bomb: refused from the header, before
the pixels are decoded).
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from PIL import Image, ImageDraw, UnidentifiedImageError

from neurflow.errors import NeurflowError
from neurflow.workbench.client import GraphClient

if TYPE_CHECKING:
    from neurflow.engine.models import LoadedModel
    from neurflow.experiments.search_image import ImageMatch

MAX_UPLOAD_BYTES = 16 * 2**20
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
MAX_PIXELS = 40_000_000
PREVIEW_SIDE = 320


class UploadError(NeurflowError, ValueError):
    """An upload that is not an image neurflow will read."""


@contextlib.contextmanager
def uploaded_image(stream: IO[bytes]) -> Iterator[Path]:
    """The upload as a temporary file, checked to be an image of at most MAX_PIXELS pixels; removed after."""
    fd, name = tempfile.mkstemp(prefix="neurflow-upload-")
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            while chunk := stream.read(1 << 20):
                handle.write(chunk)
        try:
            with Image.open(path) as image:  # reads the header only: the size is known before any decoding
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise UploadError(f"the image is {width} x {height} pixels; at most {MAX_PIXELS:,} are read")
                image.verify()
        except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as error:
            raise UploadError("the upload is not an image neurflow can read (JPEG, PNG, WebP ...)") from error
        yield path
    finally:
        path.unlink(missing_ok=True)


class ImageChoices:
    """The images of a folder (``neurflow serve --images``) that the search page offers to pick, by their path
    relative to it; a name not in the list is refused, so no other file is ever read."""

    LIMIT = 2000

    def __init__(self, folder: str | Path | None):
        self.root = Path(folder).resolve() if folder is not None else None
        self.names: list[str] = []
        if self.root is not None:
            found = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                           and p.resolve().is_relative_to(self.root))  # a link out of the folder is not offered
            self.names = [str(p.relative_to(self.root)) for p in found][: self.LIMIT]
        self._known = set(self.names)

    @contextlib.contextmanager
    def opened(self, name: str) -> Iterator[Path]:
        if self.root is None or name not in self._known:
            raise UploadError(f"{name!r} is not one of the offered images")
        yield self.root / name


class ModelCache:
    """One loaded model per model key, loaded on first use (torch is imported then), shared by requests."""

    def __init__(self, weights: str | None = None, device: str | None = None):
        self.weights, self.device = weights, device
        self._loaded: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def get(self, model_key: str) -> LoadedModel:
        """The model of ``model_key`` (name@weightsId); a NeurflowError when the weights loaded are others."""
        with self._lock:
            if model_key not in self._loaded:
                from neurflow.engine.models import load_model

                loaded = load_model(model_key.split("@", 1)[0], self.weights, device=self.device)
                if loaded.info.key != model_key:
                    raise WeightsMismatchError(
                        f"the atlas's circuits of {model_key} were built with other weights than the ones loaded "
                        f"({loaded.info.key}): start neurflow serve with --weights FILE")
                self._loaded[model_key] = loaded
            return self._loaded[model_key]


class WeightsMismatchError(NeurflowError, ValueError):
    """The model loaded for search by image is not the one the circuits were built with."""


def search_uploaded(graph: GraphClient, loaded: LoadedModel, path: Path, limit: int = 30) -> list[ImageMatch]:
    from neurflow.experiments.search_image import search_image

    return search_image(graph.driver, loaded, path, limit, graph.database)


def preview_png(path: Path, box: Any | None) -> str:
    """A small PNG of the upload, the best crop outlined, as a data: URI (nothing of the upload is kept)."""
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    if box:
        ImageDraw.Draw(image).rectangle(list(box), outline=(255, 64, 32), width=max(2, round(max(image.size) / 120)))
    image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
