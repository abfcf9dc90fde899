"""A projection, not a measurement: an atlas of 1,000 ImageNet classes of ResNet50 on 8 GPUs, from the class
circuit of EfficientNet-Lite0 measured on this CPU (`bench_gpu.py --device cpu`), the FLOP ratio of the two
models' circuits, and the ratio of a GPU's FLOP rate to this CPU's (measured here on ResNet50).

    python bench/project_atlas.py --lite0-seconds 892.2 --lite0-steps auto   # writes the `projection` section

How the figures combine (every assumption is printed beside the table):
1. FLOPs of a class circuit, per model, counted with torch's FlopCounterMode at one 224 x 224 input:
   recording = 59 x images forward passes of the model (as the builder records); integrated gradients =
   sum over layer pairs of rows x nodes x 3 x FLOPs(segment) (a forward and a backward of twice its cost per
   node), with the same rows (targets x k) and nodes per pair for both models: tau 16 targets after the
   logit, k 50, the Lite0 circuit's measured mean nodes per row under ``auto`` (or N).
2. ResNet50's class on this CPU = the measured Lite0 seconds x FLOPs(ResNet50) / FLOPs(Lite0).
3. On a GPU, two ways: from FLOPs (ResNet50's circuit FLOPs / (the GPU's FP32 peak x an efficiency, a range:
   small batched segments rarely reach half the peak)), and from the Lite0 run (2. x this CPU's measured FLOP/s
   on ResNet50 forward+backward at batch 32 / the GPU's rate: an upper bound, as the Lite0 circuit used the
   CPU far less efficiently than dense ResNet50 layers would).
4. 1,000 classes on 8 GPUs, one class per GPU at a time (``--workers 8``), writes overlapped.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))
sys.path.insert(0, str(BENCH))

from bench_engine import load_average, publish  # noqa: E402

from neurflow.engine.models import load_model  # noqa: E402
from neurflow.engine.segments import extract_segment, record_layers, trace  # noqa: E402

PATCHES_PER_IMAGE = 59
#: H200 / H100 SXM FP32 (non-tensor-core) peak, TFLOP/s (NVIDIA's data sheet).
GPU_PEAK_TFLOPS = 67.0
EFFICIENCIES = (0.15, 0.30, 0.50)


def flops(fn, *args) -> int:  # noqa: ANN001 - any callable of tensors
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        fn(*args)
    return int(counter.get_total_flops())


def circuit_flops(model: str, images: int, tau: int, k: int, nodes: float) -> dict[str, float]:
    """FLOPs of one class circuit of ``model`` (random weights: FLOPs do not depend on them)."""
    loaded = load_model(model, random_weights=True, device="cpu")
    layers = loaded.layers
    x = torch.randn(1, 3, 224, 224)
    _, maps = record_layers(loaded.module, x, layers, keep=layers)
    traced = trace(loaded.module, layers)
    record = PATCHES_PER_IMAGE * images * flops(loaded.module, x)
    ig = 0.0
    for depth, (upper, lower) in enumerate(zip(layers, layers[1:], strict=False)):
        segment = extract_segment(traced, lower, upper)
        targets = 1 if depth == 0 else tau  # the logit, then about tau core neurons per layer (tau 16)
        ig += targets * k * nodes * 3 * flops(segment, maps[lower])
    return {"record": record, "ig": ig, "total": record + ig, "forward": flops(loaded.module, x)}


def cpu_flop_rate(seconds: float = 20.0) -> float:
    """FLOP/s of this CPU on ResNet50 forward + backward at batch 32 (the kind of work integrated gradients do)."""
    loaded = load_model("resnet50", random_weights=True, device="cpu")
    x = torch.randn(32, 3, 224, 224).contiguous(memory_format=torch.channels_last)

    def step() -> None:
        inputs = x.clone().requires_grad_(True)
        loaded.module(inputs).sum().backward()

    per_step = 3 * flops(loaded.module, x)
    step()  # warm-up
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step()
        done += 1
    return done * per_step / (time.perf_counter() - start)


def hours(per_class: float, args: argparse.Namespace) -> float:
    """Wall hours of ``args.classes`` classes on ``args.gpus`` GPUs, one class per GPU at a time."""
    return per_class * args.classes / args.gpus / 3600


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--lite0-seconds", type=float, required=True, help="measured Lite0 class circuit, seconds")
    parser.add_argument("--lite0-steps", default="auto", help="what that circuit integrated with (for the table)")
    parser.add_argument("--nodes", type=float, default=12.0, help="mean nodes per IG row of that circuit")
    parser.add_argument("--images", type=int, default=50)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--gpus", type=int, default=8)
    parser.add_argument("--out", default=str(BENCH / "results-engine.md"), help="results file ('' for none)")
    args = parser.parse_args(argv)
    lite0 = circuit_flops("efficientnet-lite0", args.images, 16, 50, args.nodes)
    resnet = circuit_flops("resnet50", args.images, 16, 50, args.nodes)
    ratio = resnet["total"] / lite0["total"]
    resnet_cpu = args.lite0_seconds * ratio
    rate = cpu_flop_rate()
    achieved = lite0["total"] / args.lite0_seconds
    lines = [
        "### Projection (not a measurement): 1,000 ImageNet classes of ResNet50 on 8 GPUs",
        "",
        f"From the EfficientNet-Lite0 class circuit measured on this CPU ({args.lite0_seconds:.0f} s, steps "
        f"{args.lite0_steps}, {args.images} images, every default layer), the FLOP ratio of the two models' "
        f"circuits and the ratio of a GPU's FP32 rate to this CPU's; `bench/project_atlas.py`, load average "
        f"{load_average()}. Assumptions: both circuits integrate {args.nodes:g} nodes per row and take tau 16 "
        "targets per layer with k 50; a GPU sustains 15-50 % of its FP32 peak "
        f"({GPU_PEAK_TFLOPS:g} TFLOP/s, H100/H200 SXM) on these segments; writes overlap the builds (a class "
        "writes in about a second, bench/results-neo4j.md).",
        "",
        "| quantity | EfficientNet-Lite0 | ResNet50 |",
        "|---|---:|---:|",
        f"| forward FLOPs, one 224 x 224 input | {lite0['forward'] / 1e9:.2f} G | {resnet['forward'] / 1e9:.2f} G |",
        f"| class circuit: recording FLOPs | {lite0['record'] / 1e12:.1f} T | {resnet['record'] / 1e12:.1f} T |",
        f"| class circuit: integrated-gradient FLOPs | {lite0['ig'] / 1e12:.1f} T | {resnet['ig'] / 1e12:.1f} T |",
        f"| class circuit on this CPU | {args.lite0_seconds:.0f} s (measured) | {resnet_cpu:.0f} s "
        f"(x {ratio:.1f}, projected) |",
        "",
        f"This CPU: {rate / 1e9:.0f} GFLOP/s on ResNet50 forward + backward (batch 32, measured); the Lite0 class "
        f"circuit ran at {achieved / 1e9:.0f} GFLOP/s ({achieved / rate:.0%} of that: depthwise convolutions and small "
        "segments). Two projections per GPU efficiency: *from FLOPs*, ResNet50's circuit FLOPs at that share of the "
        "GPU's peak; *from the Lite0 run*, ResNet50's projected CPU time divided by the GPU's rate over this CPU's "
        "(it assumes ResNet50 is run as inefficiently as the Lite0 circuit was here: an upper bound).",
        "",
        "| GPU efficiency | ResNet50 class on 1 GPU, from FLOPs | 1,000 classes on 8 GPUs | ResNet50 class on 1 GPU, "
        "from the Lite0 run | 1,000 classes on 8 GPUs |",
        "|---:|---:|---:|---:|---:|",
    ]
    for efficiency in EFFICIENCIES:
        gpu_rate = GPU_PEAK_TFLOPS * 1e12 * efficiency
        from_flops = resnet["total"] / gpu_rate
        from_run = resnet_cpu / (gpu_rate / rate)
        lines.append(f"| {efficiency:.0%} | {from_flops:.0f} s | {hours(from_flops, args):.1f} h | {from_run:.0f} s | "
                     f"{hours(from_run, args):.1f} h |")
    publish(lines, args.out, "projection")
    return 0


if __name__ == "__main__":
    sys.exit(main())
