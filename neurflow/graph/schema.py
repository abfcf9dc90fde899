"""The graph model's version, its constraints and indexes, and the errors of writing circuits.

``ensure_schema`` creates the constraints and indexes of ``cypher/schema/`` (idempotent), waits for them, and
checks that the database's DataModel node was written by this major version of the graph model
(docs/graph-model.md).
"""

from __future__ import annotations

import weakref

import neo4j

from neurflow.errors import NeurflowError
from neurflow.graph.statements import each_statement, records, statement

DATA_MODEL_NAME = "neurflow"
#: Version of the graph model; a graph written by another major version is refused.
DATA_MODEL_VERSION = "1.7"
#: Neuron groups of two circuits get an OVERLAPS edge when the Jaccard index of their member neurons is at least
#: this (neurflow.graph.overlaps); recorded on the DataModel node.
OVERLAP_MIN_JACCARD = 0.2
#: concept-reuse's default least Jaccard: the groups' reuse summaries are maintained at this threshold (1.7;
#: neurflow.graph.circuit_writes.refresh_reuse); recorded on the DataModel node.
REUSE_MIN_JACCARD = 0.5


class StoreError(NeurflowError, RuntimeError):
    """Something the store cannot do; the message says what and why."""


class DataModelVersionError(StoreError):
    """The database holds a graph written by an incompatible version of the graph model."""


# Databases whose schema this driver has created: the writer creates it once, then only rechecks the version.
_schema_ready: weakref.WeakKeyDictionary[neo4j.Driver, set[str | None]] = weakref.WeakKeyDictionary()


def ensure_schema(driver: neo4j.Driver, database: str | None = None) -> None:
    """Creates the constraints and indexes (idempotent), waits for them, and checks the graph model version.

    Raises :class:`DataModelVersionError` when the database was written by another major version.
    """
    constraints = each_statement(statement("schema/constraints"))
    indexes = each_statement(statement("schema/indexes"))
    with driver.session(database=database, notifications_min_severity="OFF") as session:
        for command in (*constraints, *indexes):
            session.run(command).consume()  # schema commands: auto-commit transactions, one each
        # its own 300 s wait, not the server's transaction time limit (60 s on neurflow's local server)
        session.run(neo4j.Query(statement("schema/await-indexes"), timeout=0)).consume()
    _schema_ready.setdefault(driver, set()).add(database)
    check_data_model(driver, database)


def ensure_schema_once(driver: neo4j.Driver, database: str | None = None) -> None:
    """:func:`ensure_schema` on first use of this driver and database, else only :func:`check_data_model`
    (the graph may have been emptied since)."""
    if database not in _schema_ready.get(driver, set()):
        ensure_schema(driver, database)
    else:
        check_data_model(driver, database)


def check_data_model(driver: neo4j.Driver, database: str | None = None) -> str:
    """Creates the DataModel node if missing and returns its version; raises DataModelVersionError when the
    graph was written by another major version of the graph model."""
    found = str(records(driver, statement("schema/data-model"), database, name=DATA_MODEL_NAME,
                        version=DATA_MODEL_VERSION, overlap=OVERLAP_MIN_JACCARD,
                        reuse=REUSE_MIN_JACCARD)[0]["version"])
    if found.split(".")[0] != DATA_MODEL_VERSION.split(".")[0]:
        raise DataModelVersionError(
            f"the database holds neurflow graph model {found}; this neurflow writes {DATA_MODEL_VERSION}. "
            "Ingest into another database (--database) or empty this one."
        )
    return found
