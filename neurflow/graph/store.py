"""The Neo4j circuit store: graph model, schema and ingestion of :class:`~neurflow.circuit.Circuit` objects.

See docs/graph-model.md for the model. In short::

    (:Model)-[:HAS_LAYER]->(:Layer)-[:HAS_NEURON]->(:Neuron)            shared by every circuit of the model
    (:Circuit)-[:OF_MODEL]->(:Model), -[:FOR_CLASS]->(:Class), -[:HAS_LOGIT]->(:Neuron)
    (:Circuit)-[:HAS_CORE_NEURON]->(:Neuron), -[:HAS_IMAGE]->(:Image), -[:HAS_GROUP]->(:NeuronGroup)
    (:NeuronGroup)-[:HAS_SEMANTIC_GROUP]->(:SemanticGroup)-[:OF_NEURON]->(:Neuron)
    (:NeuronGroup)-[:HAS_MEMBER]->(:Neuron)
    (:Neuron)-[:CONTRIBUTES_TO {weight}]->(:SemanticGroup)              lower neuron -> upper semantic group
    (:NeuronGroup)-[:FLOWS_TO {weight, share, weightLabel}]->(:NeuronGroup)          lower group -> upper group
    (:NeuronGroup)-[:OVERLAPS {jaccard}]->(:NeuronGroup)                groups of other classes, same layer
    (:Patch)-[:EXEMPLIFIES {activation}]->(:SemanticGroup), (:Patch)-[:CROPPED_FROM]->(:Image)
    (:DataModel {name: 'neurflow', version})

Writes are batched ``UNWIND $rows ...`` statements in managed write transactions. A circuit is written as
``(:Circuit {complete: false})`` first, then its parts, and marked ``complete`` in a last transaction; queries
only look at complete circuits. A complete circuit is skipped unless ``force``; an incomplete one (an
ingestion that died) is deleted and written again, so counts end up as after one clean ingestion.

>>> from neurflow.graph.store import ensure_schema, write_circuit          # doctest: +SKIP
>>> ensure_schema(driver)                                              # doctest: +SKIP
>>> write_circuit(driver, load_circuit("circuits/0258-samoyed"), "circuits/0258-samoyed").status  # doctest: +SKIP
'written'
"""

from __future__ import annotations

import json
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, LiteralString, cast

import neo4j

from neurflow.analysis import GroupFlow, group_flow  # noqa: F401  (re-exported until the split)
from neurflow.circuit import Circuit, label_matches
from neurflow.errors import NeurflowError
from neurflow.format import thumbnail_uri

DATA_MODEL_NAME = "neurflow"
#: Version of the graph model; a graph written by another major version is refused.
DATA_MODEL_VERSION = "1.0"
DEFAULT_BATCH_ROWS = 5000
#: Pairs of neuron groups (same model and layer, different classes) at least this similar get an OVERLAPS edge.
OVERLAP_MIN_JACCARD = 0.2

Progress = Callable[[str, int, int], None]
"""``progress(step, rows_done, rows_total)`` after each batch."""


class StoreError(NeurflowError, RuntimeError):
    """Something the store cannot do; the message says what and why."""


class DataModelVersionError(StoreError):
    """The database holds a graph written by an incompatible version of the graph model."""


# --------------------------------------------------------------------------- schema

SCHEMA: tuple[str, ...] = (
    "CREATE CONSTRAINT data_model_name IF NOT EXISTS FOR (n:DataModel) REQUIRE n.name IS UNIQUE",
    "CREATE CONSTRAINT model_key IF NOT EXISTS FOR (n:Model) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT layer_key IF NOT EXISTS FOR (n:Layer) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT neuron_key IF NOT EXISTS FOR (n:Neuron) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT class_index IF NOT EXISTS FOR (n:Class) REQUIRE n.index IS UNIQUE",
    "CREATE CONSTRAINT circuit_id IF NOT EXISTS FOR (n:Circuit) REQUIRE n.id IS UNIQUE",
    "CREATE CONSTRAINT semantic_group_key IF NOT EXISTS FOR (n:SemanticGroup) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT neuron_group_key IF NOT EXISTS FOR (n:NeuronGroup) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT patch_key IF NOT EXISTS FOR (n:Patch) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT image_sha256 IF NOT EXISTS FOR (n:Image) REQUIRE n.sha256 IS UNIQUE",
    "CREATE INDEX semantic_group_circuit IF NOT EXISTS FOR (n:SemanticGroup) ON (n.circuitId)",
    "CREATE INDEX neuron_group_circuit IF NOT EXISTS FOR (n:NeuronGroup) ON (n.circuitId)",
    "CREATE INDEX circuit_complete IF NOT EXISTS FOR (n:Circuit) ON (n.complete)",
    "CREATE INDEX circuit_model IF NOT EXISTS FOR (n:Circuit) ON (n.modelKey)",
    "CREATE INDEX class_name IF NOT EXISTS FOR (n:Class) ON (n.name)",
    "CREATE INDEX class_wnid IF NOT EXISTS FOR (n:Class) ON (n.wnid)",
    "CREATE INDEX neuron_layer IF NOT EXISTS FOR (n:Neuron) ON (n.layer, n.channel)",
    # concept-reuse's group pairs: a range seek of the strong overlaps, not an expansion of every group's edges
    "CREATE INDEX overlaps_jaccard IF NOT EXISTS FOR ()-[o:OVERLAPS]-() ON (o.jaccard)",
)

