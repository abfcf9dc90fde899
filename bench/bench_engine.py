"""Engine benchmark: the authors' procedure (a) against neurflow (b) on the same model, patches and targets.

(a) ``bench/authors_reference.py``: captum IntegratedGradients per target, Gauss-Legendre N=50, batches of
    4 patches, the input-to-lower-layer prefix recomputed for every target and batch.
(b) ``neurflow.engine.builder.CircuitBuilder.attribute`` / ``core_set``: batched (target, patch, step) rows, the
    prefix computed once per patch and layer pair; at N=50 (the authors' steps), at the fast N and with
    ``steps="auto"`` (nodes chosen per target, docs/integration.md).

Both run the same top-down recursion from the class logit over the same layers, each following its own core
sets, on one PatchSet and one activation record (so V_a is the same for a target both chose). Printed and
written as markdown: per layer pair and for the whole circuit, time, peak memory, speed ratio and the mean
top-tau agreement |S_a(a) ∩ S_a(b)|; then what ``--steps auto`` used and how it compares with the authors at
N=50 (speed) and with neurflow at N=50 (agreement); then the steps/accuracy trade-off of neurflow on fixed targets.

    python bench/bench_engine.py --quick          # smoke check, about 2 minutes on 2 CPU cores
    python bench/bench_engine.py                  # the CPU table of bench/results-engine.md
    python bench/bench_engine.py --device cuda --max-images 4 --k 50 --layers _fc,_blocks.15,_blocks.14,_blocks.13
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from authors_reference import AuthorsReference, CircuitResult, run_circuit  # noqa: E402

from neurflow.engine.builder import CircuitBuilder  # noqa: E402
from neurflow.engine.config import STEPS_RULE, STEPS_RULES, STEPS_TOLERANCE, BuildConfig  # noqa: E402
from neurflow.engine.integration import PairIntegration  # noqa: E402
from neurflow.engine.models import load_model  # noqa: E402
from neurflow.engine.patches import PatchSet, list_images, load_views, predict_views, select_class_images  # noqa: E402
from neurflow.engine.ranking import core_set  # noqa: E402

SHARED_IMAGES = Path(os.environ.get("NEURFLOW_IMAGEWOOF", ROOT.parent / "shared" / "data" / "imagewoof-val"))
DEFAULT_IMAGES = SHARED_IMAGES if SHARED_IMAGES.is_dir() else ROOT / "tests" / "data" / "imagewoof"
DEFAULT_OUT = BENCH / "results-engine.md"


# ---------------------------------------------------------------- memory and machine


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss() -> bool:
    """Resets this process's VmHWM (Linux >= 4.0: write 5 to /proc/self/clear_refs)."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


@dataclass
class Measured:
    value: object
    seconds: float
    peak_rss_mb: float | None
    peak_cuda_mb: float | None


def measure(run: Callable[[], object], device: torch.device) -> Measured:
    """Wall time, peak RSS of this process during ``run`` (MB) and, on CUDA, peak allocated GPU memory."""
    resettable = reset_peak_rss()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    value = run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    rss = _status_kb("VmHWM") / 1024 if resettable else None
    cuda = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return Measured(value, seconds, rss, cuda)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def machine_lines(device: torch.device) -> list[str]:
    import captum

    lines = [
        f"- date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
        f"- CPU: {cpu_model()}, {os.cpu_count()} logical cores visible, torch threads {torch.get_num_threads()}",
        f"- torch {torch.__version__}, captum {captum.__version__}, Python {platform.python_version()}, "
        f"device {device}",
    ]
    if device.type == "cuda":
        lines.append(f"- GPU: {torch.cuda.get_device_name(device)}")
    return lines


RESULTS_TITLE = "# Benchmark results\n\nWritten by bench/bench_engine.py and bench/bench_memory.py (see bench/README.md).\n"


def publish(lines: list[str], out: str, name: str) -> None:
    """Prints a results table and, unless ``out`` is empty, writes it as section ``name`` of the file ``out``."""
    text = "\n".join(lines)
    print("\n" + text)
    if out:
        write_section(Path(out), name, text)


