"""Shared fixtures: small real circuits built with the pretrained EfficientNet-Lite0 on real ImageNet images.

Registered as a pytest plugin in pyproject.toml, so every test module can ask for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from neurflow.engine.config import BuildConfig

TESTS = Path(__file__).parent
# A few real ImageNet validation images ship with the tests; the full set is ../shared/data/imagewoof-val.
SMALL_IMAGES = TESTS / "data" / "imagewoof"
SHARED_IMAGES = Path(os.environ.get("NEURFLOW_IMAGEWOOF", TESTS.parents[1] / "shared" / "data" / "imagewoof-val"))
REAL_CLASSES = ("Samoyed", "golden retriever")
SMALL_LAYERS = ["_fc", "_blocks.15", "_blocks.14"]


def small_config(**overrides: object) -> BuildConfig:
    """Reduced k, N, tau and layers: a real circuit in well under a minute on 2 CPU cores."""
    values: dict[str, object] = dict(
        model="efficientnet-lite0", layers=SMALL_LAYERS, tau=6, k=12, steps=8, max_images=3,
        max_neuron_groups=4, device="cpu",
    )
    values.update(overrides)
    return BuildConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def small_images() -> Path:
    return SMALL_IMAGES


@pytest.fixture(scope="session")
def shared_images() -> Path:
    if not SHARED_IMAGES.is_dir():
        pytest.fail(f"the real image set is missing: {SHARED_IMAGES} (set NEURFLOW_IMAGEWOOF)")
    return SHARED_IMAGES


@pytest.fixture(scope="session")
def real_circuit_dirs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two class circuits (Samoyed, golden retriever) built from real images with the pretrained model."""
    from neurflow.engine.plans import build_circuits

    out = tmp_path_factory.mktemp("real-circuits")
    return build_circuits(small_config(), list(REAL_CLASSES), SMALL_IMAGES, out, echo=lambda _: None,
                          progress=False)
