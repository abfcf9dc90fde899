"""Image folders and patches with provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from neurflow.engine.patches import (
    DataError,
    ImageFile,
    PatchSet,
    list_images,
    load_view,
    load_views,
    patch_boxes,
)
from neurflow.registry import Preprocessing


def test_patch_grid_has_59_boxes_at_three_scales_with_half_overlap() -> None:
    boxes = patch_boxes(224)
    assert len(boxes) == 59
    assert [s for _, s in boxes].count(1.0) == 1 and [s for _, s in boxes].count(0.5) == 9
    half = [b for b, s in boxes if s == 0.5]
    assert half[0] == (0, 0, 112, 112) and half[1] == (56, 0, 168, 112) and half[-1] == (112, 112, 224, 224)
    quarter = [b for b, s in boxes if s == 0.25]
    assert len(quarter) == 49 and quarter[-1] == (168, 168, 224, 224)


def test_patch_boxes_map_back_to_original_pixels(tmp_path: Path) -> None:
    # 400x300 image: resize shorter side to 256 (scale 256/300), centre crop 224.
    path = tmp_path / "a.png"
    Image.new("RGB", (400, 300), (10, 20, 30)).save(path)
    view = load_view(ImageFile(path, None), Preprocessing())
    assert view.view.shape == (3, 224, 224)
    full = view.to_original((0, 0, 224, 224))
    scale = 256 / 300
    offset = round((int(256 * 400 / 300) - 224) / 2)  # torchvision's centre-crop offset in resized pixels
    assert full[0] == round(offset / scale) and full[1] == round(16 / scale)
    assert full[2] - full[0] == pytest.approx(224 / scale, abs=2)
    patches = PatchSet([view], Preprocessing())
    assert len(patches) == 59
    pixels = patches.pixels([0, 58])
    assert pixels.shape == (2, 3, 224, 224)
    torch.testing.assert_close(pixels[1, 0], torch.full((224, 224), 10 / 255), atol=1e-3, rtol=0)


def test_flat_and_labelled_folders(tmp_path: Path) -> None:
    Image.new("RGB", (32, 32)).save(tmp_path / "x.jpg")
    (tmp_path / "n01").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "n01" / "y.png")
    files = list_images(tmp_path)
    assert [(f.path.name, f.label) for f in files] == [("y.png", "n01"), ("x.jpg", None)]


def test_linked_class_folders_and_files_are_followed_without_looping(tmp_path: Path) -> None:
    """As torchvision's ImageFolder: a class folder may be a link into another image set, a file a link; the
    label is the linked folder's own name; a link back up the tree is walked once, not forever."""
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "dogs").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(elsewhere / "dogs" / "a.jpg")
    Image.new("RGB", (32, 32)).save(elsewhere / "b.png")
    root = tmp_path / "set"
    (root / "n02").mkdir(parents=True)
    (root / "n01").symlink_to(elsewhere / "dogs", target_is_directory=True)
    (root / "n02" / "b.png").symlink_to(elsewhere / "b.png")
    (root / "n02" / "loop").symlink_to(root, target_is_directory=True)  # a cycle
    (root / "n02" / "dangling.jpg").symlink_to(tmp_path / "missing.jpg")
    files = list_images(root)
    assert [(f.path.relative_to(root).as_posix(), f.label) for f in files] == [
        ("n01/a.jpg", "n01"), ("n02/b.png", "n02")]
    assert all(f.path.is_absolute() for f in files)


def test_corrupt_images_are_skipped_and_counted(tmp_path: Path) -> None:
    Image.new("RGB", (64, 48)).save(tmp_path / "good.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        views, skipped = load_views(list_images(tmp_path), Preprocessing())
    assert [v.file.path.name for v in views] == ["good.jpg"]
    assert sorted(f.path.name for f in skipped) == ["bad.jpg", "empty.png"]


def test_images_too_small_for_patches_are_skipped_and_named(tmp_path: Path) -> None:
    Image.new("RGB", (32, 40)).save(tmp_path / "smallest.png")  # 32 pixels on its shorter side: kept
    Image.new("RGB", (1, 1)).save(tmp_path / "dot.png")  # its patch boxes would be [0, 0, 0, 0]
    Image.new("RGB", (300, 31)).save(tmp_path / "strip.png")
    with pytest.warns(UserWarning, match=r"skipped 2 image\(s\) under 32 pixels on a side .*dot.png"):
        views, skipped = load_views(list_images(tmp_path), Preprocessing())
    assert [v.file.path.name for v in views] == ["smallest.png"]
    assert sorted(f.path.name for f in skipped) == ["dot.png", "strip.png"]


def test_empty_or_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no images in"):
        list_images(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nope")
