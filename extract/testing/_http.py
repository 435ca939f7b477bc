"""A small HTTP/1.1 server on asyncio streams: keep-alive, Content-Length or chunked bodies.

Only what a JSON API client sends is supported; anything else gets a plain 4xx and the connection closes.
Bodies are passed on as sent: Content-Encoding and Content-Type are the application's business (`_body`),
so a bad encoding gets the provider's error shape rather than a bare transport error.
Written for throughput over one event loop: no per-request allocations beyond the request itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from http import HTTPStatus

__all__ = ["HttpRequest", "HttpResponse", "serve_connection"]

_MAX_HEAD = 64 * 1024
_MAX_BODY = 64 * 1024 * 1024
_REASONS = {s.value: s.phrase for s in HTTPStatus}


class HttpRequest:
    """One parsed request; header names are lower-case."""

    __slots__ = ("body", "headers", "method", "path", "query", "version")

    def __init__(
        self, method: str, path: str, query: str, version: str, headers: dict[str, str], body: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.body = body


class HttpResponse:
    """An answer; with `parts` it is streamed (chunked), a part every `gap` seconds, and the connection
    is dropped after `cut_after` parts when that is set (a server failing mid-stream)."""

    __slots__ = ("body", "cut_after", "gap", "headers", "parts", "status")

    def __init__(
        self,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]],
        *,
        parts: list[bytes] | None = None,
        gap: float = 0.0,
        cut_after: int | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers
        self.parts = parts
        self.gap = gap
        self.cut_after = cut_after


# None means: close the connection without answering.
Handler = Callable[[HttpRequest], Awaitable["HttpResponse | None"]]


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def serve_connection(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: Handler
) -> None:
    """Answer requests on one connection until the client closes it or asks to."""
    try:
        while True:
            try:
                request = await _read_request(reader, writer)
            except _BadRequest as exc:
                _write(writer, _plain(exc.status, exc.message), keep_alive=False)
                await writer.drain()
                return
            if request is None:
                return
            response = await handler(request)
            if response is None:
                return
            keep_alive = _wants_keep_alive(request)
            if response.parts is not None:
                if not await _write_parts(writer, response, keep_alive=keep_alive):
                    return
            else:
                _write(writer, response, keep_alive=keep_alive)
            await writer.drain()
            if not keep_alive:
                return
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


async def _read_request(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> HttpRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if exc.partial.strip():
            raise _BadRequest(400, "incomplete request head") from exc
        return None
    except asyncio.LimitOverrunError as exc:
        raise _BadRequest(431, "request head too large") from exc
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise _BadRequest(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep:
            raise _BadRequest(400, "malformed header line")
        headers[name.strip().lower()] = value.strip()
    if headers.get("expect", "").lower() == "100-continue":  # curl asks before sending bodies over 1 KB
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers)
    path, _, query = target.partition("?")
    return HttpRequest(method, path, query, version, headers, body)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = await reader.readuntil(b"\r\n")
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError as exc:
                raise _BadRequest(400, "malformed chunk size") from exc
            if size == 0:
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass  # trailers
                return b"".join(chunks)
            total += size
            if total > _MAX_BODY:
                raise _BadRequest(413, "request body too large")
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length_text = headers.get("content-length")
    if length_text is None:
        return b""
    try:
        length = int(length_text)
    except ValueError as exc:
        raise _BadRequest(400, "malformed Content-Length") from exc
    if length < 0 or length > _MAX_BODY:
        raise _BadRequest(413, "request body too large")
    return await reader.readexactly(length) if length else b""


def _wants_keep_alive(request: HttpRequest) -> bool:
    connection = request.headers.get("connection", "").lower()
    if request.version == "HTTP/1.0":
        return connection == "keep-alive"
    return connection != "close"


def _plain(status: int, message: str) -> HttpResponse:
    return HttpResponse(status, message.encode(), [("content-type", "text/plain; charset=utf-8")])


async def _write_parts(writer: asyncio.StreamWriter, response: HttpResponse, *, keep_alive: bool) -> bool:
    """A streamed answer in chunked encoding; False when it was cut (the connection is then dropped)."""
    head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"]
    head.extend(f"{name}: {value}" for name, value in response.headers)
    head.append("transfer-encoding: chunked")
    head.append("connection: keep-alive" if keep_alive else "connection: close")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
    for index, part in enumerate(response.parts or ()):
        if response.cut_after is not None and index >= response.cut_after:
            await writer.drain()
            return False
        if index and response.gap > 0:
            await asyncio.sleep(response.gap)
        writer.write(b"%x\r\n%s\r\n" % (len(part), part))
        await writer.drain()
    if response.cut_after is not None and response.cut_after <= len(response.parts or ()):
        return False
    writer.write(b"0\r\n\r\n")
    return True


def _write(writer: asyncio.StreamWriter, response: HttpResponse, *, keep_alive: bool) -> None:
    head = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"]
    head.extend(f"{name}: {value}" for name, value in response.headers)
    head.append(f"content-length: {len(response.body)}")
    head.append("connection: keep-alive" if keep_alive else "connection: close")
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + response.body)
