"""A thin wrapper around the official ``openai`` client for chat completions with images.

Works against OpenAI or any OpenAI-compatible endpoint (vLLM, Ollama, LM Studio, Azure OpenAI's v1 API) through
its base URL. On top of the client it adds:

- a file cache keyed by the sha256 of (model, prompt version, messages including the image bytes, parameters),
  so that a re-run sends nothing (``~/.cache/neurflow/llm/`` or ``$NEURFLOW_LLM_CACHE``);
- its own retries (the client's are off) with exponential backoff and jitter on 429, 5xx, timeouts and
  connection errors, honouring ``Retry-After`` / ``retry-after-ms``;
- clear errors: no key (naming the variable), an unreachable endpoint (naming the base URL), a refused key, and
  one line (an :class:`LLMError`) for anything else the SDK raises or an answer that is no chat completion.

The API key is never printed, logged, cached or put in an error message.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import openai
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion
from openai.types.chat.chat_completion import Choice

from neurflow.errors import NeurflowError
from neurflow.graph.connection import is_loopback_host

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENV = "OPENAI_BASE_URL"
CACHE_ENV = "NEURFLOW_LLM_CACHE"
DEFAULT_MODEL = "gpt-4o"
#: Bumped when the cache entry's layout changes; part of every key.
CACHE_FORMAT = 1


class LLMError(NeurflowError, RuntimeError):
    """A request that could not be answered; the message says why (and never holds the key)."""


class MissingKeyError(LLMError):
    """No API key in the environment variable."""


class EndpointUnreachableError(LLMError):
    """The endpoint did not answer (connection refused, DNS, timeouts) after all retries."""


def default_cache_dir() -> Path:
    """``$NEURFLOW_LLM_CACHE``, else ``$XDG_CACHE_HOME/neurflow/llm``, else ``~/.cache/neurflow/llm``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "neurflow" / "llm"


