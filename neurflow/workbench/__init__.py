"""neurflow in Python: the layer that the command lines, ``neurflow-ingest`` and notebooks stand on.

- :func:`connect` gives a :class:`GraphClient` (a driver and its database, the connection settings resolved
  once), passed to everything that reads or writes the graph, like neuprint-python's client.
- :mod:`neurflow.workbench.queries`: every named query of ``queries/`` as a function with typed keyword
  arguments that returns a pandas DataFrame (a new ``.cypher`` file is a new function).
- :func:`open_circuit` gives a :class:`CircuitHandle`: a circuit found by the one rule
  (:mod:`neurflow.workbench.locate`), its folder, graph entry, vectors and, on first use, its model and images.
- :mod:`neurflow.workbench.runs`: experiments and studies on a handle, ``run_x(handle, settings)``, each result
  with ``.table()``, ``.plot()`` and ``.record(graph)``.

>>> from neurflow.workbench import connect, open_circuit, queries
>>> graph = connect()                                   # the local server of `neurflow db start`  # doctest: +SKIP
>>> queries.class_similarity(graph, class_="Samoyed", prune=0.8).head()                           # doctest: +SKIP
>>> samoyed = open_circuit(graph, cls="Samoyed", model="efficientnet-lite0")                      # doctest: +SKIP

Importing this package loads neither torch nor pandas: they are imported when a model runs or a table is made.
docs/api.md documents the whole API with examples.
"""

from __future__ import annotations

from neurflow.errors import CircuitLookupError
from neurflow.workbench.client import GraphClient, connect
from neurflow.workbench.handle import CircuitHandle, open_circuit
from neurflow.workbench.locate import locate_circuit

__all__ = ["CircuitHandle", "CircuitLookupError", "GraphClient", "connect", "locate_circuit", "open_circuit"]
