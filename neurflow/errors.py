"""The base of every error neurflow raises on purpose.

Library code raises plain exceptions (each also a ``ValueError`` or ``RuntimeError`` where that fits); the
command line turns any :class:`NeurflowError` into one line and a non-zero exit (``neurflow.cli.errors``).
Imports nothing.
"""

from __future__ import annotations


class NeurflowError(Exception):
    """Something neurflow cannot do; the message says what, why, and what to do."""

    @property
    def message(self) -> str:
        return str(self)


class CircuitLookupError(NeurflowError, LookupError):
    """No circuit, or several, fit what was asked, or its folder or images moved; the message says what to pass."""
