"""Whole class circuits at the paper's settings on a GPU: EfficientNet-Lite0 (pretrained) and ResNet50 (random
weights), every default layer, 50 images, tau 16, k 50, N = 50 Gauss-Legendre steps (and ``--steps auto`` too).

    python bench/bench_gpu.py --images IMAGEFOLDER          # run by bench/gpu.sh; writes the `gpu` section

Per model: wall seconds of the build (model loading and image loading excluded: they are timed apart), the
seconds per stage the circuit records, peak GPU memory (``torch.cuda.max_memory_allocated``) and the GPU's
name. Targets (issue #13): EfficientNet-Lite0 under 60 s, ResNet50 under 3 min. Writes the ``gpu`` section of
``bench/results-engine.md`` (``--out ''``: nothing). Runs on the CPU too (``--device cpu``), for a dry run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from bench_engine import load_average, publish  # noqa: E402

from neurflow.engine.builder import CircuitBuilder  # noqa: E402
from neurflow.engine.config import BuildConfig  # noqa: E402
from neurflow.engine.models import load_model  # noqa: E402
from neurflow.engine.patches import list_images, load_views  # noqa: E402
from neurflow.engine.plans import plan_class, predict_folder, resolve_classes  # noqa: E402

#: (model, random weights, label source): random weights predict no dog reliably, so the folder labels D_c.
MODELS = (("efficientnet-lite0", False, "predicted"), ("resnet50", True, "folder"))
TARGETS = {"efficientnet-lite0": 60.0, "resnet50": 180.0}


def build_one(model: str, random_weights: bool, label_source: str, steps: int | str, images: Path, class_name: str,
              device: str, max_images: int) -> dict[str, object]:
    kwargs: dict[str, object] = {"steps": steps} if steps != "default" else {}
    config = BuildConfig(model=model, random_weights=random_weights, device=device, max_images=max_images,
                         label_source=label_source, **kwargs)  # type: ignore[arg-type]
    loaded = load_model(model, random_weights=random_weights, device=device)
    predictions = predict_folder(loaded, list_images(images), None)
    [target] = resolve_classes(loaded, [class_name], predictions, label_source)
    plan = plan_class(loaded, config, target, predictions)
    views, _ = load_views(plan.files, loaded.preprocessing)
    builder = CircuitBuilder(loaded, config, progress=False)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = builder.build(target, views, torch.from_numpy(plan.logits))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    circuit = result.circuit
    return {
        "model": model, "weights": loaded.weights_id, "steps": steps, "images": len(circuit.images),
        "layers": len(circuit.layers), "core": sum(len(n) for n in circuit.neurons.values()),
        "seconds": seconds, "stages": {k: round(v, 2) for k, v in circuit.timings.items()},
        "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else None,
    }


def cpu_name() -> str:
    """The CPU's model name (Linux), for the table's header."""
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else ():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--images", required=True, type=Path, help="ImageFolder holding the class's images")
    parser.add_argument("--class", dest="class_name", default="Samoyed")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--max-images", type=int, default=50)
    parser.add_argument("--steps", default="50,auto", help="comma-separated: N (fixed) or auto")
    parser.add_argument("--models", default=",".join(m for m, _, _ in MODELS), help="comma-separated models")
    parser.add_argument("--out", default=str(BENCH / "results-engine.md"), help="results file ('' for none)")
    args = parser.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device here; use --device cpu for a dry run", file=sys.stderr)
        return 2
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "none (CPU)"
    rows = []
    chosen = args.models.split(",")
    for model, random_weights, label_source in (m for m in MODELS if m[0] in chosen):
        for steps in args.steps.split(","):
            value: int | str = int(steps) if steps.isdigit() else steps
            row = build_one(model, random_weights, label_source, value, args.images, args.class_name, args.device,
                            args.max_images)
            rows.append(row)
            print(row, flush=True)
    on_gpu = args.device.startswith("cuda")
    where = f"GPU: {gpu}" if on_gpu else f"CPU: {cpu_name()}, {torch.get_num_threads()} threads"
    lines = [
        "### Whole class circuits on the GPU (`bench/gpu.sh`)" if on_gpu else
        "### Whole class circuits at the paper's settings on this CPU (`bench_gpu.py --device cpu`)",
        "",
        f"{where}; torch {torch.__version__}; class {args.class_name}, {args.max_images} images, every default "
        f"layer, tau 16, k 50; load average {load_average()}. Seconds: the build (activations, integrated "
        "gradients, grouping), model and image loading excluded; stages as the circuit records them.",
        "",
        f"| model | weights | steps | layers | images | core neurons | seconds | {'target' if on_gpu else 'GPU target'}"
        " | peak GPU GB | stages (s) |",
        "|---|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for row in rows:
        target = TARGETS[str(row["model"])]
        seconds = float(row["seconds"])  # type: ignore[arg-type]
        peak = row["peak_gb"]
        verdict = ("met" if seconds < target else "not met") if on_gpu else "(GPU only)"
        stages = ", ".join(f"{k} {v}" for k, v in row["stages"].items())  # type: ignore[union-attr]
        lines.append(f"| {row['model']} | {row['weights']} | {row['steps']} | {row['layers']} | {row['images']} | "
                     f"{row['core']} | {seconds:.1f} | < {target:.0f} s: {verdict} | "
                     f"{'' if peak is None else f'{peak:.1f}'} | {stages} |")
    publish(lines, args.out, "gpu" if on_gpu else "class-cpu")
    return 0


if __name__ == "__main__":
    sys.exit(main())
