"""Builds one NeurFlow class circuit from the images of its class: the method that ties models, patches, hooks,
attribution and groups. Choosing the images, seeding and saving are :mod:`neurflow.engine.plans`' job.

>>> builder = CircuitBuilder(loaded, BuildConfig("efficientnet-lite0", k=10, steps=8))   # doctest: +SKIP
>>> result = builder.build(loaded.resolve_class("Samoyed"), views, logits)               # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from neurflow.circuit import (
    Circuit,
    ClassInfo,
    CoreNeuron,
    Edge,
    ImageRecord,
    NeuronGroup,
    PatchRecord,
    SemanticGroup,
    TargetCoverage,
    neuron_key,
    space_layer,
)
from neurflow.engine import groups as grouping
from neurflow.engine.attribution import quadrature, weighted_gradient_sums
from neurflow.engine.config import DOUBLING, BuildConfig
from neurflow.engine.coverage import target_coverage
from neurflow.engine.integration import PairIntegration, auto_levels, integrate_until_stable
from neurflow.engine.layouts import has_layout, known_layout, neuron_means, probe_layouts
from neurflow.engine.models import LoadedModel
from neurflow.engine.nested import NestedSums, level_counts, nested_rule
from neurflow.engine.patches import (
    PatchSet,
    ViewImage,
)
from neurflow.engine.ranking import core_set, ranking_scores, top_indices
from neurflow.engine.recording import Recording, record_patches
from neurflow.engine.segments import canonical_segment, check_layer_order, resolve_token_activations, trace
from neurflow.engine.stability import Bootstrap

Echo = Callable[[str], None]


@dataclass
class ClassResult:
    circuit: Circuit
    vectors: dict[str, np.ndarray]
    thumbnails: dict[int, Image.Image]


def _quiet(_: str) -> None:
    return None


@dataclass
class LayerStep:
    """One layer pair's step of the method, for the targets of ``upper`` given with their concepts V_a:
    ``per_patch[a]``: [|V_a|, lower channels] integrated gradients of a, one row per patch of V_a;
    ``core[a]``: a's core set (top-tau lower channels, most important first) and their ranking scores;
    ``deltas[a]``: [|V_a|] f_a(h_p) - f_a(0), what a's attributions on patch p sum to when exact;
    ``integration``: how the pair was integrated with ``steps="auto"`` (None with a fixed number of steps)."""

    upper: str
    lower: str
    concepts: dict[int, np.ndarray]
    per_patch: dict[int, np.ndarray]
    core: dict[int, tuple[np.ndarray, np.ndarray]]
    deltas: dict[int, np.ndarray]
    integration: PairIntegration | None

    def coverage(self) -> list[TargetCoverage]:
        """How much of each target's attribution its core set carries (:mod:`neurflow.engine.coverage`)."""
        return [target_coverage(self.upper, a, self.lower, self.per_patch[a], self.core[a][0], self.deltas[a])
                for a in self.concepts]


