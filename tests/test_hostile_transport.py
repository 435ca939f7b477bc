"""A hostile server cannot make the HTTP transport hang, run out of memory, wait for ever or leak the key.

Everything runs over real HTTP on 127.0.0.1: small raw-socket servers (tests/_raw_servers.py) for what
no well-behaved server would send, the project's TestServer for scripted 429s. Every test that could hang
before the fix carries a pytest timeout, so a hang is a failure, not a stuck run.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import logging
import math
import subprocess
import sys
import textwrap
import types
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from extract._engine import drive
from extract.core import Extractor
from extract.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    BadRequestError,
    ConfigurationError,
    ExtractionFailed,
    InputError,
    ResponseTooLargeError,
    ServerError,
    UnreadableResponseError,
)
from extract.ratelimit import RateLimiter
from extract.testing import Fault, TestServer
from extract.transports import HttpTransport, RetryPolicy, WireRequest, check_base_url
from tests._raw_servers import (
    COMPLETION,
    RawServer,
    chunked_endless,
    drip,
    endless,
    fixed,
    huge_length,
    read_request,
    slowloris,
)

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
REQUEST = WireRequest("/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
REPO = Path(__file__).resolve().parent.parent


def send_sync(transport: HttpTransport, timeout: float = 10.0) -> Any:
    try:
        return transport.send(REQUEST, timeout)
    finally:
        transport.close()


def send_async(transport: HttpTransport, timeout: float = 10.0) -> Any:
    async def go() -> Any:
        try:
            return await transport.asend(REQUEST, timeout)
        finally:
            await transport.aclose()

    return asyncio.run(go())


SENDERS = [pytest.param(send_sync, id="sync"), pytest.param(send_async, id="async")]


# ---- the body size cap ------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("send", SENDERS)
@pytest.mark.parametrize("handler", [endless, chunked_endless], ids=["endless", "chunked-endless"])
def test_endless_bodies_stop_at_the_cap(send: Any, handler: Any) -> None:
    with RawServer(handler) as server:
        transport = HttpTransport(server.base_url, max_response_bytes=1_000_000)
        with pytest.raises(ResponseTooLargeError, match="max_response_bytes=1000000") as info:
            send(transport)
    assert info.value.status_code == 200


@pytest.mark.timeout(30)
@pytest.mark.parametrize("send", SENDERS)
def test_content_length_over_the_cap_is_refused_before_reading(send: Any) -> None:
    with (
        RawServer(huge_length) as server,
        pytest.raises(ResponseTooLargeError, match="announces 10000000000 bytes"),
    ):
        send(HttpTransport(server.base_url))


def test_a_body_at_the_cap_is_read_whole() -> None:
    with RawServer(fixed(200, COMPLETION)) as server:
        reply = send_sync(HttpTransport(server.base_url, max_response_bytes=len(COMPLETION)))
    assert reply.status_code == 200 and reply.data["choices"][0]["message"]["content"]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "16M"])
def test_a_bad_cap_is_a_configuration_error(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_response_bytes"):
        HttpTransport("http://127.0.0.1:9/v1", max_response_bytes=bad)


@pytest.mark.timeout(30)
def test_oversized_body_is_not_retried_by_the_engine() -> None:
    with RawServer(endless) as server:
        extractor = Extractor(base_url=server.base_url, api_key="k", model="m", max_retries=2)
        extractor._transport = HttpTransport(server.base_url, "k", max_response_bytes=100_000)
        with pytest.raises(ResponseTooLargeError):
            extractor.extract(SCHEMA, "Ada")
    assert len(server.requests) == 1


_MEMORY_CHILD = textwrap.dedent(
    """
    import resource, sys
    limit = 1536 * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    from extract.errors import ResponseTooLargeError
    from extract.transports import HttpTransport, WireRequest
    transport = HttpTransport(sys.argv[1])  # the default cap
    request = WireRequest("/chat/completions", {"model": "m", "messages": []})
    for _ in range(3):
        try:
            transport.send(request, 60.0)
        except ResponseTooLargeError as exc:
            print("capped:", exc.status_code)
        else:
            print("read the whole endless body?!")
            sys.exit(2)
    """
)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("handler", [endless, chunked_endless], ids=["endless", "chunked-endless"])
def test_endless_body_under_an_address_space_limit(handler: Any) -> None:
    """An unbounded read dies here (MemoryError or the kernel); a capped one prints 'capped' three times."""
    if not hasattr(__import__("resource"), "RLIMIT_AS"):
        pytest.skip("RLIMIT_AS is not available on this platform")
    with RawServer(handler) as server:
        done = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, server.base_url],
            capture_output=True,
            text=True,
            timeout=110,
            cwd=REPO,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("capped: 200") == 3


# ---- the whole-call deadline ------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("send", SENDERS)
@pytest.mark.parametrize("handler", [drip, slowloris], ids=["slow-drip-body", "slowloris-headers"])
def test_trickling_server_is_cut_at_the_deadline(send: Any, handler: Any) -> None:
    """Before: a 0.25 s/byte drip of a valid reply was waited for over a minute with timeout=3."""
    with RawServer(handler) as server, pytest.raises(APITimeoutError, match=r"within the timeout of 1\.5 s"):
        send(HttpTransport(server.base_url), 1.5)


@pytest.mark.timeout(30)
def test_the_deadline_reaches_extract_as_a_timeout_error() -> None:
    with RawServer(drip) as server:
        extractor = Extractor(base_url=server.base_url, api_key="k", model="m", timeout=1.0, max_retries=0)
        with pytest.raises(APITimeoutError):
            extractor.extract(SCHEMA, "Ada")


@pytest.mark.timeout(30)
def test_a_fast_server_is_unaffected_by_the_deadline_on_pooled_connections() -> None:
    with TestServer() as server:
        transport = HttpTransport(server.base_url)
        body = {"model": "llama3.1-8b", "messages": [{"role": "user", "content": "hi"}]}
        try:
            for _ in range(5):
                assert transport.send(WireRequest("/chat/completions", body), 5.0).status_code == 200
        finally:
            transport.close()


# ---- malformed base URLs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://exa mple.com", "whitespace"),
        ("localhost:8080", "no scheme"),
        ("127.0.0.1:8080/v1", "no scheme"),
        ("ftp://x", "scheme 'ftp'"),
        ("http://", "no host"),
        ("http://[::1", "not a valid URL"),
        ("", "empty"),
        ("https://api.example.com/v1?key=1", "query"),
    ],
)
def test_malformed_base_url_is_a_configuration_error_at_construction(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem) as info:
        Extractor(base_url=url, api_key="k", model="m")
    assert "expected an absolute http(s) URL" in str(info.value)
    with pytest.raises(ConfigurationError, match=problem):
        HttpTransport(url)


def test_base_url_is_normalised() -> None:
    assert HttpTransport("  http://127.0.0.1:8080/v1/ ").base_url == "http://127.0.0.1:8080/v1"


def test_http_transport_carries_its_provider() -> None:
    assert HttpTransport("http://127.0.0.1:9/v1").provider is None
    assert HttpTransport("http://127.0.0.1:9/v1", provider="llamacpp").provider == "llamacpp"


# ---- a 200 that is not a chat completion ------------------------------------------------------------------

_NOT_JSON = [
    pytest.param(b"<html><body>Bad gateway</body></html>", "text/html", "HTML", id="html"),
    pytest.param(b'{"choices": "\xff\xfe"}', "application/json", "not valid UTF-8", id="invalid-utf8"),
    pytest.param(b"OK, the server is up", "text/plain", "not a JSON object", id="plain-text"),
    pytest.param(b"", "application/json", "empty body", id="empty"),
    pytest.param(b"[1, 2]", "application/json", "not a JSON object", id="json-list"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("body", "content_type", "why"), _NOT_JSON)
def test_a_200_that_is_not_json_is_a_retried_server_fault(body: bytes, content_type: str, why: str) -> None:
    """Before: reported as 'the reply was empty' and re-asked of the model."""
    with RawServer(fixed(200, body, {"Content-Type": content_type})) as server:
        extractor = Extractor(base_url=server.base_url, api_key="k", model="m")
        extractor._retry = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
        with pytest.raises(UnreadableResponseError) as info:
            extractor.extract(SCHEMA, "Ada")
    message = str(info.value)
    assert why in message and "HTTP 200" in message and content_type in message
    assert "empty" not in message or why == "empty body"
    assert isinstance(info.value, ServerError) and not isinstance(info.value, ExtractionFailed)
    assert len(server.requests) == 3  # one try and two transport retries, no re-ask


@pytest.mark.timeout(30)
def test_an_html_200_then_a_good_reply_succeeds_without_a_reask() -> None:
    answers = iter([b"<html>maintenance</html>", COMPLETION])

    def handler(conn: Any, request: bytes) -> None:
        body = next(answers)
        kind = "text/html" if body.startswith(b"<") else "application/json"
        conn.sendall(
            f"HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )

    with RawServer(handler) as server:
        extractor = Extractor(base_url=server.base_url, api_key="k", model="m")
        extractor._retry = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)
        result = extractor.extract(SCHEMA, "Ada", full=True)
    assert result.value == {"name": "Ada"}
    assert len(result.attempts) == 1 and len(server.requests) == 2


# ---- absurd server-given waits ----------------------------------------------------------------------------

ABSURD = {
    "999999": 60.0,
    "1e308": 60.0,
    "Wed, 21 Oct 2099 07:28:00 GMT": 60.0,
    "-5": None,
    "nan": None,
    "inf": None,
    "soon, maybe": None,
    "9" * 400: None,
}


class FakeTime:
    """A clock that moves only when the engine sleeps, so a 60 s wait costs nothing and is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if not (math.isfinite(seconds) and seconds >= 0):
            raise OverflowError(f"sleep({seconds})")
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def fake_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTime]:
    fake = FakeTime()
    monkeypatch.setattr(drive, "time", types.SimpleNamespace(sleep=fake.sleep))
    monkeypatch.setattr(drive, "asyncio", types.SimpleNamespace(sleep=fake.asleep))
    yield fake


