"""Seeded synthetic circuits: realistic :class:`~neurflow.circuit.Circuit` objects of any size, without a model.

They follow the engine's construction (``neurflow.engine.builder``): the top layer holds the class logit alone; every
core neuron of a layer picks its ``tau`` strongest lower neurons and the lower layer's core set is their union;
each neuron's concept (``k`` patches) is split into semantic groups; every semantic group of an upper neuron
has one edge to each of that neuron's ``tau`` lower neurons, with weights normalised per semantic group
(sum of |w| = 1); the semantic groups of a layer are clustered into neuron groups (one at the logit layer); a
group edge W(G, H) sums the weights from the semantic groups of G to the member neurons of H.

Lower neurons are drawn from a per-layer popularity that depends on ``seed`` only, so circuits of different
classes share neurons the way real ones do, most of all in the small, generic lower layers. Images carry a
folder label: the class's wnid, or (``foreign_fraction`` of them) another class's wnid.

>>> from neurflow.synthetic import synthetic_circuit
>>> c = synthetic_circuit(207, tau=4, k=6, layers=["_fc", "_blocks.15", "_blocks.14"])
>>> c.target.name, c.layers[0], [n.channel for n in c.neurons["_fc"]]
('golden retriever', '_fc', [207])
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from neurflow.circuit import (
    Circuit,
    ClassInfo,
    CoreNeuron,
    Edge,
    GroupEdge,
    ImageRecord,
    ModelInfo,
    NeuronGroup,
    PatchRecord,
    SemanticGroup,
    TargetCoverage,
    neuron_key,
)
from neurflow.engine.groups import group_edges as grouping_edges
from neurflow.engine.patches import PATCH_SCALES, patch_boxes

#: Channels of EfficientNet-Lite0's default circuit layers (the logit layer first).
EFFICIENTNET_LITE0_CHANNELS: dict[str, int] = {
    "_fc": 1000,
    "_blocks.15": 320,
    "_blocks.14": 192,
    "_blocks.13": 192,
    "_blocks.12": 192,
    "_blocks.11": 192,
    "_blocks.10": 112,
    "_blocks.9": 112,
    "_blocks.8": 112,
    "_blocks.7": 80,
    "_blocks.6": 80,
}
SYNTHETIC_WEIGHTS_ID = "synthetic"
CROP = 224
#: The engine's patches of one view image: 1 + 9 + 49 boxes at 100/50/25 % of the side.
PATCH_BOXES = patch_boxes(CROP, PATCH_SCALES)
PATCHES_PER_IMAGE = len(PATCH_BOXES)


def _class_names() -> tuple[list[str], list[str] | None]:
    try:
        from neurflow.classes import imagenet_categories, imagenet_wnids

        return imagenet_categories(), imagenet_wnids()
    except Exception:  # noqa: BLE001 - torchvision missing: invented names still make a usable circuit
        return [f"class {i}" for i in range(1000)], None


def _popularity(seed: int, layer: str, channels: int) -> np.ndarray:
    """A skewed, class-independent preference over a layer's channels (drives reuse across classes)."""
    digest = int(hashlib.sha256(f"{seed}/{layer}".encode()).hexdigest()[:8], 16)
    rng = np.random.default_rng(digest)
    weights = rng.pareto(1.2, channels) + 0.05
    return weights / weights.sum()


def _split(rng: np.random.Generator, count: int, parts: int) -> list[int]:
    """Sizes of ``parts`` non-empty parts of ``count`` items."""
    parts = max(1, min(parts, count))
    cuts = np.sort(rng.choice(np.arange(1, count), size=parts - 1, replace=False)) if parts > 1 else np.array([])
    bounds = [0, *cuts.tolist(), count]
    return [bounds[i + 1] - bounds[i] for i in range(parts)]