def _cypher(text: str) -> LiteralString:
    """Cypher built from this module's constants (labels, types): never from user text."""
    return cast(LiteralString, text)


def _records(driver: neo4j.Driver, query: str, database: str | None, read: bool = False,
             **params: Any) -> list[neo4j.Record]:
    """Runs one statement in a managed transaction (read or write) and returns its records."""
    def work(tx: neo4j.ManagedTransaction) -> list[neo4j.Record]:
        return list(tx.run(_cypher(query), params))

    with driver.session(database=database, notifications_min_severity="OFF") as session:
        return session.execute_read(work) if read else session.execute_write(work)


_schema_ready: weakref.WeakKeyDictionary[neo4j.Driver, set[str | None]] = weakref.WeakKeyDictionary()


def ensure_schema(driver: neo4j.Driver, database: str | None = None) -> None:
    """Creates the constraints and indexes (idempotent), waits for them, and checks the graph model version.

    Raises :class:`DataModelVersionError` when the database was written by another major version.
    """
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        for statement in SCHEMA:  # schema commands: auto-commit transactions, one each
            session.run(_cypher(statement)).consume()
        session.run("CALL db.awaitIndexes(300)").consume()
    _schema_ready.setdefault(driver, set()).add(database)
    check_data_model(driver, database)


def check_data_model(driver: neo4j.Driver, database: str | None = None) -> str:
    """Creates the DataModel node if missing and returns its version; raises DataModelVersionError when the
    graph was written by another major version of the graph model."""
    records = _records(
        driver,
        """
        MERGE (d:DataModel {name: $name})
        ON CREATE SET d.version = $version, d.createdAt = datetime(), d.overlapMinJaccard = $overlap
        RETURN d.version AS version
        """,
        database, name=DATA_MODEL_NAME, version=DATA_MODEL_VERSION, overlap=OVERLAP_MIN_JACCARD,
    )
    found = str(records[0]["version"])
    if found.split(".")[0] != DATA_MODEL_VERSION.split(".")[0]:
        raise DataModelVersionError(
            f"the database holds neurflow graph model {found}; this neurflow writes {DATA_MODEL_VERSION}. "
            "Ingest into another database (--database) or empty this one."
        )
    return found


# --------------------------------------------------------------------------- rows (pure Python)


def model_key(circuit: Circuit) -> str:
    """``efficientnet-lite0@<weights id>``: one Model node per model name and weights."""
    return f"{circuit.model.name}@{circuit.model.weights_id}"


def graph_neuron_key(model: str, neuron: str) -> str:
    """Key of a Neuron node: the model key and the circuit's ``layer:channel`` key, ``model|layer:channel``."""
    return f"{model}|{neuron}"


def patch_key(sha256: str, box: Sequence[int]) -> str:
    """Key of a Patch node: its image's sha256 and its box in the image's pixels, ``sha|l,t,r,b``."""
    return f"{sha256}|{','.join(str(int(v)) for v in box)}"


@dataclass
class CircuitRows:
    """The parameter rows of every write of one circuit (pure data, built without a server)."""

    circuit_id: str
    model: dict[str, Any]
    target: dict[str, Any]
    circuit: dict[str, Any]
    logit: str
    layers: list[dict[str, Any]]
    neurons: list[dict[str, Any]]
    core: list[dict[str, Any]]
    images: list[dict[str, Any]]
    patches: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    semantic_groups: list[dict[str, Any]]
    members: list[list[str]]
    flows: list[list[Any]]
    group_members: dict[str, tuple[str, set[str]]] = field(default_factory=dict)