def _throttled_once(value: str) -> Fault:
    return Fault("rate_limited", status=429, headers=(("retry-after", value),), text="request_quota_exceeded")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("use_limiter", [False, True], ids=["transport", "with-limiter"])
@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("value", list(ABSURD), ids=lambda v: v[:20])
def test_absurd_retry_after_is_capped_or_ignored(
    fake_time: FakeTime, value: str, use_limiter: bool, is_async: bool
) -> None:
    """Before: with the limiter, 999999 blocked every later call for 11 days and 1e308 raised
    OverflowError (sync) or hung (async)."""
    limiter = RateLimiter(clock=fake_time.clock, probe=False) if use_limiter else None
    with TestServer(api_key="sk-test") as server:
        server.script(_throttled_once(value))
        extractor = Extractor(
            base_url=server.base_url, api_key="sk-test", model="llama3.1-8b", limiter=limiter
        )
        if is_async:
            result = asyncio.run(extractor.aextract(SCHEMA, "Ada", full=True))
        else:
            result = extractor.extract(SCHEMA, "Ada", full=True)
        assert result.value["name"]
        assert server.request_count == 2
        if limiter is not None:
            # the next document is not held back by the absurd value either
            assert limiter.reserve(100) <= 60.0
    expected = ABSURD[value]
    assert fake_time.sleeps, "a 429 must be followed by a wait"
    assert all(0 <= s <= 60.0 for s in fake_time.sleeps)
    if expected is not None:
        assert max(fake_time.sleeps) == pytest.approx(expected)
    else:  # ignored: the transport's own backoff (under 1 s for a first retry)
        assert max(fake_time.sleeps) < 1.0