class CircuitBuilder:
    """Computes class circuits with one model and one set of build settings.

    Its calls keep no state from one to the next (the layouts it assigns to the model's layers are the model's):
    :meth:`record` returns a :class:`~neurflow.engine.recording.Recording`, :meth:`step` one layer pair's
    attributions and core sets from it, and :meth:`build` a whole circuit from both. The validation studies call
    :meth:`record` and :meth:`step` as :meth:`build` does.
    """

    def __init__(self, loaded: LoadedModel, config: BuildConfig, progress: bool = True, echo: Echo = _quiet):
        self.loaded = loaded
        self.config = config
        self.layers = loaded.check_layers(config.layers or loaded.layers)
        self.progress = progress
        self.echo = echo
        self.traced = trace(loaded.module, self.layers)
        check_layer_order(self.traced, self.layers)
        #: What each token layer's activation averages (``class_token`` resolved: docs/layouts.md).
        self.token_activations = resolve_token_activations(loaded.module, self.layers, config.class_token or "exclude",
                                                           config.layouts, loaded.preprocessing.crop, self.traced)

    def segment(self, lower: str, upper: str) -> torch.nn.Module:
        """The model between ``lower`` and ``upper``, on their canonical forms (layouts found by the recording
        pass, or now by one forward pass of a blank input when nothing was recorded yet)."""
        if not (has_layout(self.loaded.module, lower) and has_layout(self.loaded.module, upper)):
            size = self.loaded.preprocessing.crop
            probe_layouts(self.loaded.module, torch.zeros(1, 3, size, size, device=self.loaded.device), self.layers)
        return canonical_segment(self.traced, lower, upper)

    def layouts(self) -> dict[str, str]:
        """Each layer's layout kind (found by the recording pass); empty when all are channels-first."""
        kinds = {layer: known_layout(self.loaded.module, layer).kind for layer in self.layers}
        return kinds if set(kinds.values()) != {"channels-first"} else {}

    def record(self, patches: PatchSet) -> Recording:
        """One forward pass over ``patches``: every layer's spatial means, and the lower layers' full outputs
        that fit in ``config.map_cache_mb`` (:func:`~neurflow.engine.recording.record_patches`)."""
        return record_patches(self.loaded, self.layers, patches, self.config, progress=self.progress)

    def step(self, recording: Recording, upper: str, lower: str, concepts: dict[int, np.ndarray]) -> LayerStep:
        """The method's step from ``upper`` to ``lower``: per target a (with its concept V_a, patch ids of
        ``recording``), the integrated gradients of a over V_a and a's core set among ``lower``'s channels."""
        deltas = self.output_deltas(recording, upper, lower, concepts)
        per_patch, integration = self.attribute(recording, upper, lower, concepts, deltas)
        cfg = self.config
        core = {a: core_set(per_patch[a], cfg.tau, cfg.ranking, cfg.tau_coverage) for a in concepts}
        return LayerStep(upper, lower, concepts, per_patch, core, deltas, integration)

    def attribute(
        self, recording: Recording, upper: str, lower: str, concepts: dict[int, np.ndarray],
        deltas: dict[int, np.ndarray],
    ) -> tuple[dict[int, np.ndarray], PairIntegration | None]:
        """Per target a of ``upper``: [|V_a|, lower channels] integrated gradients of a, one row per patch.

        With ``steps="auto"``, the nodes are chosen for this pair (:mod:`neurflow.engine.integration`; from
        ``deltas``, the targets' output changes, :meth:`output_deltas`) and what was used is returned beside them
        (None with a fixed number of steps).
        """
        cfg = self.config
        if not cfg.auto_steps:
            return self.integrate(recording, upper, lower, concepts, int(cfg.steps)), None
        if cfg.steps_rule == DOUBLING:
            def doubled(nodes: int, targets: list[int]) -> dict[int, np.ndarray]:
                return self.integrate(recording, upper, lower, {a: concepts[a] for a in targets}, nodes)
            integrate: Callable[[int, list[int]], dict[int, np.ndarray]] = doubled
            levels, nested = auto_levels(cfg.steps_start, cfg.steps_max), False
        else:
            rule = nested_rule(cfg.steps_rule, level_counts(cfg.steps_rule, cfg.steps_start, cfg.steps_max))
            integrate = NestedSums(rule, lambda alphas, weights, targets: self.integrate_rules(
                recording, upper, lower, {a: concepts[a] for a in targets}, alphas, weights, np.float32))
            levels, nested = list(rule.counts), True
        return integrate_until_stable(
            integrate, deltas, lambda values: ranking_scores(values, cfg.ranking), cfg.tau, levels,
            cfg.steps_tolerance, cfg.steps_tie, upper, lower, cfg.auto_rule_name, nested,
        )

    def output_deltas(
        self, recording: Recording, upper: str, lower: str, concepts: dict[int, np.ndarray]
    ) -> dict[int, np.ndarray]:
        """Per target a: [|V_a|] f_a(h_p) - f_a(0), what a's integrated gradients on patch p sum to when exact
        (the segment's spatial mean of a on the lower maps h_p, and on the zero baseline)."""
        segment = self.segment(lower, upper)
        unique = sorted({int(p) for concept in concepts.values() for p in concept})
        at_patch: dict[int, np.ndarray] = {}
        step = self.config.ig_rows_per_call(self.loaded.device)
        with torch.no_grad():
            baseline = torch.zeros_like(recording.lower_maps(self.loaded, unique[:1], lower))
            at_zero = neuron_means(segment(baseline))[0].double().cpu().numpy()
            for start in range(0, len(unique), 64):
                chunk = unique[start : start + 64]
                maps = recording.lower_maps(self.loaded, chunk, lower)
                means = torch.cat([neuron_means(segment(maps[i : i + step])) for i in range(0, len(chunk), step)])
                at_patch.update(zip(chunk, means.double().cpu().numpy(), strict=True))
        return {a: np.array([at_patch[int(p)][a] - at_zero[a] for p in concept]) for a, concept in concepts.items()}

    def integrate(
        self, recording: Recording, upper: str, lower: str, concepts: dict[int, np.ndarray], steps: int
    ) -> dict[int, np.ndarray]:
        """:meth:`attribute` with ``steps`` nodes of ``config.quadrature``."""
        alphas, weights = quadrature(steps, self.config.quadrature)
        sums = self.integrate_rules(recording, upper, lower, concepts, alphas, weights[None], np.float64, f"N={steps}")
        return {a: values[0] for a, values in sums.items()}

    def integrate_rules(
        self, recording: Recording, upper: str, lower: str, concepts: dict[int, np.ndarray],
        alphas: torch.Tensor | np.ndarray, weights: torch.Tensor | np.ndarray, dtype: type = np.float64,
        label: str = "",
    ) -> dict[int, np.ndarray]:
        """Per target a: [rules, |V_a|, lower channels], the gradients at the nodes ``alphas`` summed with each
        row of ``weights`` [rules, nodes] (:func:`~neurflow.engine.attribution.weighted_gradient_sums`)."""
        segment = self.segment(lower, upper)
        alphas = torch.as_tensor(alphas, dtype=torch.float32)
        weights = torch.as_tensor(weights, dtype=torch.float32)
        rows_of_patch: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for target, concept in concepts.items():
            for position, patch in enumerate(concept):
                rows_of_patch[int(patch)].append((target, position))
        result: dict[int, np.ndarray] = {}
        unique = sorted(rows_of_patch)
        cfg = self.config
        # Enough patches per chunk to fill several calls, few enough to keep their lower maps small.
        patch_chunk = 64
        bar = tqdm(total=sum(len(v) for v in rows_of_patch.values()),
                   desc=f"IG {upper} <- {lower} {label or f'{len(alphas)} nodes'}",
                   unit="row", disable=not self.progress, leave=False)
        for start in range(0, len(unique), patch_chunk):
            chunk = unique[start : start + patch_chunk]
            maps = recording.lower_maps(self.loaded, chunk, lower)
            rows = [(target, position, i) for i, patch in enumerate(chunk) for target, position in rows_of_patch[patch]]
            targets = torch.tensor([r[0] for r in rows])
            attributions = weighted_gradient_sums(
                segment, maps, targets, alphas, weights, cfg.ig_rows_per_call(self.loaded.device),
                source_index=torch.tensor([r[2] for r in rows]),
            ).cpu().numpy()
            for row, (target, position, _) in enumerate(rows):
                if target not in result:
                    result[target] = np.zeros((weights.shape[0], len(concepts[target]), attributions.shape[2]),
                                              dtype=dtype)
                result[target][:, position] = attributions[:, row]
            bar.update(len(rows))
        bar.close()
        return result

    def space_layer(self, depth: int) -> str:
        """:func:`neurflow.circuit.space_layer` of ``layers[depth]``."""
        return space_layer(self.layers, self.layers[depth])

    def build(self, target: ClassInfo, views: list[ViewImage], view_logits: torch.Tensor) -> ClassResult:
        cfg, layers = self.config, self.layers
        timings: dict[str, float] = {}
        integration: dict[tuple[str, str], PairIntegration] = {}
        for layer, kind in self.token_activations.items():
            if kind == "only":
                self.echo(f"  {layer}: a unit's activation is its class token (the layer above reads only that)")
        clock = time.perf_counter()
        patches = PatchSet(views, self.loaded.preprocessing)
        recording = self.record(patches)
        acts = recording.means
        timings["activations"] = time.perf_counter() - clock

        core: dict[str, list[int]] = {layers[0]: [target.index]}
        parents: dict[str, dict[int, list[str]]] = {layers[0]: {target.index: []}}
        concepts: dict[str, dict[int, np.ndarray]] = {}
        semantic: list[SemanticGroup] = []
        edges: list[Edge] = []
        coverage: list[TargetCoverage] = []
        bootstrap = (Bootstrap(np.array([ref.image for ref in patches.refs]), len(views), cfg.stability_resamples,
                               seed=cfg.seed) if cfg.stability_resamples > 0 else None)
        for depth, upper in enumerate(layers):
            concepts[upper] = {a: top_indices(acts[upper][:, a], cfg.k) for a in core[upper]}
            if depth + 1 == len(layers):
                break
            lower = layers[depth + 1]
            clock = time.perf_counter()
            step = self.step(recording, upper, lower, concepts[upper])
            per_patch = step.per_patch
            if step.integration is not None:
                integration[upper, lower] = step.integration
            coverage += step.coverage()
            timings[f"ig {upper}"] = time.perf_counter() - clock
            parents[lower] = defaultdict(list)
            for a in core[upper]:
                chosen, _ = step.core[a]
                for s in chosen:
                    parents[lower][int(s)].append(neuron_key(upper, a))
                features = grouping.semantic_group_features(acts[lower], concepts[upper][a], chosen,
                                                            cfg.group_space)
                labels, silhouette = grouping.ward_clusters_scored(features, cfg.max_semantic_groups)
                scores = np.stack([per_patch[a][labels == j].sum(0)[chosen] for j in range(labels.max() + 1)])
                if bootstrap is not None:
                    key = neuron_key(upper, a)
                    bootstrap.target(key, lower, per_patch[a], concepts[upper][a], chosen, labels,
                                     [f"{key}/{j}" for j in range(labels.max() + 1)],
                                     lambda rows: core_set(rows, cfg.tau, cfg.ranking, cfg.tau_coverage)[0])
                    bootstrap.concept_split(key, features, labels, silhouette, concepts[upper][a], self._split)
                for j, weights in enumerate(grouping.edge_weights(scores)):
                    members = concepts[upper][a][labels == j]
                    group = SemanticGroup(upper, a, j, [int(p) for p in members],
                                          [float(acts[upper][p, a]) for p in members])
                    semantic.append(group)
                    edges += [
                        Edge(group.key, group.neuron, neuron_key(lower, int(s)), float(scores[j, i]), float(weights[i]))
                        for i, s in enumerate(chosen)
                    ]
            core[lower] = sorted(parents[lower])
            shares = [c.core_share for c in coverage if c.layer == upper and not np.isnan(c.core_share)]
            self.echo(f"  {upper} -> {lower}: {len(core[lower])} core neurons, carrying {np.mean(shares):.0%} of "
                      f"their targets' |attribution| on average ({timings[f'ig {upper}']:.1f} s"
                      + (f"; {step.integration.summary()})" if step.integration else ")"))
            gaps = [c.completeness_gap for c in coverage if c.layer == upper and not np.isnan(c.completeness_gap)]
            if not cfg.auto_steps and gaps and max(gaps) > cfg.steps_tolerance:
                # A fixed N is not checked while integrating: say when it was too few (e.g. graded quadrature
                # at a small N on a ViT), so that nobody reads a rough circuit as an exact one.
                self.echo(f"  warning: with N = {cfg.steps} the integration of {upper} is off by up to "
                          f"{max(gaps):.0%} of f(h) - f(0) (completeness gap; {cfg.steps_tolerance:.0%} is "
                          "accepted by --steps auto): use more steps or --steps auto")

        bottom = layers[-1]
        for a in core[bottom]:
            # No layer below the bottom one is recorded: its concepts are split on its own channels.
            features = grouping.semantic_group_features(acts[bottom], concepts[bottom][a], np.array(core[bottom]),
                                                        cfg.group_space)
            labels, silhouette = grouping.ward_clusters_scored(features, cfg.max_semantic_groups)
            if bootstrap is not None:
                bootstrap.concept_split(neuron_key(bottom, a), features, labels, silhouette, concepts[bottom][a],
                                        self._split)
            for j in range(labels.max() + 1):
                members = concepts[bottom][a][labels == j]
                semantic.append(SemanticGroup(bottom, a, j, [int(p) for p in members],
                                              [float(acts[bottom][p, a]) for p in members]))

        clock = time.perf_counter()
        neuron_groups, vectors = self._neuron_groups(acts, core, semantic, bootstrap)
        group_edges = []
        for upper, lower in zip(layers, layers[1:], strict=False):
            layer_edges = [e for e in edges if e.upper.rpartition(":")[0] == upper]
            group_edges += grouping.group_edges(
                [g for g in neuron_groups if g.layer == upper], [g for g in neuron_groups if g.layer == lower],
                layer_edges,
            )
        timings["groups"] = time.perf_counter() - clock
        if bootstrap is not None:
            timings["stability"] = bootstrap.seconds

        neurons = {
            layer: [
                CoreNeuron(layer, a, [int(p) for p in concepts[layer][a]],
                           [float(acts[layer][p, a]) for p in concepts[layer][a]],
                           float(acts[layer][:, a].max()), parents[layer].get(a, []))
                for a in core[layer]
            ]
            for layer in layers
        }
        used = sorted({p for g in semantic for p in g.patches})
        circuit = Circuit(
            model=self.loaded.info,
            target=target,
            layers=list(layers),
            params=cfg.circuit_params() | {"layers": list(layers)},
            images=[
                ImageRecord(str(v.file.path), v.sha256, v.width, v.height, v.file.label,
                            int(view_logits[i].argmax()), float(view_logits[i, target.index]))
                for i, v in enumerate(views)
            ],
            patches=[
                PatchRecord(i, ref.image, patches.original_box(i), ref.scale) for i, ref in enumerate(patches.refs)
            ],
            neurons=neurons,
            semantic_groups=semantic,
            edges=edges,
            neuron_groups=neuron_groups,
            group_edges=group_edges,
            timings=timings,
            integration=[integration[pair].as_dict() for pair in zip(layers, layers[1:], strict=False)
                         if pair in integration],
            layouts=self.layouts(),
            coverage=coverage,
            stability=bootstrap.stability if bootstrap is not None else None,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        for layer in layers:
            vectors[f"act/{layer}"] = acts[layer][:, core[layer]].astype(np.float32)
            vectors[f"channels/{layer}"] = np.array(core[layer], dtype=np.int64)
        thumbnails = {p: patches.thumbnail(p) for p in used}
        return ClassResult(circuit, vectors, thumbnails)

    def _split(self, features: np.ndarray) -> np.ndarray:
        """A concept's semantic grouping of ``features`` (what the bootstrap re-runs)."""
        return grouping.ward_clusters(features, self.config.max_semantic_groups)

    def _neuron_groups(
        self, acts: dict[str, np.ndarray], core: dict[str, list[int]], semantic: list[SemanticGroup],
        bootstrap: Bootstrap | None = None,
    ) -> tuple[list[NeuronGroup], dict[str, np.ndarray]]:
        """Per layer: cluster the semantic groups by their representative vectors (``group_space``: see
        :func:`~neurflow.engine.groups.neuron_group_features`). The logit layer holds one neuron, so its
        semantic groups form one group."""
        result: list[NeuronGroup] = []
        vectors: dict[str, np.ndarray] = {}
        for depth, layer in enumerate(self.layers):
            members = [g for g in semantic if g.layer == layer]
            rep = grouping.neuron_group_features(acts[self.space_layer(depth)], acts[layer], core[layer],
                                                 [g.patches for g in members], self.config.group_space)
            vectors[f"sg/{layer}"] = rep.astype(np.float32)
            vectors[f"sgkeys/{layer}"] = np.array([g.key for g in members])
            max_groups = 1 if depth == 0 else self.config.max_neuron_groups
            labels, silhouette = grouping.ward_clusters_scored(rep, max_groups)
            result += grouping.groups_of_labels(layer, members, labels, prefix="")
            if bootstrap is not None and depth > 0:
                space, layer_core = self.space_layer(depth), core[layer]

                def features_of(patch_lists: list[list[int]], space: str = space, layer: str = layer,
                                layer_core: list[int] = layer_core) -> np.ndarray:
                    return grouping.neuron_group_features(acts[space], acts[layer], layer_core, patch_lists,
                                                          self.config.group_space)

                bootstrap.layer_grouping(layer, [g.patches for g in members], labels, silhouette, features_of,
                                         lambda vectors, m=max_groups: grouping.ward_clusters(vectors, m))
        return result, vectors
