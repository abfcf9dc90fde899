"""A completion's rows prepared ahead and brought up to date (neurflow.graph.comparisons) equal rows computed at once
against the circuits complete at the completion."""

from __future__ import annotations

import dataclasses

import pytest

from neurflow.graph.circuit_vectors import CircuitVectors, circuit_vectors
from neurflow.graph.comparisons import compare, up_to_date
from neurflow.graph.rows import circuit_rows
from tests.helpers import small_synthetic

MIN_JACCARD = 0.2


def _vectors(index: int, write_id: str = "w") -> tuple[str, CircuitVectors]:
    rows = circuit_rows(small_synthetic(index))
    return rows.circuit_id, dataclasses.replace(circuit_vectors(rows.circuit), write_id=write_id)


@pytest.fixture(scope="module")
def setting() -> tuple:
    mine = circuit_rows(small_synthetic(300))
    others = dict(_vectors(i) for i in range(301, 307))
    return mine, others


def test_rows_of_circuits_completed_since_are_added(setting: tuple) -> None:
    mine, others = setting
    ids = sorted(others)
    prepared = compare(mine, {cid: others[cid] for cid in ids[:4]}, MIN_JACCARD)
    now = up_to_date(prepared, mine, others, MIN_JACCARD)
    at_once = compare(mine, others, MIN_JACCARD)
    assert now.seen == at_once.seen and now.similar == at_once.similar
    assert now.overlaps == sorted(at_once.overlaps) and len(now.overlaps) > len(prepared.overlaps) > 0
    assert [row["other"] for row in now.similar] == ids


@pytest.mark.parametrize("change", ["rewritten", "deleted"])
def test_a_circuit_changed_since_makes_the_completion_compare_again(setting: tuple, change: str) -> None:
    mine, others = setting
    prepared = compare(mine, others, MIN_JACCARD)
    first = sorted(others)[0]
    if change == "rewritten":  # same id, another write: its lists may differ (here another circuit's)
        _, replacement = _vectors(320, write_id="w2")
        now_others = {**others, first: replacement}
    else:
        now_others = {cid: v for cid, v in others.items() if cid != first}
    now = up_to_date(prepared, mine, now_others, MIN_JACCARD)
    assert now == compare(mine, now_others, MIN_JACCARD) and now != prepared


def test_nothing_prepared_computes_everything(setting: tuple) -> None:
    mine, others = setting
    assert up_to_date(None, mine, others, MIN_JACCARD) == compare(mine, others, MIN_JACCARD)
