"""The labelling package's own error. Imports only ``neurflow.errors``."""

from __future__ import annotations

from neurflow.errors import NeurflowError


class LabellingError(NeurflowError, RuntimeError):
    """A labelling run that cannot go on; the message says why."""
