"""Streaming over real HTTP against the test server: partials, the last item, re-asks, faults mid-stream,
unstreamable modes, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

import extract
from extract import Extractor
from extract.errors import ExtractionFailed
from extract.testing import Fault, TestServer


class Line(BaseModel):
    name: str
    qty: int


class Invoice(BaseModel):
    number: str
    lines: list[Line]
    totals: dict[str, int]
    note: str | None = None


TEXT = "Invoice 12: 3 pens at 2.50, 2 pads; total 11.50"


def _extractor(server: TestServer, **options: Any) -> Extractor:
    return Extractor(base_url=server.base_url, api_key="k", model="llama3.1-8b", **options)


def _collect(extractor: Extractor, schema: Any = Invoice, **options: Any) -> tuple[list[Any], list[int], Any]:
    stream = extractor.stream(schema, TEXT, **options)
    items, attempts = [], []
    for item in stream:
        items.append(item)
        attempts.append(stream.attempt)
    return items, attempts, stream.result


def _acollect(
    extractor: Extractor, schema: Any = Invoice, **options: Any
) -> tuple[list[Any], list[int], Any]:
    async def run() -> tuple[list[Any], list[int], Any]:
        stream = extractor.astream(schema, TEXT, **options)
        items, attempts = [], []
        async for item in stream:
            items.append(item)
            attempts.append(stream.attempt)
        await extractor.aclose()
        return items, attempts, stream.result

    return asyncio.run(run())


COLLECTORS = [pytest.param(_collect, id="sync"), pytest.param(_acollect, id="async")]


@pytest.mark.parametrize("collect", COLLECTORS)
def test_stream_yields_growing_partials_then_the_extract_value(
    make_server: Callable[..., TestServer], collect: Any
) -> None:
    server = make_server(stream_chunk_chars=2, stream_gap=0.002)
    with _extractor(server) as extractor:
        expected = extractor.extract(Invoice, TEXT)
        items, attempts, result = collect(extractor)
    assert items[-1] == expected
    assert type(items[-1]) is Invoice
    assert len(items) > 2
    final = expected.model_dump()
    for partial in items[:-1]:
        assert type(partial).__name__ == "PartialInvoice"
        for name, value in partial.model_dump().items():
            if value is None:
                continue
            if isinstance(value, list):
                assert value == final[name][: len(value)]
            elif isinstance(value, dict) and name == "totals":
                assert all(final[name][k] == v for k, v in value.items())
            else:
                assert value == final[name]
    assert set(attempts) == {1}
    assert result is not None
    assert result.value == expected
    assert len(result.attempts) == 1
    assert result.mode == "json_schema"
    assert result.usage.total_tokens > 0
    assert result.time_info is not None
    sent = server.requests[-1]
    assert sent["stream"] is True


@pytest.mark.parametrize("collect", COLLECTORS)
def test_drop_mid_stream_is_a_failed_attempt_and_the_stream_goes_on(
    make_server: Callable[..., TestServer], collect: Any
) -> None:
    server = make_server(stream_chunk_chars=4, stream_gap=0.001)
    server.script(Fault.stream_drop(after=6))
    with _extractor(server, max_retries=0) as extractor:
        items, attempts, result = collect(extractor)
    assert len(result.attempts) == 2
    assert result.attempts[0].errors  # the cut reply failed
    assert attempts[-1] == 2
    assert 2 in attempts
    assert type(items[-1]) is Invoice
    assert [a for a in attempts if a == 1] == attempts[: attempts.count(1)]  # attempt numbers never go back


@pytest.mark.parametrize("collect", COLLECTORS)
@pytest.mark.parametrize("fault", ["invalid_json", "truncated", "schema_violation"])
def test_a_reply_that_fails_at_the_end_is_reasked_in_the_same_stream(
    make_server: Callable[..., TestServer], collect: Any, fault: str
) -> None:
    server = make_server(stream_chunk_chars=3)
    server.script(fault)
    with _extractor(server) as extractor:
        items, attempts, result = collect(extractor)
    assert len(result.attempts) == 2
    assert attempts[-1] == 2
    assert type(items[-1]) is Invoice
    assert items[-1] == result.value


def test_connection_failure_before_the_first_byte_is_retried_unseen(
    make_server: Callable[..., TestServer],
) -> None:
    server = make_server(stream_chunk_chars=3)
    server.script("drop", "server_error")
    with _extractor(server, max_retries=2) as extractor:
        items, attempts, result = _collect(extractor)
    assert len(result.attempts) == 1
    assert set(attempts) == {1}
    assert type(items[-1]) is Invoice


def test_every_attempt_failing_raises_after_the_partials(make_server: Callable[..., TestServer]) -> None:
    server = make_server(stream_chunk_chars=3)
    server.script("invalid_json", "invalid_json")
    with _extractor(server, max_attempts=2) as extractor:
        stream = extractor.stream(Invoice, TEXT)
        with pytest.raises(ExtractionFailed):
            list(stream)


@pytest.mark.parametrize("provider", ["cerebras", None])
def test_json_object_mode_is_sent_unstreamed_and_yields_once(
    make_server: Callable[..., TestServer], provider: str | None
) -> None:
    """Cerebras: json_object cannot be combined with stream: true. Its row says so (nothing refused is
    sent); a server of unknown record that refuses `stream` gets the mode unstreamed. Never an error."""
    server = make_server(json_object_only=True, stream_chunk_chars=3)
    with _extractor(server, provider=provider) as extractor:
        items, attempts, result = _collect(extractor)
        assert len(items) == 1
        assert type(items[0]) is Invoice
        assert attempts == [1]
        assert result.mode in ("json_object", "json_object_schema")
        streamed_json_object = [
            body
            for body in server.requests
            if body["response_format"]["type"] == "json_object" and "stream" in body
        ]
        assert len(streamed_json_object) == (0 if provider == "cerebras" else 1)
        before = len(server.requests)
        items, attempts, result = _collect(extractor)  # remembered: one request now
        assert len(server.requests) == before + 1
        assert "stream" not in server.requests[-1]


def test_json_schema_stream_has_a_dict_partial(make_server: Callable[..., TestServer]) -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "array", "items": {"type": "integer"}}},
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    server = make_server(stream_chunk_chars=1, stream_gap=0.001)
    with _extractor(server) as extractor:
        expected = extractor.extract(schema, TEXT)
        items, _, _ = _collect(extractor, schema)
    assert items[-1] == expected
    assert all(isinstance(i, dict) for i in items)
    assert items[0] == {"a": expected["a"]} or items[0] == {"a": expected["a"], "b": []}


def test_module_level_stream_and_result(make_server: Callable[..., TestServer]) -> None:
    server = make_server(stream_chunk_chars=5)
    stream = extract.stream(Invoice, TEXT, model="llama3.1-8b", base_url=server.base_url, api_key="k")
    assert stream.result is None
    items = list(stream)
    assert stream.result is not None
    assert items[-1] == stream.result.value
    assert list(stream) == []


def test_stopping_early_closes_the_stream(make_server: Callable[..., TestServer]) -> None:
    server = make_server(stream_chunk_chars=1, stream_gap=0.001)
    with _extractor(server) as extractor, extractor.stream(Invoice, TEXT) as stream:
        first = next(stream)
        assert type(first).__name__ == "PartialInvoice"
    assert stream.result is None


# -- HttpTransport.stream / astream: the same deadline and body cap as send --------------------------------


def _stream_request() -> Any:
    from extract.transports import WireRequest

    body = {
        "model": "llama3.1-8b",
        "stream": True,
        "messages": [{"role": "user", "content": "Ada Lovelace, 36"}],
    }
    return WireRequest("/chat/completions", body)


def _drain_sync(transport: Any, timeout: float) -> list[Any]:
    return list(transport.stream(_stream_request(), timeout))


def _drain_async(transport: Any, timeout: float) -> list[Any]:
    async def run() -> list[Any]:
        try:
            return [part async for part in transport.astream(_stream_request(), timeout)]
        finally:
            await transport.aclose()

    return asyncio.run(run())


DRAINS = [pytest.param(_drain_sync, id="sync"), pytest.param(_drain_async, id="async")]


@pytest.mark.parametrize("drain", DRAINS)
def test_transport_stream_deadline_holds_for_a_trickling_server(
    make_server: Callable[..., TestServer], drain: Any
) -> None:
    from extract.errors import APITimeoutError
    from extract.transports import HttpTransport

    server = make_server(stream_chunk_chars=1, stream_gap=0.2, reply='{"a": "a long enough reply"}')
    transport = HttpTransport(server.base_url, "k")
    with pytest.raises(APITimeoutError):
        drain(transport, 0.5)


@pytest.mark.parametrize("drain", DRAINS)
def test_transport_stream_body_cap_holds(make_server: Callable[..., TestServer], drain: Any) -> None:
    from extract.errors import ResponseTooLargeError
    from extract.transports import HttpTransport

    server = make_server(stream_chunk_chars=4, reply='{"a": "' + "x" * 4000 + '"}')
    transport = HttpTransport(server.base_url, "k", max_response_bytes=2000)
    with pytest.raises(ResponseTooLargeError):
        drain(transport, 10.0)


@pytest.mark.parametrize("drain", DRAINS)
def test_transport_stream_error_status_is_one_response(
    make_server: Callable[..., TestServer], drain: Any
) -> None:
    from extract.transports import HttpTransport, WireResponse

    server = make_server()
    server.script("unauthorized")
    parts = drain(HttpTransport(server.base_url, "k"), 10.0)
    assert len(parts) == 1
    assert isinstance(parts[0], WireResponse)
    assert parts[0].status_code == 401
    assert parts[0].data is not None


def test_a_timeout_mid_stream_is_a_failed_attempt(make_server: Callable[..., TestServer]) -> None:
    """The deadline passing after the stream began cuts the reply: judged, re-asked, not a crash."""
    server = make_server(stream_chunk_chars=2, stream_gap=0.05)  # ~50 events: ~2.5 s per reply
    with _extractor(server, timeout=0.6, max_retries=0, max_attempts=2) as extractor:
        stream = extractor.stream(Invoice, TEXT)
        with pytest.raises(ExtractionFailed) as failed:
            list(stream)
    assert len(failed.value.attempts) == 2
    for attempt in failed.value.attempts:
        assert attempt.errors
        assert attempt.content  # the part received before the deadline, kept for the caller


def test_display_updates_one_output(
    make_server: Callable[..., TestServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a notebook the stream shows in one output cell: one display, then updates of that handle."""
    ipython_display = pytest.importorskip("IPython.display")
    calls: list[tuple[str, Any]] = []

    class Handle:
        def update(self, item: Any) -> None:
            calls.append(("update", item))

    def display(item: Any, display_id: bool = False) -> Handle:
        assert display_id is True
        calls.append(("display", item))
        return Handle()

    monkeypatch.setattr(ipython_display, "display", display)
    server = make_server(stream_chunk_chars=2, stream_gap=0.002)
    with _extractor(server) as extractor:
        value = extractor.stream(Invoice, TEXT).display()
    assert type(value) is Invoice
    assert [kind for kind, _ in calls] == ["display"] + ["update"] * (len(calls) - 1)
    assert len(calls) > 2
    assert calls[-1][1] == value


