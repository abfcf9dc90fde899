"""Search the atlas by image, from Python (``neurflow search-image`` and the atlas page stand on it).

>>> from neurflow.workbench import connect
>>> from neurflow.workbench.search import search_image
>>> search_image(connect(), "photo.jpg", model="efficientnet-lite0").head()     # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from neurflow.workbench.client import GraphClient

if TYPE_CHECKING:
    from neurflow.engine.models import LoadedModel
    from neurflow.experiments.search_image import ImageMatch

COLUMNS = ["class_name", "class_index", "circuit", "group", "layer", "depth", "influence", "label", "score", "crop",
           "box", "family"]


def search_image(graph: GraphClient, image: str | Path, *, model: str | None = None, weights: str | None = None,
                 device: str | None = None, loaded: LoadedModel | None = None, limit: int = 20,
                 raw: bool = False) -> Any:
    """The ``limit`` neuron groups across the graph's circuits of the model that ``image`` triggers most (cosine of
    the best crop's activations with each group's representative vector), best first, with the class each
    belongs to: a DataFrame (``raw=True``: a list of ImageMatch). ``model``: a name (loaded with ``weights`` or
    the pretrained ones), or ``loaded``: a model loaded already."""
    from neurflow.experiments.search_image import search_image as search

    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if loaded is None:
        if model is None:
            raise TypeError("search_image() needs model= or loaded=")
        from neurflow.engine.models import load_model

        loaded = load_model(model, weights, device=device)
    matches: list[ImageMatch] = search(graph.driver, loaded, image, limit, graph.database)
    if raw:
        return matches
    import pandas as pd

    return pd.DataFrame([m.to_dict() for m in matches], columns=COLUMNS)
