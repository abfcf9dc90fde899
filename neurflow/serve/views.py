"""What the pages show, from the rows of named queries: pure functions, no request, no graph.

>>> layered_graph([{"kind": "group", "id": "_fc/g0", "layer": "_fc", "depth": 0, "influence": 1.0,
...                 "signedInfluence": 1.0, "label": None, "neurons": 1, "patches": []}], [], lambda k: k)
... # doctest: +ELLIPSIS
{'nodes': [{'data': {'id': '_fc/g0', ...}, 'position': {'x': 0.0, 'y': 0.0}}], 'edges': [], 'layers': ['_fc']}
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

LAYER_GAP = 170.0
"""Vertical distance between layers on the class page (px at zoom 1); the logit layer is on top."""
NODE_GAP = 120.0


def layered_graph(groups: Sequence[Mapping[str, Any]], edges: Sequence[Mapping[str, Any]],
                  patch_url: Callable[[str], str]) -> dict[str, Any]:
    """Cytoscape elements of a circuit-view answer: one node per group, placed in rows by depth (logit on top),
    ordered by influence within a row and centred; one edge per flow. Node size follows influence, edge width
    what the edge carries; ``sign`` tells excitatory (+) from inhibitory (-) apart; ``patch_url``: where a
    patch (by key) is served."""
    by_depth: dict[int, list[Mapping[str, Any]]] = {}
    for g in groups:
        by_depth.setdefault(int(g["depth"]), []).append(g)
    nodes = []
    layers = []
    for depth in sorted(by_depth):
        row = sorted(by_depth[depth], key=lambda g: (-(g["influence"] or 0.0), g["id"]))
        layers.append(str(row[0]["layer"]))
        for i, g in enumerate(row):
            signed = g.get("signedInfluence")
            thumbs = [patch_url(key) for key in g.get("patches") or []]
            nodes.append({
                "data": {"id": g["id"], "layer": g["layer"], "depth": depth, "influence": g["influence"] or 0.0,
                         "sign": "-" if signed is not None and signed < 0 else "+",
                         "label": g.get("label") or "", "neurons": g.get("neurons") or 0,
                         "thumbnail": thumbs[0] if thumbs else "", "thumbnails": thumbs},
                "position": {"x": (i - (len(row) - 1) / 2) * NODE_GAP, "y": depth * LAYER_GAP},
            })
    kept = {n["data"]["id"] for n in nodes}
    links = [{"data": {"id": e["id"], "source": e["source"], "target": e["target"], "weight": e["weight"] or 0.0,
                       "influence": e["influence"] or 0.0, "share": e.get("share"),
                       "sign": "-" if (e["weight"] or 0.0) < 0 else "+"}}
             for e in edges if e["source"] in kept and e["target"] in kept]
    return {"nodes": nodes, "edges": links, "layers": layers}


def split_view(rows: Sequence[Mapping[str, Any]]) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """circuit-view's rows: its groups, then its edges."""
    return [r for r in rows if r["kind"] == "group"], [r for r in rows if r["kind"] == "edge"]


def families(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """atlas-classes' rows grouped by model and family, in the query's order."""
    grouped: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for r in rows:
        grouped.setdefault((r["model"], r["family"]), []).append(r)
    return [{"model": model, "family": family, "classes": classes} for (model, family), classes in grouped.items()]
