"""Build settings shared by `neurflow build` and `neurflow-ingest`.

Plain values only (no torch), so that the command lines can parse and check them before any model loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from neurflow.registry import default_class_token

if TYPE_CHECKING:
    import torch

QUADRATURES = ("gauss-legendre", "riemann-midpoint", "gauss-legendre-graded")
RANKINGS = ("sum", "mean-abs")
LABEL_SOURCES = ("predicted", "folder")
GROUP_SPACES = ("paper", "core")
AUTO_STEPS = "auto"
# The rule of `steps="auto"` (neurflow.engine.integration, docs/integration.md): per target of a layer pair, the
# levels of a nested quadrature (STEPS_RULE: Fejer's second rule, 3, 7, 15, 31, 63 nodes, each level evaluating
# only the nodes it adds) until its top-tau set is the previous level's (up to neurons within STEPS_TIE of the
# tau-th score) and its completeness gap is within STEPS_TOLERANCE. `doubling` is the rule of circuits built before
# nested levels: `quadrature` nodes from 4, doubled up to 64, every level computed from scratch.
DOUBLING = "doubling"
STEPS_RULES = ("fejer2", "clenshaw-curtis", "trapezoid", DOUBLING)
STEPS_RULE = "fejer2"
#: First and last level of each rule (the defaults of steps_start and steps_max).
RULE_LEVELS = {"fejer2": (3, 63), "clenshaw-curtis": (3, 65), "trapezoid": (3, 65), DOUBLING: (4, 64)}
STEPS_START, STEPS_MAX = RULE_LEVELS[STEPS_RULE]
STEPS_TOLERANCE = 0.05
#: Bootstrap resamples of a class's images per circuit (docs/coverage.md; 0: no bootstrap).
STABILITY_RESAMPLES = 100
STEPS_TIE = 0.01
#: The most integration nodes a build takes: Gauss-Legendre nodes come from an N x N eigenproblem (8 N^2 bytes),
#: and every node is one model evaluation per patch; the paper uses 50.
STEPS_LIMIT = 4096
# Parameters that only exist with steps="auto": left out of a fixed-N circuit's params (and so of its id). An auto
# circuit without `steps_rule` was built with the doubling rule (LEGACY_STEPS_RULE: read with steps_rule_of), the
# rule of every auto circuit built before the setting; it is left out of params, so those keep their ids.
AUTO_STEPS_PARAMS = ("steps_start", "steps_max", "steps_tolerance", "steps_tie", "steps_rule")
LEGACY_STEPS_RULE = DOUBLING
# Where a layer's output keeps its neurons (neurflow.engine.layouts, docs/layouts.md), and whether a ViT's class
# token enters its hidden units' activations; the defaults are left out of params (and so of circuit ids).
LAYOUTS = ("channels-first", "channels-last", "tokens")
#: What a token layer's activation averages: the patch tokens, every token, or the class token alone.
TOKEN_ACTIVATIONS = ("exclude", "include", "only")
#: ``auto``: ``only`` for a token layer whose upper layer in the circuit reads nothing but its class token (a
#: ViT's last block under its head), ``exclude`` for the others (neurflow.engine.segments.resolve_token_activations).
CLASS_TOKEN_CHOICES = ("auto", *TOKEN_ACTIVATIONS)
# Circuits built before `group_space` existed were grouped in the core spaces and carry no key for it.
LEGACY_GROUP_SPACE = "core"


@dataclass
class BuildConfig:
    """Everything that decides a circuit, plus how to run the computation.

    ``steps``: Gauss-Legendre (or midpoint) nodes N of the integrated gradients: a positive int (fixed N, the
    paper's is 50), or ``"auto"``: per target of a layer pair, the levels of ``steps_rule`` from ``steps_start``
    nodes up to at most ``steps_max``, until the target's top-tau set is the one of the previous level (neurons
    within ``steps_tie`` of the tau-th score count as tied) and its completeness gap (sum over its patches of |sum
    of attributions - (f(h) - f(0))|, relative to the sum of |f(h) - f(0)|) is at most ``steps_tolerance``
    (:mod:`neurflow.engine.integration`, docs/integration.md). ``steps_rule``: a nested family of
    :mod:`neurflow.engine.nested` (each level evaluates only its new nodes; ``fejer2`` by default with
    ``gauss-legendre`` quadrature), or ``doubling``: ``quadrature``'s nodes 4, 8, 16, ... each computed from
    scratch (the default with another quadrature: graded nodes are not nested). ``steps_start``/``steps_max``
    default to the rule's first and last level (:data:`RULE_LEVELS`). The five only count with ``"auto"``.
    ``ranking``: ``sum`` ranks lower neurons by |sum over V_a of the attribution| (the paper); ``mean-abs``
    ranks them by the mean over patches of |per-patch attribution| (the authors' code).
    ``group_space``: the spaces semantic and neuron groups are clustered in (docs/grouping.md). ``paper``
    (Eq. 3, Section 3.5): a concept's patches on the spatial means of all channels of the layer below, and a
    layer's semantic groups on their mean vectors in that same space; ``core``: a concept's patches on the
    target's core neurons only, and semantic groups on the z-scored activations of the layer's core neurons.
    The bottom layer has no recorded layer below: it uses its own channels (all of them, or its core ones).
    ``label_source``: D_c is the images the model predicts as c (``predicted``) or those the folder labels c.
    ``batch_size``: patches per recording forward pass; by default 8 on the CPU and 128 on CUDA.
    ``ig_batch_size``: (patch, step) inputs per integrated-gradients call; by default 16 on the CPU and 256
    on CUDA. On the CPU small calls stay in cache: they measured fastest on EfficientNet-Lite0 and ResNet50.
    ``map_cache_mb``: memory for the lower layers' full outputs kept from the recording pass (0: recompute them).
    """

    model: str
    weights: str | None = None
    random_weights: bool = False
    layers: list[str] | None = None
    tau: int = 16
    tau_coverage: float | None = None
    k: int = 50
    steps: int | str = AUTO_STEPS
    steps_start: int = 0  # 0 (or None): the rule's first level
    steps_max: int = 0  # 0 (or None): the rule's last level
    steps_tolerance: float = STEPS_TOLERANCE
    steps_tie: float = STEPS_TIE
    steps_rule: str = ""  # "" (or None): fejer2 with gauss-legendre, doubling with another quadrature
    quadrature: str = "gauss-legendre"
    ranking: str = "sum"
    max_semantic_groups: int = 5
    max_neuron_groups: int = 8
    group_space: str = "paper"
    max_images: int | None = None
    label_source: str = "predicted"
    seed: int = 0
    device: str | None = None
    batch_size: int | None = None
    ig_batch_size: int | None = None
    map_cache_mb: int = 2048
    stability_resamples: int = STABILITY_RESAMPLES
    layouts: dict[str, str] = field(default_factory=dict)
    class_token: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quadrature not in QUADRATURES:
            raise ValueError(f"quadrature must be one of {QUADRATURES}, not {self.quadrature!r}")
        if self.ranking not in RANKINGS:
            raise ValueError(f"ranking must be one of {RANKINGS}, not {self.ranking!r}")
        if self.group_space not in GROUP_SPACES:
            raise ValueError(f"group space must be one of {GROUP_SPACES}, not {self.group_space!r}")
        if self.label_source not in LABEL_SOURCES:
            raise ValueError(f"label source must be one of {LABEL_SOURCES}, not {self.label_source!r}")
        if self.class_token is None:
            self.class_token = default_class_token(self.model)
        if self.class_token not in CLASS_TOKEN_CHOICES:
            raise ValueError(f"class token must be one of {CLASS_TOKEN_CHOICES}, not {self.class_token!r}")
        bad = {layer: kind for layer, kind in self.layouts.items() if kind not in LAYOUTS}
        if bad:
            raise ValueError(f"layouts must be one of {LAYOUTS}, not {bad}")
        if self.stability_resamples < 0:
            raise ValueError("stability_resamples must not be negative")
        if self.map_cache_mb < 0:
            raise ValueError("map_cache_mb must not be negative")
        if self.ig_batch_size is not None and self.ig_batch_size < 1:
            raise ValueError("ig_batch_size must be at least 1")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.steps = parse_steps(self.steps)
        self._resolve_steps_rule()
        for name in ("tau", "k", "steps_start", "steps_max"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        check_step_count("steps_max", self.steps_max)
        if self.max_images is not None and self.max_images < 1:
            raise ValueError(f"max_images must be at least 1, not {self.max_images} (leave it out for every image)")
        if self.steps_max <= self.steps_start:
            raise ValueError(f"steps_max ({self.steps_max}) must be more than steps_start ({self.steps_start}): "
                             "auto compares two levels at least")
        if self.steps_rule != DOUBLING:
            from neurflow.engine.nested import level_counts  # numpy only

            if len(level_counts(self.steps_rule, self.steps_start, self.steps_max)) < 2:
                raise ValueError(f"steps_max ({self.steps_max}) leaves {self.steps_rule} one level from "
                                 f"{self.steps_start} nodes: auto compares two levels at least")
        for name in ("steps_tolerance", "steps_tie"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be a fraction in [0, 1), not {getattr(self, name)!r}")
        if self.tau_coverage is not None and not 0 < self.tau_coverage <= 1:
            raise ValueError(f"tau_coverage must be a share in (0, 1], not {self.tau_coverage!r}")
        if self.max_semantic_groups < 1 or self.max_neuron_groups < 1:
            raise ValueError("the maximum numbers of groups must be at least 1")

    def _resolve_steps_rule(self) -> None:
        """``steps_rule`` and its first and last level, from the quadrature when not given."""
        if not self.steps_rule:
            self.steps_rule = STEPS_RULE if self.quadrature == "gauss-legendre" else DOUBLING
        if self.steps_rule not in STEPS_RULES:
            raise ValueError(f"steps_rule must be one of {STEPS_RULES}, not {self.steps_rule!r}")
        if self.steps_rule != DOUBLING and self.quadrature != "gauss-legendre":
            raise ValueError(f"steps_rule {self.steps_rule!r} has its own nodes on [0, 1]: it replaces "
                             f"gauss-legendre, not {self.quadrature} (use steps_rule 'doubling')")
        first, last = RULE_LEVELS[self.steps_rule]
        self.steps_start = self.steps_start or first
        self.steps_max = self.steps_max or last

    @property
    def auto_rule_name(self) -> str:
        """What ``steps="auto"`` integrates with, as recorded per layer pair (``Circuit.integration``)."""
        return f"{self.quadrature} {DOUBLING}" if self.steps_rule == DOUBLING else str(self.steps_rule)

    def circuit_params(self) -> dict[str, Any]:
        """The parameters that decide the circuit (not how fast it is computed): part of its identity.

        ``group_space`` is left out when it is ``core``: circuits built before the setting existed used those
        spaces and have no key, and leaving it out keeps their ids. Read it with :func:`group_space_of`.
        """
        data = asdict(self)
        for runtime_only in ("model", "weights", "random_weights", "device", "batch_size", "ig_batch_size", "map_cache_mb",
                             "stability_resamples", "extra"):
            data.pop(runtime_only)
        if data["group_space"] == LEGACY_GROUP_SPACE:
            data.pop("group_space")
        if not data["layouts"]:
            data.pop("layouts")
        if data["class_token"] == "exclude":
            data.pop("class_token")
        if data["tau_coverage"] is None:
            data.pop("tau_coverage")  # tau neurons per target: the circuits built before the option
        if data["steps"] != AUTO_STEPS:
            for name in AUTO_STEPS_PARAMS:
                data.pop(name)
        elif data["steps_rule"] == LEGACY_STEPS_RULE:
            data.pop("steps_rule")  # the rule of auto circuits built before steps_rule: they keep their ids
        return data

    @property
    def auto_steps(self) -> bool:
        return self.steps == AUTO_STEPS

    def patches_per_pass(self, device: torch.device) -> int:
        """Patches per recording forward pass: the setting, or the default for the device."""
        if self.batch_size is not None:
            return self.batch_size
        return 128 if device.type == "cuda" else 8

    def ig_rows_per_call(self, device: torch.device) -> int:
        """Inputs per integrated-gradients call: the setting, or the default for the device."""
        if self.ig_batch_size is not None:
            return self.ig_batch_size
        return 256 if device.type == "cuda" else 16


def parse_steps(value: object) -> int | str:
    """``"auto"`` or a positive number of nodes (an int, or its digits as text); a ValueError in one line
    otherwise."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO_STEPS:
            return AUTO_STEPS
        if text.isdigit():
            value = int(text)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        check_step_count("steps", value)
        return value
    raise ValueError(f"steps must be 'auto' or a positive integer, not {value!r}")


class StepsLimitError(ValueError):
    """More integration nodes than :data:`STEPS_LIMIT`; the message gives the memory they would need."""


def check_step_count(name: str, steps: int) -> None:
    """A StepsLimitError with the memory estimate when ``steps`` is above :data:`STEPS_LIMIT`."""
    if steps > STEPS_LIMIT:
        need = 8 * steps * steps / 2**30
        raise StepsLimitError(f"{name} = {steps} is more than {STEPS_LIMIT} integration nodes: computing them alone "
                              f"needs about {need:,.0f} GiB, and each is one model evaluation per patch (the paper "
                              f"uses 50; --steps auto chooses per layer)")


def steps_rule_of(params: Mapping[str, Any]) -> str | None:
    """The rule ``steps="auto"`` used for a circuit, from its ``params`` (None for a fixed N): a missing key means
    the doubling rule of the circuits built before nested levels."""
    if params.get("steps") != AUTO_STEPS:
        return None
    return str(params.get("steps_rule", LEGACY_STEPS_RULE))


def group_space_of(params: Mapping[str, Any]) -> str:
    """The group space a circuit was built with, from its ``params``: a missing key means ``core``."""
    return str(params.get("group_space", LEGACY_GROUP_SPACE))


def parse_layout_overrides(values: Iterable[str]) -> dict[str, str]:
    """``LAYER=KIND`` strings (``--layout``) as a mapping; a ValueError names a malformed one."""
    overrides: dict[str, str] = {}
    for value in values:
        layer, sep, kind = value.partition("=")
        if not sep or not layer or kind not in LAYOUTS:
            raise ValueError(f"--layout takes LAYER=KIND with KIND one of {', '.join(LAYOUTS)}, not {value!r}")
        overrides[layer] = kind
    return overrides
