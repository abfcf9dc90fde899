"""The errors of named queries (neurflow.graph.named_queries), apart so that the checks around a query's
answer (neurflow.graph.query_answers) raise them too."""

from __future__ import annotations

from neurflow.errors import NeurflowError


class QueryError(NeurflowError, ValueError):
    """An unknown query, a malformed query file, or bad parameters; the message lists what exists."""


class UnknownClassError(QueryError):
    """A class parameter names no class of the graph; the message gives the closest class names."""


class QueryTimeoutError(NeurflowError, TimeoutError):
    """A named query ran past its time limit and Neo4j stopped it; the message names the limit."""


class EmptyAnswerError(QueryError):
    """A query answered nothing because something it reads is missing from the graph (no circuit of the model
    asked for, no labelled group for a search over labels); the message says what and the command that fixes
    it. An empty answer that is the true answer is returned as no rows."""