def resolve_base_url(base_url: str | None = None) -> str:
    """The option, else ``$OPENAI_BASE_URL``, else OpenAI's API."""
    return (base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


LOCAL_KEY = "local"
"""The key sent to a server on this machine when none is set: Ollama and vLLM ask for one and check none."""


def is_local(base_url: str) -> bool:
    """Whether ``base_url`` is a server on this machine (loopback)."""
    return is_loopback_host(urllib.parse.urlsplit(base_url).hostname or "")


def resolve_api_key(env_name: str = DEFAULT_KEY_ENV, base_url: str | None = None) -> str:
    """The key in ``$env_name``; for a server on this machine (``base_url`` on loopback) without one,
    :data:`LOCAL_KEY`; otherwise a :class:`MissingKeyError` naming the variable when it is unset or blank."""
    value = os.environ.get(env_name, "").strip()
    if not value and base_url is not None and is_local(base_url):
        return LOCAL_KEY
    if not value:
        hint = " (local servers such as Ollama or vLLM accept any non-empty value)"
        raise MissingKeyError(
            f"no API key: the environment variable {env_name} is not set{hint}; "
            "set it, or name another variable with --api-key-env"
        )
    return value


# --------------------------------------------------------------------------- retries


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` retries after the first attempt; delay ``base * 2**attempt`` (capped at ``max_delay``)
    times a random factor in [1 - jitter, 1]; a server's Retry-After wins (capped at ``max_delay``)."""

    max_retries: int = 5
    base_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5

    def delay(self, attempt: int, retry_after: float | None = None, rng: random.Random | None = None) -> float:
        if retry_after is not None:
            return min(max(0.0, retry_after), self.max_delay)
        rng = rng or random.Random()
        backoff = min(self.max_delay, self.base_delay * (2**attempt))
        return backoff * (1.0 - self.jitter * rng.random())


def parse_retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms`` (OpenAI), or ``Retry-After`` in seconds or as an HTTP date."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return float(lower["retry-after-ms"]) / 1000.0
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


# --------------------------------------------------------------------------- cache


def request_key(model: str, prompt_version: str, messages: list[dict[str, Any]], params: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of what decides an answer; images are inside the messages as data URLs."""
    payload = json.dumps(
        {"format": CACHE_FORMAT, "model": model, "promptVersion": prompt_version, "messages": messages,
         "params": dict(params)},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    """One JSON file per answer: ``<root>/<key[:2]>/<key>.json``, written atomically."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            entry = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            log.warning("ignoring unreadable cache entry %s: %s", path, error)
            return None
        if not isinstance(entry, dict) or not isinstance(entry.get("text"), str):
            log.warning("ignoring malformed cache entry %s", path)
            return None
        return entry

    def put(self, key: str, entry: Mapping[str, Any]) -> Path:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(dict(entry), handle, indent=1)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path


# --------------------------------------------------------------------------- client


@dataclass
class ChatResult:
    """One answer. ``created`` is when the endpoint answered (ISO 8601, UTC), also for cached answers."""

    text: str
    model: str
    key: str
    created: str
    cached: bool = False
    attempts: int = 0
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None


def _now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _error_message(error: openai.APIStatusError) -> str:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return str(error.message)


def _redact(text: str, secret: str | None) -> str:
    return text.replace(secret, "***") if secret else text


def _shown(value: object, limit: int = 80) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Answer(NamedTuple):
    text: str
    finish_reason: str | None
    model: str | None
    usage: dict[str, Any] | None
    has_choice: bool


def _read_completion(response: object, base_url: str | None) -> _Answer:
    """What an answer says; an LLMError when it is no chat completion at all (an HTML page or a JSON list from
    a wrong URL, choices that are not a list of choices). An answer without choices or content has the empty
    text (stored raw by the caller)."""
    hint = "check --base-url (an OpenAI-compatible endpoint, ending in /v1)"
    if not isinstance(response, ChatCompletion):
        raise LLMError(f"the endpoint {base_url} answered with a {type(response).__name__} "
                       f"({_shown(response)!r}), not a chat completion; {hint}")
    choices = response.choices or []
    if not isinstance(choices, list) or not all(isinstance(c, Choice) for c in choices):
        raise LLMError(f"the endpoint {base_url} answered with a malformed chat completion (choices: "
                       f"{_shown(choices)!r}); {hint}")
    choice = choices[0] if choices else None
    content = getattr(choice.message, "content", None) if choice is not None else None
    finish = choice.finish_reason if choice is not None and isinstance(choice.finish_reason, str) else None
    usage = response.usage.model_dump() if isinstance(response.usage, CompletionUsage) else None
    model = response.model if isinstance(response.model, str) and response.model else None
    return _Answer(content if isinstance(content, str) else "", finish, model, usage, choice is not None)


@dataclass
class LLMClient:
    """Chat completions through ``openai.OpenAI(base_url, api_key, timeout, max_retries=0)`` with our own
    retries and cache. ``api_key`` may be None while every request hits the cache."""

    model: str = DEFAULT_MODEL
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    api_key_env: str = DEFAULT_KEY_ENV
    timeout: float = 60.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    cache: ResponseCache | None = field(default_factory=ResponseCache)
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    _client: openai.OpenAI | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = resolve_base_url(self.base_url)

    def key(self, messages: list[dict[str, Any]], prompt_version: str, **params: Any) -> str:
        return request_key(self.model, prompt_version, messages, params)

    def cached(self, messages: list[dict[str, Any]], prompt_version: str, **params: Any) -> bool:
        return self.cache is not None and self.cache.get(self.key(messages, prompt_version, **params)) is not None

    def _openai(self) -> openai.OpenAI:
        if self._client is None:
            if not self.api_key:
                self.api_key = resolve_api_key(self.api_key_env, self.base_url)
            self._client = openai.OpenAI(
                base_url=self.base_url, api_key=self.api_key, timeout=self.timeout, max_retries=0
            )
        return self._client

    def complete(
        self,
        messages: list[dict[str, Any]],
        *,
        prompt_version: str,
        max_tokens: int = 500,
        temperature: float = 0.0,
    ) -> ChatResult:
        """The answer to ``messages``: from the cache, or from the endpoint (then cached)."""
        params = {"max_tokens": max_tokens, "temperature": temperature}
        key = self.key(messages, prompt_version, **params)
        if self.cache is not None:
            entry = self.cache.get(key)
            if entry is not None:
                log.debug("cache hit %s", key[:12])
                return ChatResult(
                    text=entry["text"], model=str(entry.get("model", self.model)), key=key,
                    created=str(entry.get("created", "")), cached=True, attempts=0,
                    finish_reason=entry.get("finishReason"), usage=entry.get("usage"),
                )
        client = self._openai()
        attempt = 0
        while True:
            try:
                response = client.chat.completions.create(
                    model=self.model,
                    messages=messages,  # type: ignore[arg-type]
                    max_tokens=max_tokens,
                    temperature=temperature,
                )
                break
            except openai.APIStatusError as error:
                status = error.status_code
                if status in (401, 403):
                    raise LLMError(
                        f"the endpoint {self.base_url} refused the API key from ${self.api_key_env} "
                        f"(HTTP {status})"
                    ) from None
                if status != 429 and status < 500:
                    raise LLMError(
                        f"the endpoint {self.base_url} rejected the request (HTTP {status}): "
                        f"{_redact(_error_message(error), self.api_key)}"
                    ) from None
                if attempt >= self.retry.max_retries:
                    what = "rate limited" if status == 429 else f"server error HTTP {status}"
                    raise LLMError(
                        f"{self.base_url}: {what} after {attempt + 1} attempts; try again later"
                    ) from None
                wait = self.retry.delay(attempt, parse_retry_after(error.response.headers), self.rng)
                log.warning("HTTP %s from %s; retry %d/%d in %.1f s", status, self.base_url, attempt + 1,
                            self.retry.max_retries, wait)
            except openai.APIConnectionError as error:
                kind = "timed out" if isinstance(error, openai.APITimeoutError) else "cannot be reached"
                if attempt >= self.retry.max_retries:
                    raise EndpointUnreachableError(
                        f"the LLM endpoint {self.base_url} {kind} ({type(error).__name__}) after {attempt + 1} "
                        "attempts; check --base-url and that the server runs"
                    ) from None
                wait = self.retry.delay(attempt, None, self.rng)
                log.warning("%s %s; retry %d/%d in %.1f s", self.base_url, kind, attempt + 1,
                            self.retry.max_retries, wait)
            except openai.OpenAIError as error:
                # Any other error of the SDK (a response it cannot validate, a new error type ...): one line.
                raise LLMError(
                    f"the endpoint {self.base_url} failed: {type(error).__name__}: "
                    f"{_redact(_shown(error, 300), self.api_key)}"
                ) from None
            except json.JSONDecodeError as error:
                # The SDK decodes a JSON content type; a proxy or a wrong URL answers with something else.
                raise LLMError(
                    f"the endpoint {self.base_url} answered with invalid JSON ({error}); check --base-url "
                    "(an OpenAI-compatible endpoint, ending in /v1)"
                ) from None
            self.sleep(wait)
            attempt += 1
        answer = _read_completion(response, self.base_url)
        text, usage = answer.text, answer.usage
        result = ChatResult(
            text=text, model=answer.model or self.model, key=key, created=_now_iso(), cached=False,
            attempts=attempt + 1, finish_reason=answer.finish_reason, usage=usage,
        )
        if self.cache is not None and answer.has_choice:
            self.cache.put(key, {
                "key": key, "model": result.model, "requestedModel": self.model, "promptVersion": prompt_version,
                "created": result.created, "text": text, "finishReason": result.finish_reason, "usage": usage,
            })
        return result
