"""Images, the images of a class (D_c) and their patches, with provenance.

Every image is seen as the model sees it (shorter side resized, centre crop: the *view*). D_c is the views the
model predicts as the class (or the folder labels so), most confident first. A view's patches are squares of
100/50/25 % of its side at 50 % overlap (1 + 9 + 49 = 59), each resized to the input size. A patch keeps its
image's path and sha256, its box in the original image's pixels, and its scale.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from PIL import Image, UnidentifiedImageError

from neurflow.circuit import ClassInfo, label_matches
from neurflow.engine.models import LoadedModel
from neurflow.errors import NeurflowError
from neurflow.registry import Preprocessing

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
PATCH_SCALES = (1.0, 0.5, 0.25)


class DataError(NeurflowError, ValueError):
    """An image folder that cannot be used; the message says why."""


@dataclass(frozen=True)
class ImageFile:
    path: Path
    label: str | None


@dataclass
class ViewImage:
    """An image as the model sees it: ``view`` is [3, crop, crop] in [0, 1]."""

    file: ImageFile
    sha256: str
    width: int
    height: int
    view: torch.Tensor
    scale: float
    offset: tuple[float, float]

    def to_original(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A (left, top, right, bottom) box of the view in the original image's pixels."""
        left, top, right, bottom = box
        ox, oy = self.offset
        return (
            max(0, round((left + ox) / self.scale)),
            max(0, round((top + oy) / self.scale)),
            min(self.width, round((right + ox) / self.scale)),
            min(self.height, round((bottom + oy) / self.scale)),
        )


def list_images(folder: str | Path) -> list[ImageFile]:
    """Image files of a flat folder (no labels) or an ImageFolder ``<wnid or class>/file`` (labelled).

    Linked folders and files are followed, as torchvision's ImageFolder does (a class folder may be a symbolic
    link into another image set); a folder reached twice through links is walked once, so a link cycle ends.
    A file's label is the name of the folder it was found in (the link's name for a linked class folder).
    Paths are absolute, so that a circuit's provenance still finds its images from another directory.
    """
    root = Path(folder).resolve()
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    files: list[ImageFile] = []
    walked: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in walked:  # a link back to a folder already walked: a cycle or a second route
            dirnames.clear()
            continue
        walked.add(real)
        dirnames.sort()
        here = Path(dirpath)
        for name in sorted(filenames):
            path = here / name
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                files.append(ImageFile(path, None if here == root else here.name))
    if not files:
        raise DataError(
            f"no images in {root} (looked for {', '.join(sorted(IMAGE_SUFFIXES))} files, flat or in class folders)"
        )
    return sorted(files, key=lambda f: f.path)


def view_box(width: int, height: int, prep: Preprocessing) -> tuple[tuple[int, int], tuple[int, int]]:
    """Resized size and centre-crop offset of torchvision's resize-then-centre-crop for an image."""
    # torchvision keeps the shorter side exact and truncates the longer one.
    if width <= height:
        size = (prep.resize, int(prep.resize * height / width))
    else:
        size = (int(prep.resize * width / height), prep.resize)
    return size, (int(round((size[0] - prep.crop) / 2.0)), int(round((size[1] - prep.crop) / 2.0)))


#: The shortest side an image may have: its smallest patches (a quarter of the crop) must keep a few pixels.
MIN_IMAGE_SIDE = 32


class ImageTooSmallError(ValueError):
    """An image whose shorter side is under :data:`MIN_IMAGE_SIDE` pixels."""


