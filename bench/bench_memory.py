"""Peak memory of a whole 50-image class circuit build, measured as the peak RSS of a child process.

Each measurement runs one build in a fresh child (``python bench/bench_memory.py --child ...``, which calls
``neurflow.engine.plans.build_circuits``: what ``neurflow build`` runs, without drawing the picture; or, with
``--via-cli``, the ``neurflow build`` command itself) and reads that child's ``ru_maxrss`` from the kernel
(``os.wait4``: the child's own rusage, as ``getrusage(RUSAGE_CHILDREN)`` would give it for a single child).
On CUDA the child also reports ``torch.cuda.max_memory_allocated``.

At the default settings (N=50 steps, 11 layers) a 50-image class takes hours on a 2-core CPU. Memory does not
depend on N: the (patch, step) inputs are streamed through the segment in calls of a fixed size, whatever
their number. What grows with the class is the recorded spatial means ([patches, channels] per layer), the
images' views, and the lower layers' full maps kept from the recording pass, which are capped by
--map-cache-mb (2 GB by default; layers that do not fit are recomputed per layer pair, 64 patches at a time). So the builds here use the full 50 images (2950 patches) with the real
k=50 and tau=16 but few layers and few steps; ``--scaling`` also measures the growth with steps and layers
on fewer images to show it.

    python bench/bench_memory.py                     # EfficientNet-Lite0 (pretrained) and ResNet50 (random)
    python bench/bench_memory.py --models efficientnet-lite0 --max-images 5 --out ''   # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

SHARED_IMAGES = Path(os.environ.get("NEURFLOW_IMAGEWOOF", ROOT.parent / "shared" / "data" / "imagewoof-val"))
DEFAULT_OUT = BENCH / "results-engine.md"
MODEL_LAYERS = {
    "efficientnet-lite0": "_fc,_blocks.15,_blocks.14",
    "resnet50": "fc,layer4.2,layer4.1",
}
RANDOM_ONLY = {"resnet50"}  # torchvision's pretrained weights cannot be downloaded here
LIMIT_MB = 8 * 1024


def run_child(args: argparse.Namespace, model: str, layers: str, steps: int, max_images: int,
              images: Path, out: Path) -> dict:
    """One build in a fresh child process; returns its peak RSS (MB), wall time and what it printed."""
    settings = ["--model", model, "--layers", layers, "--steps", str(steps), "--k", str(args.k),
                "--tau", str(args.tau), "--max-images", str(max_images), "--map-cache-mb", str(args.map_cache_mb),
                "--classes", args.class_name, "--images", str(images), "--out", str(out),
                "--label-source", "folder"]
    if model in RANDOM_ONLY or args.random_weights:
        settings.append("--random-weights")
    if args.device:
        settings += ["--device", args.device]
    if args.batch_size:
        settings += ["--batch-size", str(args.batch_size)]
    if args.via_cli:
        command = [sys.executable, "-m", "neurflow.cli.main", "build", *settings, "--no-progress", "--no-picture"]
    else:
        command = [sys.executable, str(Path(__file__).resolve()), "--child", *settings]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    output = process.stdout.read() if process.stdout else ""
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"child failed ({process.returncode}): {' '.join(command)}\n{output[-4000:]}")
    report: dict = {}
    for line in output.splitlines():
        if line.startswith("BENCH-MEMORY "):
            report = json.loads(line.split(" ", 1)[1])
    # ru_maxrss is in kilobytes on Linux
    return {"peak_rss_mb": usage.ru_maxrss / 1024, "seconds": seconds, "output": output, **report}


def child_main(argv: list[str]) -> int:
    """The child: one build_circuits call, then a JSON line with CUDA peak memory and timings."""
    import torch

    from neurflow.cli.options import ENGINE_OPTION_NAMES
    from neurflow.engine.config import BuildConfig
    from neurflow.engine.plans import build_circuits

    parser = argparse.ArgumentParser()
    for name in ENGINE_OPTION_NAMES:
        if name == "random_weights":
            continue
        parser.add_argument("--" + name.replace("_", "-"), dest=name, default=None)
    parser.add_argument("--random-weights", dest="random_weights", action="store_true")
    parser.add_argument("--classes", required=True)
    parser.add_argument("--images", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    config = BuildConfig(
        model=args.model, layers=args.layers.split(","), steps=int(args.steps), k=int(args.k), tau=int(args.tau),
        max_images=int(args.max_images), batch_size=int(args.batch_size) if args.batch_size else None,
        map_cache_mb=int(args.map_cache_mb), label_source=args.label_source,
        random_weights=args.random_weights, device=args.device,
    )
    folders = build_circuits(config, [args.classes], args.images, args.out, progress=False)
    from neurflow.format import load_circuit

    circuit = load_circuit(folders[0])
    cuda = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() and (
        args.device or "cuda").startswith("cuda") else None
    print("BENCH-MEMORY " + json.dumps({
        "cuda_peak_mb": cuda,
        "patches": len(circuit.patches),
        "images": len(circuit.images),
        "core": {layer: len(neurons) for layer, neurons in circuit.neurons.items()},
        "timings": {key: round(value, 1) for key, value in circuit.timings.items()},
        "device": str(config.device or ("cuda" if torch.cuda.is_available() else "cpu")),
    }), flush=True)
    return 0


def class_folder(source: Path, class_name: str, max_images: int, work: Path) -> Path:
    """A folder holding only the class's labelled images (copies), so the build reads no other class."""
    from neurflow.classes import imagenet_categories, resolve_class

    info = resolve_class(class_name, imagenet_categories())
    candidates = [source / info.wnid] if info.wnid else []
    candidates += [source / info.name]
    folder = next((c for c in candidates if c.is_dir()), None)
    if folder is None:
        raise SystemExit(f"no folder for {class_name} under {source} (looked for {', '.join(map(str, candidates))})")
    target = work / "images" / folder.name
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir())[:max_images]:
        shutil.copy(path, target / path.name)
    return work / "images"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        return child_main(argv[1:])
    parser = argparse.ArgumentParser(
        description="Peak RSS (child process) of whole-class circuit builds on EfficientNet-Lite0 and ResNet50.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--models", default="efficientnet-lite0,resnet50",
                        help=f"comma-separated; layers: {MODEL_LAYERS}")
    parser.add_argument("--images", default=str(SHARED_IMAGES), help="ImageFolder with a folder for the class")
    parser.add_argument("--class", dest="class_name", default="Samoyed")
    parser.add_argument("--max-images", type=int, default=50)
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--tau", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2, help="IG steps (memory does not depend on them)")
    parser.add_argument("--batch-size", type=int, default=None, help="patches per recording pass (engine default)")
    parser.add_argument("--map-cache-mb", type=int, default=2048, help="memory for kept lower maps (engine default)")
    parser.add_argument("--random-weights", action="store_true", help="random weights for every model")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: CUDA when present)")
    parser.add_argument("--via-cli", action="store_true", help="run `neurflow build` itself in the child")
    parser.add_argument("--scaling", action="store_true",
                        help="also EfficientNet-Lite0 on --scaling-images images at 2 and 8 steps, 3 and 4 layers")
    parser.add_argument("--scaling-images", type=int, default=4)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="markdown file for the table ('' for none)")
    args = parser.parse_args(argv)

    import torch
    from bench_engine import cpu_model, load_average, write_section

    started = time.perf_counter()
    load_before = load_average()
    work = Path(tempfile.mkdtemp(prefix="neurflow-bench-memory-"))
    lines: list[str] = []

    def echo(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        images = class_folder(Path(args.images), args.class_name, args.max_images, work)
        echo("## Peak memory of a whole-class circuit build")
        echo()
        echo(f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S%z')}; CPU: {cpu_model()}, {os.cpu_count()} logical cores; "
             f"torch {torch.__version__}; device {args.device or ('cuda' if torch.cuda.is_available() else 'cpu')}")
        echo(f"- class {args.class_name}: {args.max_images} labelled images of {args.images} "
             f"({args.max_images * 59} patches), k={args.k}, tau={args.tau}, N={args.steps} Gauss-Legendre steps, "
             f"--map-cache-mb {args.map_cache_mb}; each build in a fresh child process "
             f"({'`neurflow build`' if args.via_cli else 'neurflow.engine.plans.build_circuits'}); peak RSS = the child's "
             "ru_maxrss (os.wait4)")
        echo()
        echo("| model | weights | layers | images | patches | steps | core neurons per layer | build s "
             "| peak RSS MB | peak CUDA MB | under 8 GB |")
        echo("|---|---|---|---|---|---|---|---|---|---|---|")
        plan = [(m, MODEL_LAYERS[m], args.steps, args.max_images) for m in args.models.split(",") if m]
        if args.scaling:
            plan += [("efficientnet-lite0", MODEL_LAYERS["efficientnet-lite0"], 2, args.scaling_images),
                     ("efficientnet-lite0", MODEL_LAYERS["efficientnet-lite0"], 8, args.scaling_images),
                     ("efficientnet-lite0", MODEL_LAYERS["efficientnet-lite0"] + ",_blocks.13", 2,
                      args.scaling_images)]
        for index, (model, layers, steps, count) in enumerate(plan):
            print(f"[{index + 1}/{len(plan)}] {model} {layers} N={steps} {count} images ...", flush=True)
            result = run_child(args, model, layers, steps, count, images, work / f"out{index}")
            weights = "random" if model in RANDOM_ONLY or args.random_weights else "pretrained"
            peak = result["peak_rss_mb"]
            cuda = result.get("cuda_peak_mb")
            core = "/".join(str(v) for v in result.get("core", {}).values())
            echo(f"| {model} | {weights} | {layers.replace(',', ', ')} | {result.get('images', count)} "
                 f"| {result.get('patches', count * 59)} | {steps} | {core} | {result['seconds']:.0f} "
                 f"| {peak:.0f} | {'n/a' if cuda is None else f'{cuda:.0f}'} "
                 f"| {'yes' if peak < LIMIT_MB and (cuda or 0) < LIMIT_MB else 'NO'} |")
            print(f"    timings: {result.get('timings')}", flush=True)
        echo()
        echo("Why memory is bounded: the engine streams the (patch, step) inputs of a layer pair through the "
             "segment in calls of a fixed size (one forward and one backward per target slot each) and "
             "accumulates only [rows, lower channels] sums. Pairs run one after another and keep only their core "
             "sets and scores. What grows with the class is the record of spatial means ([patches, channels] per "
             "layer, a few MB for 2950 patches), the images' views (50 x 3 x 224 x 224 floats, 30 MB) and the "
             "lower maps kept from the recording pass, at most --map-cache-mb (the rest are recomputed).")
        echo()
        echo(f"Machine shared with other engineers' jobs: load average {load_before} before, {load_average()} "
             f"after; total {(time.perf_counter() - started) / 60:.1f} min "
             f"(`python bench/bench_memory.py {' '.join(argv)}`).")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.out:
        write_section(Path(args.out), "memory", "\n".join(lines))
        print(f"\nwritten to {args.out} (section memory)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
