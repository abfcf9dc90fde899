"""Neo4j reads and writes of the experiments: circuits, groups and core neurons in; experiments out.

Reads (read transactions) follow the store's graph model (docs/graph-model.md): complete circuits only,
``(:Circuit)-[:HAS_GROUP]->(:NeuronGroup)-[:HAS_MEMBER]->(:Neuron {layer, channel})``,
``(:Circuit)-[:HAS_CORE_NEURON]->(:Neuron)``, ``(:Circuit)-[:HAS_IMAGE]->(:Image {path, label})``.

Writes (one managed write transaction each)::

    (:MaskingExperiment {id, createdAt, mode, neurons, accuracyBefore, accuracyAfter, ...})
        -[:OF_MODEL]->(:Model), -[:FOR_CLASS]->(:Class), -[:ON_CIRCUIT]->(:Circuit),
        -[:MASKED]->(:NeuronGroup) (groups given by id) or -[:MASKED]->(:Neuron) (neurons given by key)
    (:FidelityStudy {id, createdAt, draws, seed, csvPath, pngPath, ...})
        -[:OF_MODEL]->(:Model), -[:FOR_CLASS]->(:Class), -[:ON_CIRCUIT]->(:Circuit),
        -[:HAS_RESULT]->(:FidelityResult {classIndex, layer, scope, mode, coreRelative, ...})-[:AT_LAYER]->(:Layer)

Nested results (per draw, per image) are kept as JSON text in ``resultJson``: Neo4j properties cannot be maps.
"""

from __future__ import annotations

import difflib
import json
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import neo4j

from neurflow.circuit import ClassInfo
from neurflow.engine.models import LoadedModel
from neurflow.errors import NeurflowError
from neurflow.experiments.masking import Channels, FidelityRow, MaskingResult, summarise_fidelity


class ExperimentError(NeurflowError, ValueError):
    """A circuit, group or neuron the experiment cannot use; the message says what can."""


READ = neo4j.RoutingControl.READ


def model_key_of(loaded: LoadedModel) -> str:
    """The Model node key of a loaded model: ``name@weightsId`` (as the store writes it)."""
    return f"{loaded.name}@{loaded.weights_id}"


def _neurflow_version() -> str:
    try:
        return version("neurflow")
    except PackageNotFoundError:  # pragma: no cover - running from a plain checkout
        return "unknown"


def _clean(value: float) -> float | None:
    """NaN is not a useful graph property: store null instead."""
    return None if isinstance(value, float) and math.isnan(value) else value


# --------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class CircuitRef:
    id: str
    model_key: str
    class_index: int
    class_name: str
    layers: list[str]
    folder: str | None
    created: str | None
    params: str | None


@dataclass(frozen=True)
class GroupRef:
    key: str
    group_id: str
    layer: str
    depth: int
    channels: list[int]

    @property
    def neurons(self) -> Channels:
        return {self.layer: list(self.channels)}


_CIRCUIT_FIELDS = """
RETURN c.id AS id, c.modelKey AS modelKey, c.classIndex AS classIndex, c.className AS className,
       c.layers AS layers, c.folder AS folder, toString(c.createdAt) AS created, c.paramsJson AS params,
       c.complete AS complete
"""


def _circuit(record: Any) -> CircuitRef:
    return CircuitRef(record["id"], record["modelKey"], record["classIndex"], record["className"],
                      list(record["layers"] or []), record["folder"], record["created"], record["params"])


