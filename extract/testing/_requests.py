"""Check a chat-completions body the way the provider does, and say what a well-formed one asks for.

Pure: a body and the server's settings in, either an error `Reply` in the provider's shape or a `Plan` out.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import orjson

from extract.testing._generate import MARKUP, words_of
from extract.testing._wire import Reply, client_error, estimate_tokens

__all__ = ["Plan", "plan_request"]

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_LLAMACPP_MESSAGE = (
    "[{'type': 'literal_error', 'loc': ('body', 'response_format', 'type'), "
    "'msg': \"Input should be 'text' or 'json_object'\", 'input': 'json_schema', "
    "'ctx': {'expected': \"'text' or 'json_object'\"}}]"
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a valid request asks for: the model, the schema to answer (if any), token figures, a seed."""

    model: str
    mode: str  # "text" | "json_object" | "json_schema"
    schema: dict[str, Any] | None
    prompt_tokens: int
    max_completion_tokens: int | None
    words: tuple[str, ...]
    document_key: bytes
    seed: int
    first_turn: bool
    stream: bool
    show_reasoning: bool
    prompt_schema: dict[str, Any] | None  # a JSON Schema written into a message (prompt-only modes)
    prefix: tuple[int, int] | None  # (hash, characters) of a leading system message, for prompt caching


@dataclass(frozen=True, slots=True)
class Rules:
    """The parts of the server's settings that decide whether a request is accepted."""

    models: frozenset[str]
    json_object_only: bool | frozenset[str]
    json_object_only_status: int
    flavor: str
    seed: int


def _bad(message: str, param: str = "", code: str = "wrong_api_format", status: int = 400) -> Reply:
    return client_error(status, message, param=param, code=code)


def plan_request(body: Any, rules: Rules) -> Reply | Plan:
    """Accept `body` as the provider would, or return the error it would answer with."""
    if not isinstance(body, dict):
        return _bad("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return _bad("'model' is required and must be a string.", "model")
    if rules.flavor != "llamacpp" and model not in rules.models:
        return client_error(
            404,
            f"Model {model} does not exist or you do not have access to it.",
            type="not_found_error",
            param="model",
            code="model_not_found",
        )
    problem = _messages_problem(body.get("messages"))
    if problem:
        return _bad(problem, "messages")
    messages: list[dict[str, Any]] = body["messages"]
    if body.get("max_tokens") is not None and body.get("max_completion_tokens") is not None:
        return _bad(
            "'max_tokens' and 'max_completion_tokens' cannot both be set; send only 'max_completion_tokens'.",
            "max_completion_tokens",
        )
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        return _bad("'max_completion_tokens' must be a positive integer.", "max_completion_tokens")
    response_format = body.get("response_format")
    if body.get("tools") and response_format is not None:
        return _bad("'tools' is incompatible with 'response_format'", "response_format")
    shaped = _response_format(response_format, model, messages, rules)
    if isinstance(shaped, Reply):
        return shaped
    mode, schema = shaped
    if mode != "text" and body.get("reasoning_format") == "raw":
        return _bad("reasoning_format 'raw' is incompatible with JSON response formats.", "reasoning_format")
    text = _all_text(messages)
    if schema is not None:
        # Providers render a response_format schema into the model's prompt (gpt-oss' harmony format does),
        # so it is billed as prompt tokens like any message text.
        text += "\n" + orjson.dumps(schema).decode()
    return Plan(
        model=model,
        mode=mode,
        schema=schema,
        prompt_tokens=max(estimate_tokens(len(text)), 1),
        max_completion_tokens=limit,
        words=words_of(_first_user_text(messages)),
        document_key=_document_key(_first_user_text(messages)),
        seed=_seed(model, messages, response_format, rules.seed),
        first_turn=not any(m.get("role") == "assistant" for m in messages),
        stream=body.get("stream") is True,
        show_reasoning=body.get("reasoning_format") not in ("hidden", "none"),
        prompt_schema=None if schema is not None else _schema_in_messages(messages),
        prefix=_prefix(model, messages),
    )


def _messages_problem(messages: Any) -> str | None:
    if not isinstance(messages, list) or not messages:
        return "'messages' is required and must be a non-empty list."
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return f"messages[{index}] must be an object with 'role' and 'content'."
        role = message.get("role")
        if role not in _ROLES:
            return f"messages[{index}].role must be one of {', '.join(sorted(_ROLES))}; got {role!r}."
        content = message.get("content")
        if content is None and not (role == "assistant" and message.get("tool_calls")):
            return f"messages[{index}].content is required."
        if content is not None and not isinstance(content, str) and not _is_text_parts(content):
            return f"messages[{index}].content must be a string or a list of text parts."
    return None


def _is_text_parts(content: Any) -> bool:
    return isinstance(content, list) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    )


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content)
    return ""


def _all_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(_text_of(m) for m in messages)


