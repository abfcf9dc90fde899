"""The fidelity study on the real model: the paper's central claim, its CSV, plot and summary."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest

from neurflow.circuit import ClassInfo
from neurflow.engine.models import LoadedModel
from neurflow.engine.patches import list_images, load_views
from neurflow.experiments.fidelity import (
    FidelityRow,
    fidelity_study,
    images_per_evidence,
    plot_fidelity,
    summarise_fidelity,
    wilson_interval,
    write_fidelity_csv,
)
from neurflow.registry import ModelError
from tests.circuit_fixtures import SMALL_IMAGES, small_config
from tests.experiments.support import SAMOYED


@pytest.fixture(scope="module")
def fidelity_setup(pretrained: LoadedModel, shared_images: Path, tmp_path_factory: pytest.TempPathFactory):
    """A Samoyed circuit (tau=16, reduced k/N) built from 12 real validation images; 15 held-out images."""
    from neurflow.engine.plans import build_circuits
    from neurflow.format import load_circuit

    files = sorted((shared_images / SAMOYED).iterdir())
    build_dir = tmp_path_factory.mktemp("fidelity-images")
    (build_dir / SAMOYED).mkdir()
    for f in files[:12]:
        os.symlink(f, build_dir / SAMOYED / f.name)
    folders = build_circuits(small_config(max_images=6, tau=16, k=8, steps=4), ["Samoyed"], build_dir,
                             tmp_path_factory.mktemp("fidelity-circuit"), echo=lambda _: None, progress=False)
    circuit = load_circuit(folders[0])
    views, _ = load_views([f for f in list_images(shared_images / SAMOYED)][12:27], pretrained.preprocessing)
    return circuit, views


def test_core_neurons_are_faithful_the_papers_central_claim(pretrained: LoadedModel, fidelity_setup, tmp_path: Path) -> None:
    circuit, views = fidelity_setup
    core = {layer: [n.channel for n in circuit.neurons[layer]] for layer in circuit.layers}
    rows = fidelity_study(pretrained, circuit.target, views, core, draws=5, seed=0, evidence="held-out")
    assert len(rows) == 2 * 2 * 2  # 2 layers below the logit x single/cumulative x mask/retain
    for row in rows:  # each with its evidence, sample size, interval and null
        assert (row.evidence, row.images) == ("held-out", 15)
        assert row.core_accuracy_low <= row.core_accuracy <= row.core_accuracy_high
        assert row.random_accuracy_min <= row.random_accuracy_mean <= row.random_accuracy_max
        assert row.p_value in {n / 6 for n in range(1, 7)}
    by = {(r.layer, r.scope, r.mode): r for r in rows}
    assert rows[0].base_accuracy >= 0.8
    lower = circuit.layers[1:]
    for layer in lower:
        for scope in ("single", "cumulative"):
            m, r = by[layer, scope, "mask"], by[layer, scope, "retain"]
            assert m.neurons == r.neurons
            # Masking the core neurons hurts more than masking as many random ones ...
            assert m.core_prob < m.random_prob_mean
            # ... and retaining them keeps at least as much as retaining as many random ones.
            assert r.core_accuracy >= r.random_accuracy_mean
        assert by[layer, "single", "mask"].neurons == len(core[layer])
        assert by[layer, "single", "retain"].core_accuracy > by[layer, "single", "retain"].random_accuracy_mean
    # In accuracy, over the layers and both settings (as the paper's Figure 5 reads):
    masks = [by[layer, scope, "mask"] for layer in lower for scope in ("single", "cumulative")]
    retains = [by[layer, scope, "retain"] for layer in lower for scope in ("single", "cumulative")]
    assert np.mean([m.random_accuracy_mean - m.core_accuracy for m in masks]) >= 0.1
    assert np.mean([r.core_accuracy - r.random_accuracy_mean for r in retains]) >= 0.2
    # The cumulative setting at the deepest layer masks every layer's core neurons.
    deepest = by[circuit.layers[-1], "cumulative", "mask"]
    assert deepest.neurons == sum(len(core[layer]) for layer in circuit.layers[1:])

    csv_path = write_fidelity_csv(rows, tmp_path / "f.csv")
    with csv_path.open() as handle:
        lines = list(csv.DictReader(handle))
    assert len(lines) == len(rows) and float(lines[0]["core_relative"]) == pytest.approx(rows[0].core_relative)
    png = plot_fidelity(rows, tmp_path / "f.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
    summary = summarise_fidelity(rows)
    assert {(s.scope, s.mode) for s in summary} == {(a, b) for a in ("single", "cumulative") for b in ("mask", "retain")}


def test_wilson_interval_against_published_values() -> None:
    # Newcombe (1998), Table I, Wilson score method: 0/10 -> [0, 0.2775]; 5/10 -> [0.2366, 0.7634].
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson_interval(10, 10)[1] == pytest.approx(1.0)
    assert all(np.isnan(wilson_interval(0, 0)))


def test_fidelity_summaries_keep_held_out_and_in_sample_apart() -> None:
    def row(evidence: str, core: float, images: int) -> FidelityRow:
        return FidelityRow(258, "Samoyed", "_blocks.15", 1, "single", "mask", 16, images, 1.0, core, 0.9, 0.05, 0.1,
                           0.8, evidence=evidence)

    rows = [row("in-sample", 0.2, 6), row("held-out", 0.5, 15)]
    summary = summarise_fidelity(rows)
    assert [(s.evidence, s.core_relative, s.images) for s in summary] == [("held-out", 0.5, 15), ("in-sample", 0.2, 6)]
    assert images_per_evidence(rows) == {"held-out": 15, "in-sample": 6}


def test_fidelity_needs_a_layer_below_the_logit(pretrained: LoadedModel) -> None:
    views, _ = load_views(list_images(SMALL_IMAGES)[:1], pretrained.preprocessing)
    with pytest.raises(ModelError, match="at least one layer"):
        fidelity_study(pretrained, ClassInfo(258, "Samoyed"), views, {"_fc": [258]})
