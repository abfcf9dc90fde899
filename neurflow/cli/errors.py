"""The one place where errors become one clear line and a non-zero exit (1), never a traceback.

Library code raises plain exceptions: every error neurflow raises on purpose is a
:class:`~neurflow.errors.NeurflowError`; a lost or refusing Neo4j raises the driver's own errors; a missing
file raises ``FileNotFoundError``. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import click
from neo4j.exceptions import AuthError, DriverError, Neo4jError, ServiceUnavailable, SessionExpired

from neurflow.errors import NeurflowError


def one_line(error: BaseException) -> str | None:
    """The message shown for ``error``, or None when it is not an expected failure."""
    if isinstance(error, NeurflowError | FileNotFoundError):
        return str(error)
    if isinstance(error, ServiceUnavailable | SessionExpired):
        return (f"lost the connection to Neo4j ({type(error).__name__}: {error}). Anything being written stays "
                "incomplete, hidden from queries; run the same command again to finish.")
    if isinstance(error, AuthError):
        return f"Neo4j refused the credentials: {error}"
    if isinstance(error, Neo4jError):
        return f"Neo4j: {error.code}: {error.message or error}"
    if isinstance(error, DriverError):
        return f"Neo4j driver: {type(error).__name__}: {error}"
    return None


def _invoke_cleanly(invoke: Any, ctx: click.Context) -> Any:
    try:
        return invoke(ctx)
    except click.ClickException:
        raise
    except Exception as error:
        message = one_line(error)
        if message is None:
            raise
        raise click.ClickException(message) from error


class CleanErrorsGroup(click.Group):
    """A command group whose commands report expected failures as one line."""

    def invoke(self, ctx: click.Context) -> Any:
        return _invoke_cleanly(super().invoke, ctx)


class CleanErrorsCommand(click.Command):
    """A single command that reports expected failures as one line."""

    def invoke(self, ctx: click.Context) -> Any:
        return _invoke_cleanly(super().invoke, ctx)
