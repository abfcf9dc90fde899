"""A labelling run: which requests to send (``plan_requests``), then sending them, reading the answers and
storing them on the graph (``run_requests``).

Captions are planned from the top layer down, then feature evolutions. An answer that does not parse is stored
raw (``labelRaw`` / ``evolutionRaw``) with a warning and never stops the run. A write that Neo4j refuses, or a
server lost mid-run, stops it with a :class:`LabellingError` that says which write failed and how many went in;
every answer is cached before it is written, so the next run only writes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired

from neurflow.analysis import group_flow
from neurflow.circuit import Circuit
from neurflow.graph.labels import LowerGroupEvolution, write_caption, write_evolution
from neurflow.labelling.errors import LabellingError
from neurflow.labelling.parsing import (
    CaptionAnswer,
    EvolutionAnswer,
    is_no_match,
    parse_caption,
    parse_evolution,
)
from neurflow.labelling.patch_images import PatchImages
from neurflow.labelling.prompts import CAPTION_PROMPT, EVOLUTION_PROMPT, Prompt, load_prompt
from neurflow.labelling.requests import (
    DETAILS,
    LabelRequest,
    caption_request,
    evolution_request,
    lower_groups,
)


@dataclass
class LabelSettings:
    """What to ask: ``layers`` (None: all) limits the groups captioned and the upper groups explained."""

    layers: list[str] | None = None
    max_images: int = 8
    evolution_images: int = 4
    max_lower: int = 3
    detail: str = "low"
    image_size: int = 224
    captions: bool = True
    evolution: bool = True
    max_tokens: int = 500
    temperature: float = 0.0

    def __post_init__(self) -> None:
        if self.detail not in DETAILS:
            raise ValueError(f"detail must be one of {DETAILS}, not {self.detail!r}")
        for name in ("max_images", "evolution_images", "max_lower", "image_size", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', '-')} must be at least 1")


def plan_requests(circuit: Circuit, folder: str | Path | None, settings: LabelSettings,
                  caption_prompt: Prompt | None = None, evolution_prompt: Prompt | None = None) -> list[LabelRequest]:
    """Every request of a labelling run: captions from the top layer down, then feature evolutions."""
    if settings.layers is not None:
        unknown = [layer for layer in settings.layers if layer not in circuit.layers]
        if unknown:
            raise LabellingError(f"the circuit has no layer {', '.join(map(repr, unknown))}; "
                                 f"its layers: {', '.join(circuit.layers)}")
    layers = [layer for layer in circuit.layers if settings.layers is None or layer in settings.layers]
    images = PatchImages(circuit, folder, size=settings.image_size)
    requests: list[LabelRequest] = []
    if settings.captions:
        prompt = caption_prompt or load_prompt(CAPTION_PROMPT)
        for layer in layers:
            for group in circuit.groups_of_layer(layer):
                request = caption_request(circuit, group, images, prompt, settings.max_images, settings.detail)
                if request is not None:
                    requests.append(request)
    if settings.evolution:
        prompt = evolution_prompt or load_prompt(EVOLUTION_PROMPT)
        flow = group_flow(circuit)
        for layer in layers:
            for group in circuit.groups_of_layer(layer):
                edges = lower_groups(circuit, group, settings.max_lower, flow[group.id].down_next)
                if not edges:
                    continue
                request = evolution_request(circuit, group, edges, images, prompt, settings.evolution_images,
                                            settings.detail)
                if request is not None:
                    requests.append(request)
    if images.fallbacks:
        warnings.warn(f"{len(set(images.fallbacks))} patch(es) sent as their thumbnail: original images missing "
                      "or changed", stacklevel=2)
    return requests


def store_caption(driver: Any, request: LabelRequest, answer: CaptionAnswer, model: str, at: str | None,
                  request_key: str | None = None, database: str | None = None) -> int:
    """Stores a caption answer on the group's node; returns the number of nodes written (0: not in the graph)."""
    return write_caption(
        driver, request.circuit_id, request.group, label=answer.label, caption=answer.caption,
        common_features=answer.common_features, model=model, prompt_version=request.prompt.id, at=at,
        raw=None if answer.parsed else answer.raw, request_key=request_key, database=database,
        depicts=answer.depicts,
    )


def _matched(match: str | None) -> bool | None:
    """False for a "no match", None when the answer gave no match for the group."""
    return None if match is None else not is_no_match(match)


