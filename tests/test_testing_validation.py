"""The test server refuses what the provider refuses, with the provider's status codes and body shapes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.testing import TestServer
from extract.testing._requests import Plan, Rules, plan_request
from extract.testing._strict_rules import REFUSED_KEYWORDS
from extract.testing._wire import Reply

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def chat(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "llama3.1-8b",
        "messages": [{"role": "user", "content": "Ada Lovelace, 36, mathematician. Answer in JSON."}],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": PERSON},
        },
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def post(server: TestServer, body: Any, **kwargs: Any) -> httpx.Response:
    return httpx.post(server.base_url + "/chat/completions", json=body, **kwargs)


def assert_flat_error(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "type", "param", "code"}
    assert body["message"]
    if param is not None:
        assert body["param"] == param
    return dict(body)


def test_valid_request_is_accepted(server: TestServer) -> None:
    assert post(server, chat()).status_code == 200


def test_json_schema_without_name_is_400(server: TestServer) -> None:
    rf = {"type": "json_schema", "json_schema": {"strict": True, "schema": PERSON}}
    body = assert_flat_error(post(server, chat(response_format=rf)), 400, "response_format")
    assert "name" in body["message"]


def test_json_schema_with_bad_name_is_400(server: TestServer) -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "a person!", "strict": True, "schema": PERSON}}
    assert_flat_error(post(server, chat(response_format=rf)), 400, "response_format")


def test_schema_outside_strict_subset_names_keywords_and_paths(server: TestServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 2},
            "email": {"type": "string", "pattern": "@"},
        },
        "required": ["name", "email"],
        "additionalProperties": False,
    }
    rf = {"type": "json_schema", "json_schema": {"name": "p", "strict": True, "schema": schema}}
    body = assert_flat_error(post(server, chat(response_format=rf)), 400, "response_format")
    assert body["code"] == "wrong_api_format"
    assert body["type"] == "invalid_request_error"
    for fragment in ("minLength", "pattern", "#/properties/name", "#/properties/email"):
        assert fragment in body["message"]


def test_non_strict_schema_is_not_checked(server: TestServer) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string", "minLength": 2}}}
    rf = {"type": "json_schema", "json_schema": {"name": "p", "strict": False, "schema": schema}}
    assert post(server, chat(response_format=rf)).status_code == 200


def test_tools_with_response_format_is_400(server: TestServer) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    body = assert_flat_error(post(server, chat(tools=tools)), 400)
    assert body["message"] == "'tools' is incompatible with 'response_format'"


def test_max_tokens_with_max_completion_tokens_is_400(server: TestServer) -> None:
    body = assert_flat_error(post(server, chat(max_tokens=10, max_completion_tokens=10)), 400)
    assert "max_tokens" in body["message"] and "max_completion_tokens" in body["message"]


def test_max_tokens_alone_is_accepted(server: TestServer) -> None:
    assert post(server, chat(max_tokens=200)).status_code == 200


def test_unknown_model_is_404(server: TestServer) -> None:
    body = assert_flat_error(post(server, chat(model="gpt-5-nano")), 404, "model")
    assert body["code"] == "model_not_found"
    assert "gpt-5-nano" in body["message"]


def test_model_list_is_configurable(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(models=("my-model",))
    assert post(srv, chat(model="my-model")).status_code == 200
    assert post(srv, chat()).status_code == 404
    assert [m["id"] for m in httpx.get(srv.base_url + "/models").json()["data"]] == ["my-model"]


@pytest.mark.parametrize(
    "messages",
    [
        None,
        [],
        "hello",
        [{"content": "no role"}],
        [{"role": "robot", "content": "hi"}],
        [{"role": "user"}],
        [{"role": "user", "content": 42}],
        ["just a string"],
    ],
    ids=["missing", "empty", "string", "no-role", "bad-role", "no-content", "number-content", "not-object"],
)
def test_malformed_messages_are_400(server: TestServer, messages: Any) -> None:
    body = chat()
    if messages is None:
        del body["messages"]
    else:
        body["messages"] = messages
    assert_flat_error(post(server, body), 400, "messages")


def test_text_parts_content_is_accepted(server: TestServer) -> None:
    messages = [{"role": "user", "content": [{"type": "text", "text": "Ada Lovelace"}]}]
    assert post(server, chat(messages=messages)).status_code == 200


def test_body_that_is_not_json_is_400(server: TestServer) -> None:
    response = httpx.post(
        server.base_url + "/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert_flat_error(response, 400)


def test_json_object_needs_the_word_json(server: TestServer) -> None:
    messages = [{"role": "user", "content": "Ada Lovelace, 36"}]
    rf = {"type": "json_object"}
    body = assert_flat_error(
        post(server, chat(messages=messages, response_format=rf)), 400, "response_format"
    )
    assert "json" in body["message"]
    messages.append({"role": "system", "content": "Reply with a JSON object."})
    assert post(server, chat(messages=messages, response_format=rf)).status_code == 200


def test_unknown_response_format_type_is_400(server: TestServer) -> None:
    assert_flat_error(post(server, chat(response_format={"type": "xml"})), 400, "response_format")


@pytest.mark.parametrize("status", [400, 422])
def test_json_object_only_models_refuse_json_schema(
    make_server: Callable[..., TestServer], status: int
) -> None:
    srv = make_server(json_object_only={"llama3.1-8b"}, json_object_only_status=status)
    body = assert_flat_error(post(srv, chat()), status, "response_format")
    assert body["code"] == "wrong_api_format"
    assert post(srv, chat(model="gpt-oss-120b")).status_code == 200
    assert post(srv, chat(response_format={"type": "json_object"})).status_code == 200


def test_json_object_only_flag_covers_every_model(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(json_object_only=True)
    assert post(srv, chat(model="gpt-oss-120b")).status_code == 400


def test_llamacpp_flavor_answers_json_schema_with_500(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(flavor="llamacpp")
    response = post(srv, chat())
    assert response.status_code == 500
    assert "Input should be 'text' or 'json_object'" in response.text


def test_llamacpp_flavor_accepts_json_object_with_schema(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(flavor="llamacpp")
    response = post(
        srv, chat(model="whatever-gguf", response_format={"type": "json_object", "schema": PERSON})
    )
    assert response.status_code == 200
    content = response.json()["choices"][0]["message"]["content"]
    assert set(httpx.Response(200, content=content).json()) == {"name", "age"}


def test_llamacpp_flavor_does_not_need_the_word_json(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(flavor="llamacpp")
    messages = [{"role": "user", "content": "Ada Lovelace, 36"}]
    assert post(srv, chat(messages=messages, response_format={"type": "json_object"})).status_code == 200


def test_missing_or_wrong_key_is_401_and_never_echoed(make_server: Callable[..., TestServer]) -> None:
    key = "sk-secret-test-key-123"
    srv = make_server(api_key=key)
    missing = assert_flat_error(post(srv, chat()), 401)
    wrong = post(srv, chat(), headers={"Authorization": "Bearer sk-wrong-key-456"})
    assert_flat_error(wrong, 401)
    assert missing["code"] == "wrong_api_key"
    assert "sk-wrong-key-456" not in wrong.text
    ok = post(srv, chat(), headers={"Authorization": f"Bearer {key}"})
    assert ok.status_code == 200
    assert key not in repr(srv) and key not in str(srv.settings)
    assert all("authorization" not in r.headers for r in srv.requests)
    assert httpx.get(srv.base_url + "/models").status_code == 401


def test_reasoning_format_raw_is_incompatible_with_json_modes(server: TestServer) -> None:
    assert_flat_error(
        post(server, chat(model="gpt-oss-120b", reasoning_format="raw")), 400, "reasoning_format"
    )


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
_fields = st.sampled_from(
    ["model", "messages", "response_format", "tools", "max_tokens", "max_completion_tokens", "stream",
     "reasoning_format", "role", "content", "type", "json_schema", "name", "schema", "strict"]
)  # fmt: skip
_bodies = st.recursive(
    st.dictionaries(_fields, _json, max_size=5),
    lambda inner: st.dictionaries(_fields, inner | _json | st.lists(inner, max_size=2), max_size=5),
    max_leaves=12,
)
_formats = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "json_object", "json_schema", "xml"])},
    optional={
        "json_schema": _json
        | st.fixed_dictionaries(
            {}, optional={"name": st.just("x") | _json, "schema": _json, "strict": st.booleans() | _json}
        ),
        "schema": _json,
    },
)
_near_valid = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["llama3.1-8b", "gpt-oss-120b", "zai-glm-4.7"]),
        "messages": st.just([{"role": "user", "content": "Ada as json"}])
        | st.lists(st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant"]), "content": _json})),
    },
    optional={
        "response_format": _formats | _json,
        "tools": _json,
        "max_tokens": _json,
        "max_completion_tokens": _json,
        "stream": _json,
        "reasoning_format": _json | st.sampled_from(["parsed", "raw", "hidden", "none"]),
        "reasoning_effort": _json | st.sampled_from(["none", "low", "medium", "high"]),
        "logprobs": _json,
        "top_logprobs": _json | st.integers(-1, 21),
        "prediction": _json | st.fixed_dictionaries({"type": st.just("content"), "content": _json}),
        "service_tier": _json | st.sampled_from(["auto", "default", "flex", "priority"]),
        "prompt_cache_key": _json,
        "temperature": _json | st.floats(-1, 3),
        "top_p": _json,
        "clear_thinking": _json,
        "disable_reasoning": _json,
    },
)
_rules = Rules(
    models=frozenset({"llama3.1-8b", "gpt-oss-120b", "zai-glm-4.7"}),
    json_object_only=False,
    json_object_only_status=400,
    flavor="cerebras",
    seed=0,
)


@settings(max_examples=300, deadline=None)
@given(body=_near_valid | _bodies | _json)
def test_any_body_gets_a_plan_or_a_provider_error(body: Any) -> None:
    outcome = plan_request(body, _rules)
    if isinstance(outcome, Reply):
        assert 400 <= outcome.status < 600
        assert set(outcome.body) in ({"message", "type", "param", "code"}, {"error"})
    else:
        assert isinstance(outcome, Plan) and outcome.prompt_tokens >= 1


def test_malformed_strict_schema_is_a_400_not_a_crash(server: TestServer) -> None:
    rf = {"type": "json_schema", "json_schema": {"name": "p", "strict": True, "schema": {"type": {}}}}
    body = assert_flat_error(post(server, chat(response_format=rf)), 400, "response_format")
    assert body["code"] == "wrong_api_format"


# ---- the server's own strict-rule table ----------------------------------------------------------------
def _obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


def _nest(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = _obj(x=schema)
    return schema


@pytest.mark.parametrize(
    ("schema", "fragment"),
    [
        ({"type": "array", "items": {"type": "string"}}, "#: type: the root schema must be an object"),
        ({"type": "object", "properties": {}, "required": []}, "#: additionalProperties"),
        ({**_obj(a={"type": "string"}), "required": []}, "#: required: every property must be required"),
        (_obj(a={"type": ["string", "null"]}), "#/properties/a: type: a list of types"),
        (_obj(a={}), "#/properties/a: type: an empty schema"),
        (_obj(a=True), "#/properties/a: schema: must be an object"),
        (_obj(a={"type": "array"}), "#/properties/a: items"),
        (_obj(a={"type": "array", "items": True}), "#/properties/a: items"),
        (_obj(a={"type": "array", "prefixItems": [{"type": "string"}]}), "prefixItems needs items: false"),
        (_obj(a={"anyOf": [{"type": "string"}] * 6}), "#/properties/a: anyOf: 6 branches"),
        (_obj(a={"$ref": "#/definitions/x"}), "#/properties/a: $ref: only '#/$defs/...'"),
        (_obj(a={"$ref": "#/$defs/missing"}), "names no entry of the root $defs"),
        ({**_obj(a={"$ref": "#/$defs/n"}), "$defs": {"n": _obj(next={"$ref": "#/$defs/n"})}}, "recursive"),
        (_nest(11), "#: nesting: 11 levels deep"),
        (_obj(a={"type": "string", "description": "d" * 5000}), "#: length:"),
        (_obj(**{f"p{i}": {"enum": [f"v{i}"]} for i in range(501)}), "#: properties: 501 object properties"),
        (_obj(a={"enum": [f"{i:040d}" for i in range(251)]}), "#/properties/a: enum: 251 string values"),
        (_obj(a={"type": "string", "const": "x"}), "#/properties/a: const: undocumented"),
        (_obj(a={"type": "string", "title": "A"}), "#/properties/a: title"),
        (_obj(a={"type": "string", "x-custom": 1}), "#/properties/a: x-custom: unknown keyword"),
        (
            _obj(a={"type": "object", "properties": {}, "additionalProperties": False, "$defs": {}}),
            "only allowed at",
        ),
    ],
)
def test_strict_rule_table_refuses_what_the_page_documents(schema: dict[str, Any], fragment: str) -> None:
    from extract.testing._strict_rules import violations

    found = violations(schema)
    assert any(fragment in line for line in found), found


@pytest.mark.parametrize("keyword", sorted(REFUSED_KEYWORDS))
def test_every_refused_keyword_is_refused(keyword: str) -> None:
    from extract.testing._strict_rules import violations

    assert any(f": {keyword}: " in line for line in violations(_obj(a={"type": "string", keyword: 1})))


def test_strict_rule_table_accepts_the_documented_subset() -> None:
    from extract.testing._strict_rules import violations

    schema = {
        **_obj(
            name={"type": "string", "description": "who"},
            tags={"type": "array", "items": {"enum": ["a", "b"]}},
            pair={"type": "array", "prefixItems": [{"type": "integer"}, {"type": "number"}], "items": False},
            maybe={"anyOf": [{"$ref": "#/$defs/point"}, {"type": "null"}]},
            flag={"type": "boolean"},
        ),
        "$defs": {"point": _obj(x={"type": "number"}, y={"type": "number"})},
    }
    assert violations(schema) == []
    assert violations(_nest(9)) == []


SCHEMAS = sorted((Path(__file__).resolve().parent.parent / "schemas").glob("*.json"))


@pytest.mark.parametrize("path", SCHEMAS, ids=[p.stem for p in SCHEMAS])
def test_library_and_server_table_agree_on_the_bundled_schemas(path: Path) -> None:
    """Cross-check: the library's compiled wire schema passes the server's table, and both judge the raw
    schema alike (a disagreement is a bug in one of the two rule books)."""
    from extract.schema import compile_schema, strict_violations
    from extract.testing._strict_rules import violations

    raw = json.loads(path.read_text())
    compiled = compile_schema(raw)
    assert compiled.strict and violations(compiled.wire_schema) == []
    assert bool(strict_violations(raw)) == bool(violations(raw))
