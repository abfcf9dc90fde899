"""A local fake of the OpenAI chat-completions endpoint, for tests (loopback only, no network).

``FakeOpenAI`` runs an ``http.server`` on 127.0.0.1, port 0 (a free one), in a thread. It records every request
(path, headers, JSON body) and answers ``POST /v1/chat/completions`` from fixture JSON files in
``tests/data/llm/``: a scripted queue of replies first (e.g. a 429 with ``Retry-After``), then the ``responder``
(default: the caption fixture for a one-group prompt, the feature-evolution fixture when the prompt has a
"Group 2" part).

>>> with FakeOpenAI() as server:                         # doctest: +SKIP
...     client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")
...     client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LLM_DATA = Path(__file__).parents[1] / "data" / "llm"


def fixture(name: str) -> dict[str, Any]:
    """A fixture JSON file of tests/data/llm (``name`` without ``.json``)."""
    return json.loads((LLM_DATA / f"{name}.json").read_text())


@dataclass
class Reply:
    """One HTTP answer: a status, headers and a JSON body (a fixture name or an object)."""

    status: int = 200
    body: dict[str, Any] | str = "caption-ok"
    headers: dict[str, str] = field(default_factory=dict)

    def payload(self, request: dict[str, Any]) -> bytes:
        body = fixture(self.body) if isinstance(self.body, str) else dict(self.body)
        if self.status == 200 and "model" in request:
            body = {**body, "model": request["model"]}
        return json.dumps(body).encode()


@dataclass
class Recorded:
    """One request; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


def user_parts(request: dict[str, Any]) -> list[dict[str, Any]]:
    """The content parts of the request's user message."""
    user = next(m for m in request["messages"] if m["role"] == "user")
    content = user["content"]
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def default_responder(request: dict[str, Any]) -> Reply:
    texts = [p.get("text", "") for p in user_parts(request) if p.get("type") == "text"]
    evolution = any(t.startswith("Group 2") for t in texts)
    return Reply(body="evolution-ok" if evolution else "caption-ok")


class FakeOpenAI:
    """The fake endpoint. ``base_url`` ends in ``/v1`` like OpenAI's; ``script`` replies go first, in order."""

    def __init__(self, responder: Callable[[dict[str, Any]], Reply] = default_responder):
        self.responder = responder
        self.script: list[Reply] = []
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-openai", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat-completion requests so far."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions") and r.body is not None]

    def start(self) -> FakeOpenAI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _next_reply(self, body: dict[str, Any]) -> Reply:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        return self.responder(body)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
                pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                with fake._lock:
                    fake.requests.append(Recorded("POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                if not self.path.rstrip("/").endswith("/chat/completions") or not isinstance(body, dict):
                    self._send(404, json.dumps({"error": {"message": "not found", "type": "invalid_request_error"}})
                               .encode())
                    return
                reply = fake._next_reply(body)
                # Tell the client not to retry by itself (the code under test does its own retries).
                self._send(reply.status, reply.payload(body), {"x-should-retry": "false", **reply.headers})

            def do_GET(self) -> None:  # noqa: N802
                with fake._lock:
                    fake.requests.append(Recorded("GET", self.path, {k.lower(): v for k, v in self.headers.items()}, None))
                self._send(404, b'{"error": {"message": "not found"}}')

        return Handler
