"""The rows of a circuit's writes, built without a server: every part covered, inconsistencies refused."""

from __future__ import annotations

import math

import pytest

from neurflow.graph.rows import circuit_rows
from neurflow.graph.schema import StoreError
from tests.helpers import shares, small_synthetic


def test_rows_cover_every_part_of_the_circuit() -> None:
    circuit = small_synthetic(258)
    rows = circuit_rows(circuit, "/tmp/somewhere")
    assert len(rows.semantic_groups) == len(circuit.semantic_groups)
    assert sum(len(r["in"]) for r in rows.semantic_groups) == len(circuit.edges)
    assert sum(len(r["patches"]) for r in rows.semantic_groups) == sum(len(g.patches) for g in circuit.semantic_groups)
    assert len(rows.flows) == len(circuit.group_edges)
    assert rows.circuit["complete"] is False and rows.circuit["id"] == circuit.id
    assert rows.logit == "efficientnet-lite0@synthetic|_fc:258"
    assert all(p["thumbnailUri"].startswith("file:///tmp/somewhere/thumbnails/") for p in rows.patches)
    for r in rows.semantic_groups:  # rank 0 = the strongest patch
        ranked = sorted(r["patches"], key=lambda x: x[2])
        assert [x[1] for x in ranked] == sorted((x[1] for x in ranked), reverse=True)


def test_flow_rows_carry_the_group_edge_shares() -> None:
    circuit = small_synthetic(207)
    expected = shares(circuit)
    rows = circuit_rows(circuit)
    cid = circuit.id
    for lower, upper, weight, share, _influence, _before in rows.flows:
        key = (upper.removeprefix(f"{cid}|"), lower.removeprefix(f"{cid}|"))
        assert math.isclose(share, expected.get(key, 0.0), rel_tol=1e-12, abs_tol=1e-15)
        assert weight == next(e.weight for e in circuit.group_edges if (e.upper, e.lower) == key)


def test_inconsistent_circuits_are_refused_before_writing() -> None:
    circuit = small_synthetic(258)
    circuit.edges.append(type(circuit.edges[0])("nope:1/0", "nope:1", circuit.edges[0].lower, 1.0, 1.0))
    with pytest.raises(StoreError, match="nope:1/0"):
        circuit_rows(circuit)
