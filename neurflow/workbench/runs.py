"""Experiments and studies on an opened circuit: ``run_x(handle, settings) -> result``, each result with
``.table()`` (a pandas DataFrame), ``.plot()`` (a matplotlib figure) and ``.record(graph)`` (its node in the
graph; returns its id). The command lines print, save and record through these.

>>> from neurflow.workbench import connect, open_circuit
>>> from neurflow.workbench.runs import MaskSettings, StudySettings, run_mask, run_study
>>> graph = connect()                                                                  # doctest: +SKIP
>>> samoyed = open_circuit(graph, cls="Samoyed", model="efficientnet-lite0")          # doctest: +SKIP
>>> masked = run_mask(samoyed, MaskSettings(groups=["_blocks.15/g1"]))                # doctest: +SKIP
>>> masked.table().head(); masked.plot(); masked.record(graph)                        # doctest: +SKIP
>>> study = run_study(samoyed, StudySettings("k-sensitivity", ks=[30, 50, 90]))        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from neurflow.format import strict_json
from neurflow.graph.circuits import CircuitRef
from neurflow.graph.experiment_records import GroupRef, circuit_groups, resolve_groups
from neurflow.workbench.client import GraphClient
from neurflow.workbench.handle import CircuitHandle

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from neurflow.circuit import ClassInfo
    from neurflow.engine.models import LoadedModel
    from neurflow.engine.patches import ViewImage
    from neurflow.experiments.fidelity import FidelityRow
    from neurflow.experiments.masking import MaskingResult
    from neurflow.experiments.validation.result import StudyResult

STUDIES = ("correlation", "optimality", "k-sensitivity", "crops")
#: Studies that measure on the class's held-out images (beside the circuit's own) by default.
HELD_OUT_STUDIES = ("optimality",)


def _graph(graph: GraphClient | None, default: GraphClient | None) -> GraphClient:
    """Where a result is recorded: ``graph`` when given, else ``default`` (the handle's graph)."""
    chosen = graph or default
    if chosen is None:
        raise ValueError("recording needs a graph: open the circuit with one, or pass it to record()")
    return chosen


def circuit_group_refs(handle: CircuitHandle) -> list[GroupRef]:
    """The circuit's neuron groups as experiments name them: from the graph when the handle has one (their
    keys link the record), else from the circuit file."""
    if handle.graph is not None and handle.entry is not None:
        return circuit_groups(handle.graph.driver, handle.circuit.id, handle.graph.database)
    depth = {layer: i for i, layer in enumerate(handle.circuit.layers)}
    return [GroupRef(f"{handle.circuit.id}|{g.id}", g.id, g.layer, depth[g.layer],
                     sorted(int(n.rpartition(":")[2]) for n in g.neurons))
            for g in handle.circuit.neuron_groups]


# --------------------------------------------------------------------------- masking


@dataclass(frozen=True)
class MaskSettings:
    """What `neurflow mask` takes: group ids (``_blocks.15/g1``) or neurons (``{"_blocks.15": [3, 17]}``), the
    mode (``mask`` or ``retain``), random draws and their seed, the patches ranked, the ablation (``zero``,
    or ``mean`` over the class's patches or the whole images of ``reference_images``), and the images: the
    circuit's own, or (``images``) those of a folder the model predicts as the class, at most ``max_images``."""

    groups: Sequence[str] = ()
    neurons: dict[str, list[int]] | None = None
    mode: str = "mask"
    random_draws: int = 10
    seed: int = 0
    patch_images: int = 2
    top: int = 10
    ablation: str = "zero"
    reference_images: str | None = None
    batch_size: int = 32
    images: str | None = None
    max_images: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("mask", "retain"):
            raise ValueError(f"mode must be 'mask' or 'retain', not {self.mode!r}")
        for name in ("top", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        for name in ("random_draws", "patch_images"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, not {getattr(self, name)}")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"max_images must be at least 1, not {self.max_images} (leave it out for every image)")
        if self.neurons is None and not self.groups:
            raise ValueError("give groups or neurons to mask")

    @property
    def images_source(self) -> str:
        """The images as a MaskingExperiment records them: ``circuit`` or the folder."""
        return "circuit" if self.images is None else str(self.images)

    @property
    def images_words(self) -> str:
        return "the circuit's images" if self.images is None else f"predicted as the class in {self.images}"


@dataclass
class MaskRun:
    """A masking experiment: the model's loss under the mask, against random neurons. ``handle``: the circuit
    masked (None: neurons masked on an image folder, :func:`run_mask_on_images`)."""

    handle: CircuitHandle | None
    settings: MaskSettings
    result: MaskingResult
    groups: list[GroupRef]
    graph: GraphClient | None = None

    def table(self) -> pd.DataFrame:
        """One row per image, largest drop of the class logit first."""
        import pandas as pd

        return pd.DataFrame([{"image": i.path, "logitBefore": i.logit_before, "logitAfter": i.logit_after,
                              "drop": i.drop, "probBefore": i.prob_before, "probAfter": i.prob_after,
                              "predictedBefore": i.predicted_before, "predictedAfter": i.predicted_after}
                             for i in self.result.images])

    def plot(self) -> Figure:
        """The chosen neurons' effect beside the random draws' (mean and spread), and the drop per image."""
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        e, r = self.result.effect, self.result.random
        fig = Figure(figsize=(11, 3.8))
        left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.4]})
        names = ["class probability", "class logit / 10"]
        chosen = [e.mean_prob_change, e.mean_logit_change / 10]
        random = [r.prob_change_mean, r.logit_change_mean / 10]
        spread = [r.prob_change_std, r.logit_change_std / 10]
        x = range(len(names))
        left.bar([i - 0.2 for i in x], chosen, 0.4, label="chosen neurons", color="#c0392b")
        left.bar([i + 0.2 for i in x], random, 0.4, yerr=spread, label=f"random ({r.draws} draws)", color="#95a5a6")
        left.set_xticks(list(x), names)
        left.axhline(0, color="black", linewidth=0.8)
        left.set_ylabel("mean change")
        left.legend(fontsize=8)
        drops = sorted((i.drop for i in self.result.images), reverse=True)
        right.bar(range(1, len(drops) + 1), drops, color="#c0392b")
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_xlabel("image (largest drop first)")
        right.set_ylabel("class logit drop")
        what = ", ".join(g.group_id for g in self.groups) or "the given neurons"
        fig.suptitle(f"{self.result.mode} {what} of {self.result.target.name!r} ({self.result.model.name}, "
                     f"{self.result.ablation} ablation): accuracy {e.accuracy_before:.2f} -> {e.accuracy_after:.2f}",
                     fontsize=10)
        fig.tight_layout()
        return fig

    def to_dict(self) -> dict[str, Any]:
        return self.result.to_dict() | {"circuit_id": self.handle.circuit.id if self.handle else None,
                                        "groups": [g.group_id for g in self.groups]}

    def to_json(self) -> str:
        return strict_json(self.to_dict(), indent=1)

    def record(self, graph: GraphClient | None = None) -> str:
        """Writes a MaskingExperiment linked to the model, class, circuit and masked groups; returns its id."""
        from neurflow.experiments.experiment_properties import record_masking_experiment

        chosen = _graph(graph, self.graph or (self.handle.graph if self.handle else None))
        return record_masking_experiment(chosen.driver, self.result, self.handle.entry if self.handle else None,
                                         self.groups, self.settings.images_source, chosen.database)


