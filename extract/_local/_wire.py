"""Chat-completions request bodies -> llama.cpp keyword arguments, and llama.cpp results -> OpenAI bodies.

Pure: no model, no I/O, so the translation is tested without llama.cpp installed. A request the embedded
model cannot honour becomes an OpenAI-shaped error body with the status a server would send, so the
engine handles it exactly as it handles a remote server's refusal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "LocalRequestError",
    "error_body",
    "llama_kwargs",
    "logprobs_width",
    "response_body",
]

# Without a budget llama.cpp generates up to the context size; a tiny model stuck in a loop would then
# spend minutes. Callers that need more pass max_completion_tokens.
DEFAULT_MAX_TOKENS = 1024

# A 135M model under a JSON grammar easily loops (the same array item or phrase until the token budget runs
# out: measured on schemas/contact.json, 1,024 tokens and a timeout). A frequency penalty breaks the loop (the
# same extraction then ends in ~115 tokens); callers who pass their own value keep it.
DEFAULT_FREQUENCY_PENALTY = 1.0

# Sampling fields that mean the same thing to llama.cpp as to an OpenAI server, passed through as-is.
_PASSTHROUGH = (
    "temperature",
    "top_p",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
)

# The OpenAI limit on top_logprobs.
MAX_TOP_LOGPROBS = 20

# Fields that would change what the caller gets back and that the embedded model cannot do.
_UNSUPPORTED = ("tools", "functions", "tool_choice", "function_call")


@dataclass(frozen=True, slots=True)
class LocalRequestError(Exception):
    """A request the embedded model refuses, with the HTTP status a server would have answered."""

    status_code: int
    message: str
    param: str | None = None
    code: str | None = None

    def __str__(self) -> str:
        return self.message


def error_body(
    status_code: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """An OpenAI-style error envelope."""
    kind = "invalid_request_error" if status_code < 500 else "server_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _text(content: Any) -> str:
    """Message content as one string: chat templates concatenate strings, not OpenAI content parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise LocalRequestError(
                    400, "the embedded model reads text only; send message content as text parts", "messages"
                )
        return "".join(parts)
    raise LocalRequestError(
        400,
        f"message content must be a string or a list of text parts, not {type(content).__name__}",
        "messages",
    )


def _messages(raw: Any) -> list[dict[str, str]]:
    if not isinstance(raw, list) or not raw:
        raise LocalRequestError(400, "'messages' must be a non-empty list", "messages")
    out: list[dict[str, str]] = []
    for message in raw:
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise LocalRequestError(400, "each message needs a string 'role'", "messages")
        role = message["role"]
        # Chat templates know system/user/assistant; a developer message plays the system role.
        out.append(
            {"role": "system" if role == "developer" else role, "content": _text(message.get("content"))}
        )
    return out


def _response_format(raw: Any) -> dict[str, Any] | None:
    """json_schema becomes json_object + schema: in-process we can always hand the schema to the grammar."""
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise LocalRequestError(400, "'response_format' must be an object", "response_format")
    kind = raw.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        schema = raw.get("schema")
        return {"type": "json_object"} if schema is None else {"type": "json_object", "schema": schema}
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        if not isinstance(schema, Mapping):
            raise LocalRequestError(
                400, "response_format json_schema needs json_schema.schema (an object)", "response_format"
            )
        return {"type": "json_object", "schema": dict(schema)}
    raise LocalRequestError(
        400,
        f"response_format type {kind!r} is not one of 'text', 'json_object', 'json_schema'",
        "response_format",
    )


def _max_tokens(body: Mapping[str, Any]) -> int:
    value = body.get("max_completion_tokens", body.get("max_tokens"))
    if value is None:
        return DEFAULT_MAX_TOKENS
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LocalRequestError(
            400, f"max_completion_tokens must be a positive integer, not {value!r}", "max_completion_tokens"
        )
    return value


def _logit_bias(raw: Any) -> dict[int, float] | None:
    if raw is None:
        return None
    try:
        return {int(token): float(bias) for token, bias in dict(raw).items()}
    except (TypeError, ValueError):
        raise LocalRequestError(400, "logit_bias must map token ids to numbers", "logit_bias") from None


def llama_kwargs(body: Mapping[str, Any], *, model_name: str) -> dict[str, Any]:
    """Keyword arguments for `Llama.create_chat_completion` answering one chat-completions body.

    Fields that do not change the answer (user, service_tier, reasoning_effort, ...) are ignored, as a
    lenient server would; fields whose absence would give the caller something else are refused.
    """
    for name in _UNSUPPORTED:
        if body.get(name) is not None:
            raise LocalRequestError(400, f"the embedded model does not support '{name}'", name)
    if body.get("stream"):
        raise LocalRequestError(400, "the embedded model does not stream; send stream=false", "stream")
    n = body.get("n")
    if n is not None and n != 1:
        raise LocalRequestError(400, "the embedded model returns one choice per request (n=1)", "n")
    kwargs: dict[str, Any] = {
        "messages": _messages(body.get("messages")),
        "max_tokens": _max_tokens(body),
        "model": body.get("model") if isinstance(body.get("model"), str) else model_name,
    }
    response_format = _response_format(body.get("response_format"))
    if response_format is not None:
        kwargs["response_format"] = response_format
    kwargs["frequency_penalty"] = DEFAULT_FREQUENCY_PENALTY
    for name in _PASSTHROUGH:
        if body.get(name) is not None:
            kwargs[name] = body[name]
    bias = _logit_bias(body.get("logit_bias"))
    if bias:
        kwargs["logit_bias"] = bias
    return kwargs


def logprobs_width(body: Mapping[str, Any]) -> int | None:
    """How many alternatives each token's logprobs entry lists (0: the chosen token alone), or None when
    the body asks for no logprobs. The transport computes them itself (see extract._local._logprobs), so
    they never reach llama-cpp-python, which would refuse them for a model loaded without logits_all."""
    wanted = body.get("logprobs")
    width = body.get("top_logprobs")
    if wanted is not None and not isinstance(wanted, bool):
        raise LocalRequestError(400, f"logprobs must be a boolean, not {wanted!r}", "logprobs")
    if width is not None and (
        isinstance(width, bool) or not isinstance(width, int) or not 0 <= width <= MAX_TOP_LOGPROBS
    ):
        raise LocalRequestError(
            400,
            f"top_logprobs must be an integer from 0 to {MAX_TOP_LOGPROBS}, not {width!r}",
            "top_logprobs",
        )
    if not wanted:
        if width:
            raise LocalRequestError(400, "top_logprobs needs logprobs set to true", "top_logprobs")
        return None
    return width or 0


def response_body(result: Mapping[str, Any], *, total_time: float) -> dict[str, Any]:
    """An OpenAI-shaped chat.completion body (usage included) from llama.cpp's result."""
    body = dict(result)
    usage = body.get("usage")
    if not isinstance(usage, Mapping):
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    body["usage"] = dict(usage)
    body["time_info"] = {"total_time": total_time}
    return body
