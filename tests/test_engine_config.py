"""Backend choice from arguments and environment, and the sans-IO engine's invariants."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_faults import MODEL, TEXT, Person, person_schema

from extract._engine.drive import Send, Sleep
from extract._engine.loop import run
from extract.core import Extractor, Result
from extract.errors import (
    APIConnectionError,
    APIError,
    ConfigurationError,
    ExtractError,
    ExtractionFailed,
    SchemaError,
)
from extract.testing import TestServer
from extract.transports import CEREBRAS_BASE_URL, HttpTransport, RetryPolicy, WireResponse


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("CEREBRAS_API_KEY", raising=False)
    monkeypatch.delenv("CEREBRAS_BASE_URL", raising=False)
    return monkeypatch


def test_environment_selects_cerebras(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CEREBRAS_API_KEY", "sk-env")
    ex = Extractor()
    assert ex.base_url == CEREBRAS_BASE_URL and ex.model == "gpt-oss-120b" and ex.provider == "cerebras"
    assert "sk-env" not in repr(ex) and "***" in repr(ex)


def test_environment_base_url_and_key_reach_the_server(clean_env: pytest.MonkeyPatch) -> None:
    with TestServer(api_key="sk-env") as srv:
        clean_env.setenv("CEREBRAS_API_KEY", "sk-env")
        clean_env.setenv("CEREBRAS_BASE_URL", srv.base_url)
        ex = Extractor(model=MODEL)
        assert ex.provider == "cerebras"
        assert isinstance(ex.extract(person_schema(), TEXT), Person)  # the server demands sk-env


def test_cerebras_key_is_not_sent_to_other_servers(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("CEREBRAS_API_KEY", "sk-env")
    with TestServer(api_key="sk-env") as srv:
        ex = Extractor(base_url=srv.base_url, model=MODEL, provider="cerebras")
        assert ex._api_key is None


def test_explicit_transport_is_used_as_given() -> None:
    class Local(HttpTransport):
        provider = "llamacpp"

    with TestServer(flavor="llamacpp") as srv:
        ex = Extractor(transport=Local(srv.base_url), model="any")
        assert ex.provider == "llamacpp"
        assert ex.extract(person_schema(), TEXT, full=True).mode == "json_object_schema"
        assert srv.request_count == 1
        ex.close()


def test_generic_server_needs_a_model(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match="model="):
        Extractor(base_url="http://127.0.0.1:9/v1")


@pytest.mark.parametrize("bad", [{"max_attempts": 0}, {"max_retries": -1}, {"timeout": 0}, {"stream": True}])
def test_bad_options_are_configuration_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        Extractor(base_url="http://127.0.0.1:9/v1", model="m", **bad)


def test_no_key_no_url_uses_the_local_model_or_says_how(
    clean_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="extract")
    try:
        ex = Extractor()
    except ConfigurationError as exc:
        text = str(exc)
        assert "CEREBRAS_API_KEY" in text or "local" in text  # names the ways out
        return
    assert ex.base_url == "local" and ex.provider == "local" and ex.in_process
    assert any("embedded" in r.getMessage() for r in caplog.records)


# ---- the generator itself, without any I/O ---------------------------------------------------------------


def _ok_body() -> dict[str, Any]:
    return {
        "choices": [{"message": {"content": '{"name":"Ada","age":36}'}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def _response(status: int, data: Any, headers: dict[str, str] | None = None) -> WireResponse:
    return WireResponse(status, headers or {}, orjson.dumps(data), data)


def _job(max_retries: int) -> Any:
    ex = Extractor(
        base_url="http://127.0.0.1:9/v1", model=MODEL, provider="cerebras", max_retries=max_retries
    )
    ex._retry = RetryPolicy(max_retries=max_retries)
    return ex._job(person_schema(), TEXT, None, None, None, None, {})


Failure = st.sampled_from(["503", "429", "408", "conn"])


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(failures=st.lists(Failure, max_size=5), max_retries=st.integers(0, 4))
def test_transport_failures_are_retried_exactly_max_retries_times(
    failures: list[str], max_retries: int
) -> None:
    gen = run(_job(max_retries))
    sends = sleeps = 0
    action = next(gen)
    queue = list(failures)
    outcome: Any
    try:
        while True:
            if isinstance(action, Send):
                sends += 1
                kind = queue.pop(0) if queue else "ok"
                if kind == "ok":
                    outcome = _response(200, _ok_body())
                elif kind == "conn":
                    outcome = APIConnectionError("reset")
                else:
                    outcome = _response(int(kind), {"message": "busy"})
            else:
                assert isinstance(action, Sleep) and 0 <= action.seconds <= 8
                sleeps += 1
                outcome = None
            action = gen.send(outcome)
    except StopIteration as stop:
        result = stop.value
        assert isinstance(result, Result) and len(result.attempts) == 1
        assert len(failures) <= max_retries and sends == len(failures) + 1
    except APIError:
        assert len(failures) > max_retries and sends == max_retries + 1
    assert sleeps == sends - 1


def test_generator_is_one_implementation_for_both_drivers() -> None:
    # The drivers only perform actions: a Sleep action carries no I/O and the generator never blocks.
    gen = run(_job(1))
    first = next(gen)
    assert isinstance(first, Send) and first.request.path == "/chat/completions"
    assert first.request.reserved_tokens > len(TEXT) // 4
    retry = gen.send(_response(503, {"message": "busy"}, {"retry-after": "3"}))
    assert retry == Sleep(3.0)
    again = gen.send(None)
    assert isinstance(again, Send) and again.request.body == first.request.body
    gen.close()


@pytest.fixture
def llamacpp_server() -> Iterator[TestServer]:
    with TestServer(flavor="llamacpp") as srv:
        yield srv


def test_demotions_are_per_model(llamacpp_server: TestServer) -> None:
    ex = Extractor(base_url=llamacpp_server.base_url, model="a", provider="openai")
    ex.extract(person_schema(), TEXT)
    ex.extract(person_schema(), TEXT, model="b")
    assert llamacpp_server.request_count == 4  # each model learns its own demotion
    ex.extract(person_schema(), TEXT, model="b")
    assert llamacpp_server.request_count == 5


def test_unknown_servers_try_strict_first_then_remember_the_demotion(llamacpp_server: TestServer) -> None:
    ex = Extractor(base_url=llamacpp_server.base_url, model="a")
    result = ex.extract(person_schema(), TEXT, full=True)
    # one json_schema refusal (llama.cpp's 500) + one success with the schema in json_object
    assert llamacpp_server.request_count == 2 and result.mode == "json_object_schema"
    ex.extract(person_schema(), TEXT)
    assert llamacpp_server.request_count == 3
    sent = llamacpp_server.requests[2]["response_format"]
    assert (
        sent["type"] == "json_object"
        and sent["schema"] == ex._compile(person_schema(), "cerebras").wire_schema
    )


_REPLIES = {
    "ok": '{"name":"Ada","age":36}',
    "violation": '{"name":"Ada"}',
    "not_json": "{'name': Ada",
    "empty": "",
}
Message = st.fixed_dictionaries(
    {"role": st.sampled_from(["system", "user", "assistant"]), "content": st.text(max_size=40)}
)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    messages=st.lists(Message, min_size=1, max_size=4),
    replies=st.lists(st.sampled_from(sorted(_REPLIES)), min_size=1, max_size=4),
)
def test_reasks_never_touch_the_callers_messages_and_carry_one_failed_reply(
    messages: list[dict[str, str]], replies: list[str]
) -> None:
    snapshot = [dict(m) for m in messages]
    ex = Extractor(base_url="http://127.0.0.1:9/v1", model=MODEL, provider="cerebras", max_attempts=4)
    gen = run(ex._job(person_schema(), messages, "steer", None, None, None, {}))
    queue = list(replies)
    sent: list[list[Any]] = []
    action = next(gen)
    try:
        while True:
            assert isinstance(action, Send)
            body_messages = action.request.body["messages"]
            sent.append(list(body_messages))
            content = _REPLIES[queue.pop(0) if queue else "ok"]
            data = {"choices": [{"message": {"content": content}, "finish_reason": "stop"}], "usage": {}}
            action = gen.send(_response(200, data))
    except StopIteration:
        pass
    except ExtractError:
        pass
    assert messages == snapshot
    base = len(messages) + (0 if messages[0]["role"] == "system" else 1)
    for i, body_messages in enumerate(sent):
        extra = body_messages[base:]
        if i == 0:
            assert extra == []
        else:
            # at most [assistant(last failed reply), user(correction)]; never the older replies
            previous = _REPLIES[replies[i - 1]]
            assert [m["role"] for m in extra] in (["user"], ["assistant", "user"])
            if len(extra) == 2:
                assert extra[0]["content"] == previous


CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus" / "jsonschemabench" / "schemas"


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"JSONSchemaBench corpus not found at {CORPUS}")
def test_real_world_schemas_run_end_to_end() -> None:
    """A sample of real schemas through compile -> request -> reply -> validate: each either succeeds or
    fails as ExtractionFailed whose errors name JSON paths, and no request is ever wasted or lost."""
    files = sorted(CORPUS.glob("*/*.json"))[::150]
    assert len(files) >= 20
    succeeded = 0
    with TestServer() as srv:
        ex = Extractor(base_url=srv.base_url, model=MODEL, provider="cerebras", max_retries=0, max_attempts=2)
        for path in files:
            try:
                schema = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError:
                continue
            before = srv.request_count
            try:
                result = ex.extract(schema, "Ada Lovelace, 1815, London.", full=True)
            except SchemaError:
                assert srv.request_count == before  # refused before any request
                continue
            except ExtractionFailed as exc:
                assert srv.request_count - before == len(exc.attempts) == 2
                assert all(e.startswith("$") for a in exc.attempts for e in a.errors), path.name
                continue
            succeeded += 1
            assert srv.request_count - before == len(result.attempts)
    assert succeeded >= len(files) // 2