def run_mask(handle: CircuitHandle, settings: MaskSettings) -> MaskRun:
    """Masks (or retains) the groups or neurons of ``settings`` of the circuit, on its own images or (with
    ``settings.images``) on a folder's images predicted as its class."""
    from neurflow.experiments.channels import merge_channels

    if bool(settings.groups) == bool(settings.neurons):
        raise ValueError("give either groups or neurons to mask")
    groups = resolve_groups(circuit_group_refs(handle), settings.groups) if settings.groups else []
    channels = merge_channels(*(g.neurons for g in groups)) if groups else dict(settings.neurons or {})
    views = handle.views() if settings.images is None else None
    result = _masking(handle.model, handle.target, channels, settings, views, handle.progress)
    return MaskRun(handle, settings, result, groups)


def run_mask_on_images(loaded: LoadedModel, cls: str | int, settings: MaskSettings,
                       graph: GraphClient | None = None, progress: bool = True) -> MaskRun:
    """Masks the neurons of ``settings`` (no circuit: ``neurons``, not groups) on the images of
    ``settings.images`` that ``loaded`` predicts as the class; ``graph``: where ``.record()`` writes."""
    from neurflow.workbench.locate import class_of

    if settings.groups or not settings.neurons or settings.images is None:
        raise ValueError("without a circuit, give neurons (not groups) and an image folder")
    target = class_of(cls)
    result = _masking(loaded, target, dict(settings.neurons), settings, None, progress)
    return MaskRun(None, settings, result, [], graph)


