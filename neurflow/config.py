"""Build settings shared by `neurflow build` and `neurflow-ingest`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

QUADRATURES = ("gauss-legendre", "riemann-midpoint")
RANKINGS = ("sum", "mean-abs")
LABEL_SOURCES = ("predicted", "folder")


@dataclass
class BuildConfig:
    """Everything that decides a circuit, plus how to run the computation.

    ``ranking``: ``sum`` ranks lower neurons by |sum over V_a of the attribution| (the paper); ``mean-abs``
    ranks them by the mean over patches of |per-patch attribution| (the authors' code).
    ``label_source``: D_c is the images the model predicts as c (``predicted``) or those the folder labels c.
    """

    model: str
    weights: str | None = None
    random_weights: bool = False
    layers: list[str] | None = None
    tau: int = 16
    k: int = 50
    steps: int = 50
    quadrature: str = "gauss-legendre"
    ranking: str = "sum"
    max_semantic_groups: int = 5
    max_neuron_groups: int = 8
    max_images: int | None = None
    label_source: str = "predicted"
    seed: int = 0
    device: str | None = None
    batch_size: int = 64
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.quadrature not in QUADRATURES:
            raise ValueError(f"quadrature must be one of {QUADRATURES}, not {self.quadrature!r}")
        if self.ranking not in RANKINGS:
            raise ValueError(f"ranking must be one of {RANKINGS}, not {self.ranking!r}")
        if self.label_source not in LABEL_SOURCES:
            raise ValueError(f"label source must be one of {LABEL_SOURCES}, not {self.label_source!r}")
        for name in ("tau", "k", "steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_semantic_groups < 1 or self.max_neuron_groups < 1:
            raise ValueError("the maximum numbers of groups must be at least 1")

    def circuit_params(self) -> dict[str, Any]:
        """The parameters that decide the circuit (not how fast it is computed): part of its identity."""
        data = asdict(self)
        for runtime_only in ("model", "weights", "random_weights", "device", "batch_size", "extra"):
            data.pop(runtime_only)
        return data
