"""How an ingestion's writes are packed into transactions (neurflow.graph.circuit_writes.packed)."""

from __future__ import annotations

from typing import Any

import pytest

from neurflow.graph.circuit_writes import Piece, packed

#: Rows of three steps; "groups" rows ensure several relationships each (their second item).
WRITES: list[tuple[str, Any, list[Any], Any]] = [
    ("layers", "L", ["l1", "l2"], None),
    ("neurons", "N", [f"n{i}" for i in range(7)], None),
    ("groups", "G", [("g1", 4), ("g2", 1), ("g3", 6), ("g4", 0)], lambda row: row[1]),
]


def _weight(piece: Piece) -> int:
    rels = dict((w[0], w[3]) for w in WRITES)[piece.step]
    return len(piece.params["rows"]) if rels is None else sum(max(1, rels(r)) for r in piece.params["rows"])


@pytest.mark.parametrize("batch_rows", [1, 3, 5, 8, 100])
def test_pieces_keep_every_row_in_order_within_the_budget(batch_rows: int) -> None:
    transactions = list(packed(WRITES, batch_rows))
    pieces = [p for t in transactions for p in t]
    for step, query, rows, rels in WRITES:
        mine = [p for p in pieces if p.step == step]
        assert [row for p in mine for row in p.params["rows"]] == rows  # every row once, in order
        assert all(p.query == query for p in mine)
        done = 0
        for p in mine:  # progress counts what is done with each piece
            done += len(p.params["rows"])
            assert (p.done, p.total) == (done, len(rows))
            assert p.expected == (None if rels is None else sum(rels(r) for r in p.params["rows"]))
    for t in transactions:
        weight = sum(_weight(p) for p in t)
        # over the budget only when one row alone is (g3 ensures 6)
        assert weight <= batch_rows or (len(t) == 1 and len(t[0].params["rows"]) == 1)
    assert [p.step for p in pieces] == sorted([p.step for p in pieces], key=["layers", "neurons", "groups"].index)


def test_small_steps_share_a_transaction_and_the_first_pieces_open_it() -> None:
    node = Piece("circuit", "C", {"model": "m"}, None, 1, 1)
    transactions = list(packed(WRITES, 100, first=[node]))
    assert len(transactions) == 1
    assert [p.step for p in transactions[0]] == ["circuit", "layers", "neurons", "groups"]
    # weights 1 + 2 + 7 | 4 + 1 | 6 + max(1, 0): a budget of 10 closes a transaction before it would pass 10
    split = list(packed(WRITES, 10, first=[node]))
    assert [[(p.step, len(p.params["rows"]) if "rows" in p.params else 0) for p in t] for t in split] == [
        [("circuit", 0), ("layers", 2), ("neurons", 7)],
        [("groups", 2)],
        [("groups", 2)],
    ]