def write_section(path: Path, name: str, text: str) -> None:
    """Replaces (or appends) the section ``name`` of a results file, keeping the other scripts' sections."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    current = path.read_text() if path.exists() else RESULTS_TITLE
    if start in current and end in current:
        before, rest = current.split(start, 1)
        current = before + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)


# ---------------------------------------------------------------- the runs


@dataclass
class Run:
    """One procedure's whole circuit, repeated: per pair the median seconds and the max peak memory."""

    label: str
    circuit: CircuitResult
    pair_seconds: list[float]
    total_seconds: float
    all_totals: list[float]
    pair_rss: list[float | None]
    pair_cuda: list[float | None]
    circuits: list[CircuitResult]


def one_circuit(label: str, attribute, select, acts, layers, class_index, args, device, repeat: int,
                fixed_targets=None, echo=print) -> CircuitResult:
    """One whole-circuit run, echoed with its pairs' times and the load average after it."""
    def timed(run):
        m = measure(run, device)
        return m.value, m.seconds, m.peak_rss_mb, m.peak_cuda_mb
    circuit = run_circuit(attribute, acts, layers, class_index, args.k, args.tau, select=select,
                          fixed_targets=fixed_targets, measure=timed)
    echo(f"  {label} run {repeat + 1}/{args.repeats}: {circuit.seconds:.1f} s  "
         + ", ".join(f"{p.upper}<-{p.lower} {len(p.core_sets)} targets {p.seconds:.1f} s" for p in circuit.pairs)
         + f"  (load {load_average()})")
    return circuit


def repeat_circuit(label: str, attribute, select, acts, layers, class_index, args, device,
                   fixed_targets=None, echo=print) -> Run:
    circuits = [one_circuit(label, attribute, select, acts, layers, class_index, args, device, repeat,
                            fixed_targets, echo) for repeat in range(args.repeats)]
    return summarise(label, circuits, echo)


def interleaved(plan: list[tuple[str, Callable, Callable]], acts, layers, class_index, args, device,
                echo=print) -> dict[str, Run]:
    """Every procedure of ``plan`` once per round, ``args.repeats`` rounds: on a shared machine the runs of one
    round see about the same load, so their ratios are steadier than those of runs minutes apart."""
    circuits: dict[str, list[CircuitResult]] = {label: [] for label, _, _ in plan}
    for repeat in range(args.repeats):
        for label, attribute, select in plan:
            circuits[label].append(one_circuit(label, attribute, select, acts, layers, class_index, args, device,
                                               repeat, echo=echo))
    return {label: summarise(label, done, echo) for label, done in circuits.items()}


def summarise(label: str, circuits: list[CircuitResult], echo=print) -> Run:
    """Per pair the median seconds and the max peak memory of repeated runs of one procedure."""
    for again in circuits[1:]:
        for first, other in zip(circuits[0].pairs, again.pairs, strict=True):
            if set(first.core_sets) != set(other.core_sets) or any(
                    not np.array_equal(first.core_sets[a], other.core_sets[a]) for a in first.core_sets):
                echo(f"  warning: {label} core sets differ between repeats at {first.upper}")
    n_pairs = len(circuits[0].pairs)
    pair_seconds = [statistics.median(c.pairs[i].seconds for c in circuits) for i in range(n_pairs)]
    totals = [c.seconds for c in circuits]

    def peak(values):
        values = [v for v in values if v is not None]
        return max(values) if values else None

    return Run(
        label, circuits[0], pair_seconds, statistics.median(totals), totals,
        [peak(c.pairs[i].peak_rss_mb for c in circuits) for i in range(n_pairs)],
        [peak(c.pairs[i].peak_cuda_mb for c in circuits) for i in range(n_pairs)], circuits,
    )


def agreement(reference: dict[int, np.ndarray], other: dict[int, np.ndarray]) -> list[int]:
    """|S_a(ref) ∩ S_a(other)| for every target both chose."""
    common = sorted(set(reference) & set(other))
    return [len(set(map(int, reference[a])) & set(map(int, other[a]))) for a in common]


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def mem(rss: float | None, cuda: float | None) -> str:
    text = fmt(rss, 0)
    return text + (f" / {cuda:.0f}" if cuda is not None else "")


