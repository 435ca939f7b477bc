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
from extract.testing._models import EFFORT_TOKENS, ModelSpec, spec_for
from extract.testing._strict_rules import violations
from extract.testing._wire import Reply, client_error, estimate_tokens

__all__ = ["Plan", "Rules", "check_common", "context_error", "model_error", "plan_request"]

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
_REASONING_FORMATS = frozenset({"parsed", "text_parsed", "raw", "hidden", "none"})
_TIERS = ("auto", "default", "flex", "priority")
_MAX_TOP_LOGPROBS = 20
_MAX_CACHE_KEY = 1024
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
    prompt_text: str  # the prompt as the model would see it (schema first), matched by the prompt cache
    cache_scope: str  # requests share cached prefixes only within one scope (model, prompt_cache_key)
    logprobs: bool = False
    top_logprobs: int = 0
    reasoning_tokens: int = 0  # reasoning the reply spends first (0: not a reasoning reply)
    reasoning_format: str = "parsed"
    prediction: str | None = None
    service_tier: str | None = None
    document: str = ""  # the first user message's text (what the oracle answer mode reads)


@dataclass(frozen=True, slots=True)
class Rules:
    """The parts of the server's settings that decide whether a request is accepted."""

    models: frozenset[str]
    json_object_only: bool | frozenset[str]
    json_object_only_status: int
    flavor: str
    seed: int
    reasoning_models: frozenset[str] = frozenset({"gpt-oss-120b", "zai-glm-4.7"})
    context_windows: tuple[tuple[str, int], ...] = ()
    service_tiers: frozenset[str] = frozenset({"auto", "default", "flex"})

    def spec(self, model: str) -> ModelSpec:
        return spec_for(
            model,
            reasoning=model in self.reasoning_models,
            context_window=dict(self.context_windows).get(model),
        )


def _one_of(value: Any, options: Collection[str]) -> bool:
    """Membership that survives unhashable JSON values (a list where a string belongs)."""
    return isinstance(value, str) and value in options


def _bad(message: str, param: str = "", code: str = "wrong_api_format", status: int = 400) -> Reply:
    return client_error(status, message, param=param, code=code)


def model_error(body: dict[str, Any], rules: Rules) -> Reply | None:
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
    return None


def check_common(body: dict[str, Any], *, max_temperature: float) -> Reply | None:
    """Fields both completion endpoints share: sampling ranges, service_tier's spelling, prompt_cache_key."""
    for name, low, high in (("temperature", 0.0, max_temperature), ("top_p", 0.0, 1.0)):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            return _bad(f"'{name}' must be a number between {low:g} and {high:g}; got {value!r}.", name)
    tier = body.get("service_tier")
    if tier is not None and not _one_of(tier, _TIERS):
        return _bad(f"'service_tier' must be one of {', '.join(_TIERS)}; got {tier!r}.", "service_tier")
    key = body.get("prompt_cache_key")
    if key is not None and (not isinstance(key, str) or len(key) > _MAX_CACHE_KEY):
        return _bad(
            f"'prompt_cache_key' must be a string of at most {_MAX_CACHE_KEY} characters.", "prompt_cache_key"
        )
    return None


def tier_error(tier: Any, rules: Rules) -> Reply | None:
    if tier is None or _one_of(tier, rules.service_tiers):
        return None
    return _bad(
        f"service_tier '{tier}' is not available on this endpoint"
        + (" (priority is only available for dedicated endpoints)." if tier == "priority" else "."),
        "service_tier",
    )


def context_error(model: str, spec: ModelSpec, prompt_tokens: int, completion: int | None) -> Reply | None:
    """The provider's refusal of a request longer than the model's context window (prompt + completion)."""
    length = prompt_tokens + (completion or 0)
    if length <= spec.context_window:
        return None
    return client_error(
        400,
        "Please reduce the length of the messages or completion. "
        f"Current length is {length} while limit is {spec.context_window}",
        param="messages",
        code="context_length_exceeded",
    )


