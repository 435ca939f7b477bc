"""The transport interface: a request as data, a response as data, and the protocol that carries one to
the other. The engine depends on this module only, never on a concrete transport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from extract.transports.encoding import PayloadPolicy

__all__ = ["StreamStart", "Transport", "WireRequest", "WireResponse"]


@dataclass(slots=True)
class WireRequest:
    """One chat-completions call as data: the engine builds it, a Transport sends it.

    `payload` says how an HTTP transport may encode the body (gzip, msgpack; see
    `extract.transports.encoding`); None means plain JSON. Transports without a wire body ignore it.
    """

    path: str
    body: dict[str, Any]
    reserved_tokens: int = 0
    payload: PayloadPolicy | None = None


@dataclass(slots=True)
class WireResponse:
    """What came back, whatever the status; `data` is the decoded JSON body when it was JSON.

    `encoding` is how the request body was sent ("json", "gzip", "msgpack", "msgpack+gzip"), so the engine
    can tell a refused encoding from a refused request.
    """

    status_code: int
    headers: Mapping[str, str]
    body: bytes
    data: Any | None = None
    encoding: str = "json"


@dataclass(frozen=True, slots=True)
class StreamStart:
    """The first item of a streamed exchange whose server answered with an event stream (2xx,
    text/event-stream): the body's bytes follow as they arrive. A server that answers any other way
    (an error status, one JSON body) gives a whole WireResponse instead, and nothing after it."""

    status_code: int
    headers: Mapping[str, str]
    encoding: str = "json"


@runtime_checkable
class Transport(Protocol):
    """Anything that can carry a WireRequest: HTTP to a server, or an in-process model.

    `timeout` is a deadline for the whole exchange (connect, send, headers, body): a transport raises
    `APITimeoutError` when it passes, however the server trickles its bytes.
    """

    def send(self, request: WireRequest, timeout: float) -> WireResponse: ...

    async def asend(self, request: WireRequest, timeout: float) -> WireResponse: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...
