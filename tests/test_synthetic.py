"""Synthetic circuits follow the engine's construction: its group edges and its patch boxes."""

from __future__ import annotations

import math

from neurflow.circuit import semantic_group_weight_sums
from neurflow.engine.groups import group_edges as engine_group_edges
from neurflow.engine.patches import patch_boxes
from neurflow.synthetic import CROP, synthetic_circuit


def test_synthetic_circuits_follow_the_engine_construction() -> None:
    circuit = synthetic_circuit(207, seed=3)
    again = synthetic_circuit(207, seed=3)
    assert circuit == again and circuit.id == again.id
    assert circuit.layers[0] == "_fc" and [n.channel for n in circuit.neurons["_fc"]] == [207]
    assert all(abs(s - 1) < 1e-9 for s in semantic_group_weight_sums(circuit).values())
    for upper, lower in zip(circuit.layers, circuit.layers[1:], strict=False):
        layer_edges = [e for e in circuit.edges if e.upper.rpartition(":")[0] == upper]
        expected = engine_group_edges([g for g in circuit.neuron_groups if g.layer == upper],
                                      [g for g in circuit.neuron_groups if g.layer == lower], layer_edges)
        got = [e for e in circuit.group_edges if e.upper.startswith(upper + "/")]
        assert [(e.upper, e.lower) for e in got] == [(e.upper, e.lower) for e in expected]
        assert all(math.isclose(a.weight, b.weight, rel_tol=1e-12, abs_tol=1e-12) for a, b in zip(got, expected, strict=True))
    # every lower core neuron is chosen by an upper neuron, and sizes are realistic
    for layer in circuit.layers[1:]:
        assert all(n.parents for n in circuit.neurons[layer])
    assert 50 <= len(circuit.neurons["_blocks.13"]) <= 192
    other = synthetic_circuit(208, seed=3)
    shared = {n.key for ns in circuit.neurons.values() for n in ns} & {n.key for ns in other.neurons.values() for n in ns}
    assert shared, "circuits of different classes share neurons"


def test_synthetic_patches_are_the_engine_boxes_of_each_image() -> None:
    circuit = synthetic_circuit(207, tau=4, k=6, images=2, layers=["_fc", "_blocks.15"])
    boxes = patch_boxes(CROP)
    assert len(boxes) == 59
    for image in range(2):
        scales = [p.scale for p in circuit.patches if p.image == image]
        assert scales == [scale for _, scale in boxes]