def test_stream_takes_the_call_options(make_server: Callable[..., TestServer]) -> None:
    server = make_server(stream_chunk_chars=4)
    with _extractor(server) as extractor:
        list(
            extractor.stream(
                Invoice, TEXT, instructions="Only the invoice.", temperature=0.0, extra_body={"x": 1}
            )
        )
        sent = server.requests[-1]
        assert sent["temperature"] == 0.0
        assert sent["x"] == 1
        assert "Only the invoice." in sent["messages"][0]["content"]
        with pytest.raises(extract.UnknownOptionError):
            extractor.stream(Invoice, TEXT, full=True)


class _SendOnly:
    """A caller's own transport that cannot stream (send/asend only)."""

    def __init__(self, base_url: str) -> None:
        from extract.transports import HttpTransport

        self.inner = HttpTransport(base_url, "k")
        self.bodies: list[dict[str, Any]] = []

    def send(self, request: Any, timeout: float) -> Any:
        self.bodies.append(request.body)
        return self.inner.send(request, timeout)

    async def asend(self, request: Any, timeout: float) -> Any:
        self.bodies.append(request.body)
        return await self.inner.asend(request, timeout)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("collect", COLLECTORS)
def test_a_transport_that_cannot_stream_gets_an_unstreamed_request(
    make_server: Callable[..., TestServer], collect: Any
) -> None:
    server = make_server(stream_chunk_chars=2)
    transport = _SendOnly(server.base_url)
    with Extractor(transport=transport, model="llama3.1-8b") as extractor:
        items, attempts, result = collect(extractor)
    assert len(items) == 1
    assert type(items[0]) is Invoice
    assert items[0] == result.value
    assert attempts == [1]
    assert all("stream" not in body for body in transport.bodies)


