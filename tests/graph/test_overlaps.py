"""OVERLAPS rows of a completing circuit (neurflow.graph.overlaps.overlap_rows) against a brute force over sets."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from neurflow.graph.circuit_vectors import GroupLists
from neurflow.graph.overlaps import overlap_rows


def _groups(rng: np.random.Generator, prefix: str, count: int) -> tuple[GroupLists, dict[str, set[int]]]:
    sets = {}
    for i in range(count):
        layer = int(rng.integers(1, 3))
        sets[f"{prefix}{i}"] = {layer * 2**32 + int(c) for c in rng.choice(12, size=int(rng.integers(1, 7)),
                                                                             replace=False)}
    ids = list(sets)
    return GroupLists(ids, rng.random(len(ids)), np.array([len(sets[g]) for g in ids]),
                      np.array([c for g in ids for c in sorted(sets[g])], dtype=np.int64)), sets


@pytest.mark.parametrize("seed", range(5))
def test_overlap_rows_equal_a_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    mine, my_sets = _groups(rng, "g", 6)
    others, other_sets = {}, {}
    for cid in ("o1", "o2", "o3"):
        others[cid], other_sets[cid] = _groups(rng, "h", 8)
    expected = []
    for (g, a), cid in itertools.product(my_sets.items(), sorted(other_sets)):
        for h, b in other_sets[cid].items():
            jaccard = len(a & b) / len(a | b)
            if a & b and jaccard >= 0.2:
                influence = min(mine.influence[mine.ids.index(g)], others[cid].influence[others[cid].ids.index(h)])
                expected.append([f"c|{g}", f"{cid}|{h}", jaccard, len(a & b), float(influence)])
    rows = overlap_rows("c", mine, others, 0.2)
    assert rows == sorted(expected) and len(rows) > 0


def test_nothing_to_compare() -> None:
    empty = GroupLists([], np.array([]), np.array([], dtype=np.int64), np.array([], dtype=np.int64))
    one = GroupLists(["g"], np.array([1.0]), np.array([1]), np.array([5], dtype=np.int64))
    assert overlap_rows("c", empty, {"o": one}, 0.2) == [] and overlap_rows("c", one, {}, 0.2) == []
    assert overlap_rows("c", one, {"o": empty}, 0.2) == []
