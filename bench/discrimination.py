"""Do the cross-class measures discriminate? Related breeds against unrelated ones, old and new measures.

Writes the circuits under CIRCUITS (folders from `neurflow build`; complete ones already in the graph are skipped)
into the configured Neo4j, runs the `class-similarity` query for every class, and scores each measure by the AUC
of related pairs against unrelated pairs (the probability that a related pair is more similar than an unrelated
one; ties count half) and by how often a class's most similar class is a related breed. Related = the same
WordNet breed group (RELATED below). Also reports what pruned views keep (neurflow.analysis.prune) and how much
of each layer the core sets cover. Writes the markdown section `discrimination` of --out and a picture.

Usage: python bench/discrimination.py CIRCUITS [--out docs/cross-class.md] [--png docs/img/class-similarity.png]
[--prune 0.8] (Neo4j from NEO4J_* or the local server, as neurflow query).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from neurflow.analysis import circuit_influence, prune  # noqa: E402
from neurflow.circuit import Circuit  # noqa: E402
from neurflow.format import load_circuit  # noqa: E402
from neurflow.graph.connection import open_driver, resolve_connection  # noqa: E402
from neurflow.graph.ingestion import write_circuit  # noqa: E402
from neurflow.graph.named_queries import run_query  # noqa: E402

#: WordNet breed groups of the Imagewoof classes (the hypernym under "dog" in ImageNet's WordNet tree);
#: classes of one group are "related". The other five are each alone in their group.
RELATED: dict[str, str] = {
    "n02096294": "terrier",  # Australian terrier
    "n02093754": "terrier",  # Border terrier
    "n02088364": "hound",  # beagle
    "n02089973": "hound",  # English foxhound
    "n02087394": "hound",  # Rhodesian ridgeback
    "n02086240": "toy dog",  # Shih-Tzu
    "n02099601": "sporting dog",  # golden retriever
    "n02105641": "shepherd dog",  # Old English sheepdog
    "n02111889": "spitz",  # Samoyed
    "n02115641": "wild dog",  # dingo
}
#: A coarser grouping, one level up WordNet's tree: terriers, hounds and sporting dogs are all hunting dogs; the
#: shepherd dog is a working dog; toy dog, spitz and wild dog (dingo, a canine outside "dog") stay alone.
HUNTING: dict[str, str] = {
    wnid: ("hunting dog" if group in ("terrier", "hound", "sporting dog") else
           "working dog" if group == "shepherd dog" else group)
    for wnid, group in RELATED.items()
}
GROUPINGS: dict[str, dict[str, str]] = {"breed group": RELATED, "hunting dog": HUNTING}
MEASURES: list[tuple[str, str, bool]] = [  # (column, description, new)
    ("jaccard", "Jaccard of the core-neuron sets (old)", False),
    ("incomingWeightJaccard", "weighted Jaccard of summed incoming \\|w\\| (old class-similarity)", False),
    ("weightedJaccard", "weighted Jaccard of neuron influence (new)", True),
    ("pruned", "weighted Jaccard of neuron influence, pruned views (new, --param prune)", True),
]


def auc(related: list[float], unrelated: list[float]) -> float:
    """P(a related pair scores higher than an unrelated one), ties half."""
    r, u = np.asarray(related, dtype=np.float64)[:, None], np.asarray(unrelated, dtype=np.float64)[None, :]
    return float(((r > u) + 0.5 * (r == u)).mean())


def auc_interval(circuits: list[Circuit], matrix: np.ndarray, resamples: int = 2000, level: float = 0.95,
                 seed: int = 0, grouping: dict[str, str] = RELATED) -> tuple[float, float, int]:
    """The central ``level`` of the AUC over resamples of the classes (drawn with replacement; the pairs among
    the drawn classes, a class never paired with a copy of itself): pairs share classes, so the classes, not the
    pairs, are what is resampled. Resamples without a related or an unrelated pair are skipped; returns the
    interval and the resamples used."""
    group = [grouping[c.target.wnid or ""] for c in circuits]
    symmetric = (matrix + matrix.T) / 2
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        drawn = rng.integers(0, len(circuits), len(circuits))
        related, unrelated = [], []
        for a, b in itertools.combinations(drawn.tolist(), 2):
            if a != b:
                (related if group[a] == group[b] else unrelated).append(symmetric[a, b])
        if related and unrelated:
            values.append(auc(related, unrelated))
    if not values:
        return float("nan"), float("nan"), 0
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high), len(values)


def similarities(driver: Any, database: str | None, circuits: list[Circuit], share: float) -> dict[str, np.ndarray]:
    index = {c.target.index: i for i, c in enumerate(circuits)}
    out = {m: np.full((len(circuits), len(circuits)), np.nan) for m, _, _ in MEASURES}
    for i, c in enumerate(circuits):
        params: dict[str, Any] = {"class": str(c.target.index), "limit": len(circuits), "circuit": c.id}
        for row in run_query(driver, "class-similarity", params, database)[1]:
            if row["comparable"]:
                for m in ("jaccard", "incomingWeightJaccard", "weightedJaccard"):
                    out[m][i, index[row["index"]]] = row[m]
                for entry in row["perLayer"]:
                    name = f"layer:{entry['layer']}"
                    out.setdefault(name, np.full((len(circuits), len(circuits)), np.nan))
                    out[name][i, index[row["index"]]] = entry["weightedJaccard"]
        for row in run_query(driver, "class-similarity", {**params, "prune": share}, database)[1]:
            if row["comparable"]:
                out["pruned"][i, index[row["index"]]] = row["weightedJaccard"]
    return out


def score(circuits: list[Circuit], matrix: np.ndarray,
          grouping: dict[str, str] = RELATED) -> tuple[float, int, int, float]:
    """AUC of related vs unrelated pairs, top-1 hits among classes that have a related class, and the mean
    rank of the related classes (1 = most similar)."""
    group = [grouping[c.target.wnid or ""] for c in circuits]
    related, unrelated = [], []
    for i, j in itertools.combinations(range(len(circuits)), 2):
        value = (matrix[i, j] + matrix[j, i]) / 2
        (related if group[i] == group[j] else unrelated).append(value)
    hits = tried = 0
    ranks = []
    for i in range(len(circuits)):
        mates = [j for j in range(len(circuits)) if j != i and group[j] == group[i]]
        if not mates:
            continue
        order = [j for j in np.argsort(-np.nan_to_num(matrix[i], nan=-1.0)) if j != i]
        tried += 1
        hits += group[order[0]] == group[i]
        ranks += [order.index(j) + 1 for j in mates]
    return auc(related, unrelated), hits, tried, float(np.mean(ranks))


def layer_evidence(circuits: list[Circuit], matrices: dict[str, np.ndarray]) -> list[str]:
    """The AUC of each layer's weighted Jaccard alone, and of layer weightings built from them, under each
    grouping of related classes: the evidence class-similarity's weighting of layers rests on."""
    layers = [name for name in matrices if name.startswith("layer:")]
    variants: dict[str, np.ndarray] = {f"`{name[6:]}` alone": matrices[name] for name in layers}
    variants["mean over the layers (equal weights)"] = np.mean([matrices[n] for n in layers], axis=0)
    variants[f"mean over the layers but `{layers[0][6:]}`"] = np.mean([matrices[n] for n in layers[1:]], axis=0)
    variants["weightedJaccard (the query: influence pooled over the layers)"] = matrices["weightedJaccard"]
    head = "| similarity | " + " | ".join(f"AUC, {g} (95 % interval)" for g in GROUPINGS) + " |"
    lines = [head, "|---|" + "---:|" * len(GROUPINGS)]
    for label, matrix in variants.items():
        cells = []
        for grouping in GROUPINGS.values():
            value = score(circuits, matrix, grouping)[0]
            low, high, _ = auc_interval(circuits, matrix, grouping=grouping)
            cells.append(f"{value:.3f} ({low:.2f}-{high:.2f})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    pairs = {g: sum(1 for a, b in itertools.combinations(circuits, 2)
                    if grouping[a.target.wnid or ""] == grouping[b.target.wnid or ""])
             for g, grouping in GROUPINGS.items()}
    total = len(circuits) * (len(circuits) - 1) // 2
    lines += ["", "Related pairs: " + ", ".join(f"{n} of {total} by {g}" for g, n in pairs.items()) + "."]
    return lines


