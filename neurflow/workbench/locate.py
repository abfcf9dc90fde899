"""Which circuit: the one rule every command, study and notebook uses to find a circuit and its folder.

- With a folder (``folder=``, ``--circuit-dir``: a circuit folder or a folder of circuits): the one circuit
  there of the class, model and id asked for (each optional). When a graph client is given, the circuit must
  also be in the graph (its entry comes with it).
- Without: the graph's circuit of the class for the model, the newest complete one or the one ``circuit_id``
  names (:func:`neurflow.graph.circuits.find_circuit`), read from the folder it was ingested from.

Every failure is a :class:`~neurflow.errors.CircuitLookupError` whose one line says what to pass: no circuit
fits (it lists what exists), several fit, the folder moved or holds another circuit now, it is not in the graph.
A class is a name, an index or a wnid; a model is a name or a key ``name@weightsId``.

>>> from neurflow.workbench import connect
>>> from neurflow.workbench.locate import locate_circuit
>>> found = locate_circuit(connect(), cls="Samoyed", model="efficientnet-lite0")      # doctest: +SKIP
>>> found.circuit.id, found.folder, found.entry.ingested                               # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from neurflow.circuit import Circuit, ClassInfo
from neurflow.classes import imagenet_categories, resolve_class
from neurflow.errors import CircuitLookupError
from neurflow.format import find_circuits, load_circuit
from neurflow.graph.circuits import CircuitNotFoundError, CircuitRef, circuit_by_id, find_circuit
from neurflow.registry import ModelError
from neurflow.workbench.client import GraphClient


@dataclass(frozen=True)
class CircuitLocation:
    """A circuit found: the circuit, its folder and (when it was looked up in the graph) its graph entry."""

    circuit: Circuit
    folder: Path
    entry: CircuitRef | None


def class_of(cls: str | int) -> ClassInfo:
    """An ImageNet-1k class by name, index or wnid; CircuitLookupError naming the closest names otherwise."""
    try:
        return resolve_class(cls, imagenet_categories())
    except ModelError as error:
        raise CircuitLookupError(str(error)) from error


def _of_model(circuit: Circuit, model: str | None) -> bool:
    return model is None or model in (circuit.model.name, circuit.model.key)


def _describe(circuit: Circuit, folder: Path) -> str:
    return f"{circuit.id} ({circuit.target.name}, {circuit.model.name}) in {folder}"


def circuit_in_folder(folder: str | Path, cls: str | int | None = None, model: str | None = None,
                      circuit_id: str | None = None) -> tuple[Circuit, Path]:
    """The one circuit under ``folder`` of the class, model and id asked for (each None: any)."""
    target = class_of(cls) if cls is not None else None
    candidates = [(load_circuit(f), f) for f in find_circuits(folder)]
    if not candidates:
        raise CircuitLookupError(f"no circuit under {folder}: build one with `neurflow build`")
    fitting = [(c, f) for c, f in candidates
               if (target is None or c.target.index == target.index) and _of_model(c, model)
               and circuit_id in (None, c.id)]
    if len(fitting) == 1:
        return fitting[0]
    shown = "; ".join(_describe(c, f) for c, f in (fitting or candidates)[:8])
    if not fitting:
        asked = ", ".join(part for part in (target and f"class {target.name!r}", model and f"model {model}",
                                            circuit_id and f"id {circuit_id}") if part)
        raise CircuitLookupError(f"no circuit under {folder} fits {asked}. There: {shown}")
    raise CircuitLookupError(f"{len(fitting)} circuits under {folder} fit: {shown}. Pass the class (-c), the "
                             "model (-m) or the circuit id (--circuit-id) to choose one")


def ingested_circuit(entry: CircuitRef) -> tuple[Circuit, Path]:
    """A graph circuit read from the folder it was ingested from, checked to still be that circuit."""
    folder = Path(entry.folder) if entry.folder else None
    if folder is None or not (folder / "circuit.json").is_file():
        where = f"from {entry.folder}, which holds no circuit.json any more" if entry.folder else "with no folder"
        raise CircuitLookupError(f"circuit {entry.id} was ingested {where}: pass its folder now with "
                                 "--circuit-dir DIR (the circuit's folder, or a folder of circuits)")
    held = load_circuit(folder)
    if held.id != entry.id:
        raise CircuitLookupError(f"{folder} now holds circuit {held.id}, not {entry.id}: pass the folder of "
                                 f"{entry.id} with --circuit-dir DIR")
    return held, folder


def locate_circuit(client: GraphClient | None = None, *, cls: str | int | None = None, model: str | None = None,
                   circuit_id: str | None = None, folder: str | Path | None = None) -> CircuitLocation:
    """The circuit asked for, by the module's one rule; CircuitLookupError otherwise."""
    if folder is not None:
        circuit, where = circuit_in_folder(folder, cls, model, circuit_id)
        if client is None:
            return CircuitLocation(circuit, where, None)
        try:
            entry = circuit_by_id(client.driver, circuit.id, client.database)
        except CircuitNotFoundError as error:
            raise CircuitLookupError(f"circuit {circuit.id} ({where}) is not in the graph ({client.settings.describe()})"
                                     f": {error}; ingest it first (neurflow-ingest --from {where})") from error
        return CircuitLocation(circuit, where, entry)
    if client is None:
        raise CircuitLookupError("to find a circuit, give its folder (--circuit-dir) or a graph to look it up in")
    if cls is None and circuit_id is None:
        raise CircuitLookupError("give the class (-c CLASS) or the circuit id (--circuit-id) of the circuit")
    if cls is None:
        assert circuit_id is not None
        entry = circuit_by_id(client.driver, circuit_id, client.database)
        if not _model_matches(entry, model):
            raise CircuitLookupError(f"circuit {circuit_id} is a circuit of {entry.model_key}, not of {model}")
    else:
        target = class_of(cls)
        entry = find_circuit(client.driver, model, target.index, circuit_id, client.database, target.name)
    return CircuitLocation(*ingested_circuit(entry), entry)


def _model_matches(entry: CircuitRef, model: str | None) -> bool:
    return model is None or model in (entry.model_key, entry.model_key.split("@")[0])
