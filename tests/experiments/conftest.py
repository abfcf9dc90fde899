"""Fixtures of the experiment tests: the pretrained EfficientNet-Lite0 on the CPU, loaded once."""

from __future__ import annotations

import pytest

from neurflow.engine.models import LoadedModel, load_model


@pytest.fixture(scope="session")
def pretrained() -> LoadedModel:
    return load_model("efficientnet-lite0", device="cpu")
