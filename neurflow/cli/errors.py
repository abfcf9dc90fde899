"""The one place where errors become one clear line and a non-zero exit (1), never a traceback.

Library code raises plain exceptions: every error neurflow raises on purpose is a
:class:`~neurflow.errors.NeurflowError`; a lost or refusing Neo4j raises the driver's own errors; a missing
file raises ``FileNotFoundError``, an unwritable one ``PermissionError`` and its kin (an ``OSError`` that names
its file). Anything else is a bug and keeps its traceback.

The driver's own connection logs (a warning per retry, an error per dead socket) are silenced while a command
runs: the driver retries a lost connection for up to 30 s, and what the user sees is the one line at the end.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from neurflow.errors import NeurflowError

#: The driver's loggers of connections, pools and retries.
DRIVER_LOGGERS = ("neo4j.io", "neo4j.pool", "neo4j.session")


def flat(text: object) -> str:
    """``text`` on one line: the driver's messages span several lines (one per address tried)."""
    return " ".join(str(text).split())


def lost_connection(error: BaseException, uri: str | None = None) -> str:
    """The line for a Neo4j server lost after the command connected (``ServiceUnavailable``, ``SessionExpired``)."""
    where = f" at {uri}" if uri else ""
    return (f"lost the connection to Neo4j{where} ({type(error).__name__}: {flat(error)}). Anything being "
            "written stays incomplete, hidden from queries; run the same command again once the server is back.")


def one_line(error: BaseException) -> str | None:
    """The message shown for ``error``, or None when it is not an expected failure."""
    if isinstance(error, NeurflowError | FileNotFoundError):
        return str(error)
    # Imported here: commands that never talk to Neo4j (`neurflow --help`, `models`) start without the driver.
    from neo4j.exceptions import AuthError, DriverError, Neo4jError, ServiceUnavailable, SessionExpired

    if isinstance(error, ServiceUnavailable | SessionExpired):
        return lost_connection(error)
    if isinstance(error, AuthError):
        return f"Neo4j refused the credentials: {flat(error)}"
    if isinstance(error, Neo4jError):
        return f"Neo4j: {error.code}: {flat(error.message or error)}"
    if isinstance(error, DriverError):
        return f"Neo4j driver: {type(error).__name__}: {flat(error)}"
    if isinstance(error, OSError) and error.filename is not None:
        # PermissionError, IsADirectoryError, NotADirectoryError, a full disk ...: the file and the reason.
        return f"cannot use {error.filename}: {error.strerror or type(error).__name__}"
    return None


def quiet_driver_logs() -> None:
    """Silences the driver's connection and retry logs: a lost server ends in one line, not a page of logs."""
    for name in DRIVER_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)


def _invoke_cleanly(invoke: Any, ctx: click.Context) -> Any:
    quiet_driver_logs()
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