def _masking(loaded: LoadedModel, target: ClassInfo, channels: dict[str, list[int]], settings: MaskSettings,
             views: list[ViewImage] | None, progress: bool) -> MaskingResult:
    """The masking experiment on ``views`` (None: the images of ``settings.images`` predicted as the class)."""
    from neurflow.experiments.masking import masking_experiment
    from neurflow.experiments.sources import class_views, experiment_ablation

    loaded.check_layers(list(channels))
    if views is None:
        assert settings.images is not None
        views = class_views(loaded, settings.images, [target], settings.max_images,
                            settings.batch_size, progress)[target.index]
    values = experiment_ablation(loaded, settings.ablation, list(channels), views, settings.reference_images,
                                 settings.batch_size, progress)
    return masking_experiment(loaded, target, views, channels, settings.mode, settings.random_draws, settings.seed,
                              settings.patch_images, max(settings.top, 10), settings.batch_size, progress=progress,
                              ablation=values)


# --------------------------------------------------------------------------- validation studies


class StudySettings:
    """A validation study (``correlation``, ``optimality``, ``k-sensitivity``, ``crops``; docs/validation.md):
    the upper layers it looks at (default: all but the bottom), at most ``targets`` target neurons per layer,
    the ablation of the studies that knock neurons out, and the study's own options (``sizes``,
    ``sets_per_size``, ``singles``, ``permutations``, ``seed``; ``taus``, ``random_sets``, ``seed``; ``ks``, ``reference_k``;
    ``mixes``), their defaults the paper's.

    Optimality measures on the class's held-out images too (``held_out``, default True: images of
    ``held_out_images``, by default the folder holding the circuit's images, that the circuit was not built on;
    at most ``held_out_max``, by default as many as the circuit has)."""

    def __init__(self, study: str, layers: Sequence[str] | None = None, targets: int | None = None,
                 ablation: str = "zero", held_out: bool = True, held_out_images: str | None = None,
                 held_out_max: int | None = None, **options: Any) -> None:
        if study not in STUDIES:
            raise ValueError(f"study must be one of {', '.join(STUDIES)}, not {study!r}")
        if held_out_max is not None and held_out_max < 1:
            raise ValueError(f"held_out_max must be at least 1, not {held_out_max}")
        self.study, self.layers, self.targets, self.ablation, self.options = study, layers, targets, ablation, options
        self.held_out, self.held_out_images, self.held_out_max = held_out, held_out_images, held_out_max

    @property
    def uses_held_out(self) -> bool:
        return self.held_out and self.study in HELD_OUT_STUDIES

    @property
    def knocks_out(self) -> bool:
        """Correlation and optimality knock neurons out (and take an ablation); the others do not."""
        return self.study in ("correlation", "optimality")

    def __repr__(self) -> str:
        return (f"StudySettings({self.study!r}, layers={self.layers}, targets={self.targets}, "
                f"ablation={self.ablation!r}, options={self.options})")


