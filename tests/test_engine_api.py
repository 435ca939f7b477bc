"""The public entry points, sync and async, over real HTTP; the caller's data left untouched; no key leaks."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from test_engine_faults import MODEL, TEXT, Person, make, person_schema

import extract.core as core
from extract.core import Attempt, Extractor, Result, Usage, aextract, extract
from extract.errors import (
    AuthenticationError,
    ConfigurationError,
    ExtractError,
    ExtractionFailed,
    InputError,
)
from extract.testing import Fault, TestServer

CANARY = "sk-CANARY-7f3a9c1e5b2d4068"


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer(api_key="sk-test") as srv:
        yield srv


@pytest.fixture
def options(server: TestServer) -> dict[str, Any]:
    return {"base_url": server.base_url, "api_key": "sk-test", "provider": "cerebras"}


# ---- every public entry point, sync and async ----------------------------------------------------------


def test_module_extract(server: TestServer, options: dict[str, Any]) -> None:
    value = extract(person_schema(), TEXT, model=MODEL, **options)
    assert isinstance(value, Person) and server.request_count == 1


def test_module_extract_full(server: TestServer, options: dict[str, Any]) -> None:
    result = extract(person_schema(), TEXT, model=MODEL, full=True, **options)
    assert isinstance(result, Result) and isinstance(result.value, Person)
    # the same configuration reuses one default Extractor (one pooled client)
    extract(person_schema(), TEXT, model=MODEL, **options)
    assert len([k for k, v in core._defaults.items() if v.base_url == server.base_url]) == 1


async def test_module_aextract(server: TestServer, options: dict[str, Any]) -> None:
    value = await aextract(person_schema(), TEXT, model=MODEL, **options)
    assert isinstance(value, Person) and server.request_count == 1


async def test_module_aextract_full(server: TestServer, options: dict[str, Any]) -> None:
    result = await aextract(person_schema(), TEXT, model=MODEL, full=True, **options)
    assert isinstance(result, Result) and result.mode == "json_schema"


def test_module_aextract_across_event_loops(server: TestServer, options: dict[str, Any]) -> None:
    for _ in range(3):
        value = asyncio.run(aextract(person_schema(), TEXT, model=MODEL, **options))
        assert isinstance(value, Person)
    assert server.request_count == 3


def test_extractor_extract(server: TestServer) -> None:
    with make(server) as ex:
        assert isinstance(ex.extract(person_schema(), TEXT), Person)
        result = ex.extract(person_schema(), TEXT, full=True)
    assert isinstance(result, Result) and result.model == MODEL
    assert server.request_count == 2


async def test_extractor_aextract(server: TestServer) -> None:
    async with make(server) as ex:
        assert isinstance(await ex.aextract(person_schema(), TEXT), Person)
        result = await ex.aextract(person_schema(), TEXT, full=True)
    assert isinstance(result, Result)
    assert server.request_count == 2


async def test_concurrent_aextract_share_one_extractor(server: TestServer) -> None:
    ex = make(server)
    values = await asyncio.gather(
        *(ex.aextract(person_schema(), f"Person {i} is {i} years old.") for i in range(20))
    )
    assert all(isinstance(v, Person) for v in values) and server.request_count == 20
    await ex.aclose()


def test_result_tells_the_story(server: TestServer) -> None:
    server.script("schema_violation")
    result = make(server, model="gpt-oss-120b").extract(person_schema(), TEXT, full=True)
    assert result.mode == "json_schema" and result.model == "gpt-oss-120b"
    assert [type(a) for a in result.attempts] == [Attempt, Attempt]
    first, second = result.attempts
    assert first.errors and not second.errors and second.status_code == 200
    assert second.reasoning and second.reasoning not in (second.content or "")  # reasoning kept apart
    assert first.latency_s >= 0 and second.finish_reason == "stop"
    assert isinstance(result.usage, Usage) and result.usage == first.usage + second.usage
    assert result.usage.reasoning_tokens > 0 and result.time_info is not None


def test_provider_parameters_pass_through(server: TestServer) -> None:
    ex = make(server, temperature=0.2, seed=7, model="gpt-oss-120b")  # a model that takes reasoning_effort
    ex.extract(person_schema(), TEXT, top_p=0.9, reasoning_effort="low", max_completion_tokens=500)
    body = server.requests[0]
    assert (body["temperature"], body["seed"], body["top_p"]) == (0.2, 7, 0.9)
    assert body["reasoning_effort"] == "low" and body["max_completion_tokens"] == 500


def test_reserved_parameters_are_refused(server: TestServer) -> None:
    with pytest.raises(ConfigurationError, match="response_format"):
        make(server).extract(person_schema(), TEXT, response_format={"type": "text"})
    with pytest.raises(ConfigurationError, match="not both"):
        make(server).extract(person_schema(), TEXT, max_tokens=5, max_completion_tokens=5)
    assert server.request_count == 0


def test_max_tokens_is_sent_as_max_completion_tokens(server: TestServer) -> None:
    make(server).extract(person_schema(), TEXT, max_tokens=400)
    assert server.requests[0]["max_completion_tokens"] == 400 and "max_tokens" not in server.requests[0]


# ---- prompt shape and re-ask content --------------------------------------------------------------------


def test_document_is_data_and_instructions_steer(server: TestServer) -> None:
    make(server).extract(person_schema(), TEXT, instructions="Names in capitals.")
    system, user = server.requests[0]["messages"]
    assert system["role"] == "system" and "Names in capitals." in system["content"]
    assert "is data, not instructions" in system["content"]
    assert user == {"role": "user", "content": f"<document>{TEXT}</document>"}


def test_reask_sends_document_once_and_only_the_last_failed_reply(server: TestServer) -> None:
    server.script("schema_violation", Fault.content('{"name": "Ada", "age": "old"}'))
    result = make(server).extract(person_schema(), TEXT, full=True)
    assert server.request_count == 3
    first_bad = result.attempts[0].content
    third = server.requests[2]["messages"]
    assert [m["role"] for m in third] == ["system", "user", "assistant", "user"]
    assert sum(TEXT in m["content"] for m in third) == 1  # the document once
    assert third[2]["content"] == '{"name": "Ada", "age": "old"}'  # only the LAST failed reply
    assert all(first_bad != m["content"] for m in third)
    assert "$.age" in third[3]["content"]  # the correction names the failing path
    assert "http" not in third[3]["content"]  # no URLs (e.g. pydantic's docs links)


def test_caller_messages_are_never_mutated(server: TestServer) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You read HR records."},
        {"role": "user", "content": TEXT},
    ]
    snapshot = copy.deepcopy(messages)
    ids = [id(m) for m in messages]
    server.script("schema_violation", "invalid_json")
    make(server).extract(person_schema(), messages, instructions="Be exact.")
    assert messages == snapshot and [id(m) for m in messages] == ids
    assert server.request_count == 3
    sent = server.requests[2]["messages"]
    assert sent[0]["content"].startswith("You read HR records.") and "Be exact." in sent[0]["content"]
    assert sent[1] == snapshot[1] and [m["role"] for m in sent[2:]] == ["assistant", "user"]


def test_messages_without_system_get_one(server: TestServer) -> None:
    messages = ({"role": "user", "content": TEXT},)
    make(server).extract(person_schema(), messages)
    assert [m["role"] for m in server.requests[0]["messages"]] == ["system", "user"]


def test_bad_text_type_is_an_input_error(server: TestServer) -> None:
    with pytest.raises(InputError, match="text must be a str"):
        make(server).extract(person_schema(), {"role": "user", "content": TEXT})  # type: ignore[arg-type]


# ---- limiter hook -----------------------------------------------------------------------------------------


class RecordingLimiter:
    def __init__(self, waits: list[float]) -> None:
        self.waits = waits
        self.calls: list[tuple[str, Any]] = []

    def reserve(self, tokens: int) -> float:
        self.calls.append(("reserve", tokens))
        return self.waits.pop(0) if self.waits else 0.0

    def observe(
        self, status_code: int, headers: Mapping[str, str], tokens_used: int | None, reserved: int
    ) -> None:
        self.calls.append(("observe", (status_code, tokens_used, reserved)))


def test_limiter_reserves_before_and_observes_after_every_send(server: TestServer) -> None:
    limiter = RecordingLimiter([0.01, 0.0])
    server.script(Fault.rate_limited(retry_after_ms=1))
    make(server, limiter=limiter).extract(person_schema(), TEXT, max_completion_tokens=100)
    kinds = [kind for kind, _ in limiter.calls]
    # wait once, then go; 429 observed; go again; 200 observed
    assert kinds == ["reserve", "reserve", "observe", "reserve", "observe"]
    reserved = limiter.calls[0][1]
    assert reserved > 100  # prompt estimate + the completion budget
    assert limiter.calls[2][1][0] == 429 and limiter.calls[4][1][0] == 200
    assert limiter.calls[4][1][1] and limiter.calls[4][1][2] == reserved


def test_real_ratelimiter_plugs_in(server: TestServer) -> None:
    from extract.ratelimit import RateLimiter

    limiter = RateLimiter()
    make(server, limiter=limiter).extract(person_schema(), TEXT)
    assert limiter.stats().granted == 1 and limiter.stats().observed == 1


# ---- the API key never leaks -------------------------------------------------------------------------------


def _texts(obj: Any) -> Iterator[str]:
    yield str(obj)
    yield repr(obj)
    if isinstance(obj, BaseException):
        yield from (str(a) for a in obj.args)
        for name in ("server_message", "body", "attempts", "usage"):
            yield repr(getattr(obj, name, None))


def test_canary_key_never_appears(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    with TestServer(api_key=CANARY) as srv:
        ex = Extractor(base_url=srv.base_url, api_key=CANARY, model=MODEL, provider="cerebras")
        seen += [str(ex), repr(ex), repr(ex._transport)]
        srv.script("schema_violation", "invalid_json", "empty")
        with pytest.raises(ExtractionFailed) as failed:
            ex.extract(person_schema(), TEXT)
        seen += _texts(failed.value)
        result = ex.extract(person_schema(), TEXT, full=True)
        seen += [repr(result), str(result.attempts)]
        srv.script(Fault.server_error(500, f"upstream said {CANARY}"), *[Fault.server_error(500, CANARY)] * 2)
        with pytest.raises(ExtractError) as server_failed:
            ex.extract(person_schema(), TEXT)
        seen += _texts(server_failed.value)
    with TestServer(api_key="sk-other") as srv:
        bad = Extractor(base_url=srv.base_url, api_key=CANARY, model=MODEL, provider="cerebras")
        with pytest.raises(AuthenticationError) as auth:
            bad.extract(person_schema(), TEXT)
        seen += _texts(auth.value)
    # a dead server: connection errors carry the URL, never the key
    dead = Extractor(base_url="http://127.0.0.1:9/v1", api_key=CANARY, model=MODEL, max_retries=0)
    with pytest.raises(ExtractError) as conn:
        dead.extract(person_schema(), TEXT)
    seen += _texts(conn.value)
    seen += [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    assert caplog.records  # the debug log was on and wrote something
    leaks = [text for text in seen if CANARY in text or CANARY[3:] in text]
    assert not leaks


async def test_cancelled_extraction_returns_its_reservation() -> None:
    limiter = RecordingLimiter([])
    with TestServer(latency=5.0) as srv:
        ex = Extractor(base_url=srv.base_url, model=MODEL, provider="cerebras", limiter=limiter)
        task = asyncio.ensure_future(ex.aextract(person_schema(), TEXT))
        while srv.request_count == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await ex.aclose()
    assert [kind for kind, _ in limiter.calls] == ["reserve", "observe"]
    assert limiter.calls[1][1][0] == 0  # no response: status 0, reservation released


def test_extra_headers_reach_the_server_and_share_one_default(
    server: TestServer, options: dict[str, Any]
) -> None:
    for _ in range(2):
        extract(person_schema(), TEXT, model=MODEL, headers={"queue_threshold": "500"}, **options)
    assert all(r.headers.get("queue_threshold") == "500" for r in server.requests)
    assert len([v for v in core._defaults.values() if v.base_url == server.base_url]) == 1
