"""neurflow in Python: the layer that the command lines, ``neurflow-ingest`` and notebooks stand on.

- :func:`connect` gives a :class:`GraphClient` (a driver and its database, the connection settings resolved
  once), passed to everything that reads or writes the graph, like neuprint-python's client.
- :mod:`neurflow.workbench.queries`: every named query of ``queries/`` as a function with typed keyword
  arguments that returns a pandas DataFrame (a new ``.cypher`` file is a new function).

>>> from neurflow.workbench import connect, queries
>>> client = connect()                                   # the local server of `neurflow db start`  # doctest: +SKIP
>>> queries.class_similarity(client, class_="Samoyed", prune=0.8).head()                           # doctest: +SKIP

Importing this package loads neither torch nor pandas: the query functions import pandas when they run.
"""

from __future__ import annotations

from neurflow.workbench.client import GraphClient, connect

__all__ = ["GraphClient", "connect"]