@dataclass
class StudyRun:
    """A validation study's result on a circuit: rows, summary figures, the paper's plot."""

    handle: CircuitHandle
    settings: StudySettings
    result: StudyResult
    figure_of: Callable[[StudyResult], Figure]

    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.result.rows, columns=self.result.columns)

    def plot(self) -> Figure:
        return self.figure_of(self.result)

    def record(self, graph: GraphClient | None = None, csv_path: str | None = None,
               png_path: str | None = None) -> str:
        """Writes a ValidationStudy node on the circuit (with the paths of its CSV and PNG when saved)."""
        from neurflow.experiments.validation.study_properties import validation_properties
        from neurflow.graph.study_records import write_validation_study

        graph = _graph(graph, self.handle.graph)
        ablation = self.settings.ablation if self.settings.knocks_out else None
        props = validation_properties(self.result, ablation, csv_path, png_path)
        return write_validation_study(graph.driver, props, graph.database)


def _study_functions(study: str) -> tuple[Callable[..., StudyResult], Callable[[StudyResult], Figure]]:
    if study == "correlation":
        from neurflow.experiments.validation.correlation import figure_correlation, run_correlation

        return run_correlation, figure_correlation
    if study == "optimality":
        from neurflow.experiments.validation.optimality import figure_optimality, run_optimality

        return run_optimality, figure_optimality
    if study == "k-sensitivity":
        from neurflow.experiments.validation.k_sensitivity import figure_k_sensitivity, run_k_sensitivity

        return run_k_sensitivity, figure_k_sensitivity
    from neurflow.experiments.validation.crops import figure_crops, run_crops

    return run_crops, figure_crops


def run_study(handle: CircuitHandle, settings: StudySettings) -> StudyRun:
    """Runs the validation study of ``settings`` on the circuit."""
    from neurflow.experiments.validation.inputs import study_layers

    layers = study_layers(handle.circuit, settings.layers)
    inputs = handle.inputs(settings.ablation if settings.knocks_out else "zero")
    if settings.uses_held_out:
        from neurflow.engine.plans import PredictionCache, default_cache_dir
        from neurflow.experiments.validation.inputs import with_held_out

        cache = PredictionCache(default_cache_dir(), handle.model)
        inputs = with_held_out(inputs, settings.held_out_images, settings.held_out_max, cache, handle.progress)
    run, figure = _study_functions(settings.study)
    result = run(inputs, layers, targets=settings.targets, progress=handle.progress, **settings.options)
    return StudyRun(handle, settings, result, figure)




# --------------------------------------------------------------------------- fidelity over classes


@dataclass(frozen=True)
class FidelitySettings:
    """What `neurflow fidelity` takes: random draws per layer and setting, their seed, the ablation (``zero``,
    or ``mean`` over each class's patches or the whole images of ``reference_images``), and the images: each
    circuit's own (in-sample) and, with ``held_out`` (default), the class's images the circuit was not built on,
    from the folder ``images`` (default: the folder holding the circuit's images); at most ``max_images`` per
    class of each (held-out default: as many as the circuit's)."""

    random_draws: int = 5
    seed: int = 0
    ablation: str = "zero"
    reference_images: str | None = None
    images: str | None = None
    max_images: int | None = None
    batch_size: int = 32
    held_out: bool = True

    def __post_init__(self) -> None:
        if self.random_draws < 1:
            raise ValueError(f"random_draws must be at least 1, not {self.random_draws}")
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"max_images must be at least 1, not {self.max_images}")


