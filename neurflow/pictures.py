"""Pictures: patch montages of groups and a layered drawing of a class circuit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.offsetbox import AnnotationBbox, OffsetImage  # noqa: E402
from PIL import Image  # noqa: E402

from neurflow.analysis import CircuitInfluence, circuit_influence, layer_coverage, prune  # noqa: E402
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


def draw_circuit(circuit: Circuit, path: str | Path, folder: str | Path | None = None, per_group: int = 4,
                 prune_share: float | None = None, influence: CircuitInfluence | None = None) -> Path:
    """Draws the group-level circuit: one row per layer (logit on top), a montage per neuron group sized by the
    group's influence, and edges whose width is the influence they carry (blue: W > 0, red: W < 0).

    ``prune_share`` (e.g. 0.8) draws the pruned view (:func:`neurflow.analysis.prune`): per layer the groups
    that carry that share of the influence, and the edges among the strongest that carry it. ``influence``:
    the circuit's, when the caller has it already.
    """
    influence = influence or circuit_influence(circuit)
    view = prune(circuit, prune_share, influence) if prune_share is not None else None
    layers = circuit.layers
    by_layer = {layer: [g for g in circuit.groups_of_layer(layer) if view is None or g.id in view.groups]
                for layer in layers}
    widest = max(len(groups) for groups in by_layer.values()) or 1
    fig, ax = plt.subplots(figsize=(max(8, 1.9 * widest), 1.9 * len(layers) + 1))
    position: dict[str, tuple[float, float]] = {}
    for row, layer in enumerate(layers):
        groups = by_layer[layer]
        for col, group in enumerate(groups):
            x = (col + 0.5) / len(groups) * widest
            position[group.id] = (x, -row)
    sign = {(e.upper, e.lower): e.weight for e in circuit.group_edges}
    edges = {e: v for e, v in influence.group_edges.items() if e[0] in position and e[1] in position
             and (view is None or e in view.group_edges)}
    top = max(edges.values(), default=1.0) or 1.0
    for (upper, lower), carried in sorted(edges.items(), key=lambda item: item[1]):
        (x1, y1), (x2, y2) = position[upper], position[lower]
        ax.plot([x1, x2], [y1, y2], color="tab:blue" if sign.get((upper, lower), 0.0) >= 0 else "tab:red",
                linewidth=0.3 + 6 * carried / top, alpha=0.6, zorder=1)
    # Bootstrap stability of each group (1: it comes back whole): unstable groups are drawn faded.
    stability = dict(circuit.stability.neuron_groups) if circuit.stability else {}
    for group_id, (x, y) in position.items():
        group = next(g for g in circuit.neuron_groups if g.id == group_id)
        share = influence.groups[group_id]
        stable = stability.get(group_id)
        alpha = 1.0 if stable is None or math.isnan(stable) else 0.25 + 0.75 * max(0.0, min(1.0, stable))
        if folder is not None:
            picture = montage(folder, central_patches(circuit, group, per_group), columns=2, size=48)
            zoom = 0.35 + 0.75 * math.sqrt(share)
            ax.add_artist(AnnotationBbox(OffsetImage(np.asarray(picture), zoom=zoom, alpha=alpha), (x, y),
                                         frameon=True, zorder=2))
        else:
            ax.scatter([x], [y], s=60 + 900 * share, zorder=2, alpha=alpha)
        label = f"{group.id.rsplit('/', 1)[-1]} ({len(group.neurons)}n) {share:.2f}"
        if stable is not None and not math.isnan(stable):
            label += f" s{stable:.2f}"
        ax.annotate(label, (x, y - 0.42), ha="center", fontsize=7, zorder=3)
    ax.set_yticks([-row for row in range(len(layers))], layers)
    ax.set_xticks([])
    ax.set_xlim(-0.2, widest + 0.2)
    ax.set_ylim(-len(layers) + 0.4, 0.6)
    title = f"{circuit.model.name}: circuit of '{circuit.target.name}' ({circuit.target.index})"
    if view is not None:
        kept = sum(len(v) for layer, v in view.neurons.items() if layer != layers[0])
        total = sum(len(circuit.neurons.get(layer, [])) for layer in layers[1:])
        title += (f"\npruned to {prune_share:.0%} of each layer's influence: {len(view.groups)} of "
                  f"{len(circuit.neuron_groups)} groups, {kept} of {total} core neurons")
    if circuit.coverage:
        reach = {row.layer: row.reach for row in layer_coverage(circuit)}
        ax.set_yticks([-row for row in range(len(layers))],
                      [layer if row == 0 else f"{layer}\nreach {reach[layer]:.1%}" for row, layer in enumerate(layers)])
        title += (f"\ncoverage: the core paths keep {reach[layers[-1]]:.1%} of the logit's attribution down to "
                  f"{layers[-1]} (reach per layer at the left)")
    if circuit.stability is not None and stability:
        title += (f"\ns: bootstrap stability of the group over {circuit.stability.resamples} resamples of the images "
                  "(1: comes back whole; faded when low)")
    ax.set_title(title + "\nsize and width: influence (share within the circuit; each layer sums to 1)", fontsize=9)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def picture_path(folder: str | Path, prune_share: float | None = None) -> Path:
    """``FOLDER/circuit.png``, or for a pruned view ``FOLDER/circuit-pruned-80.png``."""
    name = "circuit.png" if prune_share is None else f"circuit-pruned-{round(prune_share * 100)}.png"
    return Path(folder) / name


def draw_circuit_folders(folders: Sequence[Path], prune_share: float | None = None) -> list[Path]:
    """Draw ``circuit.png`` (pruned: ``circuit-pruned-80.png``) into each circuit folder; returns the pictures'
    paths."""
    pictures = []
    for folder in folders:
        picture = picture_path(folder, prune_share)
        draw_circuit(load_circuit(folder), picture, folder, prune_share=prune_share)
        pictures.append(picture)
    return pictures


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (closed after)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig: Figure, path: str | Path, dpi: int = 120) -> Path:
    """Saves a figure (a results plot) as a PNG at ``path``, its folder created when needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def similarity_matrix_figure(names: Sequence[str], pairs: dict[tuple[int, int], float]) -> Figure:
    """A heat map of how alike classes' circuits are (``pairs``: (i, j) -> weighted Jaccard, either order; the
    diagonal is 1, a missing pair 0)."""
    size = len(names)
    matrix = np.eye(size)
    for (i, j), value in pairs.items():
        matrix[i, j] = matrix[j, i] = value
    side = min(14.0, 2.5 + 0.28 * size)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = matrix.copy()
    np.fill_diagonal(shown, np.nan)  # the diagonal (1) would set the colour scale
    image = ax.imshow(shown, cmap="viridis", vmin=0, vmax=max(0.05, float(np.nanmax(shown)) if size > 1 else 1.0))
    ax.set_xticks(range(size), names, rotation=90, fontsize=8)
    ax.set_yticks(range(size), names, fontsize=8)
    ax.set_title("circuit similarity (weighted Jaccard)", fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    return fig
