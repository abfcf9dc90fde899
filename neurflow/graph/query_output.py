"""How the rows of a named query are shown: driver values as plain data, and rows as a text table, JSON or CSV."""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import neo4j
import neo4j.graph
import neo4j.time

from neurflow.format import strict_json

FORMATS = ("table", "json", "csv", "html")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


def to_plain(value: Any) -> Any:
    """Driver values as plain JSON-able data: nodes and relationships as property maps with ``_labels`` or
    ``_type``, paths as ``{"nodes": [...], "relationships": [...]}``, temporal values as ISO text."""
    if isinstance(value, neo4j.graph.Node):
        return {"_labels": sorted(value.labels), **{k: to_plain(v) for k, v in value.items()}}
    if isinstance(value, neo4j.graph.Relationship):
        return {"_type": value.type, **{k: to_plain(v) for k, v in value.items()}}
    if isinstance(value, neo4j.graph.Path):
        return {"nodes": [to_plain(n) for n in value.nodes],
                "relationships": [to_plain(r) for r in value.relationships]}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, neo4j.time.DateTime | neo4j.time.Date | neo4j.time.Time | neo4j.time.Duration):
        return value.iso_format()
    return value


def _caption(item: Mapping[str, Any]) -> str:
    labels = item.get("_labels") or []
    for label, key in (("NeuronGroup", "groupId"), ("SemanticGroup", "sgKey"), ("Class", "name"),
                       ("Circuit", "id"), ("Layer", "name"), ("Model", "key"), ("Image", "path"), ("Patch", "key")):
        if label in labels:
            return f"{label}({item.get(key)})"
    if "Neuron" in labels:
        return f"Neuron({item.get('layer')}:{item.get('channel')})"
    return f"{'/'.join(labels)}"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        if "_labels" in value:
            return _caption(value)
        if "_type" in value:
            return f"[{value['_type']}]"
        if "nodes" in value and "relationships" in value:
            return " -> ".join(_caption(n) for n in value["nodes"])
        return " ".join(f"{k}={_cell(v)}" for k, v in sorted(value.items()))  # a plain map: compact, keys sorted
    if isinstance(value, list):
        return ", ".join(_cell(v) for v in value)
    return str(value)


def format_rows(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], fmt: str = "table",
                max_width: int = 60, width: int | None = None) -> str:
    """Rows as an aligned text table (long cells cut at ``max_width``), JSON (a list of objects) or CSV.

    ``width``: the terminal's; a table wider than it is folded, one ``column: value`` line per cell and a blank
    line between rows, nothing cut (a thumbnail URI stays whole). None: never folded."""
    if fmt == "json":
        return strict_json([dict(r) for r in rows], indent=1, default=str)  # NaN (e.g. a study's figure): null
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return buffer.getvalue().rstrip("\n")
    if fmt == "html":
        return html_page(columns, rows)
    if fmt != "table":
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if width is not None and _table_width(columns, cells, max_width) > width:
        return _folded(columns, cells, len(rows))
    # A cut file:// path opens nothing: a table shows how many images a cell holds, the note says where to see them.
    images = [[_image_count(row.get(c)) for c in columns] for row in rows]
    cells = [[f"{n} image{'s' if n != 1 else ''}" if n is not None else c for c, n in zip(line, counts, strict=True)]
             for line, counts in zip(cells, images, strict=True)]
    cells = [[c if len(c) <= max_width else c[: max_width - 1] + "…" for c in line] for line in cells]
    widths = [max([len(c)] + [len(line[i]) for line in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    if any(n is not None for line in images for n in line):
        lines.append("(images: --format html --open shows them; --format json lists their file:// URIs)")
    return "\n".join(lines)


def _image_count(value: Any) -> int | None:
    """How many image URIs a cell holds when it holds only those (a thumbnail list or one URI), else None."""
    if _is_image_uri(value):
        return 1
    if isinstance(value, list) and value and all(_is_image_uri(v) for v in value):
        return len(value)
    return None


def _table_width(columns: Sequence[str], cells: Sequence[Sequence[str]], max_width: int) -> int:
    widths = [max([len(c)] + [min(len(line[i]), max_width) for line in cells]) for i, c in enumerate(columns)]
    return sum(widths) + 2 * (len(widths) - 1)


def _folded(columns: Sequence[str], cells: Sequence[Sequence[str]], count: int) -> str:
    """One block per row, one ``column: value`` line per cell (psql's expanded display)."""
    pad = max(len(c) for c in columns)
    blocks = []
    for number, line in enumerate(cells, 1):
        blocks.append("\n".join([f"-[ row {number} ]" + "-" * max(0, pad - 4)]
                                 + [f"{c.ljust(pad)} : {v}".rstrip() for c, v in zip(columns, line, strict=True)]))
    blocks.append(f"({count} row{'s' if count != 1 else ''})")
    return "\n".join(blocks)


def _is_image_uri(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("file://", "http://", "https://")) \
        and value.lower().endswith(IMAGE_SUFFIXES)


def _html_cell(value: Any) -> str:
    """A cell of the page: image URIs (a thumbnail list) as images, anything else as escaped text."""
    images = value if isinstance(value, list) else [value]
    if images and all(_is_image_uri(v) for v in images):
        return "".join(f'<img src="{html.escape(v, quote=True)}" alt="" loading="lazy">' for v in images)
    return html.escape(_cell(value))


def html_page(columns: Sequence[str], rows: Sequence[Mapping[str, Any]], title: str = "neurflow query") -> str:
    """The rows as one self-contained HTML page: a table whose thumbnail cells show the patches themselves
    (their ``file://`` URIs), every text escaped."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "\n".join("<tr>" + "".join(f"<td>{_html_cell(row.get(c))}</td>" for c in columns) + "</tr>"
                     for row in rows)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>\n"
            "<style>body{font:13px sans-serif;margin:1em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 6px;vertical-align:top;text-align:left}"
            "img{width:72px;height:72px;object-fit:cover;margin:1px}</style></head>\n"
            f"<body><h3>{html.escape(title)} ({len(rows)} row{'s' if len(rows) != 1 else ''})</h3>\n"
            f"<table><tr>{head}</tr>\n{body}\n</table></body></html>\n")