@dataclass
class FidelityRun:
    """The paper's fidelity study (Figure 5) over the circuits of several classes."""

    loaded: LoadedModel
    circuits: list[CircuitRef]
    settings: FidelitySettings
    rows: list[FidelityRow]
    ablation_reference: str | None

    def table(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([row.to_dict() for row in self.rows])

    def plot(self) -> Figure:
        from neurflow.experiments.fidelity import figure_fidelity, images_per_evidence

        classes = ", ".join(dict.fromkeys(c.class_name for c in self.circuits))
        counts = ", ".join(f"{n} {e} images" for e, n in images_per_evidence(self.rows).items())
        return figure_fidelity(self.rows, f"{self.loaded.name}: fidelity of core neurons ({classes}), "
                                          f"{self.settings.ablation} ablation; {counts}")

    def record(self, graph: GraphClient, csv_path: str | None = None, png_path: str | None = None) -> str:
        """Writes a FidelityStudy (one FidelityResult per class, layer, scope and mode); returns its id."""
        from neurflow.experiments.experiment_properties import record_fidelity_study

        s = self.settings
        return record_fidelity_study(graph.driver, self.rows, self.circuits, self.loaded.name, self.loaded.weights_id,
                                     s.random_draws, s.seed, csv_path, png_path, graph.database, s.ablation,
                                     self.ablation_reference)


def run_fidelity(graph: GraphClient, loaded: LoadedModel, classes: Sequence[str | int], settings: FidelitySettings,
                 circuit_ids: Sequence[str] = (), progress: bool = True,
                 echo: Callable[[str], None] | None = None) -> FidelityRun:
    """The fidelity study of the graph's circuits of ``classes`` for the loaded model and weights (the newest
    complete circuit of each, or the one of ``circuit_ids`` that is of the class); ``echo`` hears a line per
    class as it starts."""
    from neurflow.engine.plans import PredictionCache, default_cache_dir
    from neurflow.experiments.fidelity import fidelity_study
    from neurflow.experiments.sources import experiment_ablation, fidelity_inputs, resolve_classes

    s = settings
    targets = resolve_classes([str(c) for c in classes])
    cache = PredictionCache(default_cache_dir(), loaded) if s.held_out else None
    study = fidelity_inputs(graph.driver, loaded, targets, circuit_ids, s.images, s.max_images, s.batch_size,
                            graph.database, asked=[str(c) for c in classes], held_out=s.held_out, cache=cache,
                            progress=progress)
    below = list(dict.fromkeys(layer for t in targets for layer in list(study.cores[t.index])[1:]))
    # Reference means are the same for every class: one pass over the folder for all layers.
    shared = (experiment_ablation(loaded, s.ablation, below, [], s.reference_images, s.batch_size, progress)
              if s.reference_images else None)
    rows, reference = [], shared.reference if shared else None
    for target in targets:
        views, core = study.views[target.index], study.cores[target.index]
        held = study.held_out.get(target.index)
        if echo is not None:
            extra = "" if held is None else (f", {len(held.views)} held-out" if held.views else
                                             f", no held-out image ({held.reason})")
            echo(f"{target.name}: {len(views)} image(s) of the circuit{extra}; layers {', '.join(core)}")
        # Mean ablation: the class's means over the circuit's own patches, for either evidence.
        values = shared or experiment_ablation(loaded, s.ablation, list(core)[1:], views, None, s.batch_size,
                                               progress)
        reference = values.reference
        if held is not None and held.views:
            rows += fidelity_study(loaded, target, held.views, core, s.random_draws, s.seed, batch_size=s.batch_size,
                                   progress=progress, ablation=values, evidence="held-out")
        rows += fidelity_study(loaded, target, views, core, s.random_draws, s.seed, batch_size=s.batch_size,
                               progress=progress, ablation=values, evidence="in-sample")
    return FidelityRun(loaded, study.circuits, settings, rows, reference)
