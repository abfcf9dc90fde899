"""ImageNet-1k classes by index, name or wnid, without torch: what `neurflow classes`, queries and labelling
resolve, and what the engine's models carry.

>>> from neurflow.classes import imagenet_categories, resolve_class
>>> resolve_class("Samoyed", imagenet_categories()).index
258
"""

from __future__ import annotations

import difflib
import functools
import os
from importlib import resources
from pathlib import Path

from neurflow.circuit import ClassInfo
from neurflow.registry import ModelError


@functools.cache
def _categories() -> tuple[str, ...]:
    text = resources.files("neurflow").joinpath("resources", "imagenet_categories.txt").read_text()
    return tuple(text.splitlines())


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet-1k class names in torchvision's order (``ResNet50_Weights.IMAGENET1K_V1.meta``,
    shipped as a file so that a look-up needs no torch; tests/test_classes.py checks it is torchvision's)."""
    return list(_categories())


def imagenet_wnids() -> list[str] | None:
    """The 1000 wnids in torchvision's class order, when a list can be found (env NEURFLOW_WNIDS or shipped)."""
    candidates = [os.environ.get("NEURFLOW_WNIDS"), str(resources.files("neurflow").joinpath("resources", "imagenet_wnids.txt"))]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            wnids = Path(candidate).read_text().split()
            if len(wnids) == 1000:
                return wnids
    return None


def resolve_class(query: str | int, categories: list[str]) -> ClassInfo:
    """A class by index, name (case-insensitive) or wnid; unknown names get the closest matches.

    >>> resolve_class("Samoyed", imagenet_categories()).index
    258
    """
    wnids = imagenet_wnids() if len(categories) == 1000 else None
    text = str(query).strip()
    if text.isdigit():
        index = int(text)
        if not 0 <= index < len(categories):
            raise ModelError(f"class index {index} is out of range 0..{len(categories) - 1}")
    elif wnids and text in wnids:
        index = wnids.index(text)
    else:
        lowered = [c.lower() for c in categories]
        if text.lower() not in lowered:
            close = difflib.get_close_matches(text.lower(), lowered, n=5, cutoff=0.5)
            contains = [c for c in lowered if text.lower() in c][:5]
            suggestions = list(dict.fromkeys(close + contains))
            hint = (
                "Closest: " + ", ".join(categories[lowered.index(s)] for s in suggestions)
                if suggestions else "Search with `neurflow classes --model M --search TEXT`."
            )
            raise ModelError(f"unknown class {text!r}. {hint}")
        index = lowered.index(text.lower())
    return ClassInfo(index=index, name=categories[index], wnid=wnids[index] if wnids else None)
