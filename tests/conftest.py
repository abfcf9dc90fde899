"""Shared Neo4j fixtures, and the test tiers: the `neo4j` and `slow` markers, set from what a test uses.

Tests talk to a real server (the local one from `neurflow db start`, or whatever NEO4J_URI/NEO4J_PASSWORD
point to) and fail, never skip, when it is not reachable.

Markers (their meaning is in pyproject.toml). A test is marked here, never by hand, when it uses
- `neo4j`: a Neo4j fixture (neo4j_settings, neo4j_driver, clean_graph) itself or through other fixtures;
- `slow`: the real circuits or the real image set (real_circuit_dirs, shared_images), or when it or one of
  its fixtures loads the pretrained EfficientNet-Lite0 (`load_model("efficientnet-lite0")` without random
  weights) or builds circuits (`build_circuits`).
A test that starts a server or a process of its own, builds through a command line or through
`CircuitBuilder` on a real architecture, or takes more than ~3 s here for another reason (`--durations` tells),
carries its markers by hand, with the reason beside the marker. A test that loads the pretrained EfficientNet-Lite0 without the `slow` marker fails, so that
`-m "not slow and not neo4j"` stays fast.
"""

from __future__ import annotations

import ast
import functools
import inspect
import os
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import neo4j
import pytest

from neurflow.engine import models
from neurflow.graph.connection import (
    ConnectionSettings,
    Neo4jConnectionError,
    open_driver,
    resolve_connection,
)
from neurflow.graph.deletion import clear_graph

NEO4J_FIXTURES = frozenset({"neo4j_settings", "neo4j_driver", "clean_graph"})
SLOW_FIXTURES = frozenset({"real_circuit_dirs", "shared_images"})
PRETRAINED = "efficientnet-lite0"


# --------------------------------------------------------------------------- markers from what a test uses


def _called_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _loads_pretrained(call: ast.Call) -> bool:
    """`load_model("efficientnet-lite0", ...)` without `random_weights=True`."""
    named = bool(call.args) and isinstance(call.args[0], ast.Constant) and call.args[0].value == PRETRAINED
    random = any(k.arg == "random_weights" and isinstance(k.value, ast.Constant) and k.value.value is True
                 for k in call.keywords)
    return _called_name(call) == "load_model" and named and not random


@functools.cache
def _does_slow_work(func: Callable[..., Any]) -> bool:
    """Whether the source of ``func`` builds circuits or loads the pretrained EfficientNet-Lite0."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return False
    return any(
        isinstance(node, ast.Call) and (_called_name(node) == "build_circuits" or _loads_pretrained(node))
        for node in ast.walk(tree)
    )


def _functions_of(item: pytest.Item) -> list[Callable[..., Any]]:
    """The test function and the functions of every fixture it uses, directly or not."""
    functions = [item.function] if isinstance(item, pytest.Function) else []
    info = getattr(item, "_fixtureinfo", None)
    for definitions in (info.name2fixturedefs.values() if info else ()):
        functions += [definition.func for definition in definitions]
    return functions


@pytest.hookimpl(tryfirst=True)  # before pytest's own -m selection reads the markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & NEO4J_FIXTURES:
            item.add_marker(pytest.mark.neo4j)
        if used & SLOW_FIXTURES or any(_does_slow_work(f) for f in _functions_of(item)):
            item.add_marker(pytest.mark.slow)


# The test whose fixtures and body run now: the pretrained model may be loaded by a module-scoped fixture,
# set up during the first test of its module, so this is set before any fixture runs.
_running: list[pytest.Item] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    _running[:] = [item]
    return (yield)


@pytest.fixture(autouse=True, scope="session")
def _caches_of_the_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Prediction caches (neurflow-ingest, held-out images) go to a folder of the session, not the user's."""
    before = os.environ.get("NEURFLOW_CACHE")
    os.environ["NEURFLOW_CACHE"] = str(tmp_path_factory.mktemp("neurflow-cache"))
    yield
    if before is None:
        os.environ.pop("NEURFLOW_CACHE", None)
    else:
        os.environ["NEURFLOW_CACHE"] = before


@pytest.fixture(autouse=True, scope="session")
def _pretrained_model_only_in_slow_tests() -> Iterator[None]:
    """Fails a test that loads the pretrained EfficientNet-Lite0 without the `slow` marker."""
    unguarded = models._efficientnet

    def guarded(weights: str | None, random_weights: bool) -> Any:
        if not random_weights and _running and _running[0].get_closest_marker("slow") is None:
            pytest.fail(f"{_running[0].nodeid} loads the pretrained {PRETRAINED} but is not marked slow: use "
                        "real_circuit_dirs, or mark it @pytest.mark.slow", pytrace=False)
        return unguarded(weights, random_weights)

    models._efficientnet = guarded
    yield
    models._efficientnet = unguarded


# --------------------------------------------------------------------------- Neo4j


@pytest.fixture(scope="session")
def neo4j_settings() -> ConnectionSettings:
    """Connection settings from NEO4J_* env or the local server (password never shown)."""
    return resolve_connection()


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_settings: ConnectionSettings) -> Iterator[neo4j.Driver]:
    """A verified driver for the whole session; a missing server is a failure, in CI and locally."""
    try:
        driver = open_driver(neo4j_settings)
    except Neo4jConnectionError as e:
        # e.message already names URI and user and hints at `neurflow db start`.
        prefix = (
            "CI needs a Neo4j server for these tests (they are never skipped). "
            if os.environ.get("CI")
            else ""
        )
        pytest.fail(prefix + e.message, pytrace=False)
    yield driver
    driver.close()


@pytest.fixture
def clean_graph(neo4j_driver: neo4j.Driver, neo4j_settings: ConnectionSettings) -> neo4j.Driver:
    """Delete all nodes (and so relationships) before the test; indexes and constraints stay."""
    clear_graph(neo4j_driver, neo4j_settings.database)
    return neo4j_driver
