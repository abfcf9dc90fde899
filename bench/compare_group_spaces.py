"""How much the group spaces change a circuit: builds each class with group_space=paper and =core and compares.

Per class and layer: semantic and neuron groups, the adjusted Rand index (ARI) of each concept's semantic
partition, the ARI of the neuron-group assignment of (neuron, patch) pairs, and how edge weights move.
Core sets and attributions do not depend on the space (the test suite checks it), so every difference is the
grouping's. Usage: python bench/compare_group_spaces.py IMAGES OUT.json [--max-images 5 --k 50 --tau 16
--steps 8 --threads 1]; it prints the table of docs/grouping.md. About 3 minutes on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.metrics import adjusted_rand_score

from neurflow.circuit import Circuit
from neurflow.engine.builder import CircuitBuilder
from neurflow.engine.config import BuildConfig
from neurflow.engine.models import load_model
from neurflow.engine.patches import list_images, load_views, predict_views, select_class_images

LAYERS = ["_fc", "_blocks.15", "_blocks.14"]


def semantic_labels(circuit: Circuit, neuron: str) -> dict[int, int]:
    """patch -> semantic group index within the neuron's concept."""
    return {p: g.index for g in circuit.semantic_groups if g.neuron == neuron for p in g.patches}


def neuron_group_of_pair(circuit: Circuit, layer: str) -> dict[tuple[str, int], str]:
    """(neuron, patch) -> the neuron group holding the semantic group of that neuron that holds the patch."""
    group_of_sg = {sg: g.id for g in circuit.groups_of_layer(layer) for sg in g.semantic_groups}
    return {(g.neuron, p): group_of_sg[g.key] for g in circuit.semantic_groups if g.layer == layer
            for p in g.patches}


def patch_weights(circuit: Circuit, upper: str) -> dict[tuple[str, int, str], float]:
    """(a, patch v in V_a, s) -> w(a, s, V_a,j) of the semantic group j that holds v."""
    by_group: dict[str, dict[str, float]] = defaultdict(dict)
    for e in circuit.edges:
        if e.upper.rpartition(":")[0] == upper:
            by_group[e.upper_group][e.lower] = e.weight
    return {(g.neuron, p, s): w for g in circuit.semantic_groups if g.layer == upper
            for p in g.patches for s, w in by_group[g.key].items()}


def neuron_totals(circuit: Circuit, upper: str) -> dict[tuple[str, str], float]:
    """(a, s) -> sum over a's semantic groups of w(a, s, V_a,j): what a neuron sends into group edges."""
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for e in circuit.edges:
        if e.upper.rpartition(":")[0] == upper:
            totals[e.upper, e.lower] += e.weight
    return dict(totals)


def compare(paper: Circuit, core: Circuit) -> list[dict]:
    rows = []
    for layer in LAYERS:
        neurons = [n.key for n in paper.neurons[layer]]
        assert neurons == [n.key for n in core.neurons[layer]]
        aris = []
        for neuron in neurons:
            a, b = semantic_labels(paper, neuron), semantic_labels(core, neuron)
            patches = sorted(a)
            aris.append(adjusted_rand_score([a[p] for p in patches], [b[p] for p in patches]))
        pairs_p, pairs_c = neuron_group_of_pair(paper, layer), neuron_group_of_pair(core, layer)
        keys = sorted(pairs_p)
        row = {
            "layer": layer, "neurons": len(neurons),
            "sg_paper": sum(g.layer == layer for g in paper.semantic_groups),
            "sg_core": sum(g.layer == layer for g in core.semantic_groups),
            "small_sg_paper": sum(g.layer == layer and len(g.patches) <= 2 for g in paper.semantic_groups),
            "small_sg_core": sum(g.layer == layer and len(g.patches) <= 2 for g in core.semantic_groups),
            "ng_paper": len(paper.groups_of_layer(layer)), "ng_core": len(core.groups_of_layer(layer)),
            "sg_ari_mean": float(np.mean(aris)), "sg_ari_min": float(np.min(aris)),
            "sg_identical": int(sum(x > 1 - 1e-9 for x in aris)),
            "ng_pair_ari": float(adjusted_rand_score([pairs_p[k] for k in keys], [pairs_c[k] for k in keys]))
            if layer != "_fc" else None,
        }
        if layer != LAYERS[-1]:
            wp, wc = patch_weights(paper, layer), patch_weights(core, layer)
            common = sorted(wp)
            diff = np.array([abs(wp[k] - wc[k]) for k in common])
            scale = np.array([abs(wc[k]) for k in common])
            tp, tc = neuron_totals(paper, layer), neuron_totals(core, layer)
            pairs = sorted(tp)
            row |= {
                "patch_w_mean_abs_diff": float(diff.mean()), "patch_w_mean_abs": float(scale.mean()),
                "neuron_total_spearman": float(spearmanr([tp[k] for k in pairs], [tc[k] for k in pairs])[0]),
                "group_edges_paper": sum(1 for e in paper.group_edges if e.upper.startswith(layer + "/")),
                "group_edges_core": sum(1 for e in core.group_edges if e.upper.startswith(layer + "/")),
            }
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("images")
    parser.add_argument("out")
    parser.add_argument("--classes", default="Samoyed,golden retriever")
    parser.add_argument("--max-images", type=int, default=5)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--tau", type=int, default=16)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model("efficientnet-lite0", device="cpu", layers=LAYERS)
    views, _ = load_views(list_images(args.images), loaded.preprocessing)
    logits = predict_views(loaded, views, 8)
    results = {}
    for name in args.classes.split(","):
        target = loaded.resolve_class(name)
        chosen = select_class_images(target, views, logits, "predicted", args.max_images, loaded.categories)
        circuits = {}
        for space in ("paper", "core"):
            config = BuildConfig("efficientnet-lite0", layers=LAYERS, tau=args.tau, k=args.k, steps=args.steps,
                                 max_images=args.max_images, group_space=space, device="cpu")
            start = time.perf_counter()
            circuits[space] = CircuitBuilder(loaded, config, progress=False).build(
                target, [views[i] for i in chosen], logits[chosen]).circuit
            print(f"{name} {space}: {time.perf_counter() - start:.1f} s", flush=True)
        results[name] = compare(circuits["paper"], circuits["core"])
        for row in results[name]:
            print(name, json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(markdown(results))


def markdown(results: dict[str, list[dict]]) -> str:
    """The table of docs/grouping.md."""
    lines = ["| class | layer | core neurons | semantic groups paper / core | of them with at most 2 patches | "
             "concepts split identically | ARI of the splits, mean (min) | neuron groups paper / core | "
             "ARI of neuron-group assignment | mean \\|Δw\\| per patch | Spearman of Σ_j w(a, s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        for r in rows:
            def show(key: str, fmt: str = "{:.2f}", row: dict = r) -> str:
                return "-" if row.get(key) is None else fmt.format(row[key])
            lines.append(
                f"| {name} | `{r['layer']}` | {r['neurons']} | {r['sg_paper']} / {r['sg_core']} | "
                f"{r['small_sg_paper']} / {r['small_sg_core']} | {r['sg_identical']} of {r['neurons']} | "
                f"{show('sg_ari_mean')} ({show('sg_ari_min')}) | {r['ng_paper']} / {r['ng_core']} | "
                f"{show('ng_pair_ari')} | {show('patch_w_mean_abs_diff', '{:.4f}')} | "
                f"{show('neuron_total_spearman')} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
