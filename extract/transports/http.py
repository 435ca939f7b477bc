"""Chat completions over HTTP: the pooled httpx transport.

Three bounds hold for every call, whatever the server does: `timeout` is a deadline for the whole call
(connect, send, headers, body), the body is read as a stream and refused past `max_response_bytes`, and
a base URL that cannot work is refused when the transport is built, not on the first request.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import math
import sys
import time
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import orjson

from extract.errors import (
    APIConnectionError,
    APITimeoutError,
    ConfigurationError,
    InputError,
    ResponseTooLargeError,
    redact,
)
from extract.transports._deadline import DEADLINE, DeadlineBackend
from extract.transports.base import StreamStart, WireRequest, WireResponse
from extract.transports.encoding import encode_body

__all__ = ["CEREBRAS_BASE_URL", "DEFAULT_MAX_RESPONSE_BYTES", "HttpTransport", "check_base_url"]

CEREBRAS_BASE_URL = "https://api.cerebras.ai/v1"

# The largest legitimate reply is a completion at a model's output limit (tens of thousands of tokens,
# well under 1 MiB of JSON) or the same with per-token logprobs (top-20 alternatives multiply it ~30x,
# a few MiB). 16 MiB leaves room for both and still bounds what one request can make the client hold.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024

_INFLATE_STEP = 1 << 20  # bytes inflated per step: the cap plus at most this is held at once

_EXPECTED = "expected an absolute http(s) URL such as https://api.cerebras.ai/v1 or http://127.0.0.1:8080/v1"


def check_base_url(base_url: str) -> str:
    """`base_url` without surrounding whitespace or a trailing slash, or a ConfigurationError naming
    what is wrong with it and the form expected."""
    if not isinstance(base_url, str):
        raise ConfigurationError(f"base_url must be a string, not {type(base_url).__name__}; {_EXPECTED}")
    text = base_url.strip()
    if not text:
        raise ConfigurationError(f"base_url is empty; {_EXPECTED}")
    if any(c.isspace() for c in text):
        raise ConfigurationError(f"base_url {base_url!r} contains whitespace; {_EXPECTED}")
    if "://" not in text:
        raise ConfigurationError(f"base_url {base_url!r} has no scheme (http:// or https://); {_EXPECTED}")
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ConfigurationError(f"base_url {base_url!r} is not a valid URL ({exc}); {_EXPECTED}") from None
    if url.scheme not in ("http", "https"):
        raise ConfigurationError(
            f"base_url {base_url!r} has scheme {url.scheme!r}, not http or https; {_EXPECTED}"
        )
    if not url.host:
        raise ConfigurationError(f"base_url {base_url!r} has no host; {_EXPECTED}")
    if url.port is not None and not 0 < url.port < 65536:
        raise ConfigurationError(f"base_url {base_url!r} has port {url.port}, outside 1-65535; {_EXPECTED}")
    if url.query or url.fragment:
        raise ConfigurationError(f"base_url {base_url!r} must not carry a query or fragment; {_EXPECTED}")
    return text.rstrip("/")


_SPACE = b" \t\r\n"


def _carries_logprobs(content: bytes) -> bool:
    """A `"logprobs"` key with an object value (OpenAI's servers send `"logprobs": null` in every reply);
    only a cue for the decoder to pick, which gives the same value either way."""
    at = content.find(b'"logprobs"')
    while at >= 0:
        rest = content[at + 10 : at + 64].lstrip(_SPACE)
        if rest[:1] == b":" and rest[1:].lstrip(_SPACE)[:1] == b"{":
            return True
        at = content.find(b'"logprobs"', at + 10)
    return False


def _decode(content: bytes, content_type: str) -> Any | None:
    if not content or ("json" not in content_type and content[:1] not in (b"{", b"[")):
        return None
    if _carries_logprobs(content):  # most of such a reply is its tokens: decoded into compact records
        from extract._logprobs import decode_reply

        data = decode_reply(content)
        if data is not None:
            return data
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return None


def _encode(body: dict[str, Any]) -> bytes:
    """The request body as JSON bytes; a value JSON cannot carry is the caller's input, not a crash."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError as exc:
        raise InputError(
            f"the request could not be encoded as JSON ({exc}); a text or option holds something JSON cannot "
            "carry, such as a lone surrogate ('\\udcff', from bytes decoded with errors='surrogateescape'): "
            "decode the input with errors='replace' or pass only str, numbers, lists and dicts"
        ) from None


def _wire_body(request: WireRequest) -> tuple[bytes, dict[str, str] | None, str]:
    """The bytes to send, the headers that differ from the client's JSON defaults, and the encoding's name.

    The body is serialised to JSON once: its size picks the encoding (`request.payload`), and the same bytes
    are sent, or compressed, when the choice is JSON or gzip.
    """
    data = _encode(request.body)
    policy = request.payload
    if policy is None:
        return data, None, "json"
    chosen = policy.choose(len(data))
    if chosen == "json":
        return data, None, "json"
    encoded = encode_body(request.body, chosen, json_bytes=data)
    return encoded.content, {k.lower(): v for k, v in encoded.headers.items()}, chosen


def _stream_headers(extra: dict[str, str] | None) -> dict[str, str]:
    return {**(extra or {}), "accept": "text/event-stream, application/json"}


def _is_event_stream(status: int, headers: Mapping[str, str]) -> bool:
    return 200 <= status < 300 and "event-stream" in headers.get("content-type", "")


async def _before(deadline: float, step: Any) -> Any:
    """Await `step`, or raise asyncio.TimeoutError when the call's deadline passes first."""
    remaining = deadline - asyncio.get_running_loop().time()
    if remaining <= 0:
        if hasattr(step, "close"):
            step.close()
        raise asyncio.TimeoutError
    return await asyncio.wait_for(step, remaining)


class _NoCookies(http.cookiejar.CookieJar):
    """An API client has no use for cookies; httpx would otherwise parse every response's headers for them."""

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class _Body:
    """The response body, decoded and gathered chunk by chunk, refused as soon as it passes the cap.

    Decoding is done here (httpx hands us raw bytes) so the cap holds for what is decompressed too: each
    step inflates at most what is left under the cap, so a small gzip bomb cannot balloon in one chunk.
    """

    __slots__ = ("cap", "chunks", "encoding", "inflater", "size", "status", "where")

    def __init__(self, cap: int, status: int, headers: Mapping[str, str], where: str) -> None:
        self.cap = cap
        self.status = status
        self.where = where
        self.chunks: list[bytes] = []
        self.size = 0
        declared = headers.get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > cap:
            raise self._too_large(f"announces {int(declared)} bytes (Content-Length)")
        self.encoding = headers.get("content-encoding", "").strip().lower()
        self.inflater: Any = None
        if self.encoding in ("gzip", "x-gzip"):
            self.inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif self.encoding == "deflate":
            self.inflater = zlib.decompressobj()

    def _too_large(self, what: str) -> ResponseTooLargeError:
        return ResponseTooLargeError(
            f"the HTTP {self.status} response from {self.where} {what}, over max_response_bytes={self.cap}; "
            "it was not read further. Check base_url, or raise max_response_bytes if replies really are "
            "that large",
            status_code=self.status,
        )

    def _add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.cap:
            raise self._too_large(f"passed {self.cap} bytes while streaming")
        if chunk:
            self.chunks.append(chunk)

    def _corrupt(self, exc: zlib.error) -> APIConnectionError:
        return APIConnectionError(
            f"the HTTP {self.status} response from {self.where} has a corrupt {self.encoding} body ({exc}); "
            "try again later"
        )

    def feed(self, raw: bytes) -> None:
        if self.inflater is None:
            self._add(raw)
            return
        data = raw
        while data:
            try:
                out = self.inflater.decompress(data, min(self.cap + 1 - self.size, _INFLATE_STEP))
            except zlib.error as exc:
                if self.encoding == "deflate" and not self.size and not self.chunks:
                    self.inflater = zlib.decompressobj(
                        -zlib.MAX_WBITS
                    )  # raw deflate, sent without a zlib header
                    self.encoding = "raw deflate"
                    continue
                raise self._corrupt(exc) from None
            self._add(out)
            data = self.inflater.unconsumed_tail
            if not out:
                break

    def content(self) -> bytes:
        if self.inflater is not None:
            try:
                self._add(self.inflater.flush())
            except zlib.error as exc:
                raise self._corrupt(exc) from None
        return self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)


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