@pytest.mark.timeout(60)
def test_a_smaller_configured_cap_is_honoured(fake_time: FakeTime) -> None:
    limiter = RateLimiter(clock=fake_time.clock, probe=False, max_wait=2.0)
    with TestServer(api_key="sk-test") as server:
        server.script(_throttled_once("999999"))
        extractor = Extractor(
            base_url=server.base_url, api_key="sk-test", model="llama3.1-8b", limiter=limiter
        )
        extractor._retry = RetryPolicy(max_server_wait=2.0)
        extractor.extract(SCHEMA, "Ada")
    assert max(fake_time.sleeps) == pytest.approx(2.0)


@pytest.mark.parametrize(
    "headers",
    [
        {
            "x-ratelimit-reset-tokens-minute": "1e308",
            "x-ratelimit-remaining-tokens-minute": "0",
            "x-ratelimit-limit-tokens-minute": "1000",
        },
        {
            "x-ratelimit-reset-tokens-minute": "6m0s",
            "x-ratelimit-remaining-tokens-minute": "0",
            "x-ratelimit-limit-tokens-minute": "1e309",
        },
        {
            "x-ratelimit-reset-requests-day": "nan",
            "x-ratelimit-remaining-requests-day": "0",
            "x-ratelimit-limit-requests-day": "inf",
        },
        {"retry-after-ms": "1e308"},
    ],
)
def test_absurd_rate_limit_headers_never_give_an_unbounded_wait(headers: dict[str, str]) -> None:
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock, probe=False)
    assert limiter.reserve(10) == 0.0
    limiter.observe(429, headers, None, 10)
    for _ in range(50):
        wait = limiter.reserve(10)
        assert math.isfinite(wait) and 0 <= wait <= 60.0
        if wait == 0:
            break
        fake.sleep(wait)
    else:
        pytest.fail("the limiter never let the next request through")


