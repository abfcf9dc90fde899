"""Each neuron group's representative activation vector, written on its node for search by image.

A group at layer L was clustered on its semantic groups' representative vectors (``sg/<L>`` in vectors.npz):
with ``group_space`` ``paper`` (the default), the mean of r(v), the spatial means of every channel of the next
circuit layer down (the bottom layer: of itself), over each semantic group's patches. The group's vector is
the mean of its semantic groups' (the centre it was clustered around; neurflow.experiments.debugging uses the
same centre), in that layer's space, ``vectorLayer``. An image's crops recorded at ``vectorLayer`` are compared
with it by cosine (neurflow.experiments.search_image). Circuits grouped in another space (``core``) or whose
vectors.npz is missing get no vector.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from neurflow.circuit import Circuit, space_layer
from neurflow.format import VECTORS_FILE, load_vectors

SEARCHABLE_SPACE = "paper"
UNRECORDED_SPACE = "core"
"""Circuits built before ``group_space`` was recorded were grouped in the core spaces (engine.config's
LEGACY_GROUP_SPACE; the graph does not import the engine)."""


def group_vectors(circuit: Circuit, folder: str | Path | None) -> dict[str, tuple[str, list[float]]]:
    """Group id -> (vectorLayer, vector) of every group of ``circuit`` (empty when it has none; see above)."""
    if folder is None or not (Path(folder) / VECTORS_FILE).is_file():
        return {}
    if str(circuit.params.get("group_space", UNRECORDED_SPACE)) != SEARCHABLE_SPACE:
        return {}
    vectors = load_vectors(folder)
    result: dict[str, tuple[str, list[float]]] = {}
    for group in circuit.neuron_groups:
        keys = [str(k) for k in vectors.get(f"sgkeys/{group.layer}", [])]
        rows = {key: i for i, key in enumerate(keys)}
        if f"sg/{group.layer}" not in vectors or any(k not in rows for k in group.semantic_groups):
            continue
        centre = vectors[f"sg/{group.layer}"][[rows[k] for k in group.semantic_groups]].astype(np.float64).mean(0)
        if np.all(np.isfinite(centre)) and np.any(centre != 0):
            result[group.id] = (space_layer(circuit.layers, group.layer), [float(v) for v in centre])
    return result
