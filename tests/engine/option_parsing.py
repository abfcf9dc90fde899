"""A click command with the engine options, for tests of how they parse (``neurflow build`` and
``neurflow-ingest`` share them)."""

from __future__ import annotations

from typing import Any

import click

from neurflow.cli.options import config_from_options, engine_options
from neurflow.engine.config import BuildConfig


def parsing_command() -> tuple[click.Command, list[BuildConfig]]:
    """The command, and the list it appends the BuildConfig of each successful invocation to."""
    seen: list[BuildConfig] = []

    @click.command()
    @engine_options
    def command(**options: Any) -> None:
        seen.append(config_from_options(options))

    return command, seen