def _prefix(model: str, messages: list[dict[str, Any]]) -> tuple[int, int] | None:
    if messages[0].get("role") not in ("system", "developer"):
        return None
    text = _text_of(messages[0])
    return (hash((model, text)), len(text))


def _document_key(text: str) -> bytes:
    """The document's identity whatever markup a client wraps it in (a fair invalid_rate draw)."""
    return " ".join(MARKUP.sub(" ", text).split()).encode()


def _first_user_text(messages: list[dict[str, Any]]) -> str:
    """The document: later user turns are corrections, whose words would make poor field values."""
    for message in messages:
        if message.get("role") == "user":
            return _text_of(message)
    return ""


def _schema_in_messages(messages: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first JSON object in a message that looks like a JSON Schema; how prompt-only clients send one."""
    decoder = json.JSONDecoder()
    for message in messages:
        text = _text_of(message)
        start = text.find("{")
        tries = 0
        while start != -1 and tries < 20:
            tries += 1
            try:
                found, end = decoder.raw_decode(text, start)
            except ValueError:
                start = text.find("{", start + 1)
                continue
            if isinstance(found, dict) and ("properties" in found or found.get("type") == "object"):
                return found
            start = text.find("{", end)
    return None


def _seed(model: str, messages: Any, response_format: Any, base: int) -> int:
    payload = orjson.dumps([base, model, messages, response_format], option=orjson.OPT_SORT_KEYS)
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big")


def _response_format(
    response_format: Any, model: str, messages: list[dict[str, Any]], rules: Rules
) -> Reply | tuple[str, dict[str, Any] | None]:
    if response_format is None:
        return ("text", None)
    if not isinstance(response_format, dict):
        return _bad("'response_format' must be an object.", "response_format")
    kind = response_format.get("type")
    if kind == "text":
        return ("text", None)
    if kind == "json_object":
        needs_word = rules.flavor == "cerebras"  # llama.cpp's server does not ask for it
        if needs_word and not any("json" in _text_of(m).lower() for m in messages):
            return _bad(
                "response_format json_object requires the word 'json' in at least one message; "
                "ask for JSON in the system or user message.",
                "response_format",
            )
        schema = response_format.get("schema")
        return ("json_object", schema if isinstance(schema, dict) else None)
    if kind != "json_schema":
        return _bad(
            f"response_format.type must be 'text', 'json_object' or 'json_schema'; got {kind!r}.",
            "response_format",
        )
    if rules.flavor == "llamacpp":
        error = {"message": _LLAMACPP_MESSAGE, "type": "internal_server_error", "param": None, "code": None}
        return Reply(500, {"error": error})
    if _json_object_only(model, rules.json_object_only):
        return _bad(
            f"Model {model} does not support response_format type 'json_schema'; use 'json_object' "
            "and describe the schema in a message.",
            "response_format",
            status=rules.json_object_only_status,
        )
    spec = response_format.get("json_schema")
    if not isinstance(spec, dict):
        return _bad(
            "response_format.json_schema must be an object with 'name' and 'schema'.", "response_format"
        )
    name = spec.get("name")
    if name is None:
        return _bad("response_format.json_schema.name is required.", "response_format")
    if not isinstance(name, str) or not _NAME.match(name):
        return _bad(
            "response_format.json_schema.name must match ^[A-Za-z0-9_-]{1,64}$; got "
            + json.dumps(name)
            + ".",
            "response_format",
        )
    schema = spec.get("schema")
    if not isinstance(schema, dict):
        return _bad("response_format.json_schema.schema must be a JSON Schema object.", "response_format")
    if spec.get("strict") is True:
        violations = _strict_violations(schema)
        if violations:
            return _bad(
                "The JSON schema is not supported in strict mode: " + "; ".join(violations),
                "response_format",
            )
    return ("json_schema", schema)


_VIOLATIONS: dict[bytes, tuple[str, ...]] = {}
_VIOLATIONS_MAX = 2048


def _strict_violations(schema: dict[str, Any]) -> tuple[str, ...]:
    """`strict_violations`, remembered per schema: a batch sends the same schema thousands of times."""
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    found = _VIOLATIONS.get(key)
    if found is None:
        # Imported on first use: extract.schema pulls in jsonschema, whose import costs seconds, and the
        # server should start fast for requests that never send a strict schema.
        from extract.schema import strict_violations

        if len(_VIOLATIONS) >= _VIOLATIONS_MAX:
            _VIOLATIONS.clear()
        try:
            found = tuple(strict_violations(schema))
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # A schema too malformed to check: the provider refuses it too (and the checker has a gap).
            found = (f"#: the schema is malformed and cannot be checked ({type(exc).__name__}: {exc})",)
        _VIOLATIONS[key] = found
    return found


def _json_object_only(model: str, setting: bool | Collection[str]) -> bool:
    return setting if isinstance(setting, bool) else model in setting
