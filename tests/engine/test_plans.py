"""The build pipeline's checks before work (neurflow.engine.plans): unreadable images named, output folders."""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image

from neurflow.engine.models import load_model
from neurflow.engine.patches import list_images
from neurflow.engine.plans import readable_predictions


def test_skipped_images_are_named_first_few_then_counted(tmp_path: Path) -> None:
    Image.new("RGB", (64, 48), (90, 60, 30)).save(tmp_path / "good.jpg")
    for index in range(5):
        (tmp_path / f"broken{index}.jpg").write_bytes(b"not a jpeg")
    loaded = load_model("resnet18", random_weights=True, device="cpu")
    heard: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictions = readable_predictions(loaded, list_images(tmp_path), tmp_path, None, heard.append)
    assert [f.path.name for f in predictions.files] == ["good.jpg"]
    (line,) = heard
    assert line.startswith("skipped 5 unreadable image(s) of 6: ") and line.endswith(" and 2 more")
    assert line.count("broken") == 3
