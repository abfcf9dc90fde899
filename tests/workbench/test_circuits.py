"""The one rule for "which circuit" (neurflow.workbench.locate): from folders (the one circuit of the class
there, never a guess between several) or from the graph (the newest complete circuit, or the one named), and
one error type whose line says what to pass."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import Any

import neo4j
import pytest

from neurflow.circuit import Circuit
from neurflow.errors import CircuitLookupError
from neurflow.format import save_circuit
from neurflow.workbench.client import GraphClient
from neurflow.workbench.locate import locate_circuit
from tests.labelling.support import TINY_MODEL, ingest, tiny_circuit


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[Circuit, Path]:
    return tiny_circuit(tmp_path / "circuits")


def other_params(circuit: Circuit, folder: Path) -> tuple[Circuit, Path]:
    """The same model and class with other parameters: another circuit (another id), saved beside ``folder``."""
    other = dataclasses.replace(circuit, params={"tiny": 2})
    return other, save_circuit(other, folder.parent / "other")


def test_from_folders(tiny: tuple[Circuit, Path]) -> None:
    circuit, folder = tiny
    for model in (TINY_MODEL, f"{TINY_MODEL}@tiny-weights", None):
        for cls in ("Samoyed", 258, "n02111889", None):
            found = locate_circuit(folder=folder.parent, cls=cls, model=model)
            assert found.circuit.id == circuit.id and found.folder == folder and found.entry is None
    with pytest.raises(CircuitLookupError, match=r"no circuit under .* fits class 'Samoyed', model resnet50\. There: "):
        locate_circuit(folder=folder.parent, cls="Samoyed", model="resnet50")
    with pytest.raises(CircuitLookupError, match="unknown class 'Samoyd'. Closest: Samoyed"):
        locate_circuit(folder=folder.parent, cls="Samoyd")
    other, _ = other_params(circuit, folder)
    with pytest.raises(CircuitLookupError, match="2 circuits under .* fit: .*Pass the class .* or the circuit id"):
        locate_circuit(folder=folder.parent, cls="Samoyed", model=TINY_MODEL)
    assert locate_circuit(folder=folder.parent, circuit_id=other.id).circuit.id == other.id
    with pytest.raises(CircuitLookupError, match="give its folder .* or a graph"):
        locate_circuit(cls="Samoyed")


@pytest.mark.neo4j
def test_from_the_graph(clean_graph: neo4j.Driver, neo4j_settings: Any, tiny: tuple[Circuit, Path]) -> None:
    client = GraphClient(neo4j_settings, clean_graph)
    circuit, folder = tiny
    with pytest.raises(CircuitLookupError, match=rf"circuit {circuit.id} \(.*\) is not in the graph .*ingest it "
                                                 rf"first \(neurflow-ingest --from "):
        locate_circuit(client, folder=folder, cls="Samoyed")
    with pytest.raises(CircuitLookupError, match="no complete circuit of"):
        locate_circuit(client, cls="Samoyed", model=TINY_MODEL)

    ingest(clean_graph, neo4j_settings.database, circuit, folder)
    found = locate_circuit(client, cls="Samoyed", model=f"{TINY_MODEL}@tiny-weights")
    assert found.circuit.id == circuit.id and found.folder == folder and found.entry is not None
    assert found.entry.id == circuit.id
    assert locate_circuit(client, folder=folder, model=TINY_MODEL).entry is not None
    assert locate_circuit(client, circuit_id=circuit.id).circuit.id == circuit.id
    with pytest.raises(CircuitLookupError, match="not of 'golden retriever'"):
        locate_circuit(client, cls="golden retriever", circuit_id=circuit.id)
    with pytest.raises(CircuitLookupError, match=f"circuit {circuit.id} is a circuit of .*, not of resnet50"):
        locate_circuit(client, circuit_id=circuit.id, model="resnet50")

    other, other_folder = other_params(circuit, folder)
    ingest(clean_graph, neo4j_settings.database, other, other_folder)
    # the one rule: the newest complete circuit, the same as every other command
    assert locate_circuit(client, cls="Samoyed", model=TINY_MODEL).circuit.id == other.id
    assert locate_circuit(client, cls="Samoyed", circuit_id=circuit.id).circuit.id == circuit.id

    shutil.move(folder, folder.parent / "moved")
    with pytest.raises(CircuitLookupError, match="holds no circuit.json any more: pass its folder now with "
                                                 "--circuit-dir"):
        locate_circuit(client, cls="Samoyed", circuit_id=circuit.id)
    assert locate_circuit(client, cls="Samoyed", circuit_id=circuit.id,
                          folder=folder.parent / "moved").circuit.id == circuit.id
    shutil.copytree(other_folder, folder)  # the recorded folder now holds the other circuit
    with pytest.raises(CircuitLookupError, match=f"now holds circuit {other.id}, not {circuit.id}"):
        locate_circuit(client, cls="Samoyed", circuit_id=circuit.id)
