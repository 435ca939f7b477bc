"""The test server speaks the provider's whole wire contract, checked over real HTTP on 127.0.0.1.

Body encodings (gzip, msgpack), text completions with logprobs, chat logprobs, reasoning efforts, the prompt
cache, predicted outputs, service tiers and the queue threshold, context windows, time_info.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import math
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.errors import ConfigurationError
from extract.testing import Fault, TestServer
from extract.testing._cache import PromptCache
from extract.testing._msgpack import MsgpackError, packb, unpackb
from extract.testing._tokens import matched_chars, tokenize

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def chat(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "llama3.1-8b",
        "messages": [
            {"role": "system", "content": "Extract the person as JSON."},
            {"role": "user", "content": "Ada Lovelace, 36, mathematician."},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": PERSON},
        },
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def post(server: TestServer, body: Any, path: str = "/chat/completions", **kwargs: Any) -> httpx.Response:
    return httpx.post(server.base_url + path, json=body, **kwargs)


def ok(server: TestServer, body: Any, path: str = "/chat/completions", **kwargs: Any) -> dict[str, Any]:
    response = post(server, body, path, **kwargs)
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def flat_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "type", "param", "code"}
    if param is not None:
        assert body["param"] == param
    return body


def send(server: TestServer, payload: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(server.base_url + "/chat/completions", content=payload, headers=headers)


# ---- body encodings -----------------------------------------------------------------------------------
_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=_json_values)
def test_msgpack_round_trips_every_json_value(value: Any) -> None:
    assert unpackb(packb(value)) == value


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=64))
def test_msgpack_decoder_refuses_garbage_with_its_own_error(data: bytes) -> None:
    with contextlib.suppress(MsgpackError):
        unpackb(data)


def test_msgpack_decoder_knows_the_format_bytes() -> None:
    # fixmap{ "a": [1, -1, 300, 1.5, nil, true], "b": str8 } built by hand from the spec
    data = bytes([0x82, 0xA1, 0x61, 0x96, 0x01, 0xFF, 0xCD, 0x01, 0x2C, 0xCB]) + bytes.fromhex(
        "3ff8000000000000"
    )
    data += bytes([0xC0, 0xC3, 0xA1, 0x62, 0xD9, 0x03]) + b"xyz"
    assert unpackb(data) == {"a": [1, -1, 300, 1.5, None, True], "b": "xyz"}
    for bad in (b"\xc4\x01a", b"\x81\x01\x01", b"\x92\x01", b"\xc1", b"\x01\x02"):
        with pytest.raises(MsgpackError):
            unpackb(bad)


@pytest.mark.parametrize(
    ("headers", "encode", "name"),
    [
        ({"content-type": "application/json"}, lambda b: json.dumps(b).encode(), "json"),
        (
            {"content-type": "application/json", "content-encoding": "gzip"},
            lambda b: gzip.compress(json.dumps(b).encode()),
            "gzip",
        ),
        ({"content-type": "application/vnd.msgpack"}, packb, "msgpack"),
        (
            {"content-type": "application/vnd.msgpack", "content-encoding": "gzip"},
            lambda b: gzip.compress(packb(b)),
            "msgpack+gzip",
        ),
    ],
)
def test_every_encoding_the_page_names_is_decoded_and_recorded(
    server: TestServer, headers: dict[str, str], encode: Callable[[Any], bytes], name: str
) -> None:
    body = chat(messages=[{"role": "user", "content": "Ada Lovelace " * 300}])
    payload = encode(body)
    response = send(server, payload, headers)
    assert response.status_code == 200, response.text
    assert json.loads(response.json()["choices"][0]["message"]["content"])["name"]
    assert server.requests[0]["messages"] == body["messages"]
    assert server.requests[0].encoding == name
    (entry,) = server.request_log
    assert (entry.encoding, entry.wire_bytes, entry.status) == (name, len(payload), 200)
    assert entry.body_bytes == len(packb(body) if "msgpack" in name else json.dumps(body).encode())
    assert entry.content_encoding == headers.get("content-encoding", "")
    if name in ("gzip", "msgpack+gzip"):
        assert entry.wire_bytes < entry.body_bytes / 5


@pytest.mark.parametrize(
    ("payload", "headers", "status"),
    [
        (b"not gzip", {"content-encoding": "gzip"}, 400),
        (gzip.compress(b"{")[:-4], {"content-encoding": "gzip"}, 400),
        (b"\x81\xa1a", {"content-type": "application/vnd.msgpack"}, 400),
        (b"\xc4\x01a", {"content-type": "application/vnd.msgpack"}, 400),
        (
            gzip.compress(b"\x93\x01"),
            {"content-type": "application/vnd.msgpack", "content-encoding": "gzip"},
            400,
        ),
        (b"{}", {"content-encoding": "br"}, 415),
        (b"{}", {"content-type": "application/xml"}, 415),
        (b"{not json", {"content-type": "application/json"}, 400),
    ],
)
def test_bad_encodings_get_the_provider_error_shape(
    server: TestServer, payload: bytes, headers: dict[str, str], status: int
) -> None:
    body = flat_error(send(server, payload, headers), status)
    assert body["type"] == "invalid_request_error" and body["message"]
    assert server.request_log[0].status == status
    assert server.request_count == 1  # counted and logged, like any request


def test_a_server_can_refuse_encodings_so_clients_can_demote(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(accept_encodings={"gzip"})
    packed = send(srv, packb(chat()), {"content-type": "application/vnd.msgpack"})
    assert flat_error(packed, 415, "content-type")["code"] == "unsupported_media_type"
    zipped = send(srv, gzip.compress(json.dumps(chat()).encode()), {"content-encoding": "gzip"})
    assert zipped.status_code == 200
    plain = make_server(accept_encodings=())
    flat_error(send(plain, gzip.compress(b"{}"), {"content-encoding": "gzip"}), 415, "content-encoding")
    assert [e.status for e in plain.request_log] == [415]
    assert post(plain, chat()).status_code == 200


def test_the_llamacpp_flavor_accepts_plain_json_only(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(flavor="llamacpp")
    assert srv.settings.encodings == frozenset()
    assert send(srv, gzip.compress(b"{}"), {"content-encoding": "gzip"}).status_code == 415


def test_unknown_encoding_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="accept_encodings"):
        TestServer(accept_encodings={"brotli"})


# ---- text completions (seed page 002) ------------------------------------------------------------------
SEED_PROMPT = "It was a dark and stormy night"


def test_text_completion_has_the_seed_shape(server: TestServer) -> None:
    body = {"prompt": SEED_PROMPT, "max_tokens": 100, "model": "gpt-oss-120b", "logprobs": 5}
    reply = ok(server, body, "/completions")
    assert reply["object"] == "text_completion" and reply["model"] == "gpt-oss-120b"
    (choice,) = reply["choices"]
    assert choice["finish_reason"] == "stop" and choice["tokens"] is None
    lp = choice["logprobs"]
    tokens = lp["tokens"]
    assert "".join(tokens) == choice["text"] and tokens
    assert len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"]) == len(tokens)
    offset = len(SEED_PROMPT)
    for i, token in enumerate(tokens):
        assert lp["text_offset"][i] == offset
        offset += len(token)
        top = lp["top_logprobs"][i]
        assert 5 <= len(top) <= 6 and top[token] == lp["token_logprobs"][i]
        assert sum(math.exp(v) for v in top.values()) <= 1.0 + 1e-9
    usage = reply["usage"]
    assert usage["completion_tokens"] == len(tokens)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}
    assert set(reply["time_info"]) == {
        "queue_time",
        "prompt_time",
        "completion_time",
        "total_time",
        "created",
    }
    assert ok(server, body, "/completions")["choices"][0]["text"] == choice["text"]  # deterministic


def test_text_completion_max_tokens_cuts_with_length(server: TestServer) -> None:
    reply = ok(server, {"prompt": SEED_PROMPT, "max_tokens": 3, "model": "gpt-oss-120b"}, "/completions")
    (choice,) = reply["choices"]
    assert choice["finish_reason"] == "length" and choice["logprobs"] is None
    assert len(tokenize(choice["text"])) == 3 == reply["usage"]["completion_tokens"]


def test_text_completion_logprobs_zero_and_raw_tokens(server: TestServer) -> None:
    body = {"prompt": [1, 2, 3], "model": "llama3.1-8b", "logprobs": 0, "return_raw_tokens": True}
    reply = ok(server, body, "/completions")
    choice = reply["choices"][0]
    assert choice["logprobs"]["top_logprobs"] is None and choice["logprobs"]["token_logprobs"]
    assert len(choice["tokens"]) == len(choice["logprobs"]["tokens"])
    assert reply["usage"]["prompt_tokens"] == 3


@pytest.mark.parametrize(
    ("overrides", "param"),
    [
        ({"logprobs": 21}, "logprobs"),
        ({"logprobs": True}, "logprobs"),
        ({"prompt": None}, "prompt"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"temperature": 1.6}, "temperature"),
    ],
)
def test_text_completion_refusals(server: TestServer, overrides: dict[str, Any], param: str) -> None:
    body = {"prompt": SEED_PROMPT, "model": "gpt-oss-120b", **overrides}
    flat_error(post(server, {k: v for k, v in body.items() if v is not None}, "/completions"), 400, param)


def test_text_completion_stop_sequence_and_stream(server: TestServer) -> None:
    full = ok(server, {"prompt": "x", "model": "llama3.1-8b"}, "/completions")["choices"][0]["text"]
    stop = tokenize(full)[2]
    cut = ok(server, {"prompt": "x", "model": "llama3.1-8b", "stop": stop}, "/completions")["choices"][0]
    assert cut["text"] == full[: full.index(stop)] and cut["finish_reason"] == "stop"
    streamed = post(server, {"prompt": "x", "model": "llama3.1-8b", "stream": True}, "/completions")
    events = [e.removeprefix("data: ") for e in streamed.text.split("\n\n") if e]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["choices"][0]["text"] for c in chunks) == full
    assert "usage" in chunks[-1] and "time_info" in chunks[-1]


def test_unknown_model_on_text_completions_is_404(server: TestServer) -> None:
    assert post(server, {"prompt": "x", "model": "nope"}, "/completions").status_code == 404


# ---- chat logprobs ----------------------------------------------------------------------------------------
def test_chat_logprobs_cover_the_content_tokens(server: TestServer) -> None:
    reply = ok(server, chat(logprobs=True, top_logprobs=3))
    choice = reply["choices"][0]
    items = choice["logprobs"]["content"]
    assert "".join(i["token"] for i in items) == choice["message"]["content"]
    for item in items:
        assert bytes(item["bytes"]) == item["token"].encode()
        assert len(item["top_logprobs"]) == 3 and item["top_logprobs"][0]["token"] == item["token"]
        assert item["logprob"] < 0 and [t["logprob"] for t in item["top_logprobs"]] == sorted(
            (t["logprob"] for t in item["top_logprobs"]), reverse=True
        )
    assert ok(server, chat(logprobs=True))["choices"][0]["logprobs"]["content"][0]["top_logprobs"] == []
    assert ok(server, chat())["choices"][0]["logprobs"] is None


@pytest.mark.parametrize(
    "overrides",
    [{"top_logprobs": 2}, {"logprobs": False, "top_logprobs": 2}, {"logprobs": True, "top_logprobs": 21},
     {"logprobs": True, "top_logprobs": -1}, {"logprobs": "yes"}],
)  # fmt: skip
def test_chat_logprobs_refusals(server: TestServer, overrides: dict[str, Any]) -> None:
    param = "logprobs" if overrides.get("logprobs") == "yes" else "top_logprobs"
    flat_error(post(server, chat(**overrides)), 400, param)


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=200))
def test_tokens_concatenate_to_the_text(text: str) -> None:
    assert "".join(tokenize(text)) == text


# ---- reasoning ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("effort", "tokens"), [(None, 256), ("low", 64), ("medium", 256), ("high", 1024)])
def test_reasoning_effort_sets_the_reasoning_spent(
    server: TestServer, effort: str | None, tokens: int
) -> None:
    reply = ok(server, chat(model="gpt-oss-120b", reasoning_effort=effort))
    usage = reply["usage"]
    message = reply["choices"][0]["message"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == tokens
    assert len(message["reasoning"]) == 4 * tokens
    assert usage["completion_tokens"] == tokens + (len(message["content"]) + 3) // 4
    assert reply["choices"][0]["finish_reason"] == "stop"


def test_models_without_reasoning_ignore_the_effort(server: TestServer) -> None:
    reply = ok(server, chat(reasoning_effort="high"))
    assert reply["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert "reasoning" not in reply["choices"][0]["message"]


def test_glm_takes_effort_none_and_disable_reasoning(server: TestServer) -> None:
    for extra in ({"reasoning_effort": "none"}, {"disable_reasoning": True}):
        reply = ok(server, chat(model="zai-glm-4.7", **extra))
        assert "reasoning" not in reply["choices"][0]["message"]
        assert reply["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    assert (
        ok(server, chat(model="zai-glm-4.7"))["usage"]["completion_tokens_details"]["reasoning_tokens"] == 256
    )


@pytest.mark.parametrize(
    ("model", "effort"),
    [
        ("gpt-oss-120b", "none"),
        ("gpt-oss-120b", "extreme"),
        ("gpt-oss-120b", ["low"]),
        ("zai-glm-4.7", "high"),
    ],
)
def test_efforts_a_model_does_not_take_are_refused(server: TestServer, model: str, effort: Any) -> None:
    body = flat_error(post(server, chat(model=model, reasoning_effort=effort)), 400, "reasoning_effort")
    assert model in body["message"]


def test_budget_spent_inside_reasoning_ends_with_length_and_no_content(server: TestServer) -> None:
    reply = ok(server, chat(model="gpt-oss-120b", reasoning_effort="high", max_completion_tokens=500))
    choice = reply["choices"][0]
    assert choice["finish_reason"] == "length" and choice["message"]["content"] == ""
    assert reply["usage"]["completion_tokens"] == 500
    low = ok(server, chat(model="gpt-oss-120b", reasoning_effort="low", max_completion_tokens=500))
    assert low["choices"][0]["finish_reason"] == "stop"


def test_reasoning_formats(server: TestServer) -> None:
    text_mode = {"response_format": None, "model": "gpt-oss-120b", "reasoning_effort": "low"}
    raw = ok(server, chat(reasoning_format="raw", **text_mode))
    message = raw["choices"][0]["message"]
    assert message["content"].startswith("<think>") and "reasoning" not in message
    assert raw["usage"]["completion_tokens_details"]["reasoning_tokens"] == 64
    for hidden in ("hidden", "none"):
        reply = ok(server, chat(reasoning_format=hidden, model="gpt-oss-120b"))
        assert "reasoning" not in reply["choices"][0]["message"]
        assert reply["usage"]["completion_tokens_details"]["reasoning_tokens"] == 256
    assert (
        "reasoning"
        in ok(server, chat(reasoning_format="parsed", model="gpt-oss-120b"))["choices"][0]["message"]
    )
    flat_error(post(server, chat(reasoning_format="verbose", model="gpt-oss-120b")), 400, "reasoning_format")


def test_developer_role_only_on_gpt_oss(server: TestServer) -> None:
    messages = [{"role": "developer", "content": "Answer in JSON."}, {"role": "user", "content": "Ada, 36"}]
    assert post(server, chat(model="gpt-oss-120b", messages=messages)).status_code == 200
    flat_error(post(server, chat(messages=messages)), 400, "messages")


def test_clear_thinking_only_on_glm(server: TestServer) -> None:
    assert post(server, chat(model="zai-glm-4.7", clear_thinking=False)).status_code == 200
    flat_error(post(server, chat(model="gpt-oss-120b", clear_thinking=True)), 400, "clear_thinking")


# ---- prompt cache ------------------------------------------------------------------------------------------
def long_chat(document: str, **overrides: Any) -> dict[str, Any]:
    system = "You extract people. Follow the schema exactly. " * 40  # ~1920 characters, 3 whole blocks
    return chat(
        messages=[{"role": "system", "content": system}, {"role": "user", "content": document}], **overrides
    )


def cached(reply: dict[str, Any]) -> int:
    value: int = reply["usage"]["prompt_tokens_details"]["cached_tokens"]
    return value


def test_a_repeated_prefix_is_billed_as_cached_in_128_token_blocks(server: TestServer) -> None:
    first = ok(server, long_chat("Ada Lovelace, 36."))
    second = ok(server, long_chat("Grace Hopper, 85."))
    shared = len(json.dumps(PERSON, separators=(",", ":"))) + 1 + len(long_chat("")["messages"][0]["content"])
    assert cached(first) == 0
    assert cached(second) == shared // 512 * 128 > 0
    assert cached(ok(server, long_chat("Grace Hopper, 85."))) == cached(second)  # the document block is short


def test_cache_is_scoped_by_model_and_prompt_cache_key(server: TestServer) -> None:
    ok(server, long_chat("a", prompt_cache_key="job-1"))
    assert cached(ok(server, long_chat("b", prompt_cache_key="job-1"))) > 0
    assert cached(ok(server, long_chat("c", prompt_cache_key="job-2"))) == 0
    assert cached(ok(server, long_chat("d", model="gpt-oss-120b"))) == 0
    flat_error(post(server, long_chat("e", prompt_cache_key="k" * 1025)), 400, "prompt_cache_key")


def test_cache_can_be_off_and_is_bounded(make_server: Callable[..., TestServer]) -> None:
    off = make_server(prompt_cache=False)
    ok(off, long_chat("a"))
    assert cached(ok(off, long_chat("b"))) == 0
    cache = PromptCache(capacity=2)
    text = "x" * 512 * 4
    assert cache.admit("m", text, 512) == 0
    assert len(cache) == 2  # only the last two blocks are kept
    assert (
        cache.admit("m", text, 512) == 0
    )  # the leading block was evicted, so nothing matches from the start


@settings(max_examples=100, deadline=None)
@given(a=st.text(max_size=3000), b=st.text(max_size=3000))
def test_cached_tokens_are_whole_blocks_of_a_true_common_prefix(a: str, b: str) -> None:
    cache = PromptCache()
    cache.admit("m", a, len(a) // 4 + 1)
    hit = cache.admit("m", b, len(b) // 4 + 1)
    assert hit % 128 == 0 or hit == len(b) // 4 + 1
    common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    assert hit <= max(common // 512 * 128, 0) or hit == len(b) // 4 + 1


# ---- predicted outputs -------------------------------------------------------------------------------------
def test_predicted_outputs_count_accepted_and_rejected_tokens(server: TestServer) -> None:
    body = chat(model="gpt-oss-120b", reasoning_effort="low")
    content = ok(server, body)["choices"][0]["message"]["content"]
    exact = ok(server, {**body, "prediction": {"type": "content", "content": content}})["usage"]
    details = exact["completion_tokens_details"]
    assert details["accepted_prediction_tokens"] == (len(content) + 3) // 4
    assert details["rejected_prediction_tokens"] == 0
    wrong = "zzzz qqqq " * 10
    missed = ok(server, {**body, "prediction": {"type": "content", "content": wrong}})["usage"]
    assert missed["completion_tokens_details"]["accepted_prediction_tokens"] == 0
    assert missed["completion_tokens_details"]["rejected_prediction_tokens"] == (len(wrong) + 3) // 4
    parts = {"type": "content", "content": [{"type": "text", "text": content}]}
    assert ok(server, {**body, "prediction": parts})["usage"]["completion_tokens_details"] == details


def test_matching_is_a_token_diff_not_only_a_prefix() -> None:
    produced = '{"name":"Ada","age":36,"city":"London"}'
    predicted = '{"name":"Ada","age":35,"city":"London"}'
    assert matched_chars(produced, predicted) == len(produced) - 2  # only the changed number differs


@pytest.mark.parametrize(
    ("model", "prediction"),
    [("llama3.1-8b", {"type": "content", "content": "x"}), ("gpt-oss-120b", {"type": "text", "content": "x"}),
     ("gpt-oss-120b", {"type": "content", "content": 3}), ("gpt-oss-120b", "x")],
)  # fmt: skip
def test_predictions_are_refused_where_the_provider_refuses(
    server: TestServer, model: str, prediction: Any
) -> None:
    flat_error(post(server, chat(model=model, prediction=prediction)), 400, "prediction")


# ---- service tiers, queue threshold, capacity ----------------------------------------------------------------
def test_service_tier_is_echoed_and_auto_reports_the_tier_used(server: TestServer) -> None:
    assert ok(server, chat())["service_tier"] is None
    assert ok(server, chat(service_tier="flex"))["service_tier"] == "flex"
    auto = ok(server, chat(service_tier="auto"))
    assert auto["service_tier"] == "auto" and auto["service_tier_used"] == "default"
    flat_error(post(server, chat(service_tier="priority")), 400, "service_tier")
    flat_error(post(server, chat(service_tier="gold")), 400, "service_tier")


def test_priority_tier_on_a_dedicated_endpoint(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(service_tiers={"priority", "default"})
    assert ok(srv, chat(service_tier="priority"))["service_tier"] == "priority"


def test_queue_threshold_header(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(queue_ms=300)
    assert post(srv, chat(service_tier="flex"), headers={"queue_threshold": "500"}).status_code == 200
    refused = post(srv, chat(service_tier="flex"), headers={"queue_threshold": "100"})
    assert refused.status_code == 429
    assert refused.json() == {
        "message": "We're experiencing high traffic right now! Please try again soon.",
        "type": "too_many_requests_error",
        "param": "queue",
        "code": "queue_exceeded",
    }
    assert post(srv, chat(service_tier="default"), headers={"queue_threshold": "100"}).status_code == 200
    for bad in ("49", "20001", "soon"):
        flat_error(post(srv, chat(), headers={"queue_threshold": bad}), 400, "queue_threshold")
    assert ok(srv, chat())["time_info"]["queue_time"] == pytest.approx(0.3)


def test_scripted_capacity_refusal_then_recovery(server: TestServer) -> None:
    server.script(Fault.queue_exceeded(retry_after=1), "queue_exceeded")
    first = post(server, chat())
    assert first.status_code == 429 and first.json()["code"] == "queue_exceeded"
    assert first.headers["retry-after"] == "1"
    assert post(server, chat()).json()["param"] == "queue"
    assert post(server, chat()).status_code == 200


# ---- context windows -------------------------------------------------------------------------------------
def test_context_window_refusal_carries_both_numbers(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(context_windows={"llama3.1-8b": 100})
    body = chat(messages=[{"role": "user", "content": "x" * 400}], max_completion_tokens=50)
    error = flat_error(post(srv, body), 400, "messages")
    prompt = (400 + 1 + len(json.dumps(PERSON, separators=(",", ":"))) + 3) // 4
    assert error == {
        "message": "Please reduce the length of the messages or completion. "
        f"Current length is {prompt + 50} while limit is 100",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    assert post(srv, chat(max_completion_tokens=10)).status_code == 200


def test_default_windows_follow_the_model_table(server: TestServer) -> None:
    long = chat(messages=[{"role": "user", "content": "word " * 30_000}])  # ~37.5k tokens
    assert post(server, long).json()["code"] == "context_length_exceeded"  # llama3.1-8b: 32768
    assert post(server, {**long, "model": "gpt-oss-120b"}).status_code == 200  # 131072
    big = {"prompt": "word " * 30_000, "model": "llama3.1-8b"}
    assert post(server, big, "/completions").json()["code"] == "context_length_exceeded"


def test_bad_context_window_setting_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="context_windows"):
        TestServer(context_windows={"llama3.1-8b": 0})


# ---- time_info and the stream ----------------------------------------------------------------------------
def test_time_info_on_every_success(server: TestServer) -> None:
    keys = {"queue_time", "prompt_time", "completion_time", "total_time", "created"}
    assert set(ok(server, chat())["time_info"]) == keys
    assert set(ok(server, {"prompt": "x", "model": "llama3.1-8b"}, "/completions")["time_info"]) == keys
    stream = post(server, chat(stream=True, logprobs=True))
    chunks = [
        json.loads(e.removeprefix("data: ")) for e in stream.text.split("\n\n") if e and "[DONE]" not in e
    ]
    assert set(chunks[-1]["time_info"]) == keys
    assert chunks[0]["choices"][0]["logprobs"]["content"]


def test_json_object_cannot_stream(server: TestServer) -> None:
    body = chat(response_format={"type": "json_object"}, stream=True)
    flat_error(post(server, body), 400, "stream")


# ---- strict-mode table ----------------------------------------------------------------------------------
def test_strict_refusals_do_not_consult_the_library_checker() -> None:
    code = """