def coverage(circuits: list[Circuit], share: float) -> list[str]:
    lines = ["| layer | core neurons per class (mean) | union over classes | core in every class | "
             f"kept at prune {share:.1f} (mean) | kept in every class at {share:.1f} |", "|---|---:|---:|---:|---:|---:|"]
    views = [prune(c, share, circuit_influence(c)) for c in circuits]
    for layer in circuits[0].layers[1:]:
        sets = [{n.key for n in c.neurons.get(layer, [])} for c in circuits]
        kept = [set(v.neurons[layer]) for v in views]
        lines.append(f"| {layer} | {np.mean([len(s) for s in sets]):.1f} | {len(set().union(*sets))} | "
                     f"{len(set.intersection(*sets))} | {np.mean([len(k) for k in kept]):.1f} | "
                     f"{len(set.intersection(*kept))} |")
    return lines


def draw(circuits: list[Circuit], matrices: dict[str, np.ndarray], scores: dict[str, tuple], path: Path) -> None:
    order = sorted(range(len(circuits)), key=lambda i: (RELATED[circuits[i].target.wnid or ""], circuits[i].target.name))
    names = [circuits[i].target.name for i in order]
    group = [RELATED[circuits[i].target.wnid or ""] for i in order]
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(5.2 * len(MEASURES), 5.6))
    for ax, (m, description, _) in zip(axes, MEASURES, strict=True):
        matrix = matrices[m][np.ix_(order, order)]
        symmetric = (matrix + matrix.T) / 2
        shown = np.where(np.eye(len(order), dtype=bool), np.nan, symmetric)
        off = shown[~np.isnan(shown)]
        image = ax.imshow(shown, cmap="viridis", vmin=off.min(), vmax=off.max())
        for i, j in itertools.product(range(len(order)), repeat=2):
            if i != j and group[i] == group[j]:
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
        ax.set_xticks(range(len(order)), names, rotation=90, fontsize=7)
        ax.set_yticks(range(len(order)), names, fontsize=7)
        a, hits, tried, _ = scores[m]
        ax.set_title(f"{description.replace(chr(92), '')}\nAUC {a:.2f}, top-1 related {hits}/{tried}", fontsize=8)
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.suptitle("Class similarity of ten dog breeds (red: related pairs, same WordNet breed group)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("circuits", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/cross-class.md"))
    parser.add_argument("--png", type=Path, default=Path("docs/img/class-similarity.png"))
    parser.add_argument("--prune", type=float, default=0.8)
    parser.add_argument("--section", default="discrimination", help="the section of --out written")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_engine import write_section

    folders = sorted(p.parent for p in args.circuits.glob("*/circuit.json"))
    circuits = [load_circuit(f) for f in folders]
    missing = [c.target.name for c in circuits if (c.target.wnid or "") not in RELATED]
    if missing or len({c.family_key for c in circuits}) != 1:
        print(f"error: needs circuits of the Imagewoof classes, one family; got {missing or 'several families'}",
              file=sys.stderr)
        return 2
    settings = resolve_connection()
    driver = open_driver(settings)
    try:
        started = time.perf_counter()
        for circuit, folder in zip(circuits, folders, strict=True):
            write_circuit(driver, circuit, folder, database=settings.database)
        matrices = similarities(driver, settings.database, circuits, args.prune)
    finally:
        driver.close()
    scores = {m: score(circuits, matrices[m]) for m, _, _ in MEASURES}
    c0 = circuits[0]
    params = c0.params
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} by `python bench/discrimination.py {args.circuits}` "
        f"({time.perf_counter() - started:.0f} s): {len(circuits)} circuits of {c0.model.name} "
        f"(weights {c0.model.weights_id}), layers {', '.join(c0.layers)}, tau={params.get('tau')}, "
        f"k={params.get('k')}, steps={params.get('steps')}, {len(c0.images)} images per class "
        f"(max_images={params.get('max_images')}), group_space={params.get('group_space', 'core')}; "
        "pairs scored by the mean of the two directions.",
        "",
        "| measure | AUC related vs unrelated | 95 % interval (classes resampled) | most similar class is related | "
        "mean rank of related classes |",
        "|---|---:|---:|---:|---:|",
    ]
    for m, description, _ in MEASURES:
        a, hits, tried, rank = scores[m]
        low, high, used = auc_interval(circuits, matrices[m])
        lines.append(f"| {description} | {a:.3f} | {low:.2f}-{high:.2f} ({used} resamples) | {hits} / {tried} | "
                     f"{rank:.2f} |")
    lines += ["", *layer_evidence(circuits, matrices)]
    lines += ["", f"What the core sets cover and what a view pruned to {args.prune:.1f} keeps, per layer:", "",
              *coverage(circuits, args.prune)]
    args.png.parent.mkdir(parents=True, exist_ok=True)
    draw(circuits, matrices, scores, args.png)
    write_section(args.out, args.section, "\n".join(lines))
    print("\n".join(lines))
    print(f"\n{args.png}\n{args.out}")
    by_class: dict[str, list[str]] = defaultdict(list)
    for i, c in enumerate(circuits):
        for m in ("incomingWeightJaccard", "weightedJaccard"):
            order = [j for j in np.argsort(-np.nan_to_num(matrices[m][i], nan=-1.0)) if j != i][:3]
            by_class[c.target.name].append(f"{m}: " + ", ".join(circuits[j].target.name for j in order))
    for name, tops in by_class.items():
        print(f"{name}: " + " | ".join(tops))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
