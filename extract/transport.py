"""Getting one request to the server and back: the Transport protocol, the pooled httpx transport, the
retry policy (which failures are worth sending again, and how long to wait) and the status -> error map.

The retry loop itself lives in the engine's generator (so sync and async share it); this module only
answers the questions the loop asks.
"""

from __future__ import annotations

import asyncio
import email.utils
import http.cookiejar
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import httpx
import orjson

from extract.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    redact,
)
from extract.ratelimit import parse_duration

__all__ = [
    "HttpTransport",
    "RetryPolicy",
    "Transport",
    "WireRequest",
    "WireResponse",
    "error_fields",
    "error_from_response",
    "retry_delay",
    "should_retry",
]

CEREBRAS_BASE_URL = "https://api.cerebras.ai/v1"
RETRY_AFTER_CAP_S = 60.0
_RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(slots=True)
class WireRequest:
    """One chat-completions call as data: the engine builds it, a Transport sends it."""

    path: str
    body: dict[str, Any]
    reserved_tokens: int = 0


@dataclass(slots=True)
class WireResponse:
    """What came back, whatever the status; `data` is the decoded JSON body when it was JSON."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    data: Any | None = None


@runtime_checkable
class Transport(Protocol):
    """Anything that can carry a WireRequest: HTTP to a server, or an in-process model."""

    def send(self, request: WireRequest, timeout: float) -> WireResponse: ...

    async def asend(self, request: WireRequest, timeout: float) -> WireResponse: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times a transport failure is retried and how the wait grows (min(initial*2^n, cap))."""

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)


def should_retry(status_code: int | None, headers: Mapping[str, str]) -> bool:
    """Whether a failure is transient. `status_code` None means no response (connection error, timeout)."""
    hint = headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    if status_code is None:
        return True
    return status_code in _RETRYABLE_STATUS or status_code >= 500


def _parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        seconds = when.timestamp() - now
        return max(seconds, 0.0)
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _ratelimit_reset(headers: Mapping[str, str]) -> float | None:
    """Seconds until a 429's bucket refills, from x-ratelimit-reset-*: the longest reset among buckets
    reported empty, else (no remaining counts given) the soonest reset, since some bucket ran out."""
    exhausted: list[float] = []
    unknown: list[float] = []
    for name, value in headers.items():
        if not name.startswith("x-ratelimit-reset-"):
            continue
        seconds = parse_duration(value)
        if seconds is None:
            continue
        remaining = headers.get("x-ratelimit-remaining-" + name.removeprefix("x-ratelimit-reset-"))
        if remaining is None:
            unknown.append(seconds)
        elif remaining.strip() in {"0", "0.0"}:
            exhausted.append(seconds)
    if exhausted:
        return max(exhausted)
    return min(unknown) if unknown else None


def retry_delay(
    retry_index: int,
    status_code: int | None,
    headers: Mapping[str, str],
    policy: RetryPolicy,
    *,
    now: float | None = None,
) -> float:
    """Seconds to wait before retry number `retry_index` (0-based): the server's word first, else backoff."""
    hinted = _parse_retry_after(headers, time.time() if now is None else now)
    if hinted is None and status_code == 429:
        hinted = _ratelimit_reset(headers)
    if hinted is not None:
        return min(hinted, RETRY_AFTER_CAP_S)
    base = min(policy.initial_delay * (2.0**retry_index), policy.max_delay)
    return base * (1.0 - 0.25 * policy.rng.random())


def error_fields(data: Any) -> dict[str, str | None]:
    """Pull message/type/param/code from either Cerebras shape (flat 4xx, enveloped 5xx) or OpenAI's."""
    if not isinstance(data, dict):
        return {}
    inner = data.get("error")
    if isinstance(inner, dict):
        data = inner
    elif isinstance(inner, str) and "message" not in data:
        data = {"message": inner}
    elif "detail" in data and "message" not in data:
        data = {"message": str(data["detail"])}
    out: dict[str, str | None] = {}
    for key in ("message", "type", "param", "code"):
        value = data.get(key)
        out[key] = str(value) if value not in (None, "") else None
    return out


_ADVICE: dict[int, tuple[type[APIError], str]] = {
    400: (BadRequestError, "the server refused the request; check the parameters and the schema"),
    401: (
        AuthenticationError,
        "check CEREBRAS_API_KEY (or the api_key you passed) and that it matches the base_url",
    ),
    403: (PermissionDeniedError, "this key may not use this model or feature; pick another model or key"),
    404: (NotFoundError, "check base_url (it should end in /v1) and the model name"),
    408: (APITimeoutError, "the server timed out the request; try again later or raise the timeout"),
    409: (ServerError, "the server reported a conflict; try again later"),
    422: (BadRequestError, "the server could not process the request; check the parameters and the schema"),
    429: (
        RateLimitError,
        "the rate limit is exhausted; lower concurrency, pass a limiter, or raise max_retries",
    ),
}


def error_from_response(response: WireResponse, *, secrets: tuple[str | None, ...] = ()) -> APIError:
    """The error a caller sees for a failed status, with the server's words (keys redacted) and advice."""
    status = response.status_code
    fields = error_fields(response.data)
    server_message = fields.get("message")
    if server_message is None and response.body:
        server_message = response.body[:500].decode("utf-8", "replace").strip() or None
    if server_message is not None:
        server_message = redact(server_message, *secrets)
    cls, advice = _ADVICE.get(status, (ServerError, "the server failed; try again later"))
    if 400 <= status < 500 and status not in _ADVICE:
        cls, advice = BadRequestError, "the server refused the request"
    said = f": {server_message}" if server_message else ""
    return cls(
        f"HTTP {status}{said} ({advice})",
        status_code=status,
        code=fields.get("code"),
        type=fields.get("type"),
        param=fields.get("param"),
        server_message=server_message,
        body=redact(response.body.decode("utf-8", "replace"), *secrets) if response.body else None,
    )


