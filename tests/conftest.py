"""Shared fixtures: a fresh loopback provider per test (start-up is a thread and a bind, ~1 ms)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from extract.testing import TestServer


@pytest.fixture
def server() -> Iterator[TestServer]:
    """A TestServer with default settings (no API key, every default model, no limits)."""
    with TestServer() as srv:
        yield srv


@pytest.fixture
def make_server() -> Iterator[Callable[..., TestServer]]:
    """Start TestServers with custom settings: `make_server(api_key="k", rpm=2)`; all stop after the test."""
    with ExitStack() as stack:

        def make(**settings: Any) -> TestServer:
            return stack.enter_context(TestServer(**settings))

        yield make
