"""How query rows are printed (neurflow.graph.query_output): aligned tables, folded when wider than the terminal."""

from __future__ import annotations

from neurflow.graph.query_output import format_rows

COLUMNS = ["class", "thumbnails", "n"]
ROWS = [{"class": "Samoyed", "thumbnails": ["file:///circuits/0258/thumbs/" + "x" * 60 + ".jpg"], "n": 3},
        {"class": "dingo", "thumbnails": [], "n": None}]


def test_a_table_that_fits_is_aligned_and_cuts_long_cells() -> None:
    rows = [{"class": "x" * 70, "thumbnails": [], "n": 1}]
    text = format_rows(COLUMNS, rows, width=200)
    lines = text.splitlines()
    assert lines[0].split() == COLUMNS and lines[-1] == "(1 row)"
    assert lines[2].startswith("x" * 59 + "…")  # a cell is cut at 60 characters
    assert format_rows(COLUMNS, rows) == text  # no width: never folded


def test_a_table_shows_how_many_images_a_cell_holds_not_a_cut_path() -> None:
    rows = [*ROWS, {"class": "pug", "thumbnails": ["file:///a.jpg", "file:///b.png"], "n": 2}]
    lines = format_rows(COLUMNS, rows, width=200).splitlines()
    assert lines[2].split() == ["Samoyed", "1", "image", "3"] and lines[4].split() == ["pug", "2", "images", "2"]
    assert lines[3].split() == ["dingo"]  # no thumbnails: an empty cell
    assert "file://" not in "\n".join(lines[:-1])
    assert lines[-2:] == ["(3 rows)", "(images: --format html --open shows them; --format json lists their file:// URIs)"]


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