def load_view(file: ImageFile, prep: Preprocessing) -> ViewImage:
    """The view of one image. An image over Pillow's ``MAX_IMAGE_PIXELS`` (a possible decompression bomb) raises
    ``DecompressionBombWarning`` as an error, and one over twice that ``DecompressionBombError``; one whose
    shorter side is under ``MIN_IMAGE_SIDE`` pixels, ImageTooSmallError (its patches would be a pixel or none)."""
    data = file.path.read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(file.path) as img:
            img.load()
            rgb = img.convert("RGB")
    if min(rgb.width, rgb.height) < MIN_IMAGE_SIDE:
        raise ImageTooSmallError(f"{file.path} is {rgb.width} x {rgb.height} pixels")
    (new_w, new_h), (left, top) = view_box(rgb.width, rgb.height, prep)
    resized = rgb.resize((new_w, new_h), Image.Resampling.BILINEAR)
    view = TF.to_tensor(resized.crop((left, top, left + prep.crop, top + prep.crop)))
    scale = prep.resize / min(rgb.width, rgb.height)
    return ViewImage(file, hashlib.sha256(data).hexdigest(), rgb.width, rgb.height, view, scale,
                     (float(left), float(top)))


def _shown(files: Sequence[ImageFile]) -> str:
    return ", ".join(str(f.path) for f in files[:5]) + (" ..." if len(files) > 5 else "")


def load_views(files: Sequence[ImageFile], prep: Preprocessing) -> tuple[list[ViewImage], list[ImageFile]]:
    """Loads every readable image; unreadable or corrupt ones, those too large to decode safely (over
    Pillow's ``MAX_IMAGE_PIXELS``: decompression bombs) and those under ``MIN_IMAGE_SIDE`` pixels on a side are
    skipped, named (the first five) and warned about."""
    views: list[ViewImage] = []
    unreadable: list[ImageFile] = []
    too_large: list[ImageFile] = []
    too_small: list[ImageFile] = []
    for file in files:
        try:
            views.append(load_view(file, prep))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            too_large.append(file)
        except ImageTooSmallError:
            too_small.append(file)
        except (OSError, UnidentifiedImageError, ValueError, SyntaxError):
            unreadable.append(file)
    if unreadable:
        warnings.warn(f"skipped {len(unreadable)} unreadable image(s): {_shown(unreadable)}", stacklevel=2)
    if too_large:
        warnings.warn(
            f"skipped {len(too_large)} image(s) over {Image.MAX_IMAGE_PIXELS:,} pixels (Pillow's limit against "
            f"decompression bombs): {_shown(too_large)}", stacklevel=2,
        )
    if too_small:
        warnings.warn(f"skipped {len(too_small)} image(s) under {MIN_IMAGE_SIDE} pixels on a side (their patches "
                      f"would be a pixel or none): {_shown(too_small)}", stacklevel=2)
    return views, unreadable + too_large + too_small


@torch.no_grad()
def predict_views(loaded: LoadedModel, views: Sequence[ViewImage], batch_size: int = 32,
                  progress: bool = False) -> torch.Tensor:
    """Logits [images, classes] of the whole views (the images as the model is meant to see them);
    ``progress``: a bar over the images (a folder's scan takes a while)."""
    from tqdm import tqdm

    logits = []
    with tqdm(total=len(views), desc="predictions", unit="image", disable=not progress, leave=False) as bar:
        for start in range(0, len(views), batch_size):
            pixels = torch.stack([v.view for v in views[start : start + batch_size]]).to(loaded.device)
            logits.append(loaded.module(normalise(pixels, loaded.preprocessing)).float().cpu())
            bar.update(len(pixels))
    return torch.cat(logits) if logits else torch.empty(0, len(loaded.categories))


def select_class_images(
    target: ClassInfo,
    views: Sequence[ViewImage],
    logits: torch.Tensor,
    label_source: str,
    max_images: int | None,
    categories: Sequence[str],
) -> list[int]:
    """D_c: indices of the images predicted as c (or labelled c), most confident first, capped."""
    return select_indices(target, [v.file.label for v in views], logits, label_source, max_images, categories)


