"""Search by image across the atlas: which neuron groups, of which classes, an image triggers most.

The image is cut into its 59 crops (as a circuit's images are) and each crop recorded at every layer where the
graph holds group vectors for the model: r(crop), the spatial means of that layer's channels. A group's score is
the largest cosine between its vector (neurflow.graph.group_vectors: the centre its semantic groups were
clustered around, in the same space) and any crop's r, found through Neo4j's vector index.

>>> matches = search_image(driver, loaded, "photo.jpg", limit=10)       # doctest: +SKIP
>>> matches[0].class_name, matches[0].group, matches[0].score           # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import neo4j
import torch

from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import DataError, ImageFile, PatchSet, load_views
from neurflow.experiments.experiment_properties import model_key_of
from neurflow.experiments.runner import crop_activations
from neurflow.graph.image_search import groups_like, searchable_layers


class NothingToSearchError(DataError):
    """The graph holds no group vector for the model (circuits written before graph model 1.6, or grouped in
    another space)."""


@dataclass(frozen=True)
class ImageMatch:
    """One group an image triggers: its class and circuit, its layer, and the best crop's cosine."""

    class_name: str
    class_index: int
    circuit: str
    family: str
    group: str
    layer: str
    depth: int
    influence: float
    label: str | None
    score: float
    crop: int
    box: tuple[int, int, int, int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def crop_queries(loaded: LoadedModel, image: str | Path, layers: list[str],
                 batch_size: int = 64) -> tuple[list[dict[str, Any]], list[tuple[int, int, int, int]]]:
    """The image's crops as vector-index queries ({layer, crop, vector}) at ``layers``, and each crop's box in
    the image's pixels."""
    views, _ = load_views([ImageFile(Path(image), None)], loaded.preprocessing)
    if not views:
        raise DataError(f"{image} is not an image neurflow can read (or it is too small)")
    loaded.check_layers(layers)
    patches = PatchSet(views, loaded.preprocessing)
    queries = []
    for layer, values in crop_activations(loaded, patches, layers, batch_size).items():
        for crop, vector in enumerate(values.double()):
            if torch.any(vector != 0):  # a zero vector has no cosine
                queries.append({"layer": layer, "crop": crop, "vector": [float(v) for v in vector]})
    return queries, [views[0].to_original(ref.box) for ref in patches.refs]


def search_image(driver: neo4j.Driver, loaded: LoadedModel, image: str | Path, limit: int = 20,
                 database: str | None = None, batch_size: int = 64) -> list[ImageMatch]:
    """The ``limit`` groups of the loaded model's circuits in the graph that ``image`` triggers most, best first."""
    model = model_key_of(loaded)
    layers = searchable_layers(driver, model, database)
    if not layers:
        raise NothingToSearchError(
            f"the graph holds no group vectors of {model}: write its circuits again with "
            "`neurflow-ingest --from DIR --force` (graph model 1.6 stores them; circuits grouped with "
            "--group-space core have none)")
    queries, boxes = crop_queries(loaded, image, sorted(layers), batch_size)
    rows = groups_like(driver, model, queries, limit, database=database)
    return [ImageMatch(r["class"], int(r["index"]), r["circuit"], r["family"], r["group"], r["layer"], int(r["depth"]),
                       float(r["influence"] or 0.0), r["label"], float(r["score"]), int(r["crop"]), boxes[int(r["crop"])])
            for r in rows]