def circuit_by_id(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> CircuitRef:
    """A complete circuit by id (an ExperimentError when it is missing or incomplete)."""
    records, _, _ = driver.execute_query(
        "MATCH (c:Circuit {id: $id})" + _CIRCUIT_FIELDS, id=circuit_id, database_=database, routing_=READ,
    )
    if not records:
        raise ExperimentError(f"no circuit {circuit_id!r} in the graph")
    if not records[0]["complete"]:
        raise ExperimentError(f"circuit {circuit_id} is incomplete (its ingestion has not finished)")
    return _circuit(records[0])


def find_circuit(driver: neo4j.Driver, model_key: str, target: ClassInfo, circuit_id: str | None = None,
                 database: str | None = None) -> CircuitRef:
    """The complete circuit ``circuit_id``, or the newest complete circuit of the model and class.

    Errors name what exists instead: other circuits of the class, or the classes that have circuits.
    """
    if circuit_id:
        ref = circuit_by_id(driver, circuit_id, database)
        if ref.model_key != model_key or ref.class_index != target.index:
            raise ExperimentError(
                f"circuit {circuit_id} is the circuit of {ref.class_name!r} ({ref.model_key}), "
                f"not of {target.name!r} ({model_key})"
            )
        return ref
    records, _, _ = driver.execute_query(
        "MATCH (c:Circuit {complete: true}) WHERE c.modelKey = $model AND c.classIndex = $index"
        + _CIRCUIT_FIELDS + " ORDER BY c.createdAt DESC, c.ingestedAt DESC, c.id",
        model=model_key, index=target.index, database_=database, routing_=READ,
    )
    if records:
        return _circuit(records[0])
    others, _, _ = driver.execute_query(
        """
        MATCH (c:Circuit {complete: true})
        WHERE c.modelKey = $model
        RETURN DISTINCT c.className AS name ORDER BY name LIMIT 30
        """,
        model=model_key, database_=database, routing_=READ,
    )
    models, _, _ = driver.execute_query(
        "MATCH (c:Circuit {complete: true}) WHERE c.classIndex = $index RETURN DISTINCT c.modelKey AS key",
        index=target.index, database_=database, routing_=READ,
    )
    hint = ""
    if others:
        hint += f" Classes with circuits of {model_key}: {', '.join(r['name'] for r in others)}."
    if models:
        hint += f" {target.name!r} has circuits of: {', '.join(r['key'] for r in models)} (other weights?)."
    if not hint:
        hint = " Build one with `neurflow build` and ingest it."
    raise ExperimentError(f"no complete circuit of {target.name!r} ({target.index}) for {model_key}.{hint}")


def circuit_groups(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> list[GroupRef]:
    """The neuron groups of a circuit with their member neurons, logit layer first."""
    records, _, _ = driver.execute_query(
        """
        MATCH (c:Circuit {id: $id})-[:HAS_GROUP]->(g:NeuronGroup)
        OPTIONAL MATCH (g)-[:HAS_MEMBER]->(n:Neuron)
        WITH g, n ORDER BY n.channel
        RETURN g.key AS key, g.groupId AS groupId, g.layer AS layer, g.depth AS depth,
               collect(n.channel) AS channels
        ORDER BY depth, groupId
        """,
        id=circuit_id, database_=database, routing_=READ,
    )
    return [GroupRef(r["key"], r["groupId"], r["layer"], r["depth"], [int(c) for c in r["channels"]])
            for r in records]


def resolve_groups(groups: Sequence[GroupRef], wanted: Sequence[str]) -> list[GroupRef]:
    """Groups by group id (``_blocks.15/g1``) or full key (``<circuit id>|_blocks.15/g1``)."""
    by_name = {g.group_id: g for g in groups} | {g.key: g for g in groups}
    chosen, unknown = [], []
    for name in wanted:
        group = by_name.get(name.strip())
        if group is None:
            unknown.append(name)
        elif group not in chosen:
            chosen.append(group)
    if unknown:
        ids = [g.group_id for g in groups]
        close = [c for u in unknown for c in difflib.get_close_matches(u, ids, n=3)]
        raise ExperimentError(
            f"unknown group(s) {', '.join(map(repr, unknown))}."
            + (f" Closest: {', '.join(dict.fromkeys(close))}." if close else "")
            + f" The circuit's groups are: {', '.join(ids) or 'none'}"
        )
    return chosen


def core_neurons(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> Channels:
    """The circuit's core neurons per layer, logit layer first."""
    records, _, _ = driver.execute_query(
        """
        MATCH (c:Circuit {id: $id})-[r:HAS_CORE_NEURON]->(n:Neuron)
        WITH r.depth AS depth, n.layer AS layer, n.channel AS channel ORDER BY depth, channel
        RETURN depth, layer, collect(channel) AS channels ORDER BY depth
        """,
        id=circuit_id, database_=database, routing_=READ,
    )
    return {r["layer"]: [int(c) for c in r["channels"]] for r in records}


def circuit_images(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> list[tuple[str, str | None]]:
    """(path, folder label) of the circuit's images D_c."""
    records, _, _ = driver.execute_query(
        """
        MATCH (c:Circuit {id: $id})-[:HAS_IMAGE]->(i:Image)
        RETURN i.path AS path, i.label AS label ORDER BY path
        """,
        id=circuit_id, database_=database, routing_=READ,
    )
    return [(r["path"], r["label"]) for r in records]


# --------------------------------------------------------------------------- writes

_MERGE_CONTEXT = """
MERGE (m:Model {key: $model.key}) ON CREATE SET m += $model
MERGE (cl:Class {index: $target.index}) ON CREATE SET cl += $target
"""

_WRITE_MASKING = _MERGE_CONTEXT + """
CREATE (e:MaskingExperiment) SET e = $props, e.createdAt = datetime()
CREATE (e)-[:OF_MODEL]->(m)
CREATE (e)-[:FOR_CLASS]->(cl)
WITH e
OPTIONAL MATCH (c:Circuit {id: $circuitId})
FOREACH (_ IN CASE WHEN c IS NULL THEN [] ELSE [1] END | CREATE (e)-[:ON_CIRCUIT]->(c))
WITH DISTINCT e
UNWIND $groups AS gkey
MATCH (g:NeuronGroup {key: gkey})
CREATE (e)-[:MASKED]->(g)
RETURN count(g) AS linked
"""

_MASK_NEURONS = """
MATCH (e:MaskingExperiment {id: $id})
MATCH (m:Model {key: $modelKey})
UNWIND $neurons AS r
MERGE (l:Layer {key: r.layerKey}) ON CREATE SET l.model = $modelKey, l.name = r.layer
MERGE (m)-[:HAS_LAYER]->(l)
MERGE (n:Neuron {key: r.key}) ON CREATE SET n.model = $modelKey, n.layer = r.layer, n.channel = r.channel
MERGE (l)-[:HAS_NEURON]->(n)
CREATE (e)-[:MASKED]->(n)
RETURN count(n) AS linked
"""


def _context(loaded_name: str, weights_id: str, target: ClassInfo) -> dict[str, Any]:
    key = f"{loaded_name}@{weights_id}"
    return {
        "model": {"key": key, "name": loaded_name, "weightsId": weights_id},
        "target": {"index": target.index, "name": target.name, "wnid": target.wnid},
    }


def masking_properties(result: MaskingResult, circuit: CircuitRef | None, groups: Sequence[GroupRef],
                       images_source: str) -> dict[str, Any]:
    """The MaskingExperiment node's properties (flat: numbers, strings and lists of them)."""
    e, r = result.effect, result.random
    return {
        "id": uuid.uuid4().hex,
        "mode": result.mode,
        "modelKey": f"{result.model.name}@{result.model.weights_id}",
        "modelName": result.model.name,
        "weightsId": result.model.weights_id,
        "classIndex": result.target.index,
        "className": result.target.name,
        "circuitId": circuit.id if circuit else None,
        "groupIds": [g.group_id for g in groups],
        "layers": list(result.channels),
        "neurons": [f"{layer}:{c}" for layer, chosen in result.channels.items() for c in chosen],
        "neuronCount": e.neurons,
        "images": e.images,
        "imagesSource": images_source,
        "accuracyBefore": e.accuracy_before,
        "accuracyAfter": e.accuracy_after,
        "meanProbBefore": e.mean_prob_before,
        "meanProbAfter": e.mean_prob_after,
        "meanProbChange": e.mean_prob_change,
        "meanLogitChange": e.mean_logit_change,
        "changed": e.changed,
        "changedToJson": json.dumps(e.changed_to),
        "randomDraws": r.draws,
        "seed": r.seed,
        "randomAccuracyAfterMean": _clean(r.accuracy_after_mean),
        "randomAccuracyAfterStd": _clean(r.accuracy_after_std),
        "randomProbChangeMean": _clean(r.prob_change_mean),
        "randomProbChangeStd": _clean(r.prob_change_std),
        "randomLogitChangeMean": _clean(r.logit_change_mean),
        "randomLogitChangeStd": _clean(r.logit_change_std),
        "topImages": [i.path for i in result.images[:5]],
        "topImageDrops": [i.drop for i in result.images[:5]],
        "resultJson": json.dumps(result.to_dict(), allow_nan=True),
        "neurflowVersion": _neurflow_version(),
    }


def write_masking_experiment(
    driver: neo4j.Driver,
    result: MaskingResult,
    circuit: CircuitRef | None = None,
    groups: Sequence[GroupRef] = (),
    images_source: str = "circuit",
    database: str | None = None,
) -> str:
    """Writes a MaskingExperiment linked to its model, class, circuit and the groups (or, without groups,
    the neurons) it masked; returns its id."""
    props = masking_properties(result, circuit, groups, images_source)
    context = _context(result.model.name, result.model.weights_id, result.target)
    neurons = [
        {"key": f"{props['modelKey']}|{layer}:{c}", "layer": layer, "channel": c,
         "layerKey": f"{props['modelKey']}|{layer}"}
        for layer, chosen in result.channels.items() for c in chosen
    ]

    def work(tx: neo4j.ManagedTransaction) -> None:
        record = tx.run(_WRITE_MASKING, props=props, circuitId=props["circuitId"],
                        groups=[g.key for g in groups], **context).single()
        linked = record["linked"] if record else 0
        if groups and linked != len(groups):
            raise ExperimentError(f"only {linked} of the {len(groups)} masked groups are in the graph")
        if not groups:
            tx.run(_MASK_NEURONS, id=props["id"], modelKey=props["modelKey"], neurons=neurons).consume()

    with driver.session(database=database) as session:
        session.execute_write(work)
    return str(props["id"])


_WRITE_FIDELITY = """
MERGE (m:Model {key: $model.key}) ON CREATE SET m += $model
CREATE (s:FidelityStudy) SET s = $props, s.createdAt = datetime()
CREATE (s)-[:OF_MODEL]->(m)
WITH s
UNWIND $classes AS t
MERGE (cl:Class {index: t.index}) ON CREATE SET cl += t
CREATE (s)-[:FOR_CLASS]->(cl)
WITH DISTINCT s
UNWIND $circuits AS cid
MATCH (c:Circuit {id: cid})
CREATE (s)-[:ON_CIRCUIT]->(c)
"""

_WRITE_FIDELITY_ROWS = """
MATCH (s:FidelityStudy {id: $id})
UNWIND $rows AS r
CREATE (x:FidelityResult) SET x = r
CREATE (s)-[:HAS_RESULT]->(x)
WITH x
OPTIONAL MATCH (l:Layer {key: x.modelKey + '|' + x.layer})
FOREACH (_ IN CASE WHEN l IS NULL THEN [] ELSE [1] END | CREATE (x)-[:AT_LAYER]->(l))
"""


def fidelity_properties(rows: Sequence[FidelityRow], loaded_name: str, weights_id: str, draws: int, seed: int,
                        csv_path: str | None, png_path: str | None) -> dict[str, Any]:
    summary = summarise_fidelity(rows)
    props: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "modelKey": f"{loaded_name}@{weights_id}",
        "modelName": loaded_name,
        "weightsId": weights_id,
        "classes": list(dict.fromkeys(r.class_name for r in rows)),
        "classIndices": list(dict.fromkeys(r.class_index for r in rows)),
        "layers": list(dict.fromkeys(r.layer for r in rows)),
        "randomDraws": draws,
        "seed": seed,
        "csvPath": csv_path,
        "pngPath": png_path,
        "summaryJson": json.dumps([s.__dict__ for s in summary], allow_nan=True),
        "neurflowVersion": _neurflow_version(),
    }
    # One number per panel: relative accuracy averaged over layers and classes (core and random).
    for scope in ("single", "cumulative"):
        for mode in ("mask", "retain"):
            chosen = [s for s in summary if s.scope == scope and s.mode == mode]
            core = [s.core_relative for s in chosen if not math.isnan(s.core_relative)]
            rand = [s.random_relative for s in chosen if not math.isnan(s.random_relative)]
            name = f"{scope}{mode.capitalize()}"
            props[f"{name}Core"] = sum(core) / len(core) if core else None
            props[f"{name}Random"] = sum(rand) / len(rand) if rand else None
    return props


def write_fidelity_study(
    driver: neo4j.Driver,
    rows: Sequence[FidelityRow],
    circuits: Sequence[CircuitRef],
    loaded_name: str,
    weights_id: str,
    draws: int,
    seed: int,
    csv_path: str | None = None,
    png_path: str | None = None,
    database: str | None = None,
) -> str:
    """Writes a FidelityStudy with one FidelityResult per class, layer, scope and mode; returns its id."""
    props = fidelity_properties(rows, loaded_name, weights_id, draws, seed, csv_path, png_path)
    circuit_of = {c.class_index: c.id for c in circuits}
    result_rows = []
    for row in rows:
        data = {k: _clean(v) for k, v in row.to_dict().items()}
        result_rows.append({
            "studyId": props["id"], "modelKey": props["modelKey"], "circuitId": circuit_of.get(row.class_index),
            "classIndex": row.class_index, "className": row.class_name, "layer": row.layer, "depth": row.depth,
            "scope": row.scope, "mode": row.mode, "neurons": row.neurons, "images": row.images,
            "baseAccuracy": data["base_accuracy"], "coreAccuracy": data["core_accuracy"],
            "randomAccuracyMean": data["random_accuracy_mean"], "randomAccuracyStd": data["random_accuracy_std"],
            "coreRelative": data["core_relative"], "randomRelative": data["random_relative"],
            "randomRelativeStd": data["random_relative_std"], "coreProb": data["core_prob"],
            "randomProbMean": data["random_prob_mean"],
        })
    classes = [{"index": c.class_index, "name": c.class_name} for c in circuits]
    model = _context(loaded_name, weights_id, ClassInfo(0, ""))["model"]

    def work(tx: neo4j.ManagedTransaction) -> None:
        tx.run(_WRITE_FIDELITY, props=props, model=model, classes=classes,
               circuits=[c.id for c in circuits]).consume()
        tx.run(_WRITE_FIDELITY_ROWS, id=props["id"], rows=result_rows).consume()

    with driver.session(database=database) as session:
        session.execute_write(work)
    return str(props["id"])