# ---- the key never leaks through an error ------------------------------------------------------------------

CANARY = "sk-canary-7f3a9c1e5b"


def _echo_key(status: int, envelope: bool) -> Any:
    """A server that puts the bearer key it received into every field of its error, and a header."""

    def handler(conn: Any, request: bytes) -> None:
        head = request.partition(b"\r\n\r\n")[0].decode("latin-1")
        key = next(
            line.split("Bearer ", 1)[1].strip()
            for line in head.split("\r\n")
            if line.lower().startswith("authorization:")
        )
        fields = {
            "message": f"bad key {key}",
            "type": f"type-{key}",
            "param": f"param-{key}",
            "code": f"code-{key}",
            "nested": {"echo": [key, {"deeper": key}]},
        }
        body = orjson.dumps({"status_code": status, "error": fields} if envelope else fields)
        conn.sendall(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Echo: {key}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    return handler


def _everything(value: Any) -> Iterator[str]:
    """Every string reachable from an error: its attributes, args, and what they hold."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode("utf-8", "replace")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _everything(k)
            yield from _everything(v)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _everything(v)
    elif isinstance(value, BaseException):
        yield str(value)
        yield repr(value)
        yield from _everything(value.args)
        yield from _everything(vars(value))
    elif value is not None and not isinstance(value, (int, float)):
        yield repr(value)


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    ("status", "envelope", "kind"),
    [(400, False, BadRequestError), (503, True, ServerError)],
    ids=["400-flat", "503-envelope"],
)
def test_an_echoed_key_is_in_no_field_of_the_error(
    status: int, envelope: bool, kind: type[APIError], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with RawServer(_echo_key(status, envelope)) as server:
        extractor = Extractor(base_url=server.base_url, api_key=CANARY, model="m")
        extractor._retry = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.02)
        with pytest.raises(kind) as info:
            extractor.extract(SCHEMA, "Ada")
        logging.getLogger("test").error("failed", exc_info=info.value)
    assert server.requests and CANARY.encode() in server.requests[0]  # the server did receive it
    error = info.value
    assert error.code and error.param and error.type and error.body and error.headers  # fields are filled
    assert "***" in error.code and "***" in error.param and "***" in error.headers["x-echo"]
    leaked = [text for text in _everything(error) if CANARY in text]
    assert not leaked, leaked
    # our log lines, and an application logging the error with its traceback (httpcore's own DEBUG trace of
    # raw response headers is the HTTP library's business, not shown here)
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("extract", "test")]
    assert any(r.name == "test" for r in ours)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    assert not [line for line in map(formatter.format, ours) if CANARY in line]


@pytest.mark.timeout(30)
def test_the_key_is_redacted_from_connection_errors() -> None:
    with RawServer(slowloris) as server:
        transport = HttpTransport(server.base_url, CANARY)
        with pytest.raises(APITimeoutError) as info:
            send_sync(transport, 0.5)
    assert not [text for text in _everything(info.value) if CANARY in text]
    assert CANARY not in repr(transport)


def test_raw_request_reader_handles_a_body() -> None:
    """The helper servers read the whole request before answering (else the client sees a reset)."""
    with RawServer(fixed(200, COMPLETION)) as server:
        send_sync(HttpTransport(server.base_url))
    assert server.requests[0].endswith(b"]}") and read_request is not None


# ---- compressed bodies: the cap holds for what is inflated -------------------------------------------------


def _gzip(data: bytes, level: int = 9) -> bytes:
    return gzip.compress(data, compresslevel=level)


@functools.cache
def _bomb() -> bytes:
    return _gzip(b"\0" * (64 * 2**20), level=1)  # ~280 KB on the wire, 64 MiB inflated


@pytest.mark.timeout(60)
@pytest.mark.parametrize("send", SENDERS)
def test_a_gzip_bomb_stops_at_the_cap(send: Any) -> None:
    bomb = _bomb()
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with (
        RawServer(fixed(200, bomb, headers)) as server,
        pytest.raises(ResponseTooLargeError, match="while streaming"),
    ):
        send(HttpTransport(server.base_url, max_response_bytes=1_000_000))


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_replies_are_read(encoding: str) -> None:
    if encoding == "gzip":
        body, name = _gzip(COMPLETION), "gzip"
    elif encoding == "deflate":
        body, name = zlib.compress(COMPLETION), "deflate"
    else:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body, name = packer.compress(COMPLETION) + packer.flush(), "deflate"
    headers = {"Content-Type": "application/json", "Content-Encoding": name}
    with RawServer(fixed(200, body, headers)) as server:
        reply = send_sync(HttpTransport(server.base_url, max_response_bytes=len(COMPLETION)))
    assert reply.body == COMPLETION and reply.data["id"] == "chatcmpl-raw"


@pytest.mark.timeout(30)
def test_a_corrupt_gzip_body_is_a_connection_error() -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with (
        RawServer(fixed(200, b"\x1f\x8b\x08\x00garbage-not-gzip", headers)) as server,
        pytest.raises(APIConnectionError, match="corrupt gzip body"),
    ):
        send_sync(HttpTransport(server.base_url))


@pytest.mark.timeout(30)
def test_the_deadline_holds_through_a_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy named by HTTP_PROXY gets its own httpx pool; it must be bounded by the deadline too."""
    with RawServer(drip) as proxy:
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        with pytest.raises(APITimeoutError):
            send_sync(HttpTransport("http://127.0.0.1:9/v1"), 1.0)  # nothing listens on :9; the proxy answers
        assert proxy.requests and b"127.0.0.1:9" in proxy.requests[0]


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://api.cerebras.ai/v1", "https://api.cerebras.ai/v1"),
        ("http://localhost:8080/v1/", "http://localhost:8080/v1"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("HTTP://127.0.0.1:8080/v1", "HTTP://127.0.0.1:8080/v1"),
    ],
)
def test_wellformed_base_urls_are_accepted(url: str, normal: str) -> None:
    assert check_base_url(url) == normal


@pytest.mark.parametrize("send", SENDERS)
def test_a_body_json_cannot_carry_is_an_input_error(send: Any) -> None:
    """Before: a lone surrogate in the text raised orjson's raw TypeError from the transport."""
    request = WireRequest("/chat/completions", {"messages": [{"role": "user", "content": "Ada \udcff"}]})

    async def asend(transport: HttpTransport) -> Any:
        try:
            return await transport.asend(request, 5.0)
        finally:
            await transport.aclose()

    with RawServer(fixed(200, COMPLETION)) as server:
        transport = HttpTransport(server.base_url)
        with pytest.raises(InputError, match="lone surrogate"):
            if send is send_sync:
                transport.send(request, 5.0)
            else:
                asyncio.run(asend(transport))
        transport.close()
    assert not server.requests
