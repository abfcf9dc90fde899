"""Fixtures of the knockout, correlation and optimality tests.

- ``three_colours``: a circuit of a tiny network on uniform images, small enough to compute every knockout
  loss, integrated gradient and correlation by hand (see :func:`three_colours_inputs`);
- ``samoyed3_inputs``: the session's real Samoyed circuit (tests/circuit_fixtures.py: 3 images, tau 6, k 12),
  its activations recorded once;
- ``samoyed_inputs``: a small real circuit (pretrained EfficientNet-Lite0, 2 Samoyed images of
  tests/data/imagewoof, layers ``_fc, _blocks.15, _blocks.14``, tau 6, k 12, N 8) as a study sees it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from neurflow.experiments.validation.inputs import StudyInputs, study_inputs
from tests.circuit_fixtures import SMALL_IMAGES, small_config
from tests.experiments.validation.support import real_inputs, three_colours_inputs


@pytest.fixture
def three_colours() -> StudyInputs:
    return three_colours_inputs()


@pytest.fixture(scope="session")
def samoyed_inputs(tmp_path_factory: pytest.TempPathFactory) -> StudyInputs:
    from neurflow.engine.plans import build_circuits

    folders = build_circuits(small_config(max_images=2), ["Samoyed"], SMALL_IMAGES,
                             tmp_path_factory.mktemp("validation-circuit"), echo=lambda _: None, progress=False)
    return study_inputs(folders[0], device="cpu", progress=False)


@pytest.fixture
def samoyed3_inputs(real_circuit_dirs: list[Path]) -> StudyInputs:
    """The small real Samoyed circuit: 3 images, k = 12, tau = 6, steps = 8, layers _fc, _blocks.15, _blocks.14."""
    return real_inputs(real_circuit_dirs[0])
