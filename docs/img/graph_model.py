"""Draws docs/img/graph-model.png: neurflow's Neo4j graph model, labels as nodes and relationship types as
labelled arrows (relationship properties in braces), in the colours of the Browser stylesheet. Left: circuits;
right: the experiment records that point into them.

    python docs/img/graph_model.py [--out docs/img/graph-model.png]

Every label and relationship type that neurflow's circuit writes create (``neurflow.graph.reads.LABELS`` and
``RELATIONSHIP_TYPES``) must be drawn (checked before drawing).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Circle, FancyArrowPatch  # noqa: E402
from matplotlib.path import Path as MplPath  # noqa: E402

from neurflow.graph.schema import DATA_MODEL_VERSION  # noqa: E402

HERE = Path(__file__).parent
RADIUS = 0.95
GHOST = "#FFFFFF"  # a label drawn in the other panel: white, dashed

# label: (x, y, fill, text colour, key property)
CIRCUIT_NODES: dict[str, tuple[float, float, str, str, str]] = {
    "DataModel": (-4.0, 8.2, "#2A2C34", "white", "name"),
    "Model": (0.0, 8.2, "#604A0E", "white", "key"),
    "Layer": (6.0, 8.2, "#D9C8AE", "#2A2C34", "key"),
    "Class": (-4.0, 4.2, "#F16667", "white", "index"),
    "Circuit": (0.0, 4.2, "#C990C0", "white", "id"),
    "Neuron": (11.0, 4.2, "#8DCC93", "#2A2C34", "key"),
    "NeuronGroup": (5.6, 0.0, "#57C7E3", "#2A2C34", "key"),
    "SemanticGroup": (11.0, -2.4, "#4C8EDA", "white", "key"),
    "Patch": (11.0, -7.6, "#FFE081", "#2A2C34", "key"),
    "Image": (0.0, -7.6, "#F79767", "white", "sha256"),
    "CircuitFamily": (6.0, 6.2, "#B0B0B0", "#2A2C34", "key"),
}
# (from, type, to, properties, arc rad, label position along the arrow 0..1)
CIRCUIT_EDGES: list[tuple[str, str, str, str, float, float]] = [
    ("Model", "HAS_LAYER", "Layer", "", 0.0, 0.5),
    ("Layer", "HAS_NEURON", "Neuron", "", 0.0, 0.5),
    ("Circuit", "OF_MODEL", "Model", "", 0.0, 0.5),
    ("Circuit", "FOR_CLASS", "Class", "", 0.0, 0.5),
    ("Circuit", "HAS_LOGIT", "Neuron", "", -0.14, 0.5),
    ("Circuit", "HAS_CORE_NEURON", "Neuron", "{influence, influenceBefore, weight, depth}", 0.0, 0.5),
    ("Circuit", "IN_FAMILY", "CircuitFamily", "", 0.0, 0.5),
    ("CircuitFamily", "FAMILY_INFLUENCE", "Neuron", "{influence, classes}", 0.0, 0.5),
    ("Circuit", "HAS_IMAGE", "Image", "{predicted, logit}", 0.0, 0.72),
    ("Circuit", "HAS_GROUP", "NeuronGroup", "", 0.0, 0.45),
    ("NeuronGroup", "HAS_MEMBER", "Neuron", "{influence}", 0.0, 0.5),
    ("NeuronGroup", "HAS_SEMANTIC_GROUP", "SemanticGroup", "", 0.0, 0.5),
    ("SemanticGroup", "OF_NEURON", "Neuron", "", 0.28, 0.5),
    ("Neuron", "CONTRIBUTES_TO", "SemanticGroup", "{weight, score}", 0.28, 0.5),
    ("Patch", "EXEMPLIFIES", "SemanticGroup", "{activation, rank}", 0.0, 0.5),
    ("Patch", "CROPPED_FROM", "Image", "", 0.0, 0.5),
]
# loops: (label, type, properties, direction of the loop in degrees)
CIRCUIT_LOOPS = [
    ("NeuronGroup", "FLOWS_TO", "{weight, share, influence}\nlower group -> upper group", 270.0),
    ("NeuronGroup", "OVERLAPS", "{jaccard, shared, ...}\nacross classes", 180.0),
    ("Circuit", "SIMILAR_TO", "{weightedJaccard, jaccard, ...}\none family, two classes", 225.0),
]

EXPERIMENT_NODES: dict[str, tuple[float, float, str, str, str]] = {
    "MaskingExperiment": (0.0, 3.8, "#DA7194", "white", "id"),
    "FidelityStudy": (0.0, -2.0, "#ECB5C9", "#2A2C34", "id"),
    "FidelityResult": (0.0, -7.6, "#F3D1DD", "#2A2C34", ""),
    "NeuronGroup\nor Neuron": (0.0, 7.8, GHOST, "#555555", ""),
    "Model\nClass\nCircuit": (5.0, 0.9, GHOST, "#555555", ""),
    "Layer": (5.0, -7.6, GHOST, "#555555", ""),
    "ValidationStudy": (5.0, -3.4, "#C9A0DC", "#2A2C34", "id"),
}
EXPERIMENT_EDGES: list[tuple[str, str, str, str, float, float]] = [
    ("MaskingExperiment", "MASKED", "NeuronGroup\nor Neuron", "", 0.0, 0.5),
    ("MaskingExperiment", "OF_MODEL\nFOR_CLASS\nON_CIRCUIT", "Model\nClass\nCircuit", "", 0.0, 0.5),
    ("FidelityStudy", "OF_MODEL\nFOR_CLASS\nON_CIRCUIT", "Model\nClass\nCircuit", "", 0.0, 0.5),
    ("FidelityStudy", "HAS_RESULT", "FidelityResult", "", 0.0, 0.5),
    ("FidelityResult", "AT_LAYER", "Layer", "", 0.0, 0.5),
    ("ValidationStudy", "VALIDATES", "Model\nClass\nCircuit", "(Circuit)", 0.0, 0.5),
    ("ValidationStudy", "ON_LAYER", "Layer", "", 0.0, 0.5),
]

# Names split over two lines inside their circle.
SHOWN = {"NeuronGroup": "Neuron\nGroup", "SemanticGroup": "Semantic\nGroup", "MaskingExperiment": "Masking\nExperiment",
         "FidelityStudy": "Fidelity\nStudy", "FidelityResult": "Fidelity\nResult", "DataModel": "Data\nModel",
         "ValidationStudy": "Validation\nStudy"}


def _bezier(p0: tuple[float, float], c: tuple[float, float], p2: tuple[float, float], t: float) -> tuple[float, float]:
    a, b, d = (1 - t) ** 2, 2 * (1 - t) * t, t * t
    return a * p0[0] + b * c[0] + d * p2[0], a * p0[1] + b * c[1] + d * p2[1]


def _label(ax: Axes, x: float, y: float, angle: float, text: str, color: str) -> None:
    if angle > 90:
        angle -= 180
    elif angle < -90:
        angle += 180
    ax.text(x, y, text, ha="center", va="center", rotation=angle, rotation_mode="anchor", fontsize=9.5,
            color=color, fontweight="bold", linespacing=1.15,
            bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.92), zorder=5)


def _panel(ax: Axes, nodes: dict[str, tuple[float, float, str, str, str]],
           edges: list[tuple[str, str, str, str, float, float]],
           loops: list[tuple[str, str, str, float]], edge_color: str, text_color: str) -> None:
    for source, rel, target, props, rad, where in edges:
        x1, y1, *_ = nodes[source]
        x2, y2, *_ = nodes[target]
        length = math.hypot(x2 - x1, y2 - y1)
        ux, uy = (x2 - x1) / length, (y2 - y1) / length
        p0 = (x1 + ux * RADIUS, y1 + uy * RADIUS)
        p2 = (x2 - ux * RADIUS, y2 - uy * RADIUS)
        ax.add_patch(FancyArrowPatch(p0, p2, arrowstyle="-|>", mutation_scale=17, lw=1.7, color=edge_color,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2, zorder=1))
        # arc3 is a quadratic Bezier with this control point (axes have equal aspect).
        dx, dy = p2[0] - p0[0], p2[1] - p0[1]
        control = ((p0[0] + p2[0]) / 2 + rad * dy, (p0[1] + p2[1]) / 2 - rad * dx)
        x, y = _bezier(p0, control, p2, where)
        tx, ty = _bezier(p0, control, p2, min(where + 0.01, 1.0))
        _label(ax, x, y, math.degrees(math.atan2(ty - y, tx - x)), rel + ("\n" + props if props else ""), text_color)

    for label, rel, props, direction in loops:
        x, y, *_ = nodes[label]
        d = math.radians(direction)
        a1, a2 = d - math.radians(30), d + math.radians(30)
        start = (x + RADIUS * math.cos(a1), y + RADIUS * math.sin(a1))
        end = (x + RADIUS * math.cos(a2), y + RADIUS * math.sin(a2))
        reach = 3.6 * RADIUS
        c1 = (x + reach * math.cos(a1 - 0.25), y + reach * math.sin(a1 - 0.25))
        c2 = (x + reach * math.cos(a2 + 0.25), y + reach * math.sin(a2 + 0.25))
        path = MplPath([start, c1, c2, end], [MplPath.MOVETO, MplPath.CURVE4, MplPath.CURVE4, MplPath.CURVE4])
        ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>", mutation_scale=17, lw=1.7, color="#2870C2",
                                     zorder=1))
        lx, ly = x + 3.25 * RADIUS * math.cos(d), y + 3.25 * RADIUS * math.sin(d)
        ax.text(lx, ly, rel + "\n" + props, ha="right" if math.cos(d) < -0.5 else "center",
                va="top" if math.sin(d) < -0.5 else "center",
                fontsize=9.5, fontweight="bold", color="#1B4F8A", linespacing=1.15,
                bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.92), zorder=5)

    for label, (x, y, fill, text, key) in nodes.items():
        ghost = fill == GHOST
        ax.add_patch(Circle((x, y), RADIUS, fc=fill, ec="#999999" if ghost else "#444444", lw=1.3, zorder=3,
                            linestyle="--" if ghost else "-"))
        shown = SHOWN.get(label, label)
        lines = shown.count("\n") + 1
        ax.text(x, y + (0.16 if key else 0), shown, ha="center", va="center", fontsize=11 if lines == 1 else (9 if max(map(len, shown.split("\n"))) > 8 else 10),
                color=text, fontweight="bold" if not ghost else "normal", linespacing=1.0, zorder=4)
        if key:
            ax.text(x, y - 0.2 - 0.17 * lines, f"key: {key}", ha="center", va="center", fontsize=8.5, color=text,
                    zorder=4)


def draw(out: Path) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(17, 12), dpi=100, gridspec_kw={"width_ratios": [18.2, 9.0]})
    for ax in (left, right):
        ax.set_aspect("equal")
        ax.axis("off")
    left.set_xlim(-5.6, 12.6)
    left.set_ylim(-9.2, 11.6)
    right.set_xlim(-2.6, 6.4)
    right.set_ylim(-9.2, 11.6)
    _panel(left, CIRCUIT_NODES, CIRCUIT_EDGES, CIRCUIT_LOOPS, "#555555", "#222222")
    _panel(right, EXPERIMENT_NODES, EXPERIMENT_EDGES, [], "#B0668A", "#7A3E55")
    left.text(-5.6, 11.5, f"neurflow graph model (DataModel {{name: 'neurflow', version: '{DATA_MODEL_VERSION}'}})",
              fontsize=16,
              fontweight="bold", va="top")
    left.text(-5.6, 10.75, "Model, Layer, Neuron and Class are shared by all circuits; a Circuit's parts (groups and "
              "their edges) carry its circuitId.\nQueries read only circuits with complete: true.",
              fontsize=10.5, va="top", color="#333333")
    right.text(-2.6, 11.5, "experiment records", fontsize=14, fontweight="bold", va="top", color="#7A3E55")
    right.text(-2.6, 10.75, "neurflow mask, fidelity, validate\n(dashed: labels of the left panel)", fontsize=10.5,
               va="top", color="#333333")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, bbox_inches="tight", facecolor="white")
    plt.close(fig)


def drawn_names() -> tuple[set[str], set[str]]:
    labels = set(CIRCUIT_NODES) | {n for n in EXPERIMENT_NODES if "\n" not in n and n in SHOWN}
    types = {rel for _, rel, _, _, _, _ in CIRCUIT_EDGES} | {rel for _, rel, _, _ in CIRCUIT_LOOPS}
    types |= {t for _, rel, _, _, _, _ in EXPERIMENT_EDGES for t in rel.split("\n")}
    return labels, types


def check_against_store() -> None:
    """Every label and relationship type neurflow's circuit writes create is drawn."""
    from neurflow.graph.reads import LABELS, RELATIONSHIP_TYPES

    labels, types = drawn_names()
    missing = sorted(set(LABELS) - labels) + sorted(set(RELATIONSHIP_TYPES) - types)
    if missing:
        raise SystemExit(f"the picture misses {missing}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "graph-model.png")
    args = parser.parse_args()
    check_against_store()
    draw(args.out)
    print(args.out)


if __name__ == "__main__":
    main()
