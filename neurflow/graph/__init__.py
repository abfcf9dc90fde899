"""The Neo4j side: connection settings, the local server, schema, rows, the writer and every read.

All Cypher of neurflow lives in ``.cypher`` files: the ones beside this package (``cypher/``) and the named
queries users read and extend (``queries/`` at the top of the repository, shipped as ``neurflow.queries``).

May import: neo4j, ``neurflow.circuit``, ``neurflow.format``, ``neurflow.analysis``, ``neurflow.errors``.
Never torch, the engine, experiments, labelling or cli (checked by import-linter, see pyproject.toml).
"""