def store_evolution(driver: Any, request: LabelRequest, answer: EvolutionAnswer, model: str, at: str | None,
                    request_key: str | None = None, database: str | None = None) -> int:
    """Stores a feature-evolution answer on every ``(lower)-[:FLOWS_TO]->(group)`` edge of the request;
    returns the number of edges written. The answer numbers the groups: 1 is the request's group, 2.. its lower
    groups in order."""
    numbered = dict(enumerate(request.groups, start=1))
    lower = [LowerGroupEvolution(group, features=answer.features.get(n), match=answer.matches.get(n),
                                 matched=_matched(answer.matches.get(n)))
             for n, group in numbered.items() if n > 1]
    return write_evolution(
        driver, request.circuit_id, request.group, lower, caption=answer.caption,
        upper_features=answer.features.get(1),
        features={numbered[n]: f for n, f in sorted(answer.features.items())},
        matches={numbered[n]: m for n, m in sorted(answer.matches.items())},
        model=model, prompt_version=request.prompt.id, at=at, raw=None if answer.parsed else answer.raw,
        request_key=request_key, database=database,
    )


@dataclass
class LabelReport:
    requests: int = 0
    cached: int = 0
    sent: int = 0
    parsed: int = 0
    unparsed: int = 0
    written: int = 0
    results: list[tuple[LabelRequest, CaptionAnswer | EvolutionAnswer]] = field(default_factory=list)


def _write_failed(error: Exception, request: LabelRequest, stored: int, total: int, cached: bool) -> str:
    """One line: which write failed and why, how many answers were stored before it, and what to do."""
    reason = " ".join(str(error.message if isinstance(error, Neo4jError) and error.message else error).split())
    lost = isinstance(error, ServiceUnavailable | SessionExpired)
    if lost:
        what = f"lost the connection to Neo4j ({type(error).__name__}: {reason})"
    elif isinstance(error, Neo4jError):
        what = f"Neo4j refused the write ({error.code}: {reason})"
    else:
        what = f"the Neo4j driver failed ({type(error).__name__}: {reason})"
    again = "run the same command again" + ("" if lost else " once that is fixed")
    again += (": cached answers are not asked again" if cached
              else " (without --no-cache, answers are not asked twice)")
    return (f"storing the {request.kind} of {request.group} of circuit {request.circuit_id}: {what}; "
            f"{stored} of {total} answer(s) were stored before; {again}")


def run_requests(requests: Sequence[LabelRequest], client: Any, settings: LabelSettings, driver: Any = None,
                 database: str | None = None, echo: Callable[[str], None] | None = None) -> LabelReport:
    """Sends (or reads from the cache) every request, parses the answers and writes them to the graph
    (``driver`` None: no writes). An answer that does not parse is stored raw, with a warning."""
    say = echo or (lambda _msg: None)
    report = LabelReport(requests=len(requests))
    for number, request in enumerate(requests, start=1):
        result = client.complete(request.messages, prompt_version=request.prompt.id,
                                 max_tokens=settings.max_tokens, temperature=settings.temperature)
        report.cached += int(result.cached)
        report.sent += int(not result.cached)
        answer: CaptionAnswer | EvolutionAnswer
        if request.kind == "caption":
            answer = parse_caption(result.text)
            summary = answer.label or ""
        else:
            answer = parse_evolution(result.text, len(request.groups))
            summary = answer.caption or ""
        if result.finish_reason == "length":
            warnings.warn(f"{request.kind} of {request.group}: the answer was cut at max-tokens "
                          f"({settings.max_tokens}); raise --max-tokens", stacklevel=2)
        if answer.parsed:
            report.parsed += 1
        else:
            report.unparsed += 1
            warnings.warn(
                f"{request.kind} of {request.group}: the answer does not follow the answer form; stored raw",
                stacklevel=2,
            )
        if driver is not None:
            try:
                if isinstance(answer, CaptionAnswer):
                    written = store_caption(driver, request, answer, result.model, result.created, result.key,
                                            database)
                else:
                    written = store_evolution(driver, request, answer, result.model, result.created, result.key,
                                              database)
            except (Neo4jError, DriverError) as error:
                raise LabellingError(_write_failed(error, request, number - 1, len(requests),
                                                   getattr(client, "cache", None) is not None)) from error
            if written == 0:
                raise LabellingError(
                    f"{request.group} of circuit {request.circuit_id} is not in the graph; ingest the circuit first"
                )
            report.written += written
        report.results.append((request, answer))
        where = request.group if request.kind == "caption" else f"{request.group} <- {', '.join(request.lower)}"
        source = "cache" if result.cached else "sent"
        shown = summary if len(summary) <= 90 else summary[:87] + "..."
        say(f"[{number}/{len(requests)}] {request.kind:9s} {where} ({source}): "
            f"{shown if answer.parsed else 'UNPARSED, stored raw'}")
    return report
