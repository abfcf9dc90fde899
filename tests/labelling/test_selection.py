"""Which circuit `neurflow label` works on: from the graph (the one rule of neurflow.graph.circuits) or from
folders (the one circuit of the class there, never a guess between several), and its images' folder."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import neo4j
import pytest

from neurflow.circuit import Circuit
from neurflow.format import save_circuit
from neurflow.graph.circuits import CircuitNotFoundError
from neurflow.labelling.errors import LabellingError
from neurflow.labelling.selection import choose_circuit, circuit_from_folders
from tests.labelling.support import TINY_MODEL, ingest

SAMOYED = 258


def other_params(circuit: Circuit, folder: Path) -> tuple[Circuit, Path]:
    """The same model and class with other parameters: another circuit (another id), saved beside ``folder``."""
    other = dataclasses.replace(circuit, params={"tiny": 2})
    return other, save_circuit(other, folder.parent / "other")


def test_from_folders(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    for model in (TINY_MODEL, f"{TINY_MODEL}@tiny-weights"):
        found, where = circuit_from_folders(folder.parent, model, SAMOYED)
        assert found.id == circuit.id and where == folder
    with pytest.raises(LabellingError, match=f"no circuit of resnet50 for class {SAMOYED} under"):
        circuit_from_folders(folder.parent, "resnet50", SAMOYED)
    other, _ = other_params(circuit, folder)
    with pytest.raises(LabellingError, match="2 circuits of tiny-test-net for class 258; choose one with --circuit-id"):
        circuit_from_folders(folder.parent, TINY_MODEL, SAMOYED)
    assert circuit_from_folders(folder.parent, TINY_MODEL, SAMOYED, other.id)[0].id == other.id
    # Without a driver (a dry run) the folder's circuit need not be in the graph.
    assert choose_circuit(None, TINY_MODEL, SAMOYED, circuit.id, folder)[0].id == circuit.id


@pytest.mark.neo4j
def test_from_the_graph(clean_graph: neo4j.Driver, neo4j_settings: Any, tiny: tuple[Circuit, Path]) -> None:
    database = neo4j_settings.database
    circuit, folder = tiny
    with pytest.raises(LabellingError, match=rf"circuit {circuit.id} \(.*\) is not in the graph \(here\); ingest"):
        choose_circuit(clean_graph, TINY_MODEL, SAMOYED, circuit_dir=folder, database=database, graph="here")
    with pytest.raises(CircuitNotFoundError, match="no complete circuit of"):
        choose_circuit(clean_graph, TINY_MODEL, SAMOYED, database=database)

    ingest(clean_graph, database, circuit, folder)
    found, where = choose_circuit(clean_graph, f"{TINY_MODEL}@tiny-weights", SAMOYED, database=database)
    assert found.id == circuit.id and where == folder
    assert choose_circuit(clean_graph, TINY_MODEL, SAMOYED, circuit_dir=folder, database=database)[0].id == circuit.id
    with pytest.raises(CircuitNotFoundError, match="not of '207'"):
        choose_circuit(clean_graph, TINY_MODEL, 207, circuit.id, database=database)

    other, other_folder = other_params(circuit, folder)
    ingest(clean_graph, database, other, other_folder)
    # the one rule: the newest complete circuit, the same as every other command
    assert choose_circuit(clean_graph, TINY_MODEL, SAMOYED, database=database)[0].id == other.id
    assert choose_circuit(clean_graph, TINY_MODEL, SAMOYED, other.id, database=database)[0].id == other.id

    shutil.move(folder, folder.parent / "moved")
    with pytest.raises(LabellingError, match="holds no circuit.json any more; give its folder with --circuit-dir"):
        choose_circuit(clean_graph, TINY_MODEL, SAMOYED, circuit.id, database=database)
    shutil.copytree(other_folder, folder)  # the recorded folder now holds the other circuit
    with pytest.raises(LabellingError, match=f"now holds circuit {other.id}, not {circuit.id}"):
        choose_circuit(clean_graph, TINY_MODEL, SAMOYED, circuit.id, database=database)
