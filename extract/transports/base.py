"""The transport interface: a request as data, a response as data, and the protocol that carries one to
the other. The engine depends on this module only, never on a concrete transport."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

__all__ = ["Transport", "WireRequest", "WireResponse"]


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
    """Anything that can carry a WireRequest: HTTP to a server, or an in-process model.

    `timeout` is a deadline for the whole exchange (connect, send, headers, body): a transport raises
    `APITimeoutError` when it passes, however the server trickles its bytes.
    """

    def send(self, request: WireRequest, timeout: float) -> WireResponse: ...

    async def asend(self, request: WireRequest, timeout: float) -> WireResponse: ...

    def close(self) -> None: ...

    async def aclose(self) -> None: ...
