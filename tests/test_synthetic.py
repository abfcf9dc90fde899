"""Synthetic circuits follow the method's construction, checked from its definitions (not with the engine
functions synthetic.py calls): group edges are sums of member edge weights, patches are the 59 squares of the
centre crop at 100/50/25 % of its side with 50 % overlap, in the original image's pixels."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from neurflow.circuit import Circuit
from neurflow.synthetic import synthetic_circuit


def group_edge_weights(circuit: Circuit, upper_layer: str) -> dict[tuple[str, str], float]:
    """W(G, H) from the paper's definition: the sum of w(a, s, V_a,j) over the semantic groups (a, j) of G and
    the member neurons s of H, for every pair of groups that some edge connects."""
    group_of_semantic_group = {sg: g.id for g in circuit.neuron_groups if g.layer == upper_layer
                               for sg in g.semantic_groups}
    totals: dict[tuple[str, str], float] = defaultdict(float)
    for edge in circuit.edges:
        upper = group_of_semantic_group.get(edge.upper_group)
        if upper is None:
            continue
        for lower in circuit.neuron_groups:
            if edge.lower in lower.neurons:
                totals[upper, lower.id] += edge.weight
    return dict(totals)


def test_synthetic_circuits_follow_the_method() -> None:
    circuit = synthetic_circuit(207, seed=3)
    again = synthetic_circuit(207, seed=3)
    assert circuit == again and circuit.id == again.id
    assert circuit.layers[0] == "_fc" and [n.channel for n in circuit.neurons["_fc"]] == [207]
    # every semantic group's edges have |weights| summing to 1
    sums: dict[str, float] = defaultdict(float)
    for edge in circuit.edges:
        sums[edge.upper_group] += abs(edge.weight)
    assert sums and all(math.isclose(s, 1, rel_tol=1e-9) for s in sums.values())
    # a group edge for exactly the pairs the definition gives, with the summed weight
    for upper in circuit.layers[:-1]:
        expected = group_edge_weights(circuit, upper)
        got = {(e.upper, e.lower): e.weight for e in circuit.group_edges if e.upper.startswith(upper + "/")}
        assert expected and got.keys() == expected.keys()
        assert all(math.isclose(got[pair], expected[pair], rel_tol=1e-12, abs_tol=1e-12) for pair in got)
    # the union of the upper layer's picks is the lower core set; every lower neuron has a parent above
    for upper, lower in zip(circuit.layers, circuit.layers[1:], strict=False):
        picked = {e.lower for e in circuit.edges if e.upper.rpartition(":")[0] == upper}
        assert picked == {n.key for n in circuit.neurons[lower]}
        assert all(n.parents for n in circuit.neurons[lower])
    assert 50 <= len(circuit.neurons["_blocks.13"]) <= 192
    other = synthetic_circuit(208, seed=3)
    shared = {n.key for ns in circuit.neurons.values() for n in ns} & {n.key for ns in other.neurons.values() for n in ns}
    assert shared, "circuits of different classes share neurons"


def test_synthetic_patches_are_the_squares_of_each_images_centre_crop() -> None:
    circuit = synthetic_circuit(207, tau=4, k=6, images=2, layers=["_fc", "_blocks.15"])
    for index, image in enumerate(circuit.images):
        patches = [p for p in circuit.patches if p.image == index]
        assert [p.scale for p in patches] == [1.0] + [0.5] * 9 + [0.25] * 49
        # the view: shorter side resized to 256, centre crop of 224; in original pixels the crop's side is
        # 224 / scale and it is centred (rounding in the resized image moves it by at most a pixel or two)
        scale = 256 / min(image.width, image.height)
        side = 224 / scale
        left, top = (image.width - side) / 2, (image.height - side) / 2
        full = patches[0].box
        assert full == pytest.approx((left, top, left + side, top + side), abs=2.5)
        for count, fraction in ((9, 0.5), (49, 0.25)):
            ones = [p.box for p in patches if p.scale == fraction]
            per_row = math.isqrt(count)
            assert len(ones) == count
            for i, (x0, y0, x1, y1) in enumerate(ones):  # row by row, 50 % overlap
                row, col = divmod(i, per_row)
                step = side * fraction / 2
                assert (x0, y0) == pytest.approx((left + col * step, top + row * step), abs=2.5)
                assert (x1 - x0, y1 - y0) == pytest.approx((side * fraction, side * fraction), abs=2)
