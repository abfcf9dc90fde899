"""Pictures: patch montages of groups and a layered drawing of a class circuit.

May import: matplotlib, numpy, Pillow, ``neurflow.circuit``, ``neurflow.format``; no torch, Neo4j, subpackage.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402
from PIL import Image  # noqa: E402

from neurflow.circuit import Circuit, NeuronGroup  # noqa: E402
from neurflow.format import THUMBNAIL_DIR, load_circuit  # noqa: E402


def montage(folder: str | Path, patch_ids: Sequence[int], columns: int = 4, size: int = 64) -> Image.Image:
    """A grid of the saved thumbnails of ``patch_ids`` (missing ones left grey)."""
    count = max(1, len(patch_ids))
    columns = min(columns, count)
    rows = math.ceil(count / columns)
    sheet = Image.new("RGB", (columns * size, rows * size), (200, 200, 200))
    for i, patch in enumerate(patch_ids):
        path = Path(folder) / THUMBNAIL_DIR / f"{patch}.jpg"
        if path.exists():
            with Image.open(path) as thumb:
                sheet.paste(thumb.convert("RGB").resize((size, size)), ((i % columns) * size, (i // columns) * size))
    return sheet


def central_patches(circuit: Circuit, group: NeuronGroup, count: int) -> list[int]:
    """The group's patches that its semantic groups' neurons activate most (by rank, then by frequency)."""
    scores: dict[int, float] = {}
    by_key = {g.key: g for g in circuit.semantic_groups}
    for key in group.semantic_groups:
        sg = by_key[key]
        top = max(sg.activations) if sg.activations else 1.0
        for patch, activation in zip(sg.patches, sg.activations, strict=True):
            scores[patch] = scores.get(patch, 0.0) + activation / (top or 1.0)
    return sorted(scores, key=lambda p: -scores[p])[:count]


def draw_circuit(circuit: Circuit, path: str | Path, folder: str | Path | None = None, per_group: int = 4) -> Path:
    """Draws the group-level circuit: one row per layer (logit on top), a montage per neuron group, and
    edges whose width is |W| (blue positive, red negative)."""
    layers = circuit.layers
    by_layer = {layer: circuit.groups_of_layer(layer) for layer in layers}
    widest = max(len(groups) for groups in by_layer.values()) or 1
    fig, ax = plt.subplots(figsize=(max(8, 1.9 * widest), 1.9 * len(layers) + 1))
    position: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(layers):
        groups = by_layer[layer]
        for col, group in enumerate(groups):
            x = (col + 0.5) / len(groups) * widest
            position[group.id] = (x, -row)
    top = max((abs(e.weight) for e in circuit.group_edges), default=1.0) or 1.0
    for edge in circuit.group_edges:
        (x1, y1), (x2, y2) = position[edge.upper], position[edge.lower]
        ax.plot([x1, x2], [y1, y2], color="tab:blue" if edge.weight >= 0 else "tab:red",
                linewidth=0.5 + 4 * abs(edge.weight) / top, alpha=0.6, zorder=1)
    for group_id, (x, y) in position.items():
        group = next(g for g in circuit.neuron_groups if g.id == group_id)
        if folder is not None:
            picture = montage(folder, central_patches(circuit, group, per_group), columns=2, size=48)
            ax.add_artist(AnnotationBbox(OffsetImage(np.asarray(picture), zoom=0.9), (x, y), frameon=True, zorder=2))
        else:
            ax.scatter([x], [y], s=300, zorder=2)
        ax.annotate(f"{group.id.rsplit('/', 1)[-1]} ({len(group.neurons)}n)", (x, y - 0.42), ha="center",
                    fontsize=7, zorder=3)
    ax.set_yticks([-row for row in range(len(layers))], layers)
    ax.set_xticks([])
    ax.set_xlim(-0.2, widest + 0.2)
    ax.set_ylim(-len(layers) + 0.4, 0.6)
    ax.set_title(f"{circuit.model.name}: circuit of '{circuit.target.name}' ({circuit.target.index})")
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def draw_circuit_folders(folders: Sequence[Path]) -> list[Path]:
    """Draw ``circuit.png`` into each circuit folder; returns the pictures' paths."""
    pictures = []
    for folder in folders:
        picture = Path(folder) / "circuit.png"
        draw_circuit(load_circuit(folder), picture, folder)
        pictures.append(picture)
    return pictures
