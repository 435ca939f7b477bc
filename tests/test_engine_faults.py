"""The fault matrix: every way a server or a model can misbehave, over real HTTP to a loopback TestServer.

Each test checks the outcome AND how many requests the server received, so a retry that should not
happen (or a missing one) fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pydantic
import pytest

from extract.core import Extractor, Result
from extract.errors import (
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ExtractionFailed,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from extract.testing import Fault, TestServer
from extract.transports import RetryPolicy

MODEL = "llama3.1-8b"


class Person(pydantic.BaseModel):
    name: str
    age: int


def person_schema() -> Any:
    return Person


FAST = RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.02)


def make(server: TestServer, **options: Any) -> Extractor:
    options.setdefault("provider", "cerebras")
    ex = Extractor(base_url=server.base_url, api_key="sk-test", model=options.pop("model", MODEL), **options)
    ex._retry = RetryPolicy(
        max_retries=options.get("max_retries", 2), initial_delay=FAST.initial_delay, max_delay=FAST.max_delay
    )
    return ex


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer(api_key="sk-test") as srv:
        yield srv


TEXT = "Ada Lovelace was 36 years old."


def run(ex: Extractor, **kw: Any) -> Result:
    result = ex.extract(person_schema(), TEXT, full=True, **kw)
    assert isinstance(result, Result)
    assert isinstance(result.value, Person)
    return result


# ---- reply content faults: each costs one re-ask (or none) -----------------------------------------------


@pytest.mark.parametrize("fault", ["invalid_json", "schema_violation", "schema_echo", "empty"])
def test_bad_reply_is_reasked_once(server: TestServer, fault: str) -> None:
    server.script(fault)
    result = run(make(server))
    assert server.request_count == 2
    assert len(result.attempts) == 2 and result.attempts[0].errors and not result.attempts[1].errors
    assert result.usage.total_tokens == sum(a.usage.total_tokens for a in result.attempts) > 0
    correction = server.requests[1]["messages"][-1]
    assert correction["role"] == "user" and correction["content"]


@pytest.mark.parametrize("fault", ["wrapped", "fenced"])
def test_recoverable_packaging_needs_no_reask(server: TestServer, fault: str) -> None:
    server.script(fault)
    result = run(make(server))
    assert server.request_count == 1 and len(result.attempts) == 1


def test_truncated_reply_is_retried_with_a_doubled_budget(server: TestServer) -> None:
    server.script(Fault.truncated())
    result = run(make(server), max_completion_tokens=300)
    assert server.request_count == 2
    assert [r["max_completion_tokens"] for r in server.requests] == [300, 600]
    # same conversation again: no correction for a cut-off reply that can be given more room
    assert server.requests[0]["messages"] == server.requests[1]["messages"]
    assert result.attempts[0].finish_reason == "length"


def test_truncation_budget_is_bounded(server: TestServer) -> None:
    server.script(Fault.truncated(), Fault.truncated())
    ex = make(server)
    cap = ex._row(MODEL).max_output_tokens
    run(ex, max_completion_tokens=cap - 10)
    assert [r["max_completion_tokens"] for r in server.requests] == [cap - 10, cap, cap]
    assert server.requests[2]["messages"][-1]["role"] == "user"  # could not grow: corrected instead


def test_refusal_is_reasked_once_then_given_up(server: TestServer) -> None:
    server.script("refusal")
    run(make(server))
    assert server.request_count == 2
    assert "extraction" in server.requests[1]["messages"][-1]["content"]

    server.reset()
    server.script("refusal", "refusal")
    with pytest.raises(ExtractionFailed) as info:
        make(server, max_attempts=5).extract(person_schema(), TEXT)
    assert server.request_count == 2
    assert len(info.value.attempts) == 2 and "refused" in str(info.value)


def test_attempts_exhausted_raise_with_every_attempt(server: TestServer) -> None:
    server.script("schema_violation", "invalid_json", "schema_violation")
    with pytest.raises(ExtractionFailed) as info:
        make(server).extract(person_schema(), TEXT)
    assert server.request_count == 3
    failed = info.value
    assert len(failed.attempts) == 3 and all(a.content is not None for a in failed.attempts)
    assert failed.usage.total_tokens == sum(a.usage.total_tokens for a in failed.attempts) > 0
    assert "$" in str(failed) and "3 attempt" in str(failed)


def test_token_budget_stops_reasking(server: TestServer) -> None:
    server.script("schema_violation", "schema_violation")
    with pytest.raises(ExtractionFailed, match="token budget"):
        make(server, token_budget=1).extract(person_schema(), TEXT)
    assert server.request_count == 1


# ---- transport faults: retried, never counted as attempts --------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        Fault.server_error(500),
        Fault.server_error(503),
        Fault.timeout(),
        Fault.rate_limited(),
        Fault.rate_limited(retry_after_ms=10),
        Fault.rate_limited(reset_tokens=0.01, code="token_quota_exceeded"),
        Fault.rate_limited(code="queue_exceeded"),
        Fault.drop(),
    ],
    ids=["500", "503", "408", "429-bare", "429-retry-after-ms", "429-reset", "429-queue", "drop"],
)
def test_transient_fault_is_retried(server: TestServer, fault: Fault) -> None:
    server.script(fault)
    result = run(make(server))
    assert server.request_count == 2
    assert len(result.attempts) == 1


def test_retries_exhausted_raise_the_matching_error(server: TestServer) -> None:
    server.script(*[Fault.rate_limited(retry_after=0)] * 3)
    with pytest.raises(RateLimitError) as info:
        make(server).extract(person_schema(), TEXT)
    assert server.request_count == 3 and info.value.status_code == 429

    server.reset()
    server.script(*[Fault.server_error(502)] * 2)
    with pytest.raises(ServerError):
        make(server, max_retries=1).extract(person_schema(), TEXT)
    assert server.request_count == 2


def test_x_should_retry_false_is_obeyed(server: TestServer) -> None:
    # Fault.status is shadowed by the dataclass field of the same name, so build the fault directly.
    server.script(Fault("status", status=503, headers=(("x-should-retry", "false"),)))
    with pytest.raises(ServerError):
        make(server).extract(person_schema(), TEXT)
    assert server.request_count == 1


def test_slow_reply_times_out_and_is_retried(server: TestServer) -> None:
    server.script(Fault.slow(2.0))
    result = run(make(server, timeout=0.3))
    assert server.request_count == 2 and len(result.attempts) == 1


def test_slow_replies_exhaust_retries_as_timeout(server: TestServer) -> None:
    server.script(Fault.slow(2.0), Fault.slow(2.0))
    with pytest.raises(APITimeoutError):
        make(server, timeout=0.2, max_retries=1).extract(person_schema(), TEXT)
    assert server.request_count == 2


def test_timeouts_of_the_embedded_model_are_not_retried(server: TestServer) -> None:
    # the "local" capability row: a timeout there is the computation itself, so a retry would only repeat it
    server.script(Fault.slow(2.0), Fault.slow(2.0))
    ex = make(server, provider="local", timeout=0.2)
    with pytest.raises(APITimeoutError):
        ex.extract(person_schema(), TEXT)
    assert server.request_count == 1


def test_401_raises_at_once_with_advice() -> None:
    with TestServer(api_key="sk-right") as srv:
        ex = Extractor(base_url=srv.base_url, api_key="sk-wrong", model=MODEL, provider="cerebras")
        with pytest.raises(AuthenticationError) as info:
            ex.extract(person_schema(), TEXT)
        assert srv.request_count == 1
    assert info.value.status_code == 401 and "CEREBRAS_API_KEY" in str(info.value)


@pytest.mark.parametrize("status", [400, 422])
def test_client_error_other_than_a_mode_rejection_raises_at_once(server: TestServer, status: int) -> None:
    body = {"message": "temperature must be <= 2", "type": "invalid_request_error", "param": "temperature"}
    server.script(Fault("status", status=status, body=body))
    with pytest.raises(BadRequestError) as info:
        make(server).extract(person_schema(), TEXT, temperature=3)
    assert server.request_count == 1
    assert info.value.param == "temperature" and "temperature must be" in str(info.value)


def test_404_unknown_model_raises_at_once(server: TestServer) -> None:
    with pytest.raises(NotFoundError) as info:
        make(server, model="no-such-model").extract(person_schema(), TEXT)
    assert server.request_count == 1 and info.value.server_message


# ---- mode demotion ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 422])
def test_json_schema_rejection_demotes_once_and_is_remembered(
    status: int, caplog: pytest.LogCaptureFixture
) -> None:
    with TestServer(api_key="sk-test", json_object_only=True, json_object_only_status=status) as srv:
        ex = make(srv)
        result = run(ex)
        assert srv.request_count == 2  # one rejection + one success, no attempt spent
        assert result.mode == "json_object" and len(result.attempts) == 1
        first, second = srv.requests
        assert first["response_format"]["type"] == "json_schema"
        assert second["response_format"] == {"type": "json_object"}
        assert '"age"' in second["messages"][0]["content"]  # the schema moved into the prompt
        run(ex)
        assert srv.request_count == 3  # remembered: only ONE request on the next call
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "refused" in r.getMessage()]
    assert len(warnings) == 1


def test_llamacpp_500_rejection_demotes() -> None:
    # A strict profile pointed at a llama.cpp server: its json_schema refusal is a 500, not a fault.
    with TestServer(flavor="llamacpp") as srv:
        ex = Extractor(base_url=srv.base_url, model="any-gguf", provider="openai")
        ex._retry = FAST
        result = run(ex)
        assert srv.request_count == 2
        assert result.mode == "json_object"
        run(ex)
        assert srv.request_count == 3


def test_llamacpp_profile_starts_with_schema_in_json_object() -> None:
    with TestServer(flavor="llamacpp") as srv:
        ex = Extractor(base_url=srv.base_url, model="any-gguf", provider="llamacpp")
        result = run(ex, max_tokens=256)
        assert srv.request_count == 1 and result.mode == "json_object_schema"
        body = srv.requests[0]
        assert body["response_format"]["type"] == "json_object" and "schema" in body["response_format"]
        assert body["max_tokens"] == 256 and "max_completion_tokens" not in body
