"""The pure translation between chat-completions bodies and llama.cpp arguments (no model needed)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract._local._wire import (
    DEFAULT_FREQUENCY_PENALTY,
    DEFAULT_MAX_TOKENS,
    LocalRequestError,
    error_body,
    llama_kwargs,
    response_body,
)

_MESSAGES = [{"role": "system", "content": "Reply with JSON."}, {"role": "user", "content": "Ana, Porto"}]

_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
_schemas = st.dictionaries(
    st.text(min_size=1, max_size=8),
    st.recursive(
        _json_scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
        max_leaves=8,
    ),
    max_size=5,
)


def _kwargs(**body: Any) -> dict[str, Any]:
    return llama_kwargs({"messages": _MESSAGES, **body}, model_name="local/test")


@settings(deadline=None)  # pure and fast; a loaded CI machine must not make it flaky
@given(schema=_schemas, name=st.text(min_size=1, max_size=20), strict=st.booleans())
def test_json_schema_becomes_json_object_with_the_same_schema(
    schema: dict[str, Any], name: str, strict: bool
) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": name, "strict": strict, "schema": schema}}
    assert _kwargs(response_format=fmt)["response_format"] == {"type": "json_object", "schema": schema}


@settings(deadline=None)  # pure and fast; a loaded CI machine must not make it flaky
@given(schema=_schemas)
def test_json_object_schema_passes_through(schema: dict[str, Any]) -> None:
    fmt = {"type": "json_object", "schema": schema}
    assert _kwargs(response_format=fmt)["response_format"] == fmt


def test_json_object_without_schema_and_text_format() -> None:
    assert _kwargs(response_format={"type": "json_object"})["response_format"] == {"type": "json_object"}
    assert "response_format" not in _kwargs(response_format={"type": "text"})
    assert "response_format" not in _kwargs()


@pytest.mark.parametrize(
    "fmt",
    [
        {"type": "json_schema"},
        {"type": "json_schema", "json_schema": {"name": "x"}},
        {"type": "json_schema", "json_schema": {"name": "x", "schema": "not an object"}},
        {"type": "grammar"},
        "json_object",
    ],
)
def test_unusable_response_format_is_a_400(fmt: Any) -> None:
    with pytest.raises(LocalRequestError) as info:
        _kwargs(response_format=fmt)
    assert info.value.status_code == 400
    assert info.value.param == "response_format"


@settings(deadline=None)  # pure and fast; a loaded CI machine must not make it flaky
@given(st.integers(min_value=1, max_value=100_000))
def test_max_completion_tokens_maps_to_max_tokens(n: int) -> None:
    assert _kwargs(max_completion_tokens=n)["max_tokens"] == n
    assert _kwargs(max_tokens=n)["max_tokens"] == n
    # The current name wins over the deprecated one.
    assert _kwargs(max_completion_tokens=n, max_tokens=n + 1)["max_tokens"] == n


def test_no_budget_gets_the_default_cap() -> None:
    assert _kwargs()["max_tokens"] == DEFAULT_MAX_TOKENS


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_bad_budget_is_a_400(bad: Any) -> None:
    with pytest.raises(LocalRequestError, match="max_completion_tokens"):
        _kwargs(max_completion_tokens=bad)


def test_sampling_fields_pass_through_and_unknown_fields_are_ignored() -> None:
    kwargs = _kwargs(
        temperature=0, top_p=0.5, seed=7, stop=["}"], reasoning_effort="low", user="u1", service_tier="auto"
    )
    assert {k: kwargs[k] for k in ("temperature", "top_p", "seed", "stop")} == {
        "temperature": 0,
        "top_p": 0.5,
        "seed": 7,
        "stop": ["}"],
    }
    assert not {"reasoning_effort", "user", "service_tier"} & kwargs.keys()


def test_model_name_is_echoed_or_defaulted() -> None:
    assert _kwargs(model="my-name")["model"] == "my-name"
    assert _kwargs()["model"] == "local/test"


@settings(deadline=None)  # pure and fast; a loaded CI machine must not make it flaky
@given(st.dictionaries(st.integers(0, 50_000).map(str), st.floats(-100, 100), min_size=1, max_size=5))
def test_logit_bias_keys_become_token_ids(bias: dict[str, float]) -> None:
    assert _kwargs(logit_bias=bias)["logit_bias"] == {int(k): v for k, v in bias.items()}


def test_content_parts_are_joined_and_developer_plays_system() -> None:
    messages = [
        {"role": "developer", "content": "Be terse."},
        {"role": "user", "content": [{"type": "text", "text": "Ana, "}, {"type": "text", "text": "Porto"}]},
        {"role": "assistant", "content": None},
    ]
    assert llama_kwargs({"messages": messages}, model_name="m")["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Ana, Porto"},
        {"role": "assistant", "content": ""},
    ]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": []}, "messages"),
        ({}, "messages"),
        ({"messages": [{"content": "no role"}]}, "messages"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]}, "messages"),
        ({"messages": _MESSAGES, "stream": True}, "stream"),
        ({"messages": _MESSAGES, "n": 2}, "n"),
        ({"messages": _MESSAGES, "tools": [{"type": "function"}]}, "tools"),
        ({"messages": _MESSAGES, "logit_bias": {"x": 1}}, "logit_bias"),
    ],
)
def test_requests_the_model_cannot_honour_are_400s_naming_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(LocalRequestError) as info:
        llama_kwargs(body, model_name="m")
    assert (info.value.status_code, info.value.param) == (400, param)


def test_error_body_has_the_openai_shape() -> None:
    assert error_body(400, "bad", param="n", code="c") == {
        "error": {"message": "bad", "type": "invalid_request_error", "param": "n", "code": "c"}
    }
    assert error_body(500, "boom")["error"]["type"] == "server_error"


def test_response_body_keeps_usage_and_adds_timing() -> None:
    result = {
        "id": "x",
        "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    }
    body = response_body(result, total_time=0.25)
    assert body["usage"] == result["usage"]
    assert body["time_info"] == {"total_time": 0.25}
    assert response_body({"choices": []}, total_time=0.0)["usage"]["total_tokens"] == 0


def test_a_frequency_penalty_is_on_by_default_and_the_callers_value_wins() -> None:
    base = {"messages": [{"role": "user", "content": "hi"}]}
    assert llama_kwargs(base, model_name="m")["frequency_penalty"] == DEFAULT_FREQUENCY_PENALTY > 0
    assert llama_kwargs({**base, "frequency_penalty": 0.0}, model_name="m")["frequency_penalty"] == 0.0
