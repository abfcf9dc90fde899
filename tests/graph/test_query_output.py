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


def test_the_html_page_shows_thumbnails_as_images_and_escapes_text() -> None:
    rows = [*ROWS, {"class": "<script>alert(1)</script>", "thumbnails": ["file:///x/a b.jpg"], "n": 1}]
    page = format_rows(COLUMNS, rows, "html")
    assert page.startswith("<!doctype html>") and "(3 rows)" in page
    assert page.count("<img ") == 2 and f'src="{ROWS[0]["thumbnails"][0]}"' in page
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<th>thumbnails</th>" in page and "<td>3</td>" in page