def round_rows(args: argparse.Namespace, runs: dict[str, Run], rounds: list[dict[tuple[str, str], PairIntegration]],
               pairs: list[tuple[str, str]]) -> list[str]:
    """Per round: auto's seconds and speed against (a) of the same round, its top-tau agreement with (b) N=--steps
    and with (a) of that round, its largest completeness gap per pair and its (target, patch, node) evaluations."""
    auto, fixed = runs["(b) neurflow N=auto"], runs[f"(b) neurflow N={args.steps}"]
    authors = runs.get(f"(a) authors N={args.steps}")
    rows = []
    for i, used in enumerate(rounds[: len(auto.circuits)]):
        mine = auto.circuits[i]

        def agree(other: CircuitResult, mine: CircuitResult = mine) -> str:
            counts = [c for p, q in zip(other.pairs, mine.pairs, strict=True) for c in agreement(p.core_sets, q.core_sets)]
            return f"{np.mean(counts):.2f}/{args.tau} (min {min(counts)}, {len(counts)})"

        evaluations = sum(new * targets for pair in pairs
                          for new, targets in zip(used[pair].level_new_nodes, used[pair].level_targets, strict=True))
        gaps = ", ".join(f"{100 * used[pair].gap:.2f} %" for pair in pairs)
        speed = f"{authors.all_totals[i] / auto.all_totals[i]:.1f}x" if authors else "n/a"
        a_seconds = f"{authors.all_totals[i]:.1f}" if authors else "n/a"
        rows.append(f"| {i + 1} | {a_seconds} | {auto.all_totals[i]:.1f} | **{speed}** | {agree(fixed.circuits[i])} | "
                    f"{agree(authors.circuits[i]) if authors else 'n/a'} | {gaps} | {evaluations} |")
    return ["Per round (each round runs (a), then auto, then the others): seconds, speed, top-tau agreement (mean, "
            "min, targets both chose) with neurflow at the authors' N and with the authors' run of the round, the "
            "largest completeness gap of a target per pair (" + "; ".join(f"{u} <- {lo}" for u, lo in pairs)
            + ") and the gradient evaluations per patch of a target, summed over targets (sum over levels of new "
            "nodes x targets).", "",
            f"| round | (a) s | auto s | speed | agreement with (b) N={args.steps} | agreement with (a) | max gap per "
            "pair | target-node evaluations |",
            "|---|---|---|---|---|---|---|---|", *rows, ""]