def _check(circuit: Circuit) -> None:
    """Raises StoreError when the circuit's parts refer to each other inconsistently."""
    where = f"circuit {circuit.id} ({circuit.target.name})"
    core = {n.key for ns in circuit.neurons.values() for n in ns}
    if circuit.logit_key not in core:
        raise StoreError(f"{where}: the logit neuron {circuit.logit_key} is not among the core neurons")
    sgs = {g.key for g in circuit.semantic_groups}
    if len(sgs) != len(circuit.semantic_groups):
        raise StoreError(f"{where}: duplicate semantic group keys")
    groups = {g.id for g in circuit.neuron_groups}
    if len(groups) != len(circuit.neuron_groups):
        raise StoreError(f"{where}: duplicate neuron group ids")
    layers = set(circuit.layers)
    patches = {p.id for p in circuit.patches}
    for g in circuit.semantic_groups:
        if g.neuron not in core:
            raise StoreError(f"{where}: semantic group {g.key} belongs to no core neuron")
        if len(g.patches) != len(g.activations) or not set(g.patches) <= patches:
            raise StoreError(f"{where}: semantic group {g.key} refers to unknown patches")
    for e in circuit.edges:
        if e.upper_group not in sgs or e.lower not in core:
            raise StoreError(f"{where}: edge {e.upper_group} -> {e.lower} refers to an unknown group or neuron")
    for ng in circuit.neuron_groups:
        if ng.layer not in layers or not set(ng.semantic_groups) <= sgs or not set(ng.neurons) <= core:
            raise StoreError(f"{where}: neuron group {ng.id} refers to unknown layers, groups or neurons")
    for ge in circuit.group_edges:
        if ge.upper not in groups or ge.lower not in groups:
            raise StoreError(f"{where}: group edge {ge.upper} -> {ge.lower} refers to an unknown neuron group")
    for p in circuit.patches:
        if not 0 <= p.image < len(circuit.images):
            raise StoreError(f"{where}: patch {p.id} refers to unknown image {p.image}")


