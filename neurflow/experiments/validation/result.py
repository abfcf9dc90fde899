"""What every validation study returns: CSV rows, summary figures and the parameters that produced them."""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurflow.circuit import Circuit


@dataclass
class StudyResult:
    """One run of a validation study on one circuit.

    ``study``: its name (``correlation``, ``optimality``, ``k-sensitivity``, ``crops``); ``layers``: the upper
    layers studied (targets a are core neurons of these layers, S is drawn from the layer below);
    ``parameters``: every setting that decides the figures (seed included), JSON-able; ``summary``: the
    headline figures (flat, name -> number), the ones printed, stored on the graph's ValidationStudy node and
    quoted in docs/validation.md; ``columns``/``rows``: the CSV, one row per measurement.
    """

    study: str
    circuit_id: str
    model_key: str
    class_index: int
    class_name: str
    layers: list[str]
    parameters: dict[str, Any]
    summary: dict[str, float]
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of_circuit(cls, circuit: Circuit, study: str, layers: list[str], parameters: dict[str, Any],
                   summary: dict[str, float], columns: list[str], rows: list[dict[str, Any]]) -> StudyResult:
        """A result of ``study`` on ``circuit`` (its id, model key and class filled in)."""
        return cls(study, circuit.id, circuit.model.key, circuit.target.index, circuit.target.name, layers,
                   parameters, summary, columns, rows)

    def table(self, columns: Sequence[str] | None = None, limit: int = 40) -> str:
        """A plain-text table of the first ``limit`` rows (all columns unless named)."""
        names = list(columns or self.columns)
        shown = [[_cell(row.get(name)) for name in names] for row in self.rows[:limit]]
        widths = [max([len(name)] + [len(r[i]) for r in shown]) for i, name in enumerate(names)]
        lines = ["  ".join(name.ljust(w) for name, w in zip(names, widths, strict=True))]
        lines += ["  ".join(value.ljust(w) for value, w in zip(r, widths, strict=True)) for r in shown]
        if len(self.rows) > limit:
            lines.append(f"... {len(self.rows) - limit} more rows in the CSV")
        return "\n".join(lines)

    def summary_lines(self) -> list[str]:
        return [f"{name}: {_cell(value)}" for name, value in self.summary.items()]


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def write_csv(result: StudyResult, path: str | Path) -> Path:
    """The study's rows as CSV (columns in ``result.columns`` order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=result.columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(result.rows)
    return path