def select_indices(
    target: ClassInfo,
    labels: Sequence[str | None],
    logits: torch.Tensor,
    label_source: str,
    max_images: int | None,
    categories: Sequence[str],
) -> list[int]:
    """D_c from the images' folder labels and logits: indices of the images predicted as c (or labelled c),
    most confident first, capped; DataError naming what the folder holds when there is none."""
    predicted = logits.argmax(1)
    if label_source == "folder":
        chosen = [i for i, label in enumerate(labels) if label_matches(label, target)]
    else:
        chosen = [i for i in range(len(labels)) if int(predicted[i]) == target.index]
    if not chosen:
        if label_source == "folder":
            known = sorted({label for label in labels if label})
            raise DataError(
                f"no image is labelled {target.name!r} ({target.wnid}); the folder's labels are: "
                + (", ".join(known) if known else "none (a flat folder: use --label-source predicted)")
            )
        counts = torch.bincount(predicted, minlength=len(categories))
        ranked = [int(i) for i in counts.argsort(descending=True)[:8]]
        top = [f"{categories[i]} ({int(counts[i])})" for i in ranked if counts[i] > 0]
        raise DataError(
            f"no image is predicted as {target.name!r}; the model predicts these classes for the folder: "
            + ", ".join(top)
        )
    chosen.sort(key=lambda i: -float(logits[i, target.index]))
    return chosen[:max_images] if max_images else chosen


def patch_boxes(size: int, scales: Sequence[float] = PATCH_SCALES) -> list[tuple[tuple[int, int, int, int], float]]:
    """Square boxes at each scale with 50 % overlap: 1 + 9 + 49 for the default scales."""
    boxes = []
    for scale in scales:
        side = round(size * scale)
        stride = max(1, side // 2)
        starts = range(0, size - side + 1, stride)
        boxes += [((x, y, x + side, y + side), scale) for y in starts for x in starts]
    return boxes


def normalise(pixels: torch.Tensor, prep: Preprocessing) -> torch.Tensor:
    mean = torch.tensor(prep.mean, dtype=pixels.dtype, device=pixels.device).view(-1, 3, 1, 1)
    std = torch.tensor(prep.std, dtype=pixels.dtype, device=pixels.device).view(-1, 3, 1, 1)
    return (pixels - mean) / std


@dataclass(frozen=True)
class PatchRef:
    image: int
    box: tuple[int, int, int, int]
    scale: float


class PatchSet:
    """The patches of a list of view images, produced on demand in any order and batch size."""

    def __init__(self, views: list[ViewImage], prep: Preprocessing, scales: Sequence[float] = PATCH_SCALES):
        self.views = views
        self.prep = prep
        boxes = patch_boxes(prep.crop, scales)
        self.refs = [PatchRef(i, box, scale) for i in range(len(views)) for box, scale in boxes]

    def __len__(self) -> int:
        return len(self.refs)

    def pixels(self, indices: Sequence[int]) -> torch.Tensor:
        """Patches ``indices`` resized to the input size, in [0, 1]: [n, 3, crop, crop]."""
        size = self.prep.crop
        out = torch.empty(len(indices), 3, size, size)
        for row, index in enumerate(indices):
            ref = self.refs[index]
            left, top, right, bottom = ref.box
            crop = self.views[ref.image].view[:, top:bottom, left:right]
            if crop.shape[-1] != size:
                crop = F.interpolate(crop[None], size=(size, size), mode="bilinear", align_corners=False)[0]
            out[row] = crop
        return out

    def inputs(self, indices: Sequence[int], device: torch.device | None = None) -> torch.Tensor:
        pixels = self.pixels(indices)
        return normalise(pixels.to(device) if device is not None else pixels, self.prep)

    def batches(self, batch_size: int, indices: Sequence[int] | None = None) -> Iterator[list[int]]:
        order = list(range(len(self))) if indices is None else list(indices)
        for start in range(0, len(order), batch_size):
            yield order[start : start + batch_size]

    def original_box(self, index: int) -> tuple[int, int, int, int]:
        ref = self.refs[index]
        return self.views[ref.image].to_original(ref.box)

    def thumbnail(self, index: int, size: int = 96) -> Image.Image:
        return TF.to_pil_image(self.pixels([index])[0]).resize((size, size), Image.Resampling.BILINEAR)
