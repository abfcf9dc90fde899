"""Patch images: crops of the original image, and the thumbnail fallback with its real MIME type."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageStat

from neurflow.circuit import Circuit
from neurflow.format import THUMBNAIL_DIR
from neurflow.labelling.patch_images import PatchImages
from tests.labelling.support import SAMOYEDS, decode_data_url


def test_patch_images_are_crops_of_the_original(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    images = PatchImages(circuit, folder, size=224)
    for patch in circuit.patches:
        encoded = images.get(patch.id)
        assert encoded is not None and encoded.source == "original" and encoded.mime == "image/jpeg"
        mime, decoded = decode_data_url(encoded.data_url)
        assert mime == "image/jpeg" and decoded.format == "JPEG" and max(decoded.size) == 224
        with Image.open(circuit.images[patch.image].path) as original:
            reference = original.convert("RGB").crop(patch.box).resize(decoded.size)
        difference = ImageStat.Stat(ImageChops.difference(reference, decoded.convert("RGB"))).mean
        assert max(difference) < 12  # JPEG noise only
    assert images.fallbacks == []


def test_patch_images_fall_back_to_thumbnails(tiny: tuple[Circuit, Path], caplog: pytest.LogCaptureFixture) -> None:
    circuit, folder = tiny
    Path(circuit.images[0].path).unlink()  # patches 0, 1, 2
    Path(circuit.images[1].path).write_bytes(Path(SAMOYEDS[2]).read_bytes())  # changed file: patches 3, 4, 5
    with Image.open(folder / THUMBNAIL_DIR / "1.jpg") as thumb:  # a PNG under a .jpg name
        thumb.save(folder / THUMBNAIL_DIR / "1.jpg", format="PNG")
    (folder / THUMBNAIL_DIR / "2.jpg").unlink()
    images = PatchImages(circuit, folder)
    zero, one, four, seven = images.get(0), images.get(1), images.get(4), images.get(7)
    assert zero is not None and zero.source == "thumbnail" and zero.mime == "image/jpeg"
    assert one is not None and one.source == "thumbnail" and one.mime == "image/png"
    assert decode_data_url(one.data_url)[1].format == "PNG"
    assert four is not None and four.source == "thumbnail"
    assert "sha256 differs" in caplog.text
    assert seven is not None and seven.source == "original"
    with pytest.warns(UserWarning, match="patch 2: neither the original image nor a thumbnail"):
        assert images.get(2) is None
    assert images.of([0, 2, 7]) == [zero, seven]
