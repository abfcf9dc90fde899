"""Every named query as a Python function: ``queries/class-similarity.cypher`` is
``class_similarity(client, class_="Samoyed", prune=0.8)``, returning a pandas DataFrame of its rows.

The functions are made from the query files' headers when first asked for, so a new ``.cypher`` file (in
``queries/`` or ``$NEURFLOW_QUERIES``) is a new function. Parameters are keyword-only, typed by the header
(``int``, ``float``, ``str``, ``bool``), named in snake case (``minForeign`` -> ``min_foreign``; ``class`` ->
``class_``), required ones without a default. ``raw=True`` returns the rows as dicts instead of a DataFrame;
``timeout`` bounds the read transaction (seconds; 30 by default).

>>> from neurflow.workbench import connect, queries
>>> sorted(queries.names())[:3]
['bias_paths', 'class_circuit', 'class_similarity']
>>> client = connect()                                                          # doctest: +SKIP
>>> queries.top_groups(client, class_="Samoyed", limit=3)[["layer", "rank", "group"]]  # doctest: +SKIP
>>> help(queries.bias_paths)                                                    # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import keyword
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from neurflow.graph.named_queries import DEFAULT_TIMEOUT, QueryInfo, list_queries
from neurflow.workbench.client import GraphClient

if TYPE_CHECKING:
    import pandas as pd

PYTHON_TYPES: dict[str, type] = {"string": str, "int": int, "float": float, "bool": bool}


def python_name(name: str) -> str:
    """A query's or parameter's name as Python writes it: ``class-similarity`` -> ``class_similarity``,
    ``minForeign`` -> ``min_foreign``, ``class`` -> ``class_``."""
    snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").lower()
    return snake + "_" if keyword.iskeyword(snake) else snake


def names() -> list[str]:
    """The functions there are: one per named query."""
    return [python_name(info.name) for info in list_queries()]


def rows_frame(columns: list[str], rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows as a DataFrame with the query's columns in its order (also when there is no row)."""
    import pandas as pd

    return pd.DataFrame(rows, columns=columns)


def query_function(info: QueryInfo) -> Callable[..., Any]:
    """The function of one named query (see the module's docstring)."""
    by_python = {python_name(p.name): p for p in info.params}

    def run(client: GraphClient, *, raw: bool = False, timeout: float | None = DEFAULT_TIMEOUT,
            **params: Any) -> Any:
        unknown = sorted(set(params) - set(by_python))
        if unknown:
            raise TypeError(f"{python_name(info.name)}() has no parameter {', '.join(unknown)}; it takes "
                            f"{', '.join(by_python) or 'none'}")
        missing = [name for name, p in by_python.items() if p.required and params.get(name) is None]
        if missing:
            raise TypeError(f"{python_name(info.name)}() needs {', '.join(missing)}")
        bound = {by_python[name].name: value for name, value in params.items() if value is not None}
        columns, rows = client.run_query(info.name, bound, timeout=timeout)
        return rows if raw else rows_frame(columns, rows)

    client_param = inspect.Parameter("client", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=GraphClient)
    keyword_params = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                          default=inspect.Parameter.empty if p.required else p.default,
                          annotation=PYTHON_TYPES[p.type] if p.required else PYTHON_TYPES[p.type] | None)
        for name, p in by_python.items()
    ]
    extras = [inspect.Parameter("raw", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=bool),
              inspect.Parameter("timeout", inspect.Parameter.KEYWORD_ONLY, default=DEFAULT_TIMEOUT,
                                annotation=float | None)]
    run.__signature__ = inspect.Signature([client_param, *keyword_params, *extras])  # type: ignore[attr-defined]
    run.__name__ = run.__qualname__ = python_name(info.name)
    run.__doc__ = "\n".join([
        info.description, "",
        f"The named query {info.name} ({info.path.name}); returns a pandas DataFrame (raw=True: the rows).", "",
        "Parameters:",
        *(f"    {name} ({p.type}, {'required' if p.required else f'default {p.default!r}'}): {p.description}"
          for name, p in by_python.items()),
    ])
    return run


def __getattr__(name: str) -> Callable[..., Any]:
    infos = list_queries()
    for info in infos:
        if python_name(info.name) == name:
            return query_function(info)
    raise AttributeError(f"no named query {name!r}; there are: "
                         f"{', '.join(sorted(python_name(i.name) for i in infos))}")


def __dir__() -> list[str]:
    return sorted([*globals(), *names()])