def circuit_rows(circuit: Circuit, folder: str | Path | None = None) -> CircuitRows:
    """Every row written for ``circuit``; ``folder`` (where it was loaded from) gives the thumbnail URIs.

    Only the patches that exemplify a semantic group are written (the concept patches).
    """
    _check(circuit)
    cid = circuit.id
    mkey = model_key(circuit)
    depth = {layer: i for i, layer in enumerate(circuit.layers)}

    def nkey(neuron: str) -> str:
        return graph_neuron_key(mkey, neuron)

    in_weight: dict[str, float] = defaultdict(float)
    for e in circuit.edges:
        in_weight[e.lower] += abs(e.weight)
    core_rows = []
    for layer in circuit.layers:
        for n in circuit.neurons.get(layer, []):
            weight = 1.0 if depth[layer] == 0 else in_weight.get(n.key, 0.0)
            core_rows.append({"neuron": nkey(n.key), "layer": layer, "depth": depth[layer], "weight": weight,
                              "maxActivation": n.max_activation, "parents": len(n.parents)})
    neuron_rows = [
        {"key": nkey(n.key), "model": mkey, "layer": n.layer, "channel": n.channel, "layerKey": f"{mkey}|{n.layer}"}
        for layer in circuit.layers for n in circuit.neurons.get(layer, [])
    ]
    lower_core = [r for r in core_rows if r["depth"] > 0]

    images = circuit.images
    patch_by_id = {p.id: p for p in circuit.patches}
    used = sorted({p for g in circuit.semantic_groups for p in g.patches})
    key_of_patch = {p: patch_key(images[patch_by_id[p].image].sha256, patch_by_id[p].box) for p in used}
    patch_rows: dict[str, dict[str, Any]] = {}
    for p in used:
        record = patch_by_id[p]
        patch_rows.setdefault(key_of_patch[p], {
            "key": key_of_patch[p], "image": images[record.image].sha256, "box": list(record.box),
            "scale": record.scale, "thumbnailUri": thumbnail_uri(folder, p) if folder is not None else None,
        })
    image_rows = [
        {"sha256": im.sha256, "path": im.path, "label": im.label, "width": im.width, "height": im.height,
         "predicted": im.predicted, "logit": im.logit}
        for im in images
    ]

    flows = group_flow(circuit)
    label_of_patch = {p: images[patch_by_id[p].image].label for p in used}
    labelled_of_patch = {p: label is not None for p, label in label_of_patch.items()}
    foreign_of_patch = {p: label is not None and not label_matches(label, circuit.target)
                        for p, label in label_of_patch.items()}
    group_rows = []
    group_members: dict[str, tuple[str, set[str]]] = {}
    for g in circuit.neuron_groups:
        gkey = f"{cid}|{g.id}"
        labelled = sum(labelled_of_patch.get(p, False) for p in g.patches)
        foreign = sum(foreign_of_patch.get(p, False) for p in g.patches)
        flow = flows[g.id]
        group_rows.append({
            "key": gkey, "circuitId": cid, "groupId": g.id, "layer": g.layer, "depth": depth[g.layer],
            "modelKey": mkey, "classIndex": circuit.target.index, "className": circuit.target.name,
            "size": len(g.neurons),
            "semanticGroups": len(g.semantic_groups), "patchCount": len(g.patches), "labelledPatches": labelled,
            "foreignPatches": foreign, "foreignShare": foreign / labelled if labelled else None,
            "influence": flow.influence, "upScore": flow.up_score,
            "upNext": f"{cid}|{flow.up_next}" if flow.up_next else None,
            "downScore": flow.down_score, "downNext": f"{cid}|{flow.down_next}" if flow.down_next else None,
        })
        group_members[gkey] = (g.layer, {nkey(n) for n in g.neurons})
    groups_of_sg: dict[str, list[str]] = defaultdict(list)
    for g in circuit.neuron_groups:
        for sg in g.semantic_groups:
            groups_of_sg[sg].append(f"{cid}|{g.id}")
    edges_of_sg: dict[str, list[list[Any]]] = defaultdict(list)
    for e in circuit.edges:
        edges_of_sg[e.upper_group].append([nkey(e.lower), e.weight, e.score])
    sg_rows = [
        {
            "key": f"{cid}|{g.key}", "sgKey": g.key, "layer": g.layer, "channel": g.channel, "index": g.index,
            "depth": depth[g.layer], "size": len(g.patches),
            "neuron": nkey(g.neuron),
            "groups": groups_of_sg.get(g.key, []),
            "in": edges_of_sg.get(g.key, []),
            # rank: 0 for the group's most activating patch
            "patches": [[key_of_patch[p], a, rank] for rank, (p, a) in enumerate(
                sorted(zip(g.patches, g.activations, strict=True), key=lambda pa: (-pa[1], pa[0])))],
        }
        for g in circuit.semantic_groups
    ]
    members = [[f"{cid}|{g.id}", nkey(n)] for g in circuit.neuron_groups for n in g.neurons]
    out: dict[str, float] = defaultdict(float)
    for e in circuit.group_edges:
        out[e.upper] += abs(e.weight)
    flow_rows = [
        [f"{cid}|{e.lower}", f"{cid}|{e.upper}", e.weight, abs(e.weight) / out[e.upper] if out[e.upper] else 0.0]
        for e in circuit.group_edges
    ]
    target = circuit.target
    params = circuit.params
    circuit_props = {
        "id": cid, "complete": False, "modelKey": mkey, "modelName": circuit.model.name,
        "classIndex": target.index, "className": target.name, "layers": list(circuit.layers),
        "tau": params.get("tau"), "k": params.get("k"), "steps": params.get("steps"),
        "quadrature": params.get("quadrature"), "ranking": params.get("ranking"),
        "labelSource": params.get("label_source"), "paramsJson": json.dumps(params, sort_keys=True),
        "formatVersion": circuit.format_version, "folder": str(Path(folder).resolve()) if folder else None,
        "createdAt": circuit.created or None, "dataModelVersion": DATA_MODEL_VERSION,
        "coreNeurons": len(lower_core), "coreWeight": sum(r["weight"] for r in lower_core),
        "images": len(images), "semanticGroups": len(circuit.semantic_groups),
        "neuronGroups": len(circuit.neuron_groups), "edges": len(circuit.edges),
    }
    return CircuitRows(
        circuit_id=cid,
        model={"key": mkey, "name": circuit.model.name, "weightsId": circuit.model.weights_id,
               "inputSize": circuit.model.input_size, "numClasses": circuit.model.num_classes},
        target={"index": target.index, "name": target.name, "wnid": target.wnid},
        circuit=circuit_props,
        logit=nkey(circuit.logit_key),
        layers=[{"key": f"{mkey}|{layer}", "model": mkey, "name": layer, "depth": depth[layer]}
                for layer in circuit.layers],
        neurons=neuron_rows,
        core=core_rows,
        images=image_rows,
        patches=list(patch_rows.values()),
        groups=group_rows,
        semantic_groups=sg_rows,
        members=members,
        flows=flow_rows,
        group_members=group_members,
    )


