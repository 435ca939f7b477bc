"""The two actions the engine yields, and the sync and async drivers that perform them.

The engine is a generator: it yields `Send` or `Sleep` and is sent back the outcome. Everything that
decides (retries, re-asks, demotions, the limiter) lives in the generator, once; these drivers only do
the I/O, so the sync and async paths cannot drift apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import TypeVar

from extract.errors import APIError
from extract.transports import Transport, WireRequest, WireResponse

__all__ = ["Action", "Outcome", "Send", "SendStream", "Sleep", "drive_async", "drive_sync"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Send:
    """Send this request; the driver answers with the response, or the APIError the transport raised."""

    request: WireRequest


@dataclass(frozen=True, slots=True)
class SendStream(Send):
    """Send this request streamed (its body asks for `stream: true`). A streaming driver hands the partial
    values on as they arrive and answers with the reply put back together as one completion; the plain
    drivers below answer it like a Send (a server then streams into a body that is read whole)."""


@dataclass(frozen=True, slots=True)
class Sleep:
    """Wait this many seconds; the driver answers with None."""

    seconds: float


Action = Send | Sleep
Outcome = WireResponse | APIError | None


def drive_sync(gen: Generator[Action, Outcome, T], transport: Transport, timeout: float) -> T:
    """Run the engine with blocking I/O."""
    outcome: Outcome = None
    try:
        while True:
            action = gen.send(outcome)
            if isinstance(action, Send):
                try:
                    outcome = transport.send(action.request, timeout)
                except APIError as exc:
                    outcome = exc
            else:
                time.sleep(action.seconds)
                outcome = None
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()


async def drive_async(gen: Generator[Action, Outcome, T], transport: Transport, timeout: float) -> T:
    """Run the engine on the running event loop."""
    outcome: Outcome = None
    try:
        while True:
            action = gen.send(outcome)
            if isinstance(action, Send):
                try:
                    outcome = await transport.asend(action.request, timeout)
                except APIError as exc:
                    outcome = exc
            else:
                await asyncio.sleep(action.seconds)
                outcome = None
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()
