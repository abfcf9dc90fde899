"""The LLM client wrapper against the local fake endpoint: request shape, cache, retries, errors."""

from __future__ import annotations

import base64
import logging
import random
import socket
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest

from neurflow.labelling import llm
from tests.labelling.fake_openai import FakeOpenAI, Reply

KEY = "sk-test-SECRET-4f9a1c"  # recognisable: must never appear in output, logs or files


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


def _messages(image: bytes = b"\xff\xd8fake-jpeg") -> list[dict]:
    url = "data:image/jpeg;base64," + base64.b64encode(image).decode()
    return [
        {"role": "system", "content": "You are an image captioning model."},
        {"role": "user", "content": [{"type": "text", "text": "Describe."},
                                     {"type": "image_url", "image_url": {"url": url, "detail": "low"}}]},
    ]


def _client(fake: FakeOpenAI, tmp_path: Path, sleeps: list[float] | None = None, **kwargs) -> llm.LLMClient:
    recorded = sleeps if sleeps is not None else []
    options = dict(model="fake-vision", base_url=fake.base_url, api_key=KEY, timeout=5.0,
                   retry=llm.RetryPolicy(max_retries=3, base_delay=0.5), cache=llm.ResponseCache(tmp_path / "cache"),
                   sleep=recorded.append, rng=random.Random(0))
    options.update(kwargs)
    return llm.LLMClient(**options)  # type: ignore[arg-type]


def test_request_shape_and_answer(fake: FakeOpenAI, tmp_path: Path) -> None:
    result = _client(fake, tmp_path).complete(_messages(), prompt_version="group-caption-v1", max_tokens=321)
    assert result.text.startswith("Common features:")
    assert not result.cached and result.attempts == 1 and result.model == "fake-vision"
    (request,) = fake.requests
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {KEY}"
    body = request.body
    assert body is not None
    assert body["model"] == "fake-vision" and body["max_tokens"] == 321 and body["temperature"] == 0.0
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    image = body["messages"][1]["content"][1]
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith("data:image/jpeg;base64,")


def test_cache_hit_sends_nothing(fake: FakeOpenAI, tmp_path: Path) -> None:
    client = _client(fake, tmp_path)
    first = client.complete(_messages(), prompt_version="v1")
    second = client.complete(_messages(), prompt_version="v1")
    assert len(fake.requests) == 1
    assert second.cached and second.text == first.text and second.key == first.key
    assert second.created == first.created  # the time of the answer, not of the re-run
    entry = client.cache.path(first.key)  # type: ignore[union-attr]
    assert entry.is_file() and KEY not in entry.read_text()
    # A fresh client (a re-run) reads the same cache: no key needed while every answer is cached.
    again = _client(fake, tmp_path, api_key=None, api_key_env="NEURFLOW_TEST_UNSET_KEY")
    assert again.complete(_messages(), prompt_version="v1").cached
    assert len(fake.requests) == 1


@pytest.mark.parametrize("change", ["image", "prompt", "model", "params"])
def test_cache_key_covers_images_prompt_model(fake: FakeOpenAI, tmp_path: Path, change: str) -> None:
    _client(fake, tmp_path).complete(_messages(), prompt_version="v1")
    client = _client(fake, tmp_path, model="other-model" if change == "model" else "fake-vision")
    client.complete(
        _messages(b"\xff\xd8other-bytes" if change == "image" else b"\xff\xd8fake-jpeg"),
        prompt_version="v2" if change == "prompt" else "v1",
        max_tokens=99 if change == "params" else 500,
    )
    assert len(fake.requests) == 2


def test_no_cache(fake: FakeOpenAI, tmp_path: Path) -> None:
    client = _client(fake, tmp_path, cache=None)
    client.complete(_messages(), prompt_version="v1")
    client.complete(_messages(), prompt_version="v1")
    assert len(fake.requests) == 2
    assert not (tmp_path / "cache").exists()


