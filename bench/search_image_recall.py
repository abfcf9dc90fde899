"""Search by image: how often an image's own class comes first, on images no circuit was built on.

For every image of FOLDER (an ImageFolder, e.g. imagewoof-val) whose label is a class with a complete circuit of
the model in the graph and which none of those circuits was built on (by sha256): `search_image` (the 59 crops
against every group vector, through the vector index), the classes ranked by their best group's cosine. Reports
recall@1 and @3 of the image's own class, per class and overall, beside the model's own top-1 accuracy on the
same images among the same classes (what the classifier itself gets right), and the time per search. Writes a
markdown table to --out.

Usage: python bench/search_image_recall.py FOLDER --model efficientnet-lite0 [--limit 200] [--max-images N]
[--out bench/results-search-image.md] (Neo4j from NEO4J_* or the local server).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict
from pathlib import Path

import torch

from neurflow.engine.models import load_model
from neurflow.engine.patches import list_images, load_views, predict_views
from neurflow.experiments.search_image import search_image
from neurflow.graph.connection import open_driver, resolve_connection
from neurflow.workbench import connect, queries


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--limit", type=int, default=200, help="groups returned per search")
    parser.add_argument("--max-images", type=int, default=None, help="at most this many held-out images per class")
    parser.add_argument("--out", type=Path, default=Path("bench/results-search-image.md"))
    args = parser.parse_args()
    loaded = load_model(args.model, device="cpu")
    graph = connect()
    key = loaded.info.key
    circuits = [r for r in queries.atlas_classes(graph, model=key, raw=True)]
    by_index = {int(r["index"]): r for r in circuits}
    used: set[str] = set()
    with open_driver(resolve_connection()) as driver:
        for r in circuits:
            rows, _, _ = driver.execute_query("MATCH (:Circuit {id: $id})-[:HAS_IMAGE]->(i:Image) RETURN i.sha256 AS s",
                                              id=r["circuit"])
            used |= {row["s"] for row in rows}
        files = [f for f in list_images(args.folder) if f.label]
        views, _ = load_views(files, loaded.preprocessing)
        wnids = {loaded.resolve_class(i).wnid: i for i in by_index}
        held = [v for v in views if v.file.label in wnids and v.sha256 not in used]
        if args.max_images:
            per: dict[str, int] = defaultdict(int)
            kept = []
            for v in held:
                if per[v.file.label or ""] < args.max_images:
                    per[v.file.label or ""] += 1
                    kept.append(v)
            held = kept
        logits = predict_views(loaded, held)
        among = torch.tensor(sorted(by_index))
        model_top1 = [int(among[logits[i, among].argmax()]) for i in range(len(held))]
        hits1: dict[str, list[bool]] = defaultdict(list)
        hits3: dict[str, list[bool]] = defaultdict(list)
        model_hits: dict[str, list[bool]] = defaultdict(list)
        seconds = []
        for view, predicted in zip(held, model_top1, strict=True):
            own = wnids[view.file.label or ""]
            start = time.perf_counter()
            matches = search_image(driver, loaded, view.file.path, args.limit, graph.database)
            seconds.append(time.perf_counter() - start)
            ranked = list(dict.fromkeys(m.class_index for m in matches))
            name = by_index[own]["class"]
            hits1[name].append(ranked[:1] == [own])
            hits3[name].append(own in ranked[:3])
            model_hits[name].append(predicted == own)
    total = sum(len(v) for v in hits1.values())

    def share(table: dict[str, list[bool]], name: str | None = None) -> str:
        values = table[name] if name else [x for v in table.values() for x in v]
        return f"{sum(values) / len(values):.2f}" if values else "-"

    lines = [
        "# Search by image: recall of the image's own class (bench/search_image_recall.py)",
        "",
        f"Model {key}; {len(by_index)} classes with circuits; {total} held-out images of {args.folder} (none of "
        f"them used by a circuit); {args.limit} groups per search. CPU: {cpu_name()}; mean "
        f"{sum(seconds) / max(1, len(seconds)):.2f} s per search (59 crops recorded, then one Cypher query).",
        "",
        "| class | images | recall@1 | recall@3 | the model's top-1 among these classes |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in sorted(hits1):
        lines.append(f"| {name} | {len(hits1[name])} | {share(hits1, name)} | {share(hits3, name)} | "
                     f"{share(model_hits, name)} |")
    lines.append(f"| **all** | {total} | {share(hits1)} | {share(hits3)} | {share(model_hits)} |")
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
