"""The class names neurflow ships (so that looking a class up needs no torch) are torchvision's, in its order."""

from __future__ import annotations

import pytest
import torchvision

from neurflow.classes import imagenet_categories, imagenet_wnids, resolve_class
from neurflow.registry import ModelError


def test_the_shipped_class_names_are_torchvisions() -> None:
    assert imagenet_categories() == list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def test_a_class_by_index_name_or_wnid() -> None:
    categories = imagenet_categories()
    wnids = imagenet_wnids()
    assert wnids is not None and wnids[258] == "n02111889"
    for query in ("258", 258, "samoyed", "n02111889"):
        found = resolve_class(query, categories)
        assert (found.index, found.name, found.wnid) == (258, "Samoyed", "n02111889")
    with pytest.raises(ModelError, match="Closest: Samoyed"):
        resolve_class("Samoyd", categories)
    with pytest.raises(ModelError, match="out of range 0..999"):
        resolve_class("1000", categories)
