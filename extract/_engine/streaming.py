"""The streaming drivers: the same engine generator (`loop.run`), driven so that a streamed reply's
partial values reach the caller while it arrives.

`Progress` is the sans-IO part shared by both drivers: it reads the event stream (`ChatStream`), parses
the content once as it grows (`IncrementalJson`), decodes partials to the user's shape, and puts the reply
back together as one completion for the engine to judge. The drivers only move bytes: a `SendStream` goes
to the transport's `stream`/`astream` (or, for a transport without one, to `send`: one value at the end).

What the engine sees: a stream that ends (with or without [DONE]) is a reply like any other; one that
breaks after it began (a dropped connection, a timeout) is the reply received so far, so it is judged,
fails, and counts as an attempt; a failure before the first byte is the transport's error, retried by
the engine as usual and never seen by the caller.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from extract._engine.drive import Action, Outcome, SendStream, Sleep
from extract.errors import APIConnectionError, APIError
from extract.streaming._json import IncrementalJson
from extract.streaming._partial import PartialDecoder
from extract.streaming._sse import ChatStream
from extract.transports import StreamStart, Transport, WireRequest, WireResponse

if TYPE_CHECKING:
    from extract.results import Result
    from extract.schema import CompiledSchema

__all__ = ["NOTHING", "Progress", "stream_async", "stream_sync"]

NOTHING: Any = object()
_CLOSERS = ("}", "]")


class Progress:
    """One extraction's streaming state: the attempt under way and what the caller was last shown."""

    __slots__ = (
        "_chat",
        "_decoder",
        "_head",
        "_json",
        "_next",
        "_pending",
        "_received",
        "_shown",
        "_whole",
        "attempt",
        "result",
    )

    def __init__(self, compiled: CompiledSchema) -> None:
        self._decoder = PartialDecoder(compiled)
        self._chat = ChatStream()
        self._json = IncrementalJson()
        self._head: StreamStart | None = None
        self._whole: Outcome = None  # a whole answer a streaming transport gave instead of a stream
        self._shown: Any = None
        self._pending: list[str] = []  # content not yet given to the parser
        self._received = 0  # content characters of the reply under way
        self._next = 0  # the content size at which the next partial may be built
        self.attempt = 0  # the number of the reply under way (1 = the first); a re-ask adds one
        self.result: Result | None = None

    def answered(self, outcome: Outcome) -> None:
        """A whole (unstreamed) answer arrived: a readable reply is an attempt of its own."""
        if isinstance(outcome, WireResponse) and 200 <= outcome.status_code < 300:
            self.attempt += 1

    def begin(self, head: StreamStart) -> None:
        self._head = head
        self._chat = ChatStream()
        self._json = IncrementalJson()
        self._shown = None
        self._pending = []
        self._received = 0
        self._next = 0
        self.attempt += 1

    def feed(self, data: bytes) -> Any:
        """Read bytes; the new partial value to show, or NOTHING.

        A partial costs time in the size of the value so far (it is a new object each time), so one is
        built at a boundary only once the content has grown by an eighth since the last: every boundary
        of a small reply is shown, a large one costs a bounded multiple of its size, not its square.
        Content that arrives before that size is only kept (`_pending`) and parsed in one piece once the
        size is reached, or when it ends with a closing bracket (it may complete the whole value, which is
        shown at once): the parser is called once per window and per close, not once per event."""
        text = self._chat.feed(data)
        if not text:
            return NOTHING
        self._received += len(text)
        pending = self._pending
        pending.append(text)
        if self._received < self._next and text.rstrip()[-1:] not in _CLOSERS:
            return NOTHING
        text = pending[0] if len(pending) == 1 else "".join(pending)
        pending.clear()
        parser = self._json
        if not parser.feed(text) and not (parser.done and self._shown is not parser.root):
            return NOTHING
        if self._received < self._next and not parser.done:
            return NOTHING
        self._next = self._received + self._received // 8
        wire = parser.snapshot()
        if wire is None or wire == self._shown:
            return NOTHING
        value = self._decoder.decode(wire)
        if value is None:
            return NOTHING
        self._shown = wire
        return value

    def end(self) -> WireResponse:
        """The stream is over: the reply as one completion, as a non-streamed call would return it."""
        self._chat.close()
        head = self._head
        status = head.status_code if head is not None else 200
        headers = head.headers if head is not None else {}
        encoding = head.encoding if head is not None else "json"
        if self._chat.error is not None and not self._chat.content:
            # an error event before any content: the server's answer is that error (retried by status)
            error = self._chat.error
            code = error.get("status_code") if isinstance(error, dict) else None
            data = {"error": error}
            return WireResponse(
                code if isinstance(code, int) and code >= 400 else 500,
                headers,
                orjson.dumps(data),
                data,
                encoding,
            )
        data = self._chat.completion()
        return WireResponse(status, headers, b"", data, encoding)

    def broken(self, error: APIError) -> Outcome:
        """The transport failed: before the stream began that is its error (retried or raised by the
        engine as for any request); a connection lost or timed out after it began is a cut reply, judged
        and re-asked. Any other error (the response passing max_response_bytes) ends the call as it would
        unstreamed."""
        if self._head is None or not isinstance(error, APIConnectionError):
            return error
        return self.end()

    def reset(self) -> None:
        self._head = None
        self._whole = None

    def take(self, part: bytes | StreamStart | Outcome) -> Any:
        """One item of a transport's stream: body bytes (a partial value or NOTHING back), the response
        head, or a whole answer; the sync and async drivers share this."""
        if isinstance(part, bytes):
            return self.feed(part)
        if isinstance(part, StreamStart):
            self.begin(part)
        else:
            self._whole = part
            self.answered(part)
        return NOTHING

    def outcome(self) -> Outcome:
        """What the engine gets for the stream just read: the whole answer given, else the stream's end."""
        return self._whole if self._whole is not None else self.end()