def synthetic_circuit(
    class_index: int,
    *,
    seed: int = 0,
    layers: Sequence[str] | None = None,
    channels: dict[str, int] | None = None,
    tau: int = 16,
    k: int = 50,
    max_semantic_groups: int = 5,
    max_neuron_groups: int = 8,
    images: int = 40,
    foreign_fraction: float = 0.15,
    model: str = "efficientnet-lite0",
    weights_id: str = SYNTHETIC_WEIGHTS_ID,
    class_name: str | None = None,
    wnid: str | None = None,
) -> Circuit:
    """The synthetic circuit of one class; the same arguments give the same circuit.

    ``layers`` run from the logit layer down (default: EfficientNet-Lite0's 11 circuit layers) and
    ``channels`` gives each layer's width (default: Lite0's, else 256). Sizes match a real build with the same
    ``tau``/``k``: about 100 core neurons per lower layer at the defaults.
    """
    layers = list(layers or EFFICIENTNET_LITE0_CHANNELS)
    widths = {layer: (channels or EFFICIENTNET_LITE0_CHANNELS).get(layer, 256) for layer in layers}
    names, wnids = _class_names()
    if class_name is None:
        class_name = names[class_index % len(names)]
    if wnid is None and wnids is not None:
        wnid = wnids[class_index % len(wnids)]
    target = ClassInfo(class_index, class_name, wnid)
    rng = np.random.default_rng([seed, class_index])

    # Images of D_c, their folder labels, and every patch of every image (as the engine records them).
    own_label = wnid or class_name
    image_records: list[ImageRecord] = []
    for i in range(images):
        foreign = rng.random() < foreign_fraction
        other = int(rng.integers(0, 1000))
        label = (wnids[other] if wnids else names[other]) if foreign and other != class_index else own_label
        width, height = int(rng.integers(300, 640)), int(rng.integers(300, 640))
        sha = hashlib.sha256(f"synthetic/{seed}/{class_index}/{i}".encode()).hexdigest()
        image_records.append(ImageRecord(f"/synthetic/{label}/{class_index}_{i}.JPEG", sha, width, height, label,
                                         class_index, float(rng.normal(9.0, 2.0))))
    patch_records: list[PatchRecord] = []
    for i, image in enumerate(image_records):
        scale = 256 / min(image.width, image.height)
        ox = (round(image.width * scale) - CROP) // 2
        oy = (round(image.height * scale) - CROP) // 2
        for box, patch_scale in PATCH_BOXES:
            left, top, right, bottom = box
            original = (round((left + ox) / scale), round((top + oy) / scale),
                        min(image.width, round((right + ox) / scale)), min(image.height, round((bottom + oy) / scale)))
            patch_records.append(PatchRecord(len(patch_records), i, original, patch_scale))
    n_patches = len(patch_records)
    image_bias = rng.dirichlet(np.full(images, 0.7))  # some images dominate concepts

    def concept(size: int) -> tuple[list[int], list[float]]:
        per_patch = np.repeat(image_bias / PATCHES_PER_IMAGE, PATCHES_PER_IMAGE)
        noisy = per_patch * rng.lognormal(0.0, 1.0, n_patches)
        chosen = rng.choice(n_patches, size=min(size, n_patches), replace=False, p=noisy / noisy.sum())
        acts = np.sort(rng.gamma(2.0, 1.5, len(chosen)) + 0.5)[::-1]
        return [int(p) for p in chosen], [float(a) for a in acts]

    core: dict[str, list[int]] = {layers[0]: [class_index]}
    parents: dict[str, dict[int, list[str]]] = {layers[0]: {class_index: []}}
    concepts: dict[str, dict[int, tuple[list[int], list[float]]]] = {}
    semantic: list[SemanticGroup] = []
    edges: list[Edge] = []
    latent: dict[str, dict[int, int]] = {}  # hidden cluster of a neuron: neuron groups follow it
    for depth, upper in enumerate(layers):
        concepts[upper] = {a: concept(k) for a in core[upper]}
        n_clusters = 1 if depth == 0 else max_neuron_groups
        latent[upper] = {a: int(rng.integers(0, n_clusters)) for a in core[upper]}
        lower = layers[depth + 1] if depth + 1 < len(layers) else None
        if lower is not None:
            popularity = _popularity(seed, lower, widths[lower])
            parents[lower] = defaultdict(list)
        for a in core[upper]:
            patches, acts = concepts[upper][a]
            sizes = _split(rng, len(patches), int(rng.integers(1, max_semantic_groups + 1)))
            chosen: list[int] = []
            if lower is not None:
                preference = popularity * rng.lognormal(0.0, 1.5, widths[lower])
                count = min(tau, widths[lower])
                chosen = [int(s) for s in rng.choice(widths[lower], size=count, replace=False,
                                                     p=preference / preference.sum())]
                for s in chosen:
                    parents[lower][s].append(neuron_key(upper, a))
                base = rng.gamma(1.0, 1.0, count) * np.where(rng.random(count) < 0.15, -1.0, 1.0)
            start = 0
            for j, size in enumerate(sizes):
                group = SemanticGroup(upper, a, j, patches[start : start + size], acts[start : start + size])
                start += size
                semantic.append(group)
                if lower is None:
                    continue
                scores = base * rng.lognormal(0.0, 0.4, len(chosen)) * 0.01
                norm = float(np.abs(scores).sum())
                edges += [
                    Edge(group.key, group.neuron, neuron_key(lower, s), float(score), float(score / norm) if norm else 0.0)
                    for s, score in zip(chosen, scores, strict=True)
                ]
        if lower is not None:
            core[lower] = sorted(parents[lower])

    # Neuron groups: a layer's semantic groups clustered mostly by their neuron's hidden cluster.
    neuron_groups: list[NeuronGroup] = []
    for depth, layer in enumerate(layers):
        members: dict[int, list[SemanticGroup]] = {}  # insertion order = order of first appearance
        for group in (g for g in semantic if g.layer == layer):
            label = latent[layer][group.channel]
            if depth > 0 and rng.random() < 0.2:
                label = int(rng.integers(0, max_neuron_groups))
            members.setdefault(label, []).append(group)
        for number, sgs in enumerate(members.values()):
            neuron_groups.append(NeuronGroup(
                id=f"{layer}/g{number}",
                layer=layer,
                semantic_groups=[g.key for g in sgs],
                neurons=list(dict.fromkeys(g.neuron for g in sgs)),
                patches=sorted({p for g in sgs for p in g.patches}),
            ))
    group_edges: list[GroupEdge] = []
    for upper, lower in zip(layers, layers[1:], strict=False):
        group_edges += grouping_edges(
            [g for g in neuron_groups if g.layer == upper], [g for g in neuron_groups if g.layer == lower], edges
        )

    neurons = {
        layer: [
            CoreNeuron(layer, a, concepts[layer][a][0], concepts[layer][a][1],
                       concepts[layer][a][1][0] * 1.1 if concepts[layer][a][1] else 0.0,
                       list(parents[layer].get(a, [])))
            for a in core[layer]
        ]
        for layer in layers
    }
    params = {
        "tau": tau, "k": k, "steps": 50, "quadrature": "gauss-legendre", "ranking": "sum",
        "max_semantic_groups": max_semantic_groups, "max_neuron_groups": max_neuron_groups,
        "max_images": images, "label_source": "predicted", "seed": seed, "layers": layers, "synthetic": True,
    }
    return Circuit(
        model=ModelInfo(model, weights_id, CROP, 1000),
        target=target,
        layers=layers,
        params=params,
        images=image_records,
        patches=patch_records,
        neurons=neurons,
        semantic_groups=semantic,
        edges=edges,
        neuron_groups=neuron_groups,
        group_edges=group_edges,
        timings={},
        coverage=synthetic_coverage(layers, core, edges, np.random.default_rng([seed, class_index, 7])),
        created=datetime(2024, 1, 1, tzinfo=timezone.utc).isoformat(timespec="seconds"),
    )


