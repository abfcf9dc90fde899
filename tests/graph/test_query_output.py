"""How query rows are printed (neurflow.graph.query_output): aligned tables, folded when wider than the terminal."""

from __future__ import annotations

from neurflow.graph.query_output import format_rows

COLUMNS = ["class", "thumbnails", "n"]
ROWS = [{"class": "Samoyed", "thumbnails": ["file:///circuits/0258/thumbs/" + "x" * 60 + ".jpg"], "n": 3},
        {"class": "dingo", "thumbnails": [], "n": None}]


def test_a_table_that_fits_is_aligned_and_cuts_long_cells() -> None:
    text = format_rows(COLUMNS, ROWS, width=200)
    lines = text.splitlines()
    assert lines[0].split() == COLUMNS and lines[-1] == "(2 rows)"
    assert "…" in lines[2] and len(lines[2]) < 90  # a cell is cut at 60 characters
    assert format_rows(COLUMNS, ROWS) == text  # no width: never folded


def test_a_table_wider_than_the_terminal_is_folded_with_nothing_cut() -> None:
    text = format_rows(COLUMNS, ROWS, width=40)
    assert text.splitlines() == [
        "-[ row 1 ]------",
        "class      : Samoyed",
        f"thumbnails : {ROWS[0]['thumbnails'][0]}",
        "n          : 3",
        "-[ row 2 ]------",
        "class      : dingo",
        "thumbnails :",
        "n          :",
        "(2 rows)",
    ]
