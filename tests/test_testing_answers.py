"""Successful answers: the full provider shape, deterministic content that validates against the sent schema."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract.testing import TestServer

INVOICE = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "customer": {"$ref": "#/$defs/party"},
        "lines": {"type": "array", "items": {"$ref": "#/$defs/line"}},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP"]},
        "paid": {"type": "boolean"},
        "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
    },
    "required": ["number", "customer", "lines", "currency", "paid", "note"],
    "additionalProperties": False,
    "$defs": {
        "party": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "vat": {"type": "string"}},
            "required": ["name", "vat"],
            "additionalProperties": False,
        },
        "line": {
            "type": "object",
            "properties": {
                "item": {"type": "string"},
                "qty": {"type": "integer"},
                "price": {"type": "number"},
            },
            "required": ["item", "qty", "price"],
            "additionalProperties": False,
        },
    },
}


def chat(
    schema: dict[str, Any] = INVOICE, text: str = "Invoice 42 for Acme GmbH", **extra: Any
) -> dict[str, Any]:
    return {
        "model": "llama3.1-8b",
        "messages": [
            {"role": "system", "content": "Extract the invoice."},
            {"role": "user", "content": text},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "invoice", "strict": True, "schema": schema},
        },
        **extra,
    }


def complete(server: TestServer, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(server.base_url + "/chat/completions", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def content_of(reply: dict[str, Any]) -> Any:
    return json.loads(reply["choices"][0]["message"]["content"])


def test_reply_has_the_provider_shape(server: TestServer) -> None:
    reply = complete(server, chat())
    assert reply["object"] == "chat.completion"
    assert reply["id"].startswith("chatcmpl-")
    assert reply["model"] == "llama3.1-8b"
    assert isinstance(reply["created"], int) and reply["system_fingerprint"]
    choice = reply["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert "reasoning" not in choice["message"]  # llama3.1-8b is not a reasoning model
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"]["cached_tokens"] == 0
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0
    assert set(reply["time_info"]) == {
        "queue_time",
        "prompt_time",
        "completion_time",
        "total_time",
        "created",
    }


def test_token_estimates_follow_the_text_length(server: TestServer) -> None:
    short = complete(server, chat(text="Invoice 1"))["usage"]
    long = complete(server, chat(text="Invoice 1 " + "with a long description " * 40))["usage"]
    assert long["prompt_tokens"] - short["prompt_tokens"] >= (23 * 40) // 4 - 2
    reply = complete(server, chat())
    assert reply["usage"]["completion_tokens"] == (len(reply["choices"][0]["message"]["content"]) + 3) // 4


def test_content_validates_and_uses_the_user_text(server: TestServer) -> None:
    value = content_of(complete(server, chat()))
    jsonschema.validate(value, INVOICE)
    assert value["number"] == "Invoice"
    assert value["customer"]["name"] in {"Invoice", "for", "Acme", "GmbH"}


def test_same_request_same_content_and_different_text_differs(server: TestServer) -> None:
    first = content_of(complete(server, chat()))
    assert content_of(complete(server, chat())) == first
    assert content_of(complete(server, chat(text="Rechnung 7 an Beta AG"))) != first


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(min_size=1, max_size=60), model=st.sampled_from(["llama3.1-8b", "gpt-oss-120b"]))
def test_any_user_text_gives_a_valid_answer(server: TestServer, text: str, model: str) -> None:
    body = chat(text=text)
    body["model"] = model
    jsonschema.validate(content_of(complete(server, body)), INVOICE)


def test_json_object_with_schema_is_answered_from_the_schema(server: TestServer) -> None:
    body = chat()
    body["response_format"] = {"type": "json_object", "schema": INVOICE}
    body["messages"][0]["content"] = "Extract the invoice as JSON."
    jsonschema.validate(content_of(complete(server, body)), INVOICE)


def test_json_object_without_schema_answers_empty_object(server: TestServer) -> None:
    body = chat()
    body["response_format"] = {"type": "json_object"}
    body["messages"][0]["content"] = "Reply in JSON."
    assert content_of(complete(server, body)) == {}


def test_prompt_only_mode_answers_a_schema_found_in_the_prompt(server: TestServer) -> None:
    body = chat()
    del body["response_format"]
    body["messages"][0]["content"] = "Answer with JSON matching this schema:\n" + json.dumps(INVOICE)
    jsonschema.validate(content_of(complete(server, body)), INVOICE)


def test_configured_reply_is_used_when_no_schema_is_sent(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(reply='{"ok": true}')
    body = chat()
    del body["response_format"]
    assert content_of(complete(srv, body)) == {"ok": True}
    assert content_of(complete(srv, chat())) != {"ok": True}  # a sent schema still wins


def test_reasoning_models_carry_reasoning(server: TestServer) -> None:
    body = chat()
    body["model"] = "gpt-oss-120b"
    reply = complete(server, body)
    message = reply["choices"][0]["message"]
    assert message["reasoning"]
    reasoning_tokens = reply["usage"]["completion_tokens_details"]["reasoning_tokens"]
    assert reasoning_tokens > 0
    assert reply["usage"]["completion_tokens"] == reasoning_tokens + (len(message["content"]) + 3) // 4
    body["reasoning_format"] = "hidden"
    hidden = complete(server, body)
    assert "reasoning" not in hidden["choices"][0]["message"]
    assert hidden["usage"]["completion_tokens_details"]["reasoning_tokens"] == reasoning_tokens


def test_tight_max_completion_tokens_cuts_the_reply(server: TestServer) -> None:
    reply = complete(server, chat(max_completion_tokens=5))
    assert reply["choices"][0]["finish_reason"] == "length"
    assert len(reply["choices"][0]["message"]["content"]) == 20
    body = chat(max_completion_tokens=5)
    body["model"] = "gpt-oss-120b"  # reasoning spends the budget first: empty content
    reasoning = complete(server, body)
    assert reasoning["choices"][0]["finish_reason"] == "length"
    assert reasoning["choices"][0]["message"]["content"] == ""


def test_streaming_sends_chunks_then_done(server: TestServer) -> None:
    response = httpx.post(server.base_url + "/chat/completions", json=chat(stream=True))
    assert response.headers["content-type"] == "text/event-stream"
    events = [line.removeprefix("data: ") for line in response.text.split("\n\n") if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    jsonschema.validate(json.loads(content), INVOICE)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and "usage" in chunks[-1]


def test_models_and_tcp_warming(server: TestServer) -> None:
    models = httpx.get(server.base_url + "/models").json()
    assert models["object"] == "list"
    assert {m["id"] for m in models["data"]} == {
        "gpt-oss-120b",
        "zai-glm-4.7",
        "llama3.1-8b",
        "qwen-3-235b-a22b-instruct-2507",
    }
    assert httpx.get(server.base_url + "/models/llama3.1-8b").json()["id"] == "llama3.1-8b"
    assert httpx.get(server.base_url + "/models/nope").status_code == 404
    assert httpx.get(server.base_url + "/tcp_warming").status_code == 200


def test_unknown_path_is_404_in_provider_shape(server: TestServer) -> None:
    response = httpx.post(server.base_url + "/embeddings", json={})
    assert response.status_code == 404
    assert set(response.json()) == {"message", "type", "param", "code"}
    assert server.request_count == 0  # only chat completions are counted


def test_a_repeated_system_prompt_is_reported_as_cached(server: TestServer) -> None:
    body = chat()
    body["messages"][0]["content"] = "Extract the invoice. " * 60  # 1260 characters, ~315 tokens
    first = complete(server, body)["usage"]
    body["messages"][1]["content"] = "Invoice 43 for Beta AG"
    second = complete(server, body)["usage"]
    # the schema is rendered before the messages, so it is part of the shared prefix
    shared = len(json.dumps(INVOICE, separators=(",", ":"))) + 1 + 1260
    assert first["prompt_tokens_details"]["cached_tokens"] == 0
    assert (
        second["prompt_tokens_details"]["cached_tokens"] == shared // 512 * 128
    )  # whole blocks of 128 tokens
    assert second["prompt_tokens_details"]["cached_tokens"] >= 256
    server.reset()
    assert complete(server, body)["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