# --------------------------------------------------------------------------- Cypher of the writes

_CREATE_CIRCUIT = """
MERGE (m:Model {key: $model.key}) ON CREATE SET m += $model
MERGE (cl:Class {index: $target.index})
  ON CREATE SET cl += $target
  ON MATCH SET cl.wnid = coalesce(cl.wnid, $target.wnid)
CREATE (c:Circuit) SET c = $circuit
CREATE (c)-[:OF_MODEL]->(m)
CREATE (c)-[:FOR_CLASS]->(cl)
"""
_LAYERS = """
UNWIND $rows AS r
MATCH (m:Model {key: r.model})
MERGE (l:Layer {key: r.key}) ON CREATE SET l.model = r.model, l.name = r.name, l.depth = r.depth
MERGE (m)-[:HAS_LAYER]->(l)
"""
_NEURONS = """
UNWIND $rows AS r
MERGE (n:Neuron {key: r.key}) ON CREATE SET n.model = r.model, n.layer = r.layer, n.channel = r.channel
WITH n, r
MATCH (l:Layer {key: r.layerKey})
MERGE (l)-[:HAS_NEURON]->(n)
"""
_CORE = """
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MATCH (n:Neuron {key: r.neuron})
CREATE (c)-[:HAS_CORE_NEURON {layer: r.layer, depth: r.depth, weight: r.weight, maxActivation: r.maxActivation,
                              parents: r.parents, circuitId: $circuitId}]->(n)
"""
_LOGIT = """
MATCH (c:Circuit {id: $circuitId})
MATCH (n:Neuron {key: $logit})
CREATE (c)-[:HAS_LOGIT]->(n)
"""
_IMAGES = """
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
MERGE (i:Image {sha256: r.sha256})
  ON CREATE SET i.path = r.path, i.label = r.label, i.width = r.width, i.height = r.height
CREATE (c)-[:HAS_IMAGE {predicted: r.predicted, logit: r.logit}]->(i)
"""
_PATCHES = """
UNWIND $rows AS r
MATCH (i:Image {sha256: r.image})
MERGE (p:Patch {key: r.key})
  ON CREATE SET p.image = r.image, p.box = r.box, p.scale = r.scale, p.thumbnailUri = r.thumbnailUri
  ON MATCH SET p.thumbnailUri = coalesce(p.thumbnailUri, r.thumbnailUri)
MERGE (p)-[:CROPPED_FROM]->(i)
"""
_GROUPS = """
MATCH (c:Circuit {id: $circuitId})
UNWIND $rows AS r
CREATE (g:NeuronGroup) SET g = r
CREATE (c)-[:HAS_GROUP]->(g)
"""
_SEMANTIC_GROUPS = """
UNWIND $rows AS r
MATCH (n:Neuron {key: r.neuron})
CREATE (s:SemanticGroup {key: r.key, circuitId: $circuitId, sgKey: r.sgKey, layer: r.layer, channel: r.channel,
                         index: r.index, depth: r.depth, size: r.size})
CREATE (s)-[:OF_NEURON]->(n)
WITH s, r
CALL (s, r) {
  UNWIND r.groups AS key
  MATCH (g:NeuronGroup {key: key})
  CREATE (g)-[:HAS_SEMANTIC_GROUP]->(s)
}
CALL (s, r) {
  UNWIND r.in AS e
  MATCH (m:Neuron {key: e[0]})
  CREATE (m)-[:CONTRIBUTES_TO {weight: e[1], score: e[2], circuitId: $circuitId}]->(s)
}
CALL (s, r) {
  UNWIND r.patches AS x
  MATCH (p:Patch {key: x[0]})
  CREATE (p)-[:EXEMPLIFIES {activation: x[1], rank: x[2], circuitId: $circuitId}]->(s)
}
"""
_MEMBERS = """
UNWIND $rows AS r
MATCH (g:NeuronGroup {key: r[0]})
MATCH (n:Neuron {key: r[1]})
CREATE (g)-[:HAS_MEMBER]->(n)
"""
_FLOWS = """
UNWIND $rows AS r
MATCH (a:NeuronGroup {key: r[0]})
MATCH (b:NeuronGroup {key: r[1]})
CREATE (a)-[:FLOWS_TO {weight: r[2], share: r[3], circuitId: $circuitId,
                      weightLabel: toString(round(r[2], 3))}]->(b)  // Browser's caption
"""
_OVERLAPS = """
UNWIND $rows AS r
MATCH (a:NeuronGroup {key: r[0]})
MATCH (b:NeuronGroup {key: r[1]})
CREATE (a)-[:OVERLAPS {jaccard: r[2], shared: r[3], circuitId: $circuitId}]->(b)
"""
_COMPLETE = """
MATCH (c:Circuit {id: $circuitId})
SET c.complete = true, c.ingestedAt = datetime()
RETURN c.id AS id
"""
_OTHER_GROUPS = """
MATCH (c:Circuit {complete: true})
WHERE c.modelKey = $model AND c.classIndex <> $classIndex
MATCH (c)-[:HAS_GROUP]->(g:NeuronGroup)
WHERE g.depth > 0
RETURN g.key AS key, g.layer AS layer, [(g)-[:HAS_MEMBER]->(n:Neuron) | n.key] AS members
"""