def test_corrupt_cache_entry_is_ignored(fake: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = _client(fake, tmp_path)
    key = client.key(_messages(), "v1", max_tokens=500, temperature=0.0)
    path = client.cache.path(key)  # type: ignore[union-attr]
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert not client.complete(_messages(), prompt_version="v1").cached
    assert "unreadable cache entry" in caplog.text
    assert client.complete(_messages(), prompt_version="v1").cached


def test_retry_after_429_honours_retry_after(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script += [Reply(429, "error-429", {"Retry-After": "2"}), Reply(429, "error-429", {"retry-after-ms": "250"})]
    sleeps: list[float] = []
    result = _client(fake, tmp_path, sleeps).complete(_messages(), prompt_version="v1")
    assert result.text.startswith("Common features:") and result.attempts == 3
    assert sleeps == [2.0, 0.25]
    assert len(fake.requests) == 3
    assert fake.requests[0].body == fake.requests[2].body  # the same request again


def test_retry_after_429_really_waits(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script.append(Reply(429, "error-429", {"Retry-After": "0.3"}))
    start = time.monotonic()
    result = _client(fake, tmp_path, sleep=time.sleep).complete(_messages(), prompt_version="v1")
    assert time.monotonic() - start >= 0.3
    assert result.attempts == 2


def test_server_errors_back_off_exponentially_then_fail(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script += [Reply(500, "error-500"), Reply(503, "error-500"), Reply(502, "error-500"), Reply(500, "error-500")]
    sleeps: list[float] = []
    with pytest.raises(llm.LLMError, match=r"server error HTTP 500 after 4 attempts"):
        _client(fake, tmp_path, sleeps).complete(_messages(), prompt_version="v1")
    assert len(fake.requests) == 4 and len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):  # base 0.5 * 2**attempt, jitter down to half
        assert 0.25 * 2**attempt <= delay <= 0.5 * 2**attempt


def test_rate_limit_gives_up_with_a_clear_error(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script += [Reply(429, "error-429")] * 3
    with pytest.raises(llm.LLMError, match="rate limited after 3 attempts"):
        _client(fake, tmp_path, retry=llm.RetryPolicy(max_retries=2, base_delay=0.01)).complete(
            _messages(), prompt_version="v1")


def test_refused_key_is_named_by_variable_never_shown(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script.append(Reply(401, "error-401"))
    with pytest.raises(llm.LLMError) as info:
        _client(fake, tmp_path).complete(_messages(), prompt_version="v1")
    assert "refused the API key from $OPENAI_API_KEY" in str(info.value) and KEY not in str(info.value)
    assert len(fake.requests) == 1  # not retried


def test_bad_request_is_not_retried(fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script.append(Reply(400, "error-400"))
    with pytest.raises(llm.LLMError, match=r"rejected the request \(HTTP 400\): Invalid image URL"):
        _client(fake, tmp_path).complete(_messages(), prompt_version="v1")
    assert len(fake.requests) == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_endpoint_names_the_base_url(tmp_path: Path) -> None:
    base_url = f"http://127.0.0.1:{_closed_port()}/v1"
    sleeps: list[float] = []
    client = llm.LLMClient(model="m", base_url=base_url, api_key=KEY, retry=llm.RetryPolicy(max_retries=2),
                           cache=None, sleep=sleeps.append)
    with pytest.raises(llm.EndpointUnreachableError) as info:
        client.complete(_messages(), prompt_version="v1")
    assert base_url in str(info.value) and "cannot be reached" in str(info.value)
    assert len(sleeps) == 2


def test_timeout_is_retried_then_reported(tmp_path: Path) -> None:
    def slow(request: dict) -> Reply:
        time.sleep(1.0)
        return Reply()

    with FakeOpenAI(slow) as server:
        client = _client(server, tmp_path, timeout=0.2, retry=llm.RetryPolicy(max_retries=1, base_delay=0.01))
        with pytest.raises(llm.EndpointUnreachableError, match="timed out"):
            client.complete(_messages(), prompt_version="v1")
        assert len(server.requests) == 2


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_LLM_KEY", raising=False)
    with pytest.raises(llm.MissingKeyError, match="MY_LLM_KEY"):
        llm.resolve_api_key("MY_LLM_KEY")
    monkeypatch.setenv("MY_LLM_KEY", "  ")
    with pytest.raises(llm.MissingKeyError):
        llm.resolve_api_key("MY_LLM_KEY")
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    assert llm.resolve_api_key("MY_LLM_KEY") == KEY


def test_a_server_on_this_machine_needs_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MY_LLM_KEY", raising=False)
    for local in ("http://127.0.0.1:11434/v1", "http://localhost:8000/v1", "http://[::1]:8000/v1"):
        assert llm.resolve_api_key("MY_LLM_KEY", local) == llm.LOCAL_KEY
    for remote in ("https://api.openai.com/v1", "http://10.0.0.5:11434/v1", "http://127.example.com/v1"):
        with pytest.raises(llm.MissingKeyError, match="MY_LLM_KEY"):
            llm.resolve_api_key("MY_LLM_KEY", remote)
    monkeypatch.setenv("MY_LLM_KEY", KEY)
    assert llm.resolve_api_key("MY_LLM_KEY", "http://127.0.0.1:11434/v1") == KEY


def test_key_is_not_in_repr_or_logs(fake: FakeOpenAI, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake.script.append(Reply(429, "error-429", {"Retry-After": "0"}))
    client = _client(fake, tmp_path)
    client.complete(_messages(), prompt_version="v1")
    assert KEY not in repr(client)
    assert caplog.records and KEY not in caplog.text


def test_parse_retry_after() -> None:
    assert llm.parse_retry_after({"Retry-After": "7"}) == 7.0
    assert llm.parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    now = time.time()
    date = formatdate(now + 30, usegmt=True)
    assert 28 <= llm.parse_retry_after({"Retry-After": date}, now=now) <= 31  # type: ignore[operator]
    assert llm.parse_retry_after({"Retry-After": "soon"}) is None
    assert llm.parse_retry_after({}) is None and llm.parse_retry_after(None) is None


def test_retry_policy_delays() -> None:
    policy = llm.RetryPolicy(base_delay=1.0, max_delay=10.0, jitter=0.5)
    rng = random.Random(1)
    delays = [policy.delay(attempt, rng=rng) for attempt in range(6)]
    for attempt, delay in enumerate(delays):
        top = min(10.0, 2.0**attempt)
        assert top / 2 <= delay <= top
    assert policy.delay(0, retry_after=3.5) == 3.5
    assert policy.delay(0, retry_after=3600) == 10.0  # capped


def test_base_url_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(llm.BASE_URL_ENV, raising=False)
    assert llm.resolve_base_url() == llm.DEFAULT_BASE_URL
    monkeypatch.setenv(llm.BASE_URL_ENV, "http://127.0.0.1:11434/v1/")
    assert llm.resolve_base_url() == "http://127.0.0.1:11434/v1"
    assert llm.resolve_base_url("http://other/v1") == "http://other/v1"


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(llm.CACHE_ENV, str(tmp_path / "c"))
    assert llm.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv(llm.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert llm.default_cache_dir() == tmp_path / "xdg" / "neurflow" / "llm"
