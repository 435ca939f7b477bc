"""Scripted faults (FIFO, one per request, then back to normal) and the seeded probabilistic modes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
import pytest

from extract.errors import ConfigurationError
from extract.testing import FAULT_NAMES, Fault, TestServer

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def chat(text: str = "Ada Lovelace, 36", **extra: Any) -> dict[str, Any]:
    return {
        "model": "llama3.1-8b",
        "messages": [{"role": "user", "content": text}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": PERSON},
        },
        **extra,
    }


def send(server: TestServer, body: dict[str, Any] | None = None, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.base_url + "/chat/completions", json=body or chat(), **kwargs)


def message_of(response: httpx.Response) -> tuple[str, str]:
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    return choice["message"]["content"], choice["finish_reason"]


def is_valid(content: str) -> bool:
    try:
        value = json.loads(content)
    except json.JSONDecodeError:
        return False
    return bool(jsonschema.Draft202012Validator(PERSON).is_valid(value))


def test_faults_are_consumed_in_order_then_normal(server: TestServer) -> None:
    server.script(Fault.server_error(503), "empty", Fault.content("hello"))
    assert server.pending_faults == 3
    assert send(server).status_code == 503
    assert message_of(send(server)) == ("", "stop")
    assert message_of(send(server)) == ("hello", "stop")
    assert is_valid(message_of(send(server))[0])
    assert server.pending_faults == 0


def test_invalid_json(server: TestServer) -> None:
    server.script("invalid_json")
    content, _ = message_of(send(server))
    with pytest.raises(json.JSONDecodeError):
        json.loads(content)


def test_schema_violation_is_valid_json_that_breaks_the_schema(server: TestServer) -> None:
    server.script("schema_violation")
    content, finish = message_of(send(server))
    assert finish == "stop"
    value = json.loads(content)
    assert not is_valid(content)
    assert isinstance(value, dict) and set(value) < {"name", "age"}  # a required field was dropped


def test_schema_violation_without_schema_still_breaks_something(server: TestServer) -> None:
    body = chat()
    body["response_format"] = {"type": "json_object"}
    body["messages"][0]["content"] += " as JSON"
    server.script("schema_violation")
    content, _ = message_of(send(server, body))
    assert json.loads(content) != {}


def test_truncated(server: TestServer) -> None:
    full, _ = message_of(send(server))
    server.script(Fault.truncated(0.5))
    cut, finish = message_of(send(server))
    assert finish == "length"
    assert full.startswith(cut) and len(cut) == len(full) // 2


def test_schema_echo(server: TestServer) -> None:
    server.script("schema_echo")
    assert json.loads(message_of(send(server))[0]) == PERSON


def test_wrapped(server: TestServer) -> None:
    normal = json.loads(message_of(send(server))[0])
    server.script("wrapped", Fault.wrapped("data"))
    assert json.loads(message_of(send(server))[0]) == {"json": normal}
    assert json.loads(message_of(send(server))[0]) == {"data": normal}


def test_fenced(server: TestServer) -> None:
    normal = json.loads(message_of(send(server))[0])
    server.script("fenced")
    content, _ = message_of(send(server))
    assert "```json\n" in content and content.rstrip().endswith("```")
    inner = content.split("```json\n", 1)[1].rsplit("```", 1)[0]
    assert json.loads(inner) == normal


def test_refusal(server: TestServer) -> None:
    server.script("refusal")
    content, _ = message_of(send(server))
    assert "sorry" in content.lower()


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_use_the_envelope(server: TestServer, status: int) -> None:
    server.script(Fault.server_error(status))
    response = send(server)
    assert response.status_code == status
    body = response.json()
    assert body["status_code"] == status
    assert set(body["error"]) == {"message", "type", "param", "code", "id"}
    assert body["error"]["type"] == "server_error"


def test_rate_limited_without_headers(server: TestServer) -> None:
    server.script("rate_limited")
    response = send(server)
    assert response.status_code == 429
    assert response.json()["code"] == "request_quota_exceeded"
    assert not [h for h in response.headers if h.startswith(("retry-after", "x-ratelimit"))]
    assert server.count_429 == 1


def test_rate_limited_with_headers(server: TestServer) -> None:
    server.script(
        Fault.rate_limited(retry_after=2),
        Fault.rate_limited(retry_after_ms=150),
        Fault.rate_limited(reset_tokens=1.5, reset_requests=30, code="token_quota_exceeded"),
        Fault.rate_limited(code="queue_exceeded"),
    )
    assert send(server).headers["retry-after"] == "2"
    assert send(server).headers["retry-after-ms"] == "150"
    third = send(server)
    assert third.headers["x-ratelimit-reset-tokens-minute"] == "1.5"
    assert third.headers["x-ratelimit-reset-requests-day"] == "30"
    assert third.json()["code"] == "token_quota_exceeded"
    queue = send(server).json()
    assert queue["code"] == "queue_exceeded" and queue["param"] == "queue"
    assert server.count_429 == 4


def test_timeout_and_unauthorized(server: TestServer) -> None:
    server.script("timeout", "unauthorized")
    assert send(server).status_code == 408
    response = send(server)
    assert response.status_code == 401 and response.json()["code"] == "wrong_api_key"


def test_http_error_with_custom_body_and_headers(server: TestServer) -> None:
    server.script(Fault.http_error(409, {"message": "conflict"}, {"x-should-retry": "true"}))
    response = send(server)
    assert response.status_code == 409
    assert response.json() == {"message": "conflict"}
    assert response.headers["x-should-retry"] == "true"


def test_slow_reply_trips_a_client_timeout_then_recovers(server: TestServer) -> None:
    server.script(Fault.slow(0.5))
    with pytest.raises(httpx.ReadTimeout):
        send(server, timeout=0.05)
    assert is_valid(message_of(send(server))[0])


def test_slow_reply_answers_normally(server: TestServer) -> None:
    server.script(Fault.slow(0.05))
    assert is_valid(message_of(send(server))[0])


def test_dropped_connection(server: TestServer) -> None:
    server.script("drop")
    with httpx.Client() as client:
        with pytest.raises(httpx.RemoteProtocolError):
            client.post(server.base_url + "/chat/completions", json=chat())
        assert client.post(server.base_url + "/chat/completions", json=chat()).status_code == 200
    assert server.request_count == 2


def test_every_named_fault_is_accepted(server: TestServer) -> None:
    server.script(*[name for name in FAULT_NAMES if name not in ("slow", "drop")])
    statuses = [send(server).status_code for _ in range(server.pending_faults)]
    assert set(statuses) <= {200, 401, 408, 429, 500, 502, 503}


def test_unknown_fault_name_lists_the_valid_ones(server: TestServer) -> None:
    with pytest.raises(ConfigurationError, match="invalid_json"):
        server.script("explode")


def test_invalid_rate_only_hits_first_turns_once(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(invalid_rate=1.0, seed=3)
    assert not is_valid(message_of(send(srv))[0])
    assert is_valid(message_of(send(srv))[0])  # the same request again: answered correctly
    reask = chat()
    reask["messages"] += [{"role": "assistant", "content": "{}"}, {"role": "user", "content": "Fix it."}]
    assert is_valid(message_of(send(srv, reask))[0])


def test_invalid_rate_is_seeded_and_roughly_honoured(make_server: Callable[..., TestServer]) -> None:
    def run(seed: int) -> list[bool]:
        srv = make_server(invalid_rate=0.3, seed=seed)
        with httpx.Client(base_url=srv.base_url) as client:
            return [
                is_valid(
                    client.post("/chat/completions", json=chat(f"Person number {i}")).json()["choices"][0][
                        "message"
                    ]["content"]
                )
                for i in range(120)
            ]

    first = run(7)
    assert run(7) == first
    assert 0.15 <= first.count(False) / len(first) <= 0.45


def test_fault_rate_injects_transient_faults(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(fault_rate=0.5, seed=1, fault_kinds=("unavailable",))
    with httpx.Client(base_url=srv.base_url) as client:
        statuses = [client.post("/chat/completions", json=chat()).status_code for _ in range(60)]
    assert set(statuses) == {200, 503}
    assert 10 <= statuses.count(503) <= 50


def test_fault_constructors_reject_nonsense() -> None:
    with pytest.raises(ConfigurationError):
        Fault.server_error(404)
    with pytest.raises(ConfigurationError):
        Fault.truncated(1.5)
    with pytest.raises(ConfigurationError):
        Fault.slow(-1)
