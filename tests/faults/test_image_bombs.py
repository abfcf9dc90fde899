"""Decompression bombs in an image folder: an image over Pillow's ``MAX_IMAGE_PIXELS`` (Pillow warns) or over
twice that (Pillow raises ``DecompressionBombError``) is skipped with one warning, like an unreadable image,
and the other images still load. The limit is lowered here so that the bombs are small files (not below the
224 x 224 pixels of a view: Pillow checks crops too).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from PIL import Image

from neurflow.circuit import Circuit
from neurflow.engine.patches import list_images, load_views
from neurflow.labelling.patch_images import PatchImages
from neurflow.registry import Preprocessing
from tests.labelling.support import tiny_circuit

LIMIT = 60_000  # pixels


def _image(path: Path, width: int, height: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (width, height), (200, 120, 40)).save(path)
    return path


def test_bombs_are_skipped_with_a_warning_and_the_other_images_load(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMIT)
    _image(tmp_path / "fine.png", 200, 250)           # 50,000 pixels: under the limit
    _image(tmp_path / "warned.png", 300, 250)         # 75,000: over the limit, Pillow warns
    _image(tmp_path / "bomb.png", 400, 400)           # 160,000: over twice the limit, Pillow raises
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        views, skipped = load_views(list_images(tmp_path), Preprocessing())
    assert [v.file.path.name for v in views] == ["fine.png"]
    assert sorted(f.path.name for f in skipped) == ["bomb.png", "broken.jpg", "warned.png"]
    messages = [str(w.message) for w in caught]
    assert not any(issubclass(w.category, Image.DecompressionBombWarning) for w in caught), messages
    assert len(messages) == 2, messages
    unreadable = next(m for m in messages if "unreadable" in m)
    bombs = next(m for m in messages if "decompression bombs" in m)
    assert unreadable.startswith("skipped 1 unreadable image(s): ") and "broken.jpg" in unreadable
    assert bombs.startswith(f"skipped 2 image(s) over {LIMIT:,} pixels (Pillow's limit against decompression bombs)")
    assert "bomb.png" in bombs and "warned.png" in bombs and "\n" not in bombs


def test_a_folder_of_bombs_only_loads_nothing_and_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", LIMIT)
    _image(tmp_path / "n02111889" / "bomb.png", 500, 500)
    with pytest.warns(UserWarning, match=r"skipped 1 image\(s\) over 60,000 pixels"):
        views, skipped = load_views(list_images(tmp_path), Preprocessing())
    assert views == [] and [f.path.name for f in skipped] == ["bomb.png"]


def test_labelling_sends_the_thumbnail_of_a_patch_whose_original_is_a_bomb(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    circuit: Circuit
    circuit, folder = tiny_circuit(tmp_path / "tiny")
    # The real photos (about 190,000 pixels) are over twice the limit; the 96-px thumbnails are not.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 50_000)
    encoded = PatchImages(circuit, folder).get(circuit.patches[0].id)
    assert encoded is not None and encoded.source == "thumbnail"