import sys, httpx
from extract.testing import TestServer
with TestServer() as s:
    rf = {"type": "json_schema", "json_schema": {"name": "p", "strict": True,
          "schema": {"type": "object", "properties": {"a": {"type": "string", "pattern": "x"}},
                     "required": ["a"], "additionalProperties": False}}}
    r = httpx.post(s.base_url + "/chat/completions",
                   json={"model": "llama3.1-8b", "messages": [{"role": "user", "content": "hi"}],
                         "response_format": rf})
    assert r.status_code == 400 and "pattern" in r.json()["message"], r.text
print(sorted(m for m in sys.modules if m.startswith("extract.schema")))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.strip() == "[]"


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 30) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
_text_bodies = st.fixed_dictionaries(
    {"model": st.sampled_from(["llama3.1-8b", "gpt-oss-120b", "nope"]) | _json},
    optional={
        "prompt": st.text(max_size=20) | _json,
        "max_tokens": _json,
        "max_completion_tokens": _json,
        "logprobs": _json,
        "stop": _json,
        "stream": _json,
        "return_raw_tokens": _json,
        "service_tier": _json,
        "prompt_cache_key": _json,
        "temperature": _json,
    },
)


@settings(max_examples=300, deadline=None)
@given(body=_text_bodies | _json)
def test_any_text_completion_body_gets_a_plan_or_a_provider_error(body: Any) -> None:
    from extract.testing._completions import TextPlan, continuation, plan_completion
    from extract.testing._requests import Rules
    from extract.testing._wire import Reply

    rules = Rules(
        models=frozenset({"llama3.1-8b", "gpt-oss-120b"}),
        json_object_only=False,
        json_object_only_status=400,
        flavor="cerebras",
        seed=0,
    )
    outcome = plan_completion(body, rules)
    if isinstance(outcome, Reply):
        assert 400 <= outcome.status < 500 and set(outcome.body) == {"message", "type", "param", "code"}
    else:
        assert isinstance(outcome, TextPlan)
        tokens, finish = continuation(outcome)
        assert finish in ("stop", "length")
        assert outcome.max_tokens is None or len(tokens) <= outcome.max_tokens


async def test_async_clients_send_every_encoding_concurrently(server: TestServer) -> None:
    import asyncio

    body = chat()
    variants = [
        (json.dumps(body).encode(), {"content-type": "application/json"}),
        (gzip.compress(json.dumps(body).encode()), {"content-encoding": "gzip"}),
        (packb(body), {"content-type": "application/vnd.msgpack"}),
        (gzip.compress(packb(body)), {"content-type": "application/vnd.msgpack", "content-encoding": "gzip"}),
    ] * 5
    async with httpx.AsyncClient(base_url=server.base_url) as client:
        replies = await asyncio.gather(
            *(
                client.post("/chat/completions", content=payload, headers=headers)
                for payload, headers in variants
            )
        )
    assert {r.status_code for r in replies} == {200}
    assert len({r.json()["choices"][0]["message"]["content"] for r in replies}) == 1  # same body, same answer
    assert sorted(e.encoding for e in server.request_log) == sorted(
        ["json", "gzip", "msgpack", "msgpack+gzip"] * 5
    )