def _unstreamed(request: WireRequest) -> WireRequest:
    """The request without `stream`, for a transport that cannot stream (its answer is one body)."""
    if "stream" not in request.body:
        return request
    body = {k: v for k, v in request.body.items() if k != "stream"}
    return WireRequest(request.path, body, request.reserved_tokens, request.payload)


def stream_sync(
    gen: Generator[Action, Outcome, Result], transport: Transport, timeout: float, progress: Progress
) -> Iterator[Any]:
    """Run the engine with blocking I/O, yielding partial values; the Result lands in progress.result."""
    outcome: Outcome = None
    try:
        while True:
            try:
                action = gen.send(outcome)
            except StopIteration as stop:
                progress.result = stop.value
                return
            if isinstance(action, Sleep):
                time.sleep(action.seconds)
                outcome = None
                continue
            opener = getattr(transport, "stream", None) if isinstance(action, SendStream) else None
            if opener is None:
                try:
                    outcome = transport.send(_unstreamed(action.request), timeout)
                except APIError as exc:
                    outcome = exc
                progress.answered(outcome)
                continue
            progress.reset()
            try:
                for part in opener(action.request, timeout):
                    value = progress.take(part)
                    if value is not NOTHING:
                        yield value
                outcome = progress.outcome()
            except APIError as exc:
                outcome = progress.broken(exc)
    finally:
        gen.close()


async def stream_async(
    gen: Generator[Action, Outcome, Result], transport: Transport, timeout: float, progress: Progress
) -> AsyncIterator[Any]:
    """Async twin of `stream_sync`."""
    outcome: Outcome = None
    try:
        while True:
            try:
                action = gen.send(outcome)
            except StopIteration as stop:
                progress.result = stop.value
                return
            if isinstance(action, Sleep):
                await asyncio.sleep(action.seconds)
                outcome = None
                continue
            opener = getattr(transport, "astream", None) if isinstance(action, SendStream) else None
            if opener is None:
                try:
                    outcome = await transport.asend(_unstreamed(action.request), timeout)
                except APIError as exc:
                    outcome = exc
                progress.answered(outcome)
                continue
            progress.reset()
            parts = opener(action.request, timeout)
            try:
                async for part in parts:
                    value = progress.take(part)
                    if value is not NOTHING:
                        yield value
                outcome = progress.outcome()
            except APIError as exc:
                outcome = progress.broken(exc)
            finally:
                close = getattr(parts, "aclose", None)
                if close is not None:
                    await close()
    finally:
        gen.close()
