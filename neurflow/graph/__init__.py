"""The Neo4j side: the local server, connection settings, schema, rows, the writer and every read.

- the local server: ``server_config`` (versions, ports, folders, password), ``assembly`` (Java, Maven, jars),
  ``server`` (start, status, stop); ``connection`` (settings and a verified driver, for any server);
- circuits in: ``schema`` (constraints, indexes, the graph model version), ``rows`` (a circuit's rows, pure
  Python), ``overlaps``, ``writer`` (batched writes, each attempt claiming its circuit), ``writes`` (the
  statements it and ``replacement`` (``--force``, one transaction) share), ``deletion``;
- circuits out: ``reads`` (status and counts), ``circuits`` (the one rule for "the circuit of a class"),
  ``named_queries`` (the queries of ``queries/``); experiment records and LLM labels have modules of their own.

All Cypher of neurflow lives in ``.cypher`` files: the ones beside this package (``cypher/<dir>/<name>.cypher``,
loaded by ``statements``) and the named queries users read and extend (``queries/`` at the top of the
repository, shipped as ``neurflow.queries``).
"""