def auto_section(args: argparse.Namespace, runs: dict[str, Run], integration: dict[tuple[str, str], PairIntegration],
                 pairs: list[tuple[str, str]], per_round: list[dict[tuple[str, str], PairIntegration]]) -> list[str]:
    """What --steps auto used per pair (its last run), its speed against the authors at N=--steps and its top-tau
    agreement with neurflow at N=--steps (fixed), each against its target; then the same per round."""
    auto, fixed = runs.get("(b) neurflow N=auto"), runs.get(f"(b) neurflow N={args.steps}")
    if auto is None or fixed is None:
        return []
    rows = []
    for upper, lower in pairs:
        used = integration[upper, lower]
        levels = ", ".join(f"{n} ({t}, +{new})" for n, t, new in
                           zip(used.levels, used.level_targets, used.level_new_nodes, strict=True))
        by_nodes = ", ".join(f"{n}: {c}" for n, c in sorted(Counter(used.target_nodes.values()).items()))
        rows.append(f"| {upper} <- {lower} | {len(used.target_nodes)} | {by_nodes} | {levels} | "
                    f"{100 * used.gap:.2f} % | {len(used.tied)} | {len(used.unsettled)} | "
                    f"{', '.join(f'{x:.1f}' for x in used.level_seconds)} |")
    counts = [c for p_fixed, p_auto in zip(fixed.circuit.pairs, auto.circuit.pairs, strict=True)
              for c in agreement(p_fixed.core_sets, p_auto.core_sets)]
    mean = float(np.mean(counts))
    rule = next(iter(integration.values())).rule if integration else "?"
    lines = ["## --steps auto", "",
             f"Rule: {rule}. Per layer pair, from its last run: targets, how many targets kept each number of nodes, "
             "the levels computed (targets at each, + the nodes each evaluated per patch: only its new ones with a "
             "nested rule), the largest completeness gap of a target at the nodes it kept, targets "
             "settled on a tie, targets not settled at the maximum, and seconds per level.", "",
             "| pair | targets | targets per nodes kept | levels (targets) | max gap | tied | unsettled | s per level |",
             "|---|---|---|---|---|---|---|---|", *rows, ""]
    agree = (f"mean top-{args.tau} agreement with neurflow N={args.steps} (fixed) **{mean:.2f}/{args.tau}** (min "
             f"{min(counts)}, {len(counts)} targets both chose)")
    wanted = args.agreement_target * args.tau
    agreed = f"target >= {wanted:.2f}/{args.tau}: {'met' if mean >= wanted - 1e-9 else '**not met**'}"
    authors = runs.get(f"(a) authors N={args.steps}")
    if authors is not None:
        speed = authors.total_seconds / auto.total_seconds
        verdict = f"target >= {args.speed_target:g}x: {'met' if speed >= args.speed_target else '**not met**'}"
        rounds = ", ".join(f"{a / b:.1f}x" for a, b in zip(authors.all_totals, auto.all_totals, strict=True))
        lines.append(f"Whole class circuit with --steps auto: **{speed:.1f}x** the authors' procedure at "
                     f"N={args.steps} (medians {auto.total_seconds:.1f} s vs {authors.total_seconds:.1f} s; each "
                     f"round, auto right after (a): {rounds}; {verdict}); {agree} ({agreed}).")
    else:
        lines.append(f"Whole class circuit with --steps auto: {auto.total_seconds:.1f} s; {agree} ({agreed}).")
    return [*lines, "", *round_rows(args, runs, per_round, pairs)]


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time and peak memory of the authors' procedure (captum per target, batches of 4) against "
                    "neurflow on the same patches and targets; speed ratio, top-tau agreement, steps trade-off.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--model", default="efficientnet-lite0")
    parser.add_argument("--weights", default=None, help="state-dict file (default: the model's pretrained weights)")
    parser.add_argument("--random-weights", action="store_true", help="random weights (e.g. resnet50 here)")
    parser.add_argument("--images", default=str(DEFAULT_IMAGES), help="image folder (flat or class folders)")
    parser.add_argument("--class", dest="class_name", default="Samoyed")
    parser.add_argument("--label-source", default="predicted", choices=["predicted", "folder"])
    parser.add_argument("--max-images", type=int, default=10, help="images of the class (most confident first)")
    parser.add_argument("--layers", default="_fc,_blocks.15,_blocks.14", help="logit layer first")
    parser.add_argument("--k", type=int, default=50, help="patches per concept V_a")
    parser.add_argument("--tau", type=int, default=16, help="core set size")
    parser.add_argument("--steps", type=int, default=50, help="IG steps of (a) and of (b) at the authors' N")
    parser.add_argument("--fast-steps", type=int, default=16, help="the faster N of (b)")
    parser.add_argument("--no-auto", action="store_true", help="skip neurflow with --steps auto")
    parser.add_argument("--auto-tolerance", type=float, default=STEPS_TOLERANCE,
                        help="completeness gap tolerance of --steps auto")
    parser.add_argument("--auto-max", type=int, default=None,
                        help="most nodes of --steps auto (default: its rule's last level)")
    parser.add_argument("--auto-rule", default=STEPS_RULE, choices=STEPS_RULES, help="levels of --steps auto")
    parser.add_argument("--speed-target", type=float, default=10.0,
                        help="target speed-up of auto over the authors at --steps (printed as met or not)")
    parser.add_argument("--agreement-target", type=float, default=15.9 / 16,
                        help="target mean top-tau agreement of auto with neurflow at --steps, a fraction of tau")
    parser.add_argument("--tradeoff-steps", default="8,16,32,50",
                        help="Gauss-Legendre N for the trade-off table ('' to skip it); riemann-midpoint is "
                             "run at --steps too")
    parser.add_argument("--reference-steps", type=int, default=50,
                        help="Gauss-Legendre N of the trade-off reference")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="patches per recording forward pass, both procedures (default: the engine's, 8 on CPU)")
    parser.add_argument("--ig-batch-size", type=int, default=None,
                        help="neurflow inputs per IG call (default: the engine's, 16 on CPU and 256 on CUDA)")
    parser.add_argument("--authors-batch", type=int, default=4, help="patches per captum call in (a)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of every measurement (median reported)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (or cuda:N)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-authors", action="store_true", help="only neurflow (e.g. to try settings)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke check: 1 image, k=4, tau=4, trade-off N=8,16, one run each (~2 min)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="markdown file for the tables ('' for none)")
    args = parser.parse_args(argv)
    if args.quick:
        args.max_images, args.k, args.tau, args.repeats = 1, 4, 4, 1
        args.tradeoff_steps = "8,16"
        if args.out == str(DEFAULT_OUT):
            args.out = ""
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    started = time.perf_counter()
    load_before = load_average()

    def echo(line: str = "") -> None:
        print(line, flush=True)

    layers = [x.strip() for x in args.layers.split(",") if x.strip()]
    torch.manual_seed(0)
    loaded = load_model(args.model, args.weights, args.random_weights, args.device, layers)
    device = loaded.device
    target = loaded.resolve_class(args.class_name)
    views, _ = load_views(list_images(args.images), loaded.preprocessing)
    logits = predict_views(loaded, views)
    chosen = select_class_images(target, views, logits, args.label_source, args.max_images, loaded.categories)
    views = [views[i] for i in chosen]
    patches = PatchSet(views, loaded.preprocessing)

    def config(steps: int | str, quadrature: str = "gauss-legendre", rule: str | None = None) -> BuildConfig:
        rule = rule or (args.auto_rule if quadrature == "gauss-legendre" else "doubling")
        return BuildConfig(args.model, layers=layers, tau=args.tau, k=args.k, steps=steps, quadrature=quadrature,
                           ranking="sum", device=str(device), batch_size=args.batch_size,
                           ig_batch_size=args.ig_batch_size, steps_tolerance=args.auto_tolerance,
                           steps_max=args.auto_max or 0, steps_rule=rule)

    def builder(steps: int | str, quadrature: str = "gauss-legendre", rule: str | None = None) -> CircuitBuilder:
        return CircuitBuilder(loaded, config(steps, quadrature, rule), progress=False)

    recorder = CircuitBuilder(loaded, config(args.steps), progress=False)
    clock = time.perf_counter()
    recording = recorder.record(patches)  # the lower maps kept by neurflow's one recording pass: every run uses them
    acts = recording.means
    record_seconds = time.perf_counter() - clock
    authors_record_seconds = None
    if not args.skip_authors:
        clock = time.perf_counter()
        AuthorsReference(loaded, patches, layers, args.steps, batch=args.authors_batch).record(
            recorder.config.patches_per_pass(device))
        authors_record_seconds = time.perf_counter() - clock

    auto_config = config("auto")
    settings = [
        f"- model {loaded.name} ({loaded.weights_id}); class {target.name} ({target.index}); "
        f"{len(views)} image(s) predicted as it ({', '.join(v.file.path.name for v in views)}), "
        f"{len(patches)} patches",
        f"- activation pass (V_a of every neuron): neurflow one forward over all patches recording every layer "
        f"and keeping the lower maps ({', '.join(recording.maps) or 'none'}) {record_seconds:.1f} s"
        + (f"; authors a separate input-to-layer forward per layer {authors_record_seconds:.1f} s"
           if authors_record_seconds is not None else "")
        + ". Both runs below use neurflow's activations, so V_a is the same; the last table row adds each "
          "one's own pass",
        f"- layers {' > '.join(layers)}; k={args.k} patches per concept, tau={args.tau}, ranking |sum over V_a|",
        f"- (a) authors: captum IntegratedGradients per target, {args.steps} Gauss-Legendre steps, batches of "
        f"{args.authors_batch} patches, input-to-lower prefix recomputed per target and batch",
        f"- (b) neurflow CircuitBuilder.attribute: lower maps from the recording pass, targets sharing a patch "
        f"share its forward passes, calls of {recorder.config.ig_rows_per_call(device)} (patch, step) inputs; "
        f"at N={args.steps} and N={args.fast_steps} Gauss-Legendre"
        + ("" if args.no_auto else f", and auto (--steps auto: per target the levels of {auto_config.auto_rule_name} "
                                   f"from {auto_config.steps_start} nodes up to {auto_config.steps_max}"
                                   + (", each evaluating only the nodes it adds" if auto_config.steps_rule != "doubling"
                                      else ", each from scratch")
                                   + f", until its top-tau set repeats (ties within {auto_config.steps_tie:.0%} of the "
                                   f"tau-th score) and its completeness gap is within {args.auto_tolerance:.0%})"),
        f"- every time is the median of {args.repeats} run(s); peak memory is the peak RSS of this process during "
        f"the pair (VmHWM reset before it; model and patches included)"
        + ("; after ' / ': torch.cuda.max_memory_allocated" if device.type == "cuda" else ""),
    ]
    echo("# Engine benchmark: authors' procedure (a) vs neurflow (b)\n")
    for line in machine_lines(device) + settings:
        echo(line)
    echo()

    def neurflow_select(b: CircuitBuilder):
        return lambda per_patch, tau: core_set(per_patch, b.config.tau, b.config.ranking)[0]

    # What --steps auto used per pair, from its last run (each step returns how it integrated its pair), and per
    # run of the whole circuit (a new one starts at the top pair).
    auto_integration: dict[tuple[str, str], PairIntegration] = {}
    auto_rounds: list[dict[tuple[str, str], PairIntegration]] = []

    def neurflow_attribute(b: CircuitBuilder, rounds: list | None = None):
        def attribute(upper: str, lower: str, concepts: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
            step = b.step(recording, upper, lower, concepts)
            if step.integration is not None:
                auto_integration[upper, lower] = step.integration
                if rounds is not None:
                    if upper == layers[0]:
                        rounds.append({})
                    rounds[-1][upper, lower] = step.integration
            return step.per_patch
        return attribute

    fast = builder(args.fast_steps)
    slow = builder(args.steps)
    plan: list[tuple[str, Callable, Callable]] = []
    if not args.skip_authors:
        reference = AuthorsReference(loaded, patches, layers, args.steps, batch=args.authors_batch)
        from authors_reference import core_set as authors_select

        plan.append((f"(a) authors N={args.steps}", reference.attribute, authors_select))
    plan.append((f"(b) neurflow N={args.steps}", neurflow_attribute(slow), neurflow_select(slow)))
    plan.append((f"(b) neurflow N={args.fast_steps}", neurflow_attribute(fast), neurflow_select(fast)))
    auto = builder("auto")
    if not args.no_auto:
        plan.append(("(b) neurflow N=auto", neurflow_attribute(auto, auto_rounds), neurflow_select(auto)))
    echo("Whole-circuit runs (each procedure follows its own core sets), interleaved: each round runs every "
         "procedure once, auto right after (a):")
    order = sorted(plan, key=lambda item: (not item[0].startswith("(a)"), not item[0].endswith("N=auto")))
    done = interleaved(order, acts, layers, target.index, args, device, echo=echo)
    runs = {label: done[label] for label, _, _ in plan}
    echo()

    # ------------------------------------------------ table 1: per pair and whole circuit
    labels = list(runs)
    base = runs[labels[0]]
    pairs = [(p.upper, p.lower) for p in base.circuit.pairs]
    head = ["pair"] + [f"{lab}: targets, s, peak MB" for lab in labels]
    if not args.skip_authors:
        head += [f"speed {lab.split(' ', 1)[0]} N={lab.rsplit('=', 1)[1]} vs (a)" for lab in labels[1:]]
        head += [f"agreement N={lab.rsplit('=', 1)[1]} vs (a) (common targets)" for lab in labels[1:]]
    table = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    all_agree: dict[str, list[int]] = {lab: [] for lab in labels[1:]}
    for i, (upper, lower) in enumerate(pairs):
        cells = [f"{upper} <- {lower}"]
        for lab in labels:
            run = runs[lab]
            cells.append(f"{len(run.circuit.pairs[i].core_sets)}, {run.pair_seconds[i]:.1f}, "
                         f"{mem(run.pair_rss[i], run.pair_cuda[i])}")
        if not args.skip_authors:
            for lab in labels[1:]:
                # per-target time ratio: the two may have chosen different numbers of targets below the top
                a_rate = base.pair_seconds[i] / len(base.circuit.pairs[i].core_sets)
                b_rate = runs[lab].pair_seconds[i] / len(runs[lab].circuit.pairs[i].core_sets)
                cells.append(f"{base.pair_seconds[i] / runs[lab].pair_seconds[i]:.1f}x "
                             f"({a_rate / b_rate:.1f}x per target)")
            for lab in labels[1:]:
                counts = agreement(base.circuit.pairs[i].core_sets, runs[lab].circuit.pairs[i].core_sets)
                all_agree[lab] += counts
                cells.append(f"{np.mean(counts):.2f}/{args.tau} (min {min(counts)}, {len(counts)} targets)"
                             if counts else "no common target")
        table.append("| " + " | ".join(cells) + " |")
    cells = ["**whole circuit**"]
    for lab in labels:
        run = runs[lab]
        peaks = [x for x in run.pair_rss if x is not None]
        cudas = [x for x in run.pair_cuda if x is not None]
        cells.append(f"{sum(len(p.core_sets) for p in run.circuit.pairs)}, **{run.total_seconds:.1f}**, "
                     f"{mem(max(peaks) if peaks else None, max(cudas) if cudas else None)}")
    if not args.skip_authors:
        for lab in labels[1:]:
            cells.append(f"**{base.total_seconds / runs[lab].total_seconds:.1f}x**")
        for lab in labels[1:]:
            counts = all_agree[lab]
            cells.append(f"**{np.mean(counts):.2f}/{args.tau}** (min {min(counts)}, {len(counts)} targets)"
                         if counts else "n/a")
    table.append("| " + " | ".join(cells) + " |")
    if authors_record_seconds is not None:
        own_pass = {lab: (authors_record_seconds if lab == labels[0] else record_seconds) for lab in labels}
        totals = {lab: runs[lab].total_seconds + own_pass[lab] for lab in labels}
        cells = ["**whole circuit + own activation pass**"]
        cells += [f"{sum(len(p.core_sets) for p in runs[lab].circuit.pairs)}, **{totals[lab]:.1f}**, "
                  for lab in labels]
        cells += [f"**{totals[labels[0]] / totals[lab]:.1f}x**" for lab in labels[1:]]
        cells += ["as above" for _ in labels[1:]]
        table.append("| " + " | ".join(cells) + " |")

    targets_note = []
    if not args.skip_authors:
        for lab in labels[1:]:
            for i, (_, lower) in enumerate(pairs):
                a_core, b_core = set(base.circuit.core(lower)), set(runs[lab].circuit.core(lower))
                if a_core != b_core or i + 1 < len(pairs):
                    targets_note.append(
                        f"  - {lab}: core neurons of {lower}: {len(b_core)} vs {len(a_core)} for (a), "
                        f"{len(a_core & b_core)} in common")
    section1 = [
        "## Per layer pair and whole circuit",
        "",
        "Cells: targets attributed, median seconds, peak RSS MB. Agreement: mean over targets of |S_a(a) ∩ "
        "S_a(b)| (top-tau sets), out of tau. Below the first pair each procedure follows its own core sets, "
        "so agreement is computed on the targets both chose (their intersection), and speed is also given "
        "per target.",
        "",
        *table,
        "",
        *(["Targets below the top (each procedure's union of core sets):", *targets_note, ""] if targets_note else []),
        "Whole-circuit seconds of every run: "
        + "; ".join(f"{lab}: {', '.join(f'{s:.1f}' for s in runs[lab].all_totals)}" for lab in labels),
        "",
    ]
    for line in section1:
        echo(line)
    section_auto = auto_section(args, runs, auto_integration, pairs, auto_rounds)
    for line in section_auto:
        echo(line)

    # ------------------------------------------------ table 2: steps / accuracy trade-off
    section2: list[str] = []
    steps_list = [int(s) for s in args.tradeoff_steps.split(",") if s.strip()]
    if steps_list:
        ref_label = f"(b) neurflow N={args.reference_steps}"
        if ref_label in runs:
            ref = runs[ref_label]
        else:
            ref_builder = builder(args.reference_steps)
            ref = repeat_circuit(ref_label, neurflow_attribute(ref_builder), neurflow_select(ref_builder), acts, layers,
                                 target.index, args, device, echo=echo)
        fixed = {p.lower: sorted({int(s) for c in p.core_sets.values() for s in c}) for p in ref.circuit.pairs}
        variants: list[tuple[str, int | str]] = [("gauss-legendre", n) for n in steps_list]
        variants += [("riemann-midpoint", args.steps)] + ([] if args.no_auto else [("gauss-legendre", "auto")])
        if not args.no_auto and args.auto_rule != "doubling":
            variants.append(("gauss-legendre doubling", "auto"))  # auto as before nested levels, for comparison
        rows = []
        echo(f"Trade-off runs (targets fixed to the N={args.reference_steps} Gauss-Legendre circuit's):")
        for quadrature, n in variants:
            own = runs.get(f"(b) neurflow N={n}") if quadrature == "gauss-legendre" else None
            if quadrature == "gauss-legendre" and n == args.reference_steps:
                run = ref
            elif own is not None and all(
                    own.circuit.core(p.lower) == fixed[p.lower] for p in own.circuit.pairs[:-1]):
                run = own  # its own recursion chose the reference's targets: the same computation
                echo(f"  {quadrature} N={n}: same targets as the reference, reusing its whole-circuit runs")
            else:
                b = (builder(n, "gauss-legendre", "doubling") if quadrature == "gauss-legendre doubling"
                     else builder(n, quadrature))
                run = repeat_circuit(f"{quadrature} N={n}", neurflow_attribute(b), neurflow_select(b), acts, layers,
                                     target.index, args, device, fixed_targets=fixed, echo=echo)
            counts = [c for p_ref, p in zip(ref.circuit.pairs, run.circuit.pairs, strict=True)
                      for c in agreement(p_ref.core_sets, p.core_sets)]
            exact = sum(c == args.tau for c in counts)
            name = f"gauss-legendre ({args.auto_rule})" if n == "auto" and quadrature == "gauss-legendre" else quadrature
            rows.append(f"| {name} | {n} | {run.total_seconds:.1f} | {ref.total_seconds / run.total_seconds:.1f}x "
                        f"| {np.mean(counts):.2f}/{args.tau} | {min(counts)} | {exact}/{len(counts)} |")
        section2 = [
            "## Steps / accuracy trade-off (neurflow)",
            "",
            f"Whole circuit on fixed targets (those of the Gauss-Legendre N={args.reference_steps} circuit at every "
            f"layer); agreement: mean |S_a(N) ∩ S_a(N={args.reference_steps})| over all "
            f"{sum(len(p.core_sets) for p in ref.circuit.pairs)} targets.",
            "",
            f"| quadrature | N | s (median) | speed vs N={args.reference_steps} | mean top-{args.tau} agreement "
            "| min | identical sets |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
        echo()
        for line in section2:
            echo(line)

    total = time.perf_counter() - started
    footer = [
        f"Machine shared with other engineers' jobs: load average {load_before} before, {load_average()} after "
        f"(1/5/15 min); timings are noisy, hence medians. Bench runtime {total / 60:.1f} min "
        f"(`python bench/bench_engine.py {' '.join(argv if argv is not None else sys.argv[1:])}`).",
    ]
    for line in footer:
        echo(line)
    if args.out:
        text = ["## Engine: authors' procedure (a) vs neurflow (b)", "", *machine_lines(device), *settings,
                "", *[("#" + x if x.startswith("## ") else x) for x in section1 + section_auto + section2], *footer]
        write_section(Path(args.out), f"engine-{device.type}", "\n".join(text))
        echo(f"\nwritten to {args.out} (section engine-{device.type})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
