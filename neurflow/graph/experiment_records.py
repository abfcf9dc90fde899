"""Neo4j reads and writes of the experiments: a circuit's groups, core neurons and images in; experiment
records out. Statements live in ``cypher/experiments/``.

Reads (read transactions) follow the store's graph model (docs/graph-model.md):
``(:Circuit)-[:HAS_GROUP]->(:NeuronGroup)-[:HAS_MEMBER]->(:Neuron {layer, channel})``,
``(:Circuit)-[:HAS_CORE_NEURON]->(:Neuron)``, ``(:Circuit)-[:HAS_IMAGE]->(:Image {path, label})``. Which
circuit to read is :mod:`neurflow.graph.circuits`' rule.

Writes (one managed write transaction each) take properties already built
(:mod:`neurflow.experiments.experiment_properties`)::

    (:MaskingExperiment {id, createdAt, mode, neurons, accuracyBefore, accuracyAfter, ...})
        -[:OF_MODEL]->(:Model), -[:FOR_CLASS]->(:Class), -[:ON_CIRCUIT]->(:Circuit),
        -[:MASKED]->(:NeuronGroup) (groups given by key) or -[:MASKED]->(:Neuron) (neurons given by key)
    (:FidelityStudy {id, createdAt, draws, seed, csvPath, pngPath, ...})
        -[:OF_MODEL]->(:Model), -[:FOR_CLASS]->(:Class), -[:ON_CIRCUIT]->(:Circuit),
        -[:HAS_RESULT]->(:FidelityResult {classIndex, layer, scope, mode, coreRelative, ...})-[:AT_LAYER]->(:Layer)
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import neo4j

from neurflow.errors import NeurflowError
from neurflow.graph.statements import statement

READ = neo4j.RoutingControl.READ


class ExperimentError(NeurflowError, ValueError):
    """A group or neuron the experiment cannot use; the message says what can."""


# --------------------------------------------------------------------------- reads


@dataclass(frozen=True)
class GroupRef:
    """A neuron group of a circuit in the graph: its key, id (``_blocks.15/g1``), layer and member channels."""

    key: str
    group_id: str
    layer: str
    depth: int
    channels: list[int]

    @property
    def neurons(self) -> dict[str, list[int]]:
        """The group's channels per layer (one layer)."""
        return {self.layer: list(self.channels)}


def circuit_groups(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> list[GroupRef]:
    """The neuron groups of a circuit with their member neurons, logit layer first."""
    records, _, _ = driver.execute_query(statement("experiments/circuit-groups"), id=circuit_id,
                                         database_=database, routing_=READ)
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


def core_neurons(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> dict[str, list[int]]:
    """The circuit's core neurons per layer, logit layer first."""
    records, _, _ = driver.execute_query(statement("experiments/core-neurons"), id=circuit_id,
                                         database_=database, routing_=READ)
    return {r["layer"]: [int(c) for c in r["channels"]] for r in records}


def circuit_images(driver: neo4j.Driver, circuit_id: str, database: str | None = None) -> list[tuple[str, str | None]]:
    """(path, folder label) of the circuit's images D_c."""
    records, _, _ = driver.execute_query(statement("experiments/circuit-images"), id=circuit_id,
                                         database_=database, routing_=READ)
    return [(r["path"], r["label"]) for r in records]


# --------------------------------------------------------------------------- writes


def write_masking_experiment(
    driver: neo4j.Driver,
    props: Mapping[str, Any],
    model: Mapping[str, Any],
    target: Mapping[str, Any],
    group_keys: Sequence[str] = (),
    neurons: Sequence[Mapping[str, Any]] = (),
    database: str | None = None,
) -> str:
    """Writes a MaskingExperiment (``props``, with ``id``, ``modelKey`` and ``circuitId``) linked to its
    ``model`` and ``target`` class nodes, its circuit and the groups (``group_keys``) or, without groups, the
    ``neurons`` (``{key, layer, channel, layerKey}``) it masked; returns its id."""

    def work(tx: neo4j.ManagedTransaction) -> None:
        record = tx.run(statement("experiments/write-masking"), props=dict(props), circuitId=props["circuitId"],
                        groups=list(group_keys), model=dict(model), target=dict(target)).single()
        linked = record["linked"] if record else 0
        if group_keys and linked != len(group_keys):
            raise ExperimentError(f"only {linked} of the {len(group_keys)} masked groups are in the graph")
        if not group_keys:
            tx.run(statement("experiments/mask-neurons"), id=props["id"], modelKey=props["modelKey"],
                   neurons=[dict(n) for n in neurons]).consume()

    with driver.session(database=database) as session:
        session.execute_write(work)
    return str(props["id"])


def write_fidelity_study(
    driver: neo4j.Driver,
    props: Mapping[str, Any],
    model: Mapping[str, Any],
    classes: Sequence[Mapping[str, Any]],
    circuit_ids: Sequence[str],
    results: Sequence[Mapping[str, Any]],
    database: str | None = None,
) -> str:
    """Writes a FidelityStudy (``props``, with ``id``) linked to its ``model``, ``classes`` (``{index, name}``)
    and circuits, with one FidelityResult per row of ``results``; returns its id."""

    def work(tx: neo4j.ManagedTransaction) -> None:
        tx.run(statement("experiments/write-fidelity"), props=dict(props), model=dict(model),
               classes=[dict(c) for c in classes], circuits=list(circuit_ids)).consume()
        tx.run(statement("experiments/write-fidelity-results"), id=props["id"],
               rows=[dict(r) for r in results]).consume()

    with driver.session(database=database) as session:
        session.execute_write(work)
    return str(props["id"])