def test_a_reply_over_the_body_cap_ends_the_stream_as_unstreamed(
    make_server: Callable[..., TestServer],
) -> None:
    from extract.errors import ResponseTooLargeError

    server = make_server(stream_chunk_chars=8)
    server.script(Fault.content('{"number": "' + "x" * 6000 + '"}'))
    with _extractor(server, max_response_bytes=3000) as extractor:
        with pytest.raises(ResponseTooLargeError):
            list(extractor.stream(Invoice, TEXT))
        assert len(server.requests) == 1  # not re-asked: the cap is a bound, as for an unstreamed reply


def test_module_level_astream(make_server: Callable[..., TestServer]) -> None:
    server = make_server(stream_chunk_chars=5)

    async def run() -> tuple[list[Any], Any]:
        stream = extract.astream(Invoice, TEXT, model="llama3.1-8b", base_url=server.base_url, api_key="k")
        items = [item async for item in stream]
        return items, stream.result

    items, result = asyncio.run(run())
    assert result is not None
    assert items[-1] == result.value
    assert type(items[-1]) is Invoice


def test_reasoning_deltas_stay_out_of_the_content(make_server: Callable[..., TestServer]) -> None:
    server = make_server(stream_chunk_chars=3)
    with Extractor(base_url=server.base_url, api_key="k", model="gpt-oss-120b") as extractor:
        stream = extractor.stream(Invoice, TEXT, reasoning_effort="low")
        items = list(stream)
    result = stream.result
    assert result is not None
    assert type(items[-1]) is Invoice
    attempt = result.attempts[-1]
    assert attempt.reasoning  # streamed in delta.reasoning, kept apart
    assert attempt.content is not None
    assert attempt.content.lstrip().startswith("{")
    assert result.usage.reasoning_tokens > 0  # from the final chunk's usage


def test_test_server_command_line_takes_the_stream_pacing() -> None:
    from extract.errors import ConfigurationError
    from extract.testing.__main__ import _parser, _server

    settings = _server(_parser().parse_args(["--stream-chunk-chars", "4", "--stream-gap-ms", "2"])).settings
    assert settings.stream_chunk_chars == 4
    assert settings.stream_gap == 0.002
    with pytest.raises(ConfigurationError, match="stream_chunk_chars"):
        TestServer(stream_chunk_chars=-1)
