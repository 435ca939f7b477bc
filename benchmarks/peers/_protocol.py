"""What every peer adapter hands the benchmarks: one extraction, sync and async, and a way to close."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Peer:
    """One system under test, already configured for the loopback server.

    `how` says which mode/API of the library is used (it goes into the tables); `attempts` is the
    library's default limit on model calls per extraction, as the library documents it.
    """

    name: str
    how: str
    attempts: str
    run: Callable[[str], Any]
    arun: Callable[[str], Awaitable[Any]]
    close: Callable[[], None]
    aclose: Callable[[], Awaitable[None]]