@dataclass
class IngestResult:
    """What :func:`write_circuit` did with one circuit.

    ``status``: ``written`` (new), ``skipped`` (already complete), ``rewritten`` (an incomplete earlier
    ingestion was deleted first) or ``replaced`` (complete, ``force``).
    """

    circuit_id: str
    class_name: str
    class_index: int
    status: str
    nodes: int = 0
    relationships: int = 0
    seconds: float = 0.0

    @property
    def relationships_per_second(self) -> float:
        return self.relationships / self.seconds if self.seconds > 0 else 0.0


def _batches(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def _sg_rels(row: dict[str, Any]) -> int:
    """Relationships one semantic-group row creates: OF_NEURON, HAS_SEMANTIC_GROUP, CONTRIBUTES_TO, EXEMPLIFIES."""
    return 1 + len(row["groups"]) + len(row["in"]) + len(row["patches"])


RowRels = Callable[[Any], int]


def _one(_: Any) -> int:
    return 1


class _Writer:
    """Runs batched writes of one circuit in managed transactions, counting what they created.

    A batch holds at most ``batch_rows`` rows, or, for rows that create several relationships, rows creating
    at most about ``batch_rows`` relationships.
    """

    def __init__(self, session: neo4j.Session, circuit_id: str, batch_rows: int, progress: Progress | None):
        self.session = session
        self.circuit_id = circuit_id
        self.batch_rows = max(1, batch_rows)
        self.progress = progress
        self.nodes = 0
        self.relationships = 0

    def _chunks(self, rows: Sequence[Any], rels: RowRels) -> Iterable[tuple[list[Any], int]]:
        batch: list[Any] = []
        weight = expected = 0
        for row in rows:
            count = rels(row)
            if batch and weight + max(1, count) > self.batch_rows:
                yield batch, expected
                batch, weight, expected = [], 0, 0
            batch.append(row)
            weight += max(1, count)
            expected += count
        if batch:
            yield batch, expected

    def run(self, step: str, query: str, rows: Sequence[Any], expect_rels: RowRels | None = None) -> None:
        """``expect_rels(row)``: relationships the row must create (circuit parts are CREATEd); fewer means a
        node the row refers to is missing, and the batch is rolled back with a StoreError."""
        done = 0
        for batch, expected in self._chunks(rows, expect_rels or _one):
            counters = self.session.execute_write(self._work, query, batch,
                                                  expected if expect_rels else None, step)
            self.nodes += counters.nodes_created
            self.relationships += counters.relationships_created
            done += len(batch)
            if self.progress is not None:
                self.progress(step, done, len(rows))

    def single(self, step: str, query: str, **params: Any) -> None:
        counters = self.session.execute_write(self._single, query, params)
        self.nodes += counters.nodes_created
        self.relationships += counters.relationships_created
        if self.progress is not None:
            self.progress(step, 1, 1)

    def _work(self, tx: neo4j.ManagedTransaction, query: str, rows: list[Any], expected: int | None,
              step: str) -> Any:
        counters = tx.run(_cypher(query), rows=rows, circuitId=self.circuit_id).consume().counters
        if expected is not None and counters.relationships_created != expected:
            raise StoreError(
                f"circuit {self.circuit_id}: {step} created {counters.relationships_created} relationships for "
                f"{len(rows)} rows (expected {expected}): a node they refer to is missing"
            )
        return counters

    @staticmethod
    def _single(tx: neo4j.ManagedTransaction, query: str, params: dict[str, Any]) -> Any:
        return tx.run(_cypher(query), params).consume().counters


def circuit_status(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> str | None:
    """``"complete"``, ``"incomplete"`` or None (not in the graph)."""
    records = _records(driver, "MATCH (c:Circuit {id: $id}) RETURN c.complete AS complete", database,
                       read=True, id=circuit_id)
    if not records:
        return None
    return "complete" if records[0]["complete"] else "incomplete"


def delete_circuit(driver: neo4j.Driver, circuit_id: str, database: str | None = None,
                   batch_nodes: int = 1000) -> bool:
    """Deletes a circuit and everything scoped to it; returns whether it existed.

    The circuit is first marked incomplete (so queries stop seeing it at once), then its semantic and neuron
    groups are deleted in batches (with their relationships), then the Circuit node. Patches and images that
    no circuit uses any more are deleted too; Model, Layer, Neuron and Class nodes stay. A deletion killed
    mid-way leaves an incomplete circuit, which the next ingestion deletes again.
    """
    records = _records(
        driver,
        """
        MATCH (c:Circuit {id: $id}) SET c.complete = false
        WITH c
        OPTIONAL MATCH (c)-[:HAS_IMAGE]->(i:Image)
        RETURN count(DISTINCT c) AS circuits, collect(DISTINCT i.sha256) AS images
        """,
        database, id=circuit_id,
    )
    if not records or records[0]["circuits"] == 0:
        return False
    images: set[str] = set(records[0]["images"])
    patches: set[str] = set()
    for label in ("SemanticGroup", "NeuronGroup"):
        while True:
            # Labels are constants of this module, never user text.
            records = _records(
                driver,
                f"""
                MATCH (s:{label} {{circuitId: $id}})
                WITH s LIMIT $limit
                OPTIONAL MATCH (p:Patch)-[:EXEMPLIFIES]->(s)
                WITH s, collect(p.key) AS patches
                DETACH DELETE s
                RETURN count(s) AS deleted, reduce(all = [], ps IN collect(patches) | all + ps) AS patches
                """,
                database, id=circuit_id, limit=batch_nodes,
            )
            patches.update(records[0]["patches"] or [])
            if records[0]["deleted"] == 0:
                break
    _records(driver, "MATCH (c:Circuit {id: $id}) DETACH DELETE c", database, id=circuit_id)
    for batch in _batches(sorted(patches), 5000):
        records = _records(
            driver,
            """
            UNWIND $keys AS key
            MATCH (p:Patch {key: key})
            WHERE NOT (p)-[:EXEMPLIFIES]->()
            OPTIONAL MATCH (p)-[:CROPPED_FROM]->(i:Image)
            DETACH DELETE p
            RETURN collect(DISTINCT i.sha256) AS images
            """,
            database, keys=list(batch),
        )
        images.update(records[0]["images"])
    _records(
        driver,
        """
        UNWIND $shas AS sha
        MATCH (i:Image {sha256: sha})
        WHERE NOT (i)<-[:HAS_IMAGE]-() AND NOT (i)<-[:CROPPED_FROM]-()
        DETACH DELETE i
        """,
        database, shas=sorted(images),
    )
    return True


def _overlap_rows(driver: neo4j.Driver, rows: CircuitRows, database: str | None,
                  min_jaccard: float) -> list[list[Any]]:
    """OVERLAPS rows from this circuit's groups to the groups of complete circuits of other classes."""
    records = _records(driver, _OTHER_GROUPS, database, read=True, model=rows.model["key"],
                       classIndex=rows.target["index"])
    by_layer: dict[str, list[tuple[str, set[str]]]] = defaultdict(list)
    for record in records:
        by_layer[record["layer"]].append((record["key"], set(record["members"])))
    lower_groups = {g["key"] for g in rows.groups if g["depth"] > 0}
    result = []
    for gkey, (layer, members) in sorted(rows.group_members.items()):
        if not members or gkey not in lower_groups:
            continue
        for other, other_members in by_layer.get(layer, []):
            shared = len(members & other_members)
            if shared == 0:
                continue
            jaccard = shared / len(members | other_members)
            if jaccard >= min_jaccard:
                result.append([gkey, other, jaccard, shared])
    return result


def write_circuit(
    driver: neo4j.Driver,
    circuit: Circuit,
    folder: str | Path | None = None,
    *,
    database: str | None = None,
    force: bool = False,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    overlap_min_jaccard: float = OVERLAP_MIN_JACCARD,
    progress: Progress | None = None,
) -> IngestResult:
    """Writes one circuit (``folder``: where it was loaded from, for thumbnail URIs and provenance).

    Idempotent: a complete circuit is skipped (``status="skipped"``) unless ``force``; an incomplete one is
    deleted and written again. Creates the schema on first use with this driver and database.

    >>> write_circuit(driver, synthetic_circuit(207), batch_rows=5000).status      # doctest: +SKIP
    'written'
    """
    if database not in _schema_ready.get(driver, set()):
        ensure_schema(driver, database)
    else:
        check_data_model(driver, database)  # the graph may have been emptied since
    rows = circuit_rows(circuit, folder)
    cid = rows.circuit_id
    result = IngestResult(cid, circuit.target.name, circuit.target.index, "written")
    start = time.perf_counter()
    status = circuit_status(driver, cid, database)
    if status == "complete" and not force:
        result.status = "skipped"
        return result
    if status is not None:
        delete_circuit(driver, cid, database)
        result.status = "replaced" if status == "complete" else "rewritten"
    overlaps = _overlap_rows(driver, rows, database, overlap_min_jaccard)
    rows.circuit["ingestStartedAt"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        w = _Writer(session, cid, batch_rows, progress)
        w.single("circuit", _CREATE_CIRCUIT, model=rows.model, target=rows.target, circuit=rows.circuit)
        w.run("layers", _LAYERS, rows.layers)
        w.run("neurons", _NEURONS, rows.neurons)
        w.single("logit", _LOGIT, circuitId=cid, logit=rows.logit)
        w.run("core neurons", _CORE, rows.core, expect_rels=_one)
        w.run("images", _IMAGES, rows.images, expect_rels=_one)
        w.run("patches", _PATCHES, rows.patches)
        w.run("neuron groups", _GROUPS, rows.groups, expect_rels=_one)
        w.run("group members", _MEMBERS, rows.members, expect_rels=_one)
        w.run("semantic groups", _SEMANTIC_GROUPS, rows.semantic_groups, expect_rels=_sg_rels)
        w.run("group flows", _FLOWS, rows.flows, expect_rels=_one)
        w.run("overlaps", _OVERLAPS, overlaps, expect_rels=_one)
        records = session.execute_write(lambda tx: list(tx.run(_COMPLETE, circuitId=cid)))
        if not records:
            raise StoreError(f"circuit {cid} disappeared while it was written (deleted by another process?)")
    result.nodes, result.relationships = w.nodes, w.relationships
    result.seconds = time.perf_counter() - start
    return result


# --------------------------------------------------------------------------- counts

LABELS: tuple[str, ...] = (
    "DataModel", "Model", "Layer", "Neuron", "Class", "Circuit", "SemanticGroup", "NeuronGroup", "Patch", "Image",
)
RELATIONSHIP_TYPES: tuple[str, ...] = (
    "HAS_LAYER", "HAS_NEURON", "OF_MODEL", "FOR_CLASS", "HAS_LOGIT", "HAS_CORE_NEURON", "HAS_IMAGE", "HAS_GROUP",
    "HAS_SEMANTIC_GROUP", "OF_NEURON", "HAS_MEMBER", "CONTRIBUTES_TO", "FLOWS_TO", "OVERLAPS", "EXEMPLIFIES",
    "CROPPED_FROM",
)


def graph_counts(driver: neo4j.Driver, database: str | None = None) -> dict[str, int]:
    """Nodes per label and relationships per type (from the count store, so instant at any size)."""
    counts: dict[str, int] = {}
    for label in LABELS:
        records = _records(driver, f"MATCH (n:{label}) RETURN count(n) AS n", database, read=True)
        counts[label] = records[0]["n"]
    for rel in RELATIONSHIP_TYPES:
        records = _records(driver, f"MATCH ()-[r:{rel}]->() RETURN count(r) AS n", database, read=True)
        counts[rel] = records[0]["n"]
    return counts


def incomplete_circuits(driver: neo4j.Driver, database: str | None = None) -> list[str]:
    """Ids of circuits whose ingestion has not finished (or died)."""
    records = _records(driver, "MATCH (c:Circuit) WHERE NOT c.complete RETURN c.id AS id ORDER BY id", database,
                       read=True)
    return [r["id"] for r in records]
