"""Streaming against llama.cpp's real OpenAI-compatible server (`python -m llama_cpp.server`), sync and async.

The server is started by the fixture of tests/test_e2e_llamacpp.py (one per module)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from extract import Extractor
from tests.test_e2e_llamacpp import _SKIP_REASON, _model_id, llama_server  # noqa: F401 (the fixture)

pytestmark = [
    pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or ""),
    pytest.mark.timeout(600),
]


class Contact(BaseModel):
    name: str
    company: str
    city: str


TEXT = "Hello! My name is Maria Lopez and I work at Northwind Traders, based in Lisbon."


def _check(items: list[Any], attempts: list[int], result: Any) -> None:
    assert result is not None
    assert type(items[-1]) is Contact
    assert items[-1] == result.value
    final = items[-1].model_dump()
    last_attempt = attempts[-1]
    shown = [i for i, a in zip(items[:-1], attempts[:-1], strict=True) if a == last_attempt]
    for partial in shown:
        for name, value in partial.model_dump().items():
            assert value is None or value == final[name]


@pytest.mark.parametrize("provider", ["llamacpp", None])
def test_stream_against_the_real_server(llama_server: str, provider: str | None) -> None:  # noqa: F811
    with Extractor(
        base_url=llama_server, api_key="none", model=_model_id(llama_server), provider=provider
    ) as ex:
        stream = ex.stream(Contact, TEXT, max_attempts=3)
        items, attempts = [], []
        for item in stream:
            items.append(item)
            attempts.append(stream.attempt)
        _check(items, attempts, stream.result)
        assert stream.result is not None
        assert stream.result.mode == "json_object_schema"
        assert len(items) >= 2  # the server really streamed: partials came before the value


def test_async_stream_against_the_real_server(llama_server: str) -> None:  # noqa: F811
    async def run() -> tuple[list[Any], list[int], Any]:
        async with Extractor(base_url=llama_server, api_key="none", model=_model_id(llama_server)) as ex:
            stream = ex.astream(Contact, TEXT, max_attempts=3)
            items, attempts = [], []
            async for item in stream:
                items.append(item)
                attempts.append(stream.attempt)
            return items, attempts, stream.result

    items, attempts, result = asyncio.run(run())
    _check(items, attempts, result)
    assert len(items) >= 2
