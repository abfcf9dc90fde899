"""Draws docs/img/architecture.png: neurflow's data flow (top) and its packages with the imports between them
(bottom), the latter read from the source with ``ast`` so that the picture cannot drift from the code.

    python docs/img/architecture.py [--out docs/img/architecture.png]
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parents[1]

# The data flow: (stage, what it is, the module that makes it), in order.
FLOW: list[tuple[str, str, str]] = [
    ("images", "D_c: images the model\npredicts as the class", "engine.patches"),
    ("patches", "59 crops per image\n(1, 1/2, 1/4 of the side)", "engine.patches"),
    ("activations", "one recording pass;\nlower maps kept", "engine.segments"),
    ("attribution", "integrated gradients\nthrough fx segments", "engine.attribution"),
    ("groups", "semantic groups,\nneuron groups, weights", "engine.groups"),
    ("circuit", "Circuit dataclass;\ncircuit folder on disk", "circuit, format"),
    ("graph", "Neo4j: batched,\natomic per circuit", "graph.writer"),
]
USES: list[tuple[str, str, str]] = [
    ("queries", "named Cypher queries\n(queries/*.cypher)", "graph.named_queries"),
    ("experiments", "masking, fidelity,\ndebugging (metric M)", "experiments"),
    ("labelling", "captions and feature\nevolutions from an LLM", "labelling"),
]
COLOURS = {"engine": "#4C8EDA", "circuit": "#C990C0", "graph": "#57C7E3", "experiments": "#F79767",
           "labelling": "#8DCC93", "cli": "#D9C8AE", "ingest": "#D9C8AE", "core": "#C990C0",
           "workbench": "#F4D35E"}
# Packages of the bottom panel: name -> (x, y, colour key). Top: the entry points; bottom: the core.
PACKAGES: dict[str, tuple[float, float, str]] = {
    "cli": (2.5, 5.5, "cli"), "ingest": (7.5, 5.5, "ingest"),
    "workbench": (5.0, 4.05, "workbench"),
    "experiments": (1.0, 2.6, "experiments"), "labelling": (5.0, 2.6, "labelling"),
    "engine": (1.0, 0.8, "engine"), "pictures": (5.0, 0.8, "core"), "graph": (9.0, 0.8, "graph"),
    "circuit, format, analysis,\nregistry, classes, errors": (5.0, -1.0, "core"),
}
CORE = "circuit, format, analysis,\nregistry, classes, errors"
CORE_MODULES = {"circuit", "format", "analysis", "errors", "registry", "classes"}  # synthetic.py: test data


def package_of(module: str) -> str | None:
    """The bottom panel's box of a ``neurflow.*`` module (ingest/ is ``neurflow.ingest``)."""
    parts = module.split(".")
    if parts[0] != "neurflow" or len(parts) < 2:
        return None
    if parts[1] in CORE_MODULES:
        return CORE
    if parts[1] in ("queries",):
        return "graph"
    return parts[1] if parts[1] in PACKAGES else None


def import_edges() -> dict[tuple[str, str], int]:
    """(importer box, imported box) -> number of import statements, from every module's ast."""
    edges: dict[tuple[str, str], int] = defaultdict(int)
    for path in [*ROOT.glob("neurflow/**/*.py"), *ROOT.glob("ingest/*.py")]:
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = ".".join(("neurflow", *parts) if parts[0] == "ingest" else parts).removesuffix(".__init__")
        source = package_of(module)
        if source is None:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                target = package_of(name)
                if target is not None and target != source:
                    edges[(source, target)] += 1
                    break
    return dict(edges)


def box(ax: Axes, x: float, y: float, w: float, h: float, title: str, body: str, colour: str) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04,rounding_size=0.12",
                                facecolor=colour, edgecolor="#2A2C34", linewidth=1.2, alpha=0.9))
    if body:
        ax.text(x, y + h * 0.2, title, ha="center", va="center", fontsize=10.5, fontweight="bold")
        ax.text(x, y - h * 0.18, body, ha="center", va="center", fontsize=7.5)
    else:
        ax.text(x, y, title, ha="center", va="center", fontsize=10, fontweight="bold")


def arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], colour: str = "#2A2C34",
          width: float = 1.4, rad: float = 0.0) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=14, color=colour, linewidth=width,
                                 connectionstyle=f"arc3,rad={rad}", shrinkA=2, shrinkB=2))


def border(centre: tuple[float, float], towards: tuple[float, float], w: float, h: float) -> tuple[float, float]:
    """Where the line from a box's centre towards another point leaves the box (w x h)."""
    dx, dy = towards[0] - centre[0], towards[1] - centre[1]
    scale = min(w / 2 / abs(dx) if dx else float("inf"), h / 2 / abs(dy) if dy else float("inf"))
    return centre[0] + dx * scale, centre[1] + dy * scale


def draw_flow(ax: Axes) -> None:
    w, h, step = 1.55, 1.0, 1.85
    for i, (stage, body, module) in enumerate(FLOW):
        colour = COLOURS.get(module.split(".")[0].split(",")[0], "#DDDDDD")
        box(ax, i * step, 0, w, h, stage, f"{body}\n[{module}]", colour)
        if i:
            arrow(ax, ((i - 1) * step + w / 2, 0), (i * step - w / 2, 0))
    gx = (len(FLOW) - 1) * step
    for j, (stage, body, module) in enumerate(USES):
        x = gx + (j - 2) * step
        box(ax, x, -1.8, w, h, stage, f"{body}\n[{module}]", COLOURS.get(module.split(".")[0], "#57C7E3"))
        arrow(ax, (gx, -h / 2), (x, -1.8 + h / 2))
    ax.text(-w / 2, 1.0, "Data flow: one class circuit, from images to the graph and what reads it", fontsize=12,
            fontweight="bold", ha="left")
    ax.set_xlim(-w / 2 - 0.2, gx + w / 2 + 0.2)
    ax.set_ylim(-2.6, 1.3)


def draw_packages(ax: Axes, edges: dict[tuple[str, str], int]) -> None:
    w, h = 2.6, 0.8
    for name, (x, y, key) in PACKAGES.items():
        box(ax, x, y, w, h, name, "", COLOURS[key])
    for (source, target), count in sorted(edges.items()):
        (x0, y0, _), (x1, y1, _) = PACKAGES[source], PACKAGES[target]
        arrow(ax, border((x0, y0), (x1, y1), w, h), border((x1, y1), (x0, y0), w, h),
              colour="#555555", width=0.6 + 0.15 * min(count, 10), rad=0.06)
    ax.text(-0.2, 6.2, "Packages, one layer per row: an arrow is 'imports' (read from the code; width grows with "
            "the number of imports).\nThe layers contract in pyproject.toml forbids every upward import.",
            fontsize=10, ha="left", fontweight="bold")
    ax.set_xlim(-0.4, 10.8)
    ax.set_ylim(-1.6, 6.6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE / "architecture.png")
    args = parser.parse_args()
    edges = import_edges()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(14, 10.5), gridspec_kw={"height_ratios": [1.0, 1.6]})
    for ax in (top, bottom):
        ax.set_aspect("equal")
        ax.axis("off")
    draw_flow(top)
    draw_packages(bottom, edges)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"{args.out}: {len(edges)} package imports")
    for (source, target), count in sorted(edges.items()):
        print(f"  {source.splitlines()[0]} -> {target.splitlines()[0]}: {count}")


if __name__ == "__main__":
    main()
