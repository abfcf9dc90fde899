"""A validation study as a graph record: the flat properties of its ValidationStudy node.

Neo4j properties are numbers, strings and lists of them, never maps, and never null inside a list. So the
study's parameters are JSON text (``parametersJson``); its summary figures are kept three ways: each as a flat
property (``summary`` + the name in camelCase: ``mean_abs_r/_blocks.15`` -> ``summaryMeanAbsRBlocks15``), as two
parallel lists (``summaryNames``, ``summaryValues``: what the ``validation-summary`` query prints) and as JSON
(``summaryJson``). A NaN figure stays NaN in the list and JSON (null) and is left out of the flat properties.

The write itself is :func:`neurflow.graph.study_records.write_validation_study` (called by the CLI): this module
only builds plain values.
"""

from __future__ import annotations

import math
import re
import uuid
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from neurflow.experiments.validation.result import StudyResult
from neurflow.format import strict_json

SUMMARY_PREFIX = "summary"


def neurflow_version() -> str:
    try:
        return version("neurflow")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "unknown"


def summary_property(name: str) -> str:
    """The flat property of summary figure ``name``: ``summary`` + its words in camelCase.

    >>> summary_property("mean_abs_r/_blocks.15"), summary_property("overlap k=30")
    ('summaryMeanAbsRBlocks15', 'summaryOverlapK30')
    """
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]
    return SUMMARY_PREFIX + "".join(w[:1].upper() + w[1:] for w in words)


def _number(value: Any) -> float:
    """A summary figure as a float (bools and ints too); anything else is a bug of the study."""
    if isinstance(value, bool | int | float):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return float(value.item())
    raise TypeError(f"a summary figure must be a number, not {type(value).__name__}: {value!r}")


def validation_properties(
    result: StudyResult,
    ablation: str | None,
    csv_path: str | Path | None = None,
    png_path: str | Path | None = None,
    study_id: str | None = None,
) -> dict[str, Any]:
    """The ValidationStudy node's properties (``createdAt`` and ``modelKey`` are set by the write, from the
    database's clock and the circuit's node).

    ``ablation``: how knocked-out neurons were set (``zero`` or ``mean``; None for studies that knock nothing
    out), also added to the parameters when the study did not record it; file paths are stored absolute.
    """
    names = list(result.summary)
    values = [_number(result.summary[name]) for name in names]
    parameters = ({"ablation": ablation} if ablation else {}) | dict(result.parameters)
    props: dict[str, Any] = {
        "id": study_id or uuid.uuid4().hex,
        "study": result.study,
        "circuitId": result.circuit_id,
        "modelName": result.model_key.split("@")[0],
        "classIndex": result.class_index,
        "className": result.class_name,
        "layers": list(result.layers),
        "ablation": ablation,
        "seed": parameters.get("seed"),
        "rows": len(result.rows),
        "parametersJson": strict_json(parameters, sort_keys=True),
        "summaryNames": names,
        "summaryValues": values,
        "summaryJson": strict_json(dict(zip(names, values, strict=True))),
        "csvPath": str(Path(csv_path).resolve()) if csv_path is not None else None,
        "pngPath": str(Path(png_path).resolve()) if png_path is not None else None,
        "neurflowVersion": neurflow_version(),
    }
    for name, value in zip(names, values, strict=True):
        key = summary_property(name)
        # Two names that read the same in camelCase keep the first; every figure is in the lists anyway.
        if key != SUMMARY_PREFIX and key not in props and not math.isnan(value):
            props[key] = value
    return props
