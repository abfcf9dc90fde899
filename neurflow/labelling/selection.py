"""Which circuit a labelling run works on, and the folder its patch images come from.

From the graph (the usual way): the circuit of the class by the one rule of ``neurflow.graph.circuits`` (the
newest complete circuit, or the one named by id), read from the folder recorded at ingestion; the command
prints which circuit it labels. From folders
(``--circuit-dir``, a circuit folder or a folder of circuits): the one circuit there of the model and class;
it must still be in the graph unless the run writes nothing (no driver).

May import: ``neurflow.format``, ``neurflow.graph`` and ``neurflow.labelling.errors``. Never torch or click.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from neurflow.circuit import Circuit
from neurflow.format import find_circuits, load_circuit
from neurflow.graph.circuits import CircuitRef, find_circuit
from neurflow.graph.labels import stored_group_count
from neurflow.labelling.errors import LabellingError


def _of_model(circuit: Circuit, model: str) -> bool:
    """``model`` names the circuit's model: its name, or its key ``name@weightsId``."""
    return model in (circuit.model.name, circuit.model.key)


def circuit_from_folders(root: str | Path, model: str, class_index: int,
                         circuit_id: str | None = None) -> tuple[Circuit, Path]:
    """The one circuit of ``model`` and the class under ``root`` (a circuit folder or a folder of circuits)."""
    found = []
    for folder in find_circuits(root):
        circuit = load_circuit(folder)
        if _of_model(circuit, model) and circuit.target.index == class_index and circuit_id in (None, circuit.id):
            found.append((circuit, folder))
    if not found:
        raise LabellingError(f"no circuit of {model} for class {class_index} under {root}")
    if len(found) > 1:
        listing = "\n  ".join(f"{c.id}  {f}" for c, f in found)
        raise LabellingError(f"{len(found)} circuits of {model} for class {class_index}; "
                             f"choose one with --circuit-id:\n  {listing}")
    return found[0]


def _graph_circuit(driver: Any, model: str, class_index: int, circuit_id: str | None, database: str | None,
                   class_name: str | None) -> CircuitRef:
    return find_circuit(driver, model, class_index, circuit_id, database, class_name)


def circuit_from_graph(driver: Any, model: str, class_index: int, circuit_id: str | None = None,
                       database: str | None = None, class_name: str | None = None) -> tuple[Circuit, Path]:
    """The class's circuit in the graph (see the module), loaded from the folder it was ingested from."""
    ref = _graph_circuit(driver, model, class_index, circuit_id, database, class_name)
    if not ref.folder or not (Path(ref.folder) / "circuit.json").is_file():
        raise LabellingError(
            f"circuit {ref.id} was ingested from {ref.folder!r}, which holds no circuit.json any more; "
            "give its folder with --circuit-dir"
        )
    circuit = load_circuit(ref.folder)
    if circuit.id != ref.id:
        raise LabellingError(f"{ref.folder} now holds circuit {circuit.id}, not {ref.id}; "
                             "give the right folder with --circuit-dir")
    return circuit, Path(ref.folder)


def choose_circuit(driver: Any, model: str, class_index: int, circuit_id: str | None = None,
                   circuit_dir: str | Path | None = None, database: str | None = None,
                   class_name: str | None = None, graph: str = "the graph") -> tuple[Circuit, Path]:
    """The circuit to label and its folder: from ``circuit_dir`` when given (checked to be in the graph when
    ``driver`` is not None), else from the graph. ``graph`` describes the graph in messages."""
    if circuit_dir is None:
        if driver is None:
            raise ValueError("reading the circuit from the graph needs a driver")
        return circuit_from_graph(driver, model, class_index, circuit_id, database, class_name)
    circuit, folder = circuit_from_folders(circuit_dir, model, class_index, circuit_id)
    if driver is not None and stored_group_count(driver, circuit.id, database) == 0:
        raise LabellingError(f"circuit {circuit.id} ({folder}) is not in the graph ({graph}); ingest it first")
    return circuit, folder