def _decode(content: bytes, content_type: str) -> Any | None:
    if not content or ("json" not in content_type and content[:1] not in (b"{", b"[")):
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


class _NoCookies(http.cookiejar.CookieJar):
    """An API client has no use for cookies; httpx would otherwise parse every response's headers for them."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class _Shards:
    """Several small AsyncClients on one event loop, each request sent through the least busy one.

    httpcore scans its whole pool for every queued request, so one client with hundreds of connections
    spends most of a batch's CPU in that scan (measured: ~95% at concurrency 256). Shards of a few
    connections keep the scan short; a sequential caller always lands on the first shard, so it keeps
    reusing one warm connection.
    """

    __slots__ = ("busy", "clients", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, clients: list[httpx.AsyncClient]) -> None:
        self.loop = loop
        self.clients = clients
        self.busy = [0] * len(clients)

    def pick(self) -> int:
        busy = self.busy
        return busy.index(min(busy))


_SHARD_CONNECTIONS = 8


class HttpTransport:
    """Chat completions over pooled keep-alive httpx clients (one sync client; sharded async clients per loop).

    Clients are built on first use so a sync-only program never creates an AsyncClient. An AsyncClient is
    bound to the event loop that first used it, so a set is kept per running loop: the module-level
    `aextract` then works across successive `asyncio.run` calls.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 512,
        connect_timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": "extract-python",
        }
        if api_key:
            self._headers["authorization"] = f"Bearer {api_key}"
        if headers:
            self._headers.update({k.lower(): v for k, v in headers.items()})
        self._limits = httpx.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=30.0,
        )
        per_shard = min(_SHARD_CONNECTIONS, max_connections)
        self._shard_count = max(1, -(-max_connections // per_shard))
        self._shard_limits = httpx.Limits(
            max_connections=per_shard, max_keepalive_connections=per_shard, keepalive_expiry=30.0
        )
        self._connect_timeout = connect_timeout
        self._timeouts: dict[float, httpx.Timeout] = {}
        self._client: httpx.Client | None = None
        self._aclients: dict[int, _Shards] = {}

    def __repr__(self) -> str:
        return f"HttpTransport(base_url={self.base_url!r}, api_key={'***' if self._api_key else None})"

    def _timeout(self, timeout: float) -> httpx.Timeout:
        cached = self._timeouts.get(timeout)
        if cached is None:
            cached = self._timeouts[timeout] = httpx.Timeout(
                timeout, connect=min(self._connect_timeout, timeout)
            )
        return cached

    def _sync_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            client = self._client = httpx.Client(
                headers=self._headers, limits=self._limits, cookies=_NoCookies()
            )
        return client

    def _shards(self) -> _Shards:
        loop = asyncio.get_running_loop()
        shards = self._aclients.get(id(loop))
        if shards is not None and shards.loop is loop:
            return shards
        # Drop clients whose loop has closed: their connections died with it.
        for key, old in list(self._aclients.items()):
            if old.loop.is_closed():
                del self._aclients[key]
        # One TLS context for all shards: building one reads the CA bundle (~20 ms each).
        tls = httpx.create_ssl_context()
        clients = [
            httpx.AsyncClient(
                headers=self._headers, limits=self._shard_limits, cookies=_NoCookies(), verify=tls
            )
            for _ in range(self._shard_count)
        ]
        shards = self._aclients[id(loop)] = _Shards(loop, clients)
        return shards

    def _failure(self, exc: httpx.HTTPError) -> APIConnectionError:
        detail = redact(str(exc) or type(exc).__name__, self._api_key)
        if isinstance(exc, httpx.TimeoutException):
            return APITimeoutError(
                f"no answer from {self.base_url} within the timeout ({detail}); "
                "raise timeout= or try again later"
            )
        return APIConnectionError(
            f"could not reach {self.base_url} ({type(exc).__name__}: {detail}); "
            "check base_url and the network, or try again later"
        )

    def _wrap(self, response: httpx.Response) -> WireResponse:
        content = response.content
        # raw pairs are already lower-case bytes on HTTP/1.1; decoding them here skips httpx's per-item work
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers.raw}
        return WireResponse(
            response.status_code, headers, content, _decode(content, headers.get("content-type", ""))
        )

    def send(self, request: WireRequest, timeout: float) -> WireResponse:
        try:
            response = self._sync_client().post(
                self.base_url + request.path,
                content=orjson.dumps(request.body),
                timeout=self._timeout(timeout),
            )
        except httpx.HTTPError as exc:
            raise self._failure(exc) from None
        return self._wrap(response)

    async def asend(self, request: WireRequest, timeout: float) -> WireResponse:
        shards = self._shards()
        index = shards.pick()
        shards.busy[index] += 1
        try:
            response = await shards.clients[index].post(
                self.base_url + request.path,
                content=orjson.dumps(request.body),
                timeout=self._timeout(timeout),
            )
        except httpx.HTTPError as exc:
            raise self._failure(exc) from None
        finally:
            shards.busy[index] -= 1
        return self._wrap(response)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        loop = asyncio.get_running_loop()
        for key, shards in list(self._aclients.items()):
            if shards.loop is loop:
                for client in shards.clients:
                    await client.aclose()
                del self._aclients[key]
        self.close()