def plan_request(body: Any, rules: Rules) -> Reply | Plan:
    """Accept `body` as the provider would, or return the error it would answer with."""
    if not isinstance(body, dict):
        return _bad("The request body must be a JSON object.")
    refused = model_error(body, rules)
    if refused is not None:
        return refused
    model: str = body["model"]
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
    refused = check_common(body, max_temperature=2.0) or tier_error(body.get("service_tier"), rules)
    if refused is not None:
        return refused
    response_format = body.get("response_format")
    if body.get("tools") and response_format is not None:
        return _bad("'tools' is incompatible with 'response_format'", "response_format")
    shaped = _response_format(response_format, model, messages, rules)
    if isinstance(shaped, Reply):
        return shaped
    mode, schema = shaped
    if mode == "json_object" and body.get("stream") is True:
        return _bad("json_object is not compatible with streaming - stream must be set to false.", "stream")
    spec = rules.spec(model)
    if not spec.developer_role and any(m.get("role") == "developer" for m in messages):
        return _bad(
            f"The developer role is only available for the gpt-oss-120b model, not {model}; use system.",
            "messages",
        )
    reasoning = _reasoning(body, model, spec, mode)
    if isinstance(reasoning, Reply):
        return reasoning
    reasoning_tokens, reasoning_format = reasoning
    logprobs = _logprobs(body)
    if isinstance(logprobs, Reply):
        return logprobs
    prediction = _prediction(body.get("prediction"), model, spec)
    if isinstance(prediction, Reply):
        return prediction
    text = _all_text(messages)
    schema_text = "" if schema is None else orjson.dumps(schema).decode()
    if schema is not None:
        # Providers render a response_format schema into the model's prompt (gpt-oss' harmony format does),
        # so it is billed as prompt tokens like any message text.
        text += "\n" + schema_text
    prompt_tokens = max(estimate_tokens(len(text)), 1)
    refused = context_error(model, spec, prompt_tokens, limit)
    if refused is not None:
        return refused
    return Plan(
        model=model,
        mode=mode,
        schema=schema,
        prompt_tokens=prompt_tokens,
        max_completion_tokens=limit,
        words=words_of(_first_user_text(messages)),
        document_key=_document_key(_first_user_text(messages)),
        seed=_seed(model, messages, response_format, rules.seed),
        first_turn=not any(m.get("role") == "assistant" for m in messages),
        stream=body.get("stream") is True,
        show_reasoning=reasoning_format not in ("hidden", "none"),
        prompt_schema=None if schema is not None else _schema_in_messages(messages),
        # the schema goes first, where a harmony-style prompt renders response formats (before the messages)
        prompt_text=(schema_text + "\n" if schema is not None else "") + _all_text(messages),
        cache_scope=cache_scope(model, body.get("prompt_cache_key")),
        logprobs=logprobs[0],
        top_logprobs=logprobs[1],
        reasoning_tokens=reasoning_tokens,
        reasoning_format=reasoning_format,
        prediction=prediction,
        service_tier=body.get("service_tier"),
        document=_first_user_text(messages),
    )


def cache_scope(model: str, key: Any) -> str:
    return f"{model}\x00{key}" if isinstance(key, str) else model


def _reasoning(body: dict[str, Any], model: str, spec: ModelSpec, mode: str) -> Reply | tuple[int, str]:
    """(reasoning tokens to spend, reasoning_format), or the refusal of a field the model does not take."""
    reasoning_format = body.get("reasoning_format")
    if reasoning_format is not None and not _one_of(reasoning_format, _REASONING_FORMATS):
        return _bad(
            f"'reasoning_format' must be one of {', '.join(sorted(_REASONING_FORMATS))}; got {reasoning_format!r}.",
            "reasoning_format",
        )
    if mode != "text" and reasoning_format == "raw":
        return _bad("reasoning_format 'raw' is incompatible with JSON response formats.", "reasoning_format")
    if body.get("clear_thinking") is not None and not spec.clear_thinking:
        return _bad(
            f"'clear_thinking' is supported only on the zai-glm-4.7 model, not on {model}.", "clear_thinking"
        )
    effort = body.get("reasoning_effort")
    # The page says the field "is only available for gpt-oss-120b and zai-glm-4.7"; whether other models
    # refuse it or ignore it is not documented, so they ignore it here (a client's pass-through stays harmless).
    if effort is not None and spec.reasoning and not _one_of(effort, spec.efforts):
        return _bad(
            f"reasoning_effort {effort!r} is not supported for {model}; supported values: "
            + ", ".join(e for e in EFFORT_TOKENS if e in spec.efforts)
            + ".",
            "reasoning_effort",
        )
    if not spec.reasoning or body.get("disable_reasoning") is True:
        return 0, reasoning_format or "parsed"
    return EFFORT_TOKENS[effort or "medium"], reasoning_format or "parsed"


def _logprobs(body: dict[str, Any]) -> Reply | tuple[bool, int]:
    wanted = body.get("logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        return _bad("'logprobs' must be a boolean.", "logprobs")
    top = body.get("top_logprobs")
    if top is None:
        return bool(wanted), 0
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= _MAX_TOP_LOGPROBS:
        return _bad(
            f"'top_logprobs' must be an integer between 0 and {_MAX_TOP_LOGPROBS}; got {top!r}.",
            "top_logprobs",
        )
    if wanted is not True:
        return _bad("'logprobs' must be set to true if 'top_logprobs' is used.", "top_logprobs")
    return True, top


def _prediction(prediction: Any, model: str, spec: ModelSpec) -> Reply | str | None:
    if prediction is None:
        return None
    if not spec.predicted_outputs:
        return _bad(f"Predicted outputs are not supported for model {model}.", "prediction")
    content = prediction.get("content") if isinstance(prediction, dict) else None
    if not isinstance(prediction, dict) or prediction.get("type") != "content":
        return _bad('\'prediction\' must be {"type": "content", "content": ...}.', "prediction")
    if isinstance(content, str):
        return content
    if isinstance(content, list) and _is_text_parts(content):
        return "".join(part["text"] for part in content)
    return _bad("'prediction.content' must be a string or a list of text parts.", "prediction")


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
    """The server's own rule table (`_strict_rules`), remembered per schema: a batch resends one schema."""
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    found = _VIOLATIONS.get(key)
    if found is None:
        if len(_VIOLATIONS) >= _VIOLATIONS_MAX:
            _VIOLATIONS.clear()
        try:
            found = tuple(violations(schema))
        except RecursionError:
            found = ("#: nesting: the schema is nested too deeply to read",)
        _VIOLATIONS[key] = found
    return found


def _json_object_only(model: str, setting: bool | Collection[str]) -> bool:
    return setting if isinstance(setting, bool) else model in setting