def synthetic_coverage(layers: Sequence[str], core: dict[str, list[int]], edges: Sequence[Edge],
                       rng: np.random.Generator) -> list[TargetCoverage]:
    """Coverage records that agree with the edges: each target's core sets carry T(a, s) = the sum of its edge
    scores, and a drawn share (25-70 %) of its |attribution|. Its own generator, so that adding coverage changed
    none of the circuit's other draws."""
    totals: dict[str, dict[str, float]] = {}
    for edge in edges:
        by_lower = totals.setdefault(edge.upper, {})
        by_lower[edge.lower] = by_lower.get(edge.lower, 0.0) + edge.score
    records = []
    for upper, lower in zip(layers, layers[1:], strict=False):
        for a in core[upper]:
            scores = list(totals.get(neuron_key(upper, a), {}).values())
            carried = float(np.abs(scores).sum())
            share = float(rng.uniform(0.25, 0.7))
            attribution = carried / share if carried else 0.0
            change = attribution * float(rng.uniform(0.3, 0.9))
            records.append(TargetCoverage(upper, a, lower, share if carried else float("nan"),
                                          float(np.sum(scores)) / change if change else float("nan"),
                                          attribution, change, float(rng.uniform(0.0, 0.05))))
    return records


def synthetic_circuits(classes: int | Sequence[int], *, seed: int = 0, **options: object) -> list[Circuit]:
    """Circuits of ``classes`` (a count: spread over the 1000 ImageNet classes, or a list of indices)."""
    indices = list(classes) if not isinstance(classes, int) else [(i * 997 + 1) % 1000 for i in range(classes)]
    return [synthetic_circuit(index, seed=seed, **options) for index in indices]  # type: ignore[arg-type]


def save_synthetic(circuit: Circuit, folder: str | Path, thumbnails: bool = False) -> Path:
    """Saves ``circuit`` with :func:`neurflow.format.save_circuit`; optional flat-colour thumbnails."""
    from PIL import Image

    from neurflow.format import save_circuit

    thumbs = None
    if thumbnails:
        used = sorted({p for g in circuit.semantic_groups for p in g.patches})
        thumbs = {p: Image.new("RGB", (24, 24), ((p * 37) % 256, (p * 91) % 256, (p * 53) % 256)) for p in used}
    return save_circuit(circuit, folder, thumbnails=thumbs)