def _wire_headers(response: httpx.Response) -> dict[str, str]:
    # raw pairs are already lower-case bytes on HTTP/1.1; decoding them here skips httpx's per-item work
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response.headers.raw}


def _bind_deadline(client: httpx.Client) -> None:
    """Give every pool of a blocking client the deadline-aware network backend: the direct one and those
    of any proxy taken from the environment. httpx has no public hook for it, so the pools' backend
    attribute is set before they open a connection; a missing attribute on the direct pool (another httpx)
    fails loudly rather than silently losing the deadline."""
    direct = getattr(client._transport, "_pool", None)
    if not hasattr(direct, "_network_backend"):
        raise RuntimeError("this httpx version hides its connection pool's network backend; pin httpx<0.29")
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = DeadlineBackend()


class HttpTransport:
    """Chat completions over pooled keep-alive httpx clients (one sync client; sharded async clients per loop).

    Clients are built on first use so a sync-only program never creates an AsyncClient. An AsyncClient is
    bound to the event loop that first used it, so a set is kept per running loop: the module-level
    `aextract` then works across successive `asyncio.run` calls.

    Args:
        base_url: the API root, ``http(s)://host[:port]/v1``; checked here (ConfigurationError).
        api_key: sent as a bearer token; never shown in a repr, message or error attribute.
        provider: the provider record this transport talks to (None: decided from base_url by the caller).
        max_response_bytes: a body larger than this is refused with ResponseTooLargeError (16 MiB default).
        connect_timeout: the most one connection attempt may take, within the call's deadline.
    """

    provider: str | None = None

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        max_connections: int = 512,
        connect_timeout: float = 5.0,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        provider: str | None = None,
    ) -> None:
        self.base_url = check_base_url(base_url)
        if (
            isinstance(max_response_bytes, bool)
            or not isinstance(max_response_bytes, int)
            or max_response_bytes < 1
        ):
            raise ConfigurationError(
                f"max_response_bytes must be a positive whole number of bytes, got {max_response_bytes!r}"
            )
        if not math.isfinite(connect_timeout) or connect_timeout <= 0:
            raise ConfigurationError(f"connect_timeout must be positive seconds, got {connect_timeout!r}")
        if (
            provider is not None
        ):  # else the class's own (a subclass may name its provider as a class attribute)
            self.provider = provider
        self.max_response_bytes = max_response_bytes
        self._api_key = api_key
        self._headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "accept-encoding": "gzip, deflate",  # the encodings _Body inflates under the cap
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
        return (
            f"HttpTransport(base_url={self.base_url!r}, provider={self.provider!r}, "
            f"api_key={'***' if self._api_key else None})"
        )

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
            _bind_deadline(client)
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

    def _timed_out(self, timeout: float, detail: str) -> APITimeoutError:
        return APITimeoutError(
            f"no complete answer from {self.base_url} within the timeout of {timeout:g} s ({detail}); "
            "raise timeout= or try again later",
            secrets=(self._api_key,),
        )

    def _failure(self, exc: httpx.HTTPError, timeout: float) -> APIConnectionError:
        detail = redact(str(exc) or type(exc).__name__, self._api_key)
        if isinstance(exc, httpx.TimeoutException):
            return self._timed_out(timeout, detail)
        return APIConnectionError(
            f"could not reach {self.base_url} ({type(exc).__name__}: {detail}); "
            "check base_url and the network, or try again later",
            secrets=(self._api_key,),
        )

    def _finish(self, status: int, headers: dict[str, str], body: _Body, encoding: str) -> WireResponse:
        content = body.content()
        data = _decode(content, headers.get("content-type", ""))
        return WireResponse(status, headers, content, data, encoding)

    def send(self, request: WireRequest, timeout: float) -> WireResponse:
        client = self._sync_client()  # built before the clock starts: a one-off local cost, not the server's
        content, extra_headers, encoding = _wire_body(request)
        token = DEADLINE.set(time.monotonic() + timeout)
        try:
            with client.stream(
                "POST",
                self.base_url + request.path,
                content=content,
                headers=extra_headers,
                timeout=self._timeout(timeout),
            ) as response:
                headers = _wire_headers(response)
                body = _Body(self.max_response_bytes, response.status_code, headers, self.base_url)
                chunks: Iterator[bytes] = response.iter_raw()
                for chunk in chunks:
                    body.feed(chunk)
        except httpx.HTTPError as exc:
            raise self._failure(exc, timeout) from None
        finally:
            DEADLINE.reset(token)
        return self._finish(response.status_code, headers, body, encoding)

    async def _apost(self, client: httpx.AsyncClient, request: WireRequest, timeout: float) -> WireResponse:
        content, extra_headers, encoding = _wire_body(request)
        async with client.stream(
            "POST",
            self.base_url + request.path,
            content=content,
            headers=extra_headers,
            timeout=self._timeout(timeout),
        ) as response:
            headers = _wire_headers(response)
            body = _Body(self.max_response_bytes, response.status_code, headers, self.base_url)
            chunks: AsyncIterator[bytes] = response.aiter_raw()
            async for chunk in chunks:
                body.feed(chunk)
        return self._finish(response.status_code, headers, body, encoding)

    async def asend(self, request: WireRequest, timeout: float) -> WireResponse:
        shards = self._shards()
        index = shards.pick()
        shards.busy[index] += 1
        try:
            if sys.version_info >= (3, 11):
                async with asyncio.timeout(timeout):
                    return await self._apost(shards.clients[index], request, timeout)
            return await asyncio.wait_for(self._apost(shards.clients[index], request, timeout), timeout)
        except httpx.HTTPError as exc:
            raise self._failure(exc, timeout) from None
        except asyncio.TimeoutError:  # the builtin TimeoutError from 3.11 on
            raise self._timed_out(timeout, "the deadline for the whole call passed") from None
        finally:
            shards.busy[index] -= 1

    # -- streaming: the same deadline for the whole exchange and the same cap on the body -------------

    def stream(self, request: WireRequest, timeout: float) -> Iterator[StreamStart | WireResponse | bytes]:
        """Send a request whose body asks for `stream: true`: a StreamStart then the body's bytes as they
        arrive (decoded, counted against max_response_bytes), or one WireResponse when the server does not
        answer with an event stream. Raises APIConnectionError / APITimeoutError like `send`."""
        client = self._sync_client()
        content, extra_headers, encoding = _wire_body(request)
        deadline = time.monotonic() + timeout
        response: httpx.Response | None = None
        try:
            token = DEADLINE.set(deadline)
            try:
                response = client.send(
                    client.build_request(
                        "POST",
                        self.base_url + request.path,
                        content=content,
                        headers=_stream_headers(extra_headers),
                        timeout=self._timeout(timeout),
                    ),
                    stream=True,
                )
            finally:
                DEADLINE.reset(token)
            headers = _wire_headers(response)
            body = _Body(self.max_response_bytes, response.status_code, headers, self.base_url)
            raw = response.iter_raw()
            streamed = _is_event_stream(response.status_code, headers)
            if streamed:
                yield StreamStart(response.status_code, headers, encoding)
            while True:
                token = DEADLINE.set(deadline)
                try:
                    chunk = next(raw, None)
                finally:
                    DEADLINE.reset(token)
                if chunk is None:
                    break
                body.feed(chunk)
                if streamed and body.chunks:
                    fresh, body.chunks = body.chunks, []
                    yield fresh[0] if len(fresh) == 1 else b"".join(fresh)
            if streamed:
                tail = body.content()
                if tail:
                    yield tail
            else:
                yield self._finish(response.status_code, headers, body, encoding)
        except httpx.HTTPError as exc:
            raise self._failure(exc, timeout) from None
        finally:
            if response is not None:
                response.close()

    async def astream(
        self, request: WireRequest, timeout: float
    ) -> AsyncIterator[StreamStart | WireResponse | bytes]:
        """Async twin of `stream`."""
        shards = self._shards()
        index = shards.pick()
        client = shards.clients[index]
        content, extra_headers, encoding = _wire_body(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        response: httpx.Response | None = None
        shards.busy[index] += 1
        try:
            response = await _before(
                deadline,
                client.send(
                    client.build_request(
                        "POST",
                        self.base_url + request.path,
                        content=content,
                        headers=_stream_headers(extra_headers),
                        timeout=self._timeout(timeout),
                    ),
                    stream=True,
                ),
            )
            headers = _wire_headers(response)
            body = _Body(self.max_response_bytes, response.status_code, headers, self.base_url)
            raw = response.aiter_raw()
            streamed = _is_event_stream(response.status_code, headers)
            if streamed:
                yield StreamStart(response.status_code, headers, encoding)
            while True:
                try:
                    chunk = await _before(deadline, raw.__anext__())
                except StopAsyncIteration:
                    break
                body.feed(chunk)
                if streamed and body.chunks:
                    fresh, body.chunks = body.chunks, []
                    yield fresh[0] if len(fresh) == 1 else b"".join(fresh)
            if streamed:
                tail = body.content()
                if tail:
                    yield tail
            else:
                yield self._finish(response.status_code, headers, body, encoding)
        except httpx.HTTPError as exc:
            raise self._failure(exc, timeout) from None
        except asyncio.TimeoutError:
            raise self._timed_out(timeout, "the deadline for the whole call passed") from None
        finally:
            shards.busy[index] -= 1
            if response is not None:
                await response.aclose()

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
