"""Streaming on the embedded model (llama-cpp-python's own token stream), sync and async."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel, Field

from extract import Extractor
from extract.local import LocalTransport
from extract.streaming import ChatStream
from extract.transports import StreamStart, WireRequest, WireResponse
from tests._local_model import local_model_missing

_SKIP_REASON = local_model_missing()

pytestmark = [
    pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or ""),
    pytest.mark.timeout(300),
]


class Person(BaseModel):
    name: str = Field(max_length=40)
    city: str = Field(max_length=40)
    age: int


TEXT = "Maria Lopez, 41, lives in Lisbon and buys packaging for Northwind Traders."


@pytest.fixture(scope="module")
def transport() -> LocalTransport:
    return LocalTransport()


def test_transport_streams_events_with_usage(transport: LocalTransport) -> None:
    body = {
        "model": "local",
        "stream": True,
        "max_tokens": 24,
        "messages": [{"role": "user", "content": "Say hello."}],
    }
    parts = list(transport.stream(WireRequest("/chat/completions", body), timeout=120))
    assert isinstance(parts[0], StreamStart)
    chat = ChatStream()
    deltas = [chat.feed(p) for p in parts[1:] if isinstance(p, bytes)]
    assert chat.done
    assert sum(1 for d in deltas if d) > 1  # it really streamed: content came in several events
    completion = chat.completion()
    assert completion["choices"][0]["finish_reason"] in ("stop", "length")
    assert completion["usage"]["completion_tokens"] > 0
    assert completion["usage"]["prompt_tokens"] > 0


def test_a_refused_request_is_one_response(transport: LocalTransport) -> None:
    body = {"model": "local", "stream": True, "n": 2, "messages": [{"role": "user", "content": "x"}]}
    parts = list(transport.stream(WireRequest("/chat/completions", body), timeout=30))
    assert len(parts) == 1
    assert isinstance(parts[0], WireResponse)
    assert parts[0].status_code == 400


def _check(items: list[Any], attempts: list[int], result: Any) -> None:
    assert result is not None
    assert items[-1] == result.value
    assert type(items[-1]) is Person
    final = items[-1].model_dump()
    for partial in items[:-1]:
        if attempts[items.index(partial)] != attempts[-1]:
            continue
        for name, value in partial.model_dump().items():
            assert value is None or value == final[name]


def test_extractor_streams_partials_on_the_embedded_model(transport: LocalTransport) -> None:
    extractor = Extractor(transport=transport, provider="local", model=transport.model_name)
    stream = extractor.stream(Person, TEXT, max_attempts=3)
    items, attempts = [], []
    for item in stream:
        items.append(item)
        attempts.append(stream.attempt)
    _check(items, attempts, stream.result)
    assert len(items) >= 2  # at least one partial before the value


def test_async_stream_on_the_embedded_model(transport: LocalTransport) -> None:
    extractor = Extractor(transport=transport, provider="local", model=transport.model_name)

    async def run() -> tuple[list[Any], list[int], Any]:
        stream = extractor.astream(Person, TEXT, max_attempts=3)
        items, attempts = [], []
        async for item in stream:
            items.append(item)
            attempts.append(stream.attempt)
        return items, attempts, stream.result

    items, attempts, result = asyncio.run(run())
    _check(items, attempts, result)
