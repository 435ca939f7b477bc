"""Pure request/response feature helpers (extract._engine.features): body fragments checked against a
model's capabilities, tolerant readers, the capacity-refusal predicate and the prompt-cache layout check."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract import modes
from extract._engine.features import (
    QUEUE_THRESHOLD_HEADER,
    FeatureError,
    FeatureSupport,
    TokenLogprob,
    UsageDetails,
    add_time_info,
    cache_prefix_report,
    is_capacity_refusal,
    logprob_fields,
    prediction_fields,
    prompt_cache_fields,
    prompt_cache_key,
    read_completion_logprobs,
    read_logprobs,
    read_reasoning,
    read_reasoning_logprobs,
    read_service_tier_used,
    read_time_info,
    read_usage_details,
    reasoning_fields,
    service_fields,
)
from extract.errors import ConfigurationError, ExtractError
from extract.schema import compile_schema

GPT_OSS = FeatureSupport(
    reasoning_efforts=("low", "medium", "high"),
    reasoning_formats=("parsed", "hidden", "raw", "none"),
    prompt_cache_key=True,
    predicted_outputs=True,
    logprobs=True,
    service_tiers=("auto", "default", "flex", "priority"),
)
PLAIN = FeatureSupport((), (), False, False, False, ())
UNKNOWN = FeatureSupport()

# The seed page's reply (gpt-oss-120b), with logprobs and non-zero details filled in.
SEED_REPLY: dict[str, Any] = {
    "id": "chatcmpl-30b3c3d8",
    "choices": [
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello!",
                "reasoning": "The user just says hello.",
                "tool_calls": None,
            },
            "logprobs": {
                "content": [
                    {
                        "token": "Hello",
                        "logprob": -0.01,
                        "bytes": [72, 101, 108, 108, 111],
                        "top_logprobs": [
                            {"token": "Hello", "logprob": -0.01},
                            {"token": "Hi", "logprob": -4.6},
                        ],
                    },
                    {"token": "!", "logprob": -0.2, "bytes": None, "top_logprobs": []},
                ]
            },
            "reasoning_logprobs": None,
        }
    ],
    "created": 1769729480,
    "model": "gpt-oss-120b",
    "object": "chat.completion",
    "time_info": {
        "completion_time": 0.04040406,
        "prompt_time": 0.00383762,
        "queue_time": 0.004628115,
        "total_time": 0.05013155937194824,
        "created": 1769729480.0787008,
    },
    "usage": {
        "completion_tokens": 59,
        "completion_tokens_details": {
            "accepted_prediction_tokens": 12,
            "rejected_prediction_tokens": 3,
            "reasoning_tokens": 40,
        },
        "prompt_tokens": 69,
        "prompt_tokens_details": {"cached_tokens": 64},
        "total_tokens": 128,
    },
    "service_tier": None,
    "service_tier_used": "flex",
}


# ------------------------------------------------------------------------------------------- builders


def test_reasoning_effort_within_the_row() -> None:
    assert reasoning_fields(GPT_OSS, "low") == {"reasoning_effort": "low"}
    assert reasoning_fields(GPT_OSS) == {}
    with pytest.raises(FeatureError, match="low, medium, high") as info:
        reasoning_fields(GPT_OSS, "none")
    assert isinstance(info.value, ConfigurationError) and isinstance(info.value, ExtractError)
    with pytest.raises(FeatureError, match="takes no reasoning_effort"):
        reasoning_fields(PLAIN, "low")


def test_reasoning_effort_unknown_row_passes_documented_values_only() -> None:
    assert reasoning_fields(UNKNOWN, "none") == {"reasoning_effort": "none"}
    with pytest.raises(FeatureError, match="none, low, medium, high"):
        reasoning_fields(UNKNOWN, "extreme")
    with pytest.raises(FeatureError, match="must be a string"):
        reasoning_fields(UNKNOWN, 3)  # type: ignore[arg-type]


def test_reasoning_format_pass_through_and_raw_refused_for_json() -> None:
    assert reasoning_fields(GPT_OSS, "high", "parsed") == {
        "reasoning_effort": "high",
        "reasoning_format": "parsed",
    }
    with pytest.raises(FeatureError, match="raw"):
        reasoning_fields(GPT_OSS, reasoning_format="raw")
    assert reasoning_fields(GPT_OSS, reasoning_format="raw", json_reply=False) == {"reasoning_format": "raw"}
    with pytest.raises(FeatureError, match="parsed, hidden, raw, none"):
        reasoning_fields(GPT_OSS, reasoning_format="text_parsed")


def test_prompt_cache_key_is_stable_and_specific() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    reordered = {"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "type": "object"}
    key = prompt_cache_key(schema, "Find the invoice.")
    assert key == prompt_cache_key(reordered, "  Find the invoice.\n")
    assert key == "extract-" + "0" * 0 + key.removeprefix("extract-")  # a plain string, not a repr
    assert len(key) <= 1024 and key.isascii()
    assert key != prompt_cache_key(schema, "Find the receipt.")
    assert key != prompt_cache_key(schema)
    assert key != prompt_cache_key({**schema, "required": ["a"]}, "Find the invoice.")


def test_prompt_cache_fields_only_where_accepted() -> None:
    schema = {"type": "object"}
    assert prompt_cache_fields(GPT_OSS, schema) == {"prompt_cache_key": prompt_cache_key(schema)}
    assert prompt_cache_fields(UNKNOWN, schema) == {}
    assert prompt_cache_fields(PLAIN, schema) == {}
    assert prompt_cache_fields(GPT_OSS, schema, key="conversation-7") == {
        "prompt_cache_key": "conversation-7"
    }
    with pytest.raises(FeatureError, match="1024"):
        prompt_cache_fields(GPT_OSS, schema, key="k" * 1025)


def test_prediction_only_where_allowed_and_not_empty() -> None:
    assert prediction_fields(GPT_OSS, '{"a": 1}') == {
        "prediction": {"type": "content", "content": '{"a": 1}'}
    }
    assert prediction_fields(GPT_OSS, "  ") == {}
    assert prediction_fields(GPT_OSS, None) == {}
    assert prediction_fields(UNKNOWN, '{"a": 1}') == {}
    assert prediction_fields(PLAIN, '{"a": 1}') == {}


def test_service_tier_and_queue_threshold_header() -> None:
    assert service_fields(GPT_OSS) == ({}, {})
    assert service_fields(GPT_OSS, "flex", 500) == ({"service_tier": "flex"}, {QUEUE_THRESHOLD_HEADER: "500"})
    assert QUEUE_THRESHOLD_HEADER == "queue_threshold"
    assert service_fields(UNKNOWN, "auto") == ({"service_tier": "auto"}, {})
    with pytest.raises(FeatureError, match="flex' or 'auto"):
        service_fields(GPT_OSS, "default", 500)
    with pytest.raises(FeatureError, match="flex' or 'auto"):
        service_fields(GPT_OSS, None, 500)
    for bad in (49, 20001):
        with pytest.raises(FeatureError, match="50 to 20000"):
            service_fields(GPT_OSS, "flex", bad)
    with pytest.raises(FeatureError, match="whole milliseconds"):
        service_fields(GPT_OSS, "flex", 100.5)  # type: ignore[arg-type]
    with pytest.raises(FeatureError, match="auto, default, flex"):
        service_fields(FeatureSupport(service_tiers=("auto", "default", "flex")), "priority")
    with pytest.raises(FeatureError, match="takes no service_tier"):
        service_fields(PLAIN, "flex")


def test_logprob_fields() -> None:
    assert logprob_fields(GPT_OSS) == {}
    assert logprob_fields(GPT_OSS, True) == {"logprobs": True}
    assert logprob_fields(GPT_OSS, None, 5) == {"logprobs": True, "top_logprobs": 5}
    assert logprob_fields(UNKNOWN, True, 0) == {"logprobs": True, "top_logprobs": 0}
    assert logprob_fields(PLAIN, False) == {}
    with pytest.raises(FeatureError, match="does not return logprobs"):
        logprob_fields(PLAIN, True)
    with pytest.raises(FeatureError, match="0 to 20"):
        logprob_fields(GPT_OSS, True, 21)
    with pytest.raises(FeatureError, match="needs logprobs=True"):
        logprob_fields(GPT_OSS, False, 3)


# ------------------------------------------------------------------------------------------- readers


def test_readers_on_the_seed_reply() -> None:
    assert read_reasoning(SEED_REPLY) == "The user just says hello."
    assert read_logprobs(SEED_REPLY) == [
        TokenLogprob("Hello", -0.01, (72, 101, 108, 108, 111), (("Hello", -0.01), ("Hi", -4.6))),
        TokenLogprob("!", -0.2, None, ()),
    ]
    assert read_reasoning_logprobs(SEED_REPLY) is None
    assert read_time_info(SEED_REPLY) == SEED_REPLY["time_info"]
    assert read_usage_details(SEED_REPLY) == UsageDetails(64, 40, 12, 3)
    assert read_usage_details(SEED_REPLY["usage"]) == UsageDetails(64, 40, 12, 3)
    assert read_service_tier_used(SEED_REPLY) == "flex"


def test_readers_without_the_fields() -> None:
    bare = {"choices": [{"message": {"role": "assistant", "content": "{}"}}], "usage": {"prompt_tokens": 3}}
    assert read_reasoning(bare) is None
    assert read_logprobs(bare) is None
    assert read_time_info(bare) is None
    assert read_usage_details(bare) == UsageDetails()
    assert read_service_tier_used(bare) is None


def test_readers_distrust_types() -> None:
    odd = {
        "choices": [
            {
                "message": {"reasoning": [{"type": "text", "text": "a"}, {"text": 5}, {"text": "b"}]},
                "logprobs": {
                    "content": [{"token": 1}, "x", {"token": "t", "logprob": "low", "top_logprobs": 3}]
                },
                "reasoning_logprobs": [{"token": "r", "logprob": -1, "bytes": [300]}],
            }
        ],
        "time_info": {"queue_time": "1", "total_time": math.nan, "prompt_time": True, "completion_time": 2},
        "usage": {
            "prompt_tokens_details": {"cached_tokens": -4},
            "completion_tokens_details": {"reasoning_tokens": 2.5, "accepted_prediction_tokens": True},
        },
    }
    assert read_reasoning(odd) == "ab"
    assert read_logprobs(odd) == [TokenLogprob("t", None, None, ())]
    assert read_reasoning_logprobs(odd) == [TokenLogprob("r", -1.0, None, ())]
    assert read_time_info(odd) == {"completion_time": 2.0}
    assert read_usage_details(odd) == UsageDetails()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=20), children, max_size=4)
    ),
    max_leaves=25,
)
reply_like = st.fixed_dictionaries(
    {},
    optional={
        "choices": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    "message": st.dictionaries(
                        st.sampled_from(["reasoning", "reasoning_content"]), json_values
                    ),
                    "logprobs": json_values
                    | st.fixed_dictionaries({"content": st.lists(json_values)})
                    | st.fixed_dictionaries(
                        {"tokens": st.lists(json_values)},
                        optional={
                            "token_logprobs": json_values,
                            "top_logprobs": st.lists(json_values),
                            "text_offset": json_values,
                        },
                    ),
                    "reasoning_logprobs": json_values,
                },
            )
            | json_values,
            max_size=2,
        ),
        "time_info": json_values | st.dictionaries(st.sampled_from(["queue_time", "created"]), json_values),
        "usage": json_values,
        "service_tier_used": json_values,
    },
)


@settings(max_examples=300, deadline=None)
@given(data=reply_like | json_values)
def test_readers_never_raise(data: object) -> None:
    reasoning = read_reasoning(data)
    assert reasoning is None or (isinstance(reasoning, str) and reasoning)
    for tokens in (read_logprobs(data), read_reasoning_logprobs(data), read_completion_logprobs(data)):
        assert tokens is None or all(isinstance(t.token, str) for t in tokens)
    info = read_time_info(data)
    assert info is None or all(math.isfinite(v) for v in info.values())
    details = read_usage_details(data)
    assert min(details.cached_tokens, details.reasoning_tokens) >= 0
    tier = read_service_tier_used(data)
    assert tier is None or isinstance(tier, str)


# The text-completions seed page's reply (POST /v1/completions, logprobs=5), first three positions.
SEED_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-b1743f2d",
    "choices": [
        {
            "index": 0,
            "finish_reason": "length",
            "logprobs": {
                "text_offset": [30, 34, 40],
                "token_logprobs": [-3.3912997245788574, -4.322617053985596, -0.3532562553882599],
                "tokens": [" and", " there", " was"],
                "top_logprobs": [
                    {".": -1.1334871053695679, " and": -3.3912997245788574},
                    {" I": -0.9554294943809509},
                    {" was": -0.3532562553882599, " were": -1.6813812255859375},
                ],
            },
            "text": " and there was",
            "tokens": None,
        }
    ],
    "object": "text_completion",
}


def test_text_completion_logprobs() -> None:
    tokens = read_completion_logprobs(SEED_COMPLETION)
    assert tokens is not None
    assert [t.token for t in tokens] == [" and", " there", " was"]
    assert [t.offset for t in tokens] == [30, 34, 40]
    assert tokens[0].logprob == pytest.approx(-3.3912997245788574)
    assert tokens[0].top == ((".", -1.1334871053695679), (" and", -3.3912997245788574))
    assert read_completion_logprobs(SEED_REPLY) is None  # chat logprobs have no `tokens` list
    ragged = {
        "choices": [
            {"logprobs": {"tokens": ["a", "b", 3, "c"], "token_logprobs": [-1], "text_offset": [0, -1]}}
        ]
    }
    assert read_completion_logprobs(ragged) == [
        TokenLogprob("a", -1.0, None, (), 0),
        TokenLogprob("b", None, None, ()),
    ]


def test_time_info_and_usage_details_add_up() -> None:
    first = read_time_info(SEED_REPLY)
    total = add_time_info(first, {"queue_time": 1.0, "total_time": 2.0})
    assert total is not None and first is not None
    assert total["queue_time"] == pytest.approx(first["queue_time"] + 1.0)
    assert total["prompt_time"] == pytest.approx(first["prompt_time"])
    assert "created" not in total
    assert add_time_info(None, None) is None
    assert UsageDetails(1, 2, 3, 4) + UsageDetails(1, 1, 1, 1) == UsageDetails(2, 3, 4, 5)


# ------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            429,
            {
                "message": "We're experiencing high traffic right now! Please try again soon.",
                "param": "queue",
                "code": "queue_exceeded",
            },
            True,
        ),
        (
            429,
            b'{"message": "x", "type": "too_many_requests_error", "param": "queue", "code": "queue_exceeded"}',
            True,
        ),
        (
            503,
            {"status_code": 503, "error": {"message": "The server is over capacity", "type": "server_error"}},
            True,
        ),
        (400, {"message": "Request rejected: queue time exceeds the queue_threshold", "code": ""}, True),
        (
            429,
            {
                "message": "Requests per minute limit exceeded - too many requests sent.",
                "param": "quota",
                "code": "request_quota_exceeded",
            },
            False,
        ),
        (
            429,
            {
                "message": "Tokens per minute limit exceeded - too many tokens processed.",
                "code": "token_quota_exceeded",
            },
            False,
        ),
        (
            400,
            {"message": "json_schema is invalid", "param": "response_format", "code": "wrong_api_format"},
            False,
        ),
        (500, {"status_code": 500, "error": {"message": "Internal error", "type": "server_error"}}, False),
        (200, {"code": "queue_exceeded"}, False),
        (503, b"<html>service unavailable</html>", False),
    ],
)
def test_is_capacity_refusal(status: int, body: object, expected: bool) -> None:
    assert is_capacity_refusal(status, body) is expected


# ------------------------------------------------------------------------------------------- layout

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}


@pytest.mark.parametrize("mode", ["json_schema", "json_object", "prompt"])
def test_todays_layout_keeps_a_constant_prefix(mode: str) -> None:
    compiled = compile_schema(SCHEMA)

    def build(document: str) -> list[dict[str, Any]]:
        return [
            {"role": "system", "content": modes.system_prompt(mode, compiled, "Find the name.")},
            modes.document_message(document),
        ]

    report = cache_prefix_report(build)
    assert report.ok, report.problems
    assert (
        report.shared_bytes
        >= report.constant_bytes
        > len(modes.system_prompt(mode, compiled, "Find the name."))
    )


def test_a_document_before_the_instructions_is_reported() -> None:
    def build(document: str) -> Sequence[Mapping[str, Any]]:
        return [{"role": "user", "content": f"{document}\n\nExtract the name from the text above, as JSON."}]

    report = cache_prefix_report(build)
    assert len(report.problems) == 1
    assert report.problems[0].startswith("48 characters follow the document in its message")
    assert report.constant_bytes == report.shared_bytes


def test_something_variable_before_the_document_is_reported() -> None:
    def build(document: str) -> Sequence[Mapping[str, Any]]:
        return [
            {"role": "system", "content": f"Extract the name. The document has {len(document)} characters."},
            {"role": "user", "content": document},
        ]

    report = cache_prefix_report(build)
    assert not report.ok
    assert any("before the document" in p for p in report.problems)
    assert report.shared_bytes < report.constant_bytes


def test_the_document_must_come_last() -> None:
    def build(document: str) -> Sequence[Mapping[str, Any]]:
        return [
            {"role": "system", "content": "Extract the name."},
            {"role": "user", "content": document},
            {"role": "user", "content": "Remember: JSON only."},
        ]

    report = cache_prefix_report(build)
    assert report.problems == ("the document is not in the last message: what follows it cannot be cached",)
