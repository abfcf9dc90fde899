"""How much of the class decision circuits account for: coverage per layer and circuit size, at tau = 16 and with
--tau-coverage, on the Imagewoof validation images (EfficientNet-Lite0, docs/coverage.md).

Builds the circuit of every Imagewoof class present in --images for each variant (under --work/<variant>/; a
circuit already there is read, not built again), then writes a markdown table (--md) and a picture (--png):
per variant and layer, the core neurons, the core sets' share of their targets' |attribution| (mean over the
targets of a circuit, then over circuits) and the reach (the share of the logit's attribution that reaches the
layer through core paths; mean and range over circuits).

Usage: python bench/coverage.py [--images ../shared/data/imagewoof-val] [--work /tmp/neurflow-coverage]
       [--md bench/results-coverage.md] [--png docs/img/coverage.png] [--max-images 4] [--k 20] [--steps 16]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neurflow.analysis import layer_coverage  # noqa: E402
from neurflow.circuit import Circuit  # noqa: E402
from neurflow.engine.config import BuildConfig  # noqa: E402
from neurflow.engine.patches import DataError  # noqa: E402
from neurflow.engine.plans import PredictionCache, build_circuits  # noqa: E402
from neurflow.format import find_circuits, load_circuit  # noqa: E402
from neurflow.pictures import save_figure  # noqa: E402

IMAGEWOOF = ["n02086240", "n02087394", "n02088364", "n02089973", "n02093754", "n02096294", "n02099601",
             "n02105641", "n02111889", "n02115641"]
LAYERS = ["_fc", "_blocks.15", "_blocks.14", "_blocks.13"]


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def variant_circuits(name: str, config: BuildConfig, images: Path, work: Path,
                     classes: list[str]) -> tuple[list[Circuit], float]:
    """The variant's circuits of ``classes`` (built now unless already under work/name) and the seconds spent
    building."""
    folder = work / name
    built = [load_circuit(f) for f in find_circuits(folder)] if folder.is_dir() else []
    missing = [wnid for wnid in classes if not any(c.target.wnid == wnid for c in built)
               and (images / wnid).is_dir()]
    start = time.perf_counter()
    if missing:
        cache = PredictionCache(work / "predictions", _loaded_stub(config))
        try:
            build_circuits(config, missing, images, folder, echo=lambda line: print(f"[{name}] {line}"),
                           progress=False, cache=cache)
        except DataError as error:  # a class no image is predicted as: reported, the others are kept
            print(f"[{name}] {error}")
        built = [load_circuit(f) for f in find_circuits(folder)]
    built = [c for c in built if c.target.wnid in classes]
    return sorted(built, key=lambda c: c.target.index), time.perf_counter() - start


def _loaded_stub(config: BuildConfig):  # noqa: ANN202 - the cache needs the model's name, weights and classes
    from neurflow.engine.models import load_model

    return load_model(config.model, config.weights, config.random_weights, config.device, config.layers, config.seed)


def table(variants: dict[str, list[Circuit]]) -> list[str]:
    lines = ["| variant | layer | core neurons (mean) | core share of the targets' \\|attribution\\| (mean) | "
             "reach: share of the logit's attribution (mean, min-max) |", "|---|---|---|---|---|"]
    for name, circuits in variants.items():
        rows = [layer_coverage(c) for c in circuits]
        for depth, layer in enumerate(LAYERS[1:]):
            sizes = [len(c.neurons[layer]) for c in circuits]
            shares = [r[depth].mean_core_share for r in rows]
            reach = [r[depth].reach for r in rows]
            lines.append(f"| {name} | {layer} | {statistics.mean(sizes):.1f} | {statistics.mean(shares):.1%} | "
                         f"{statistics.mean(reach):.2%} ({min(reach):.2%}-{max(reach):.2%}) |")
    return lines


def stability_table(variants: dict[str, list[Circuit]]) -> list[str]:
    lines = ["| variant | layer | core pairs chosen in >= 90 % of resamples | mean selection frequency | "
             "neuron groups (mean) | mean group stability (Jaccard) | groups >= 0.75 | layer grouping ARI (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    for name, circuits in variants.items():
        for layer in LAYERS[1:]:
            frequencies = [f for c in circuits if c.stability for _, lower, f in c.stability.core
                           if lower.rpartition(":")[0] == layer]
            groups = [v for c in circuits if c.stability for g, v in c.stability.neuron_groups
                      if g.rpartition("/")[0] == layer and v == v]
            aris = [ari for c in circuits if c.stability for lay, _, _, ari in c.stability.neuron_groupings
                    if lay == layer and ari == ari]
            count = statistics.mean(len(c.groups_of_layer(layer)) for c in circuits)
            lines.append(f"| {name} | {layer} | {sum(f >= 0.9 for f in frequencies) / len(frequencies):.0%} | "
                         f"{statistics.mean(frequencies):.2f} | {count:.1f} | "
                         f"{statistics.mean(groups):.2f} | {sum(v >= 0.75 for v in groups) / len(groups):.0%} | "
                         f"{statistics.mean(aris):.2f} |")
    return lines


def figure(variants: dict[str, list[Circuit]]) -> Figure:
    fig = Figure(figsize=(7.5, 4))
    ax = fig.subplots()
    for name, circuits in variants.items():
        rows = [layer_coverage(c) for c in circuits]
        xs = list(range(len(LAYERS)))
        mean = [1.0] + [statistics.mean(r[d].reach for r in rows) for d in range(len(LAYERS) - 1)]
        low = [1.0] + [min(r[d].reach for r in rows) for d in range(len(LAYERS) - 1)]
        high = [1.0] + [max(r[d].reach for r in rows) for d in range(len(LAYERS) - 1)]
        ax.plot(xs, mean, marker="o", label=f"{name} (mean of {len(circuits)} classes)")
        ax.fill_between(xs, low, high, alpha=0.2)
    ax.set_yscale("log")
    ax.set_xticks(range(len(LAYERS)), LAYERS)
    ax.set_ylabel("reach: share of the logit's attribution\nkept by the core paths (log)")
    ax.set_title("EfficientNet-Lite0, Imagewoof: how much of the class decision the circuit keeps", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, default=ROOT.parent / "shared" / "data" / "imagewoof-val")
    parser.add_argument("--work", type=Path, default=Path("/tmp/neurflow-coverage"))
    parser.add_argument("--md", type=Path, default=ROOT / "bench" / "results-coverage.md")
    parser.add_argument("--png", type=Path, default=ROOT / "docs" / "img" / "coverage.png")
    parser.add_argument("--max-images", type=int, default=4)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--steps", default="16")
    parser.add_argument("--tau", type=int, default=16)
    parser.add_argument("--tau-coverage", type=float, nargs="+", default=[0.8, 0.3],
                        help="one variant per share")
    parser.add_argument("--classes", type=int, default=len(IMAGEWOOF),
                        help="the first N Imagewoof classes (by wnid), for a shorter run")
    args = parser.parse_args(argv)
    common = dict(model="efficientnet-lite0", layers=LAYERS, tau=args.tau, k=args.k, steps=args.steps,
                  max_images=args.max_images, device="cpu")
    configs = {f"tau={args.tau}": BuildConfig(**common)} | {
        f"tau<={args.tau}, --tau-coverage {share:g}": BuildConfig(**common, tau_coverage=share)
        for share in args.tau_coverage}
    variants: dict[str, list[Circuit]] = {}
    seconds: dict[str, float] = {}
    for name, config in configs.items():
        slug = name.replace(" ", "").replace("=", "").replace("<", "le").replace(",", "-")
        variants[name], seconds[name] = variant_circuits(slug, config, args.images, args.work,
                                                         IMAGEWOOF[: args.classes])
    first = next(iter(variants.values()))[0]
    resamples = first.stability.resamples if first.stability else 0
    lines = [
        "# Coverage: how much of the class decision a circuit keeps",
        "",
        f"`python bench/coverage.py` ({time.strftime('%Y-%m-%d')}, {cpu_name()}, {os.cpu_count()} cores, torch "
        f"threads default). EfficientNet-Lite0 (pretrained), layers {', '.join(LAYERS)}; per class the "
        f"{args.max_images} most confident images of {args.images.name} predicted as it "
        f"({len(next(iter(variants.values())))} classes); k = {args.k}, "
        f"N = {args.steps} Gauss-Legendre steps (fixed, as the demo; the completeness gap is recorded), ranking "
        "sum. Build seconds (this run, 0 when read back): "
        + ", ".join(f"{name}: {s:.0f} s" for name, s in seconds.items()) + ".",
        "",
        *table(variants),
        "",
        f"Bootstrap over the images ({resamples} resamples; groupings redone on 20; docs/coverage.md): per layer, the core pairs (target, core neuron) "
        "and the neuron groups.",
        "",
        *stability_table(variants),
        "",
        f"![reach per layer]({os.path.relpath(args.png, args.md.parent)})",
        "",
    ]
    args.md.write_text("\n".join(lines))
    save_figure(figure(variants), args.png)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
