"""Fixtures of the labelling tests: the tiny circuit in a fresh folder, the fake LLM endpoint."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from neurflow.circuit import Circuit
from tests.labelling.fake_openai import FakeOpenAI
from tests.labelling.support import tiny_circuit


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Circuit, Path]:
    return tiny_circuit(tmp_path / "tiny")


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server
