"""docs/notebooks/quickstart.ipynb runs from top to bottom against a real graph, as a user would run it: the
demo's two classes ingested, the connection from NEO4J_* (what `connect()` reads)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import neo4j
import pytest
from nbclient import NotebookClient

from neurflow.format import load_circuit
from neurflow.graph.connection import ConnectionSettings
from neurflow.graph.ingestion import write_circuit

NOTEBOOK = Path(__file__).parents[1] / "docs" / "notebooks" / "quickstart.ipynb"


@pytest.mark.neo4j
@pytest.mark.slow  # runs a kernel that loads the pretrained model, masks and recomputes core sets
def test_the_quickstart_notebook_runs(clean_graph: neo4j.Driver, neo4j_settings: ConnectionSettings,
                                      real_circuit_dirs: list[Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    folders = []
    for folder in real_circuit_dirs:  # copies: the notebook draws into the circuit's folder
        copy = shutil.copytree(folder, tmp_path / "circuits" / folder.name)
        write_circuit(clean_graph, load_circuit(copy), copy, database=neo4j_settings.database)
        folders.append(copy)
    for name, value in (("NEO4J_URI", neo4j_settings.uri), ("NEO4J_USER", neo4j_settings.user),
                        ("NEO4J_PASSWORD", neo4j_settings.password or ""),
                        ("NEO4J_DATABASE", neo4j_settings.database)):
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    tables = [o for o in outputs if "text/html" in o.get("data", {}) and "<table" in o["data"]["text/html"]]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(tables) >= 5 and len(pictures) == 3  # similarity, groups, mask, study, queries; circuit, 2 plots
    assert (folders[0] / "circuit-pruned-80.png").is_file()
    similar = next(o for o in tables if "weightedJaccard" in o["data"]["text/html"])
    assert "golden retriever" in similar["data"]["text/html"]
