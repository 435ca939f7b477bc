"""Response bodies in the provider's shapes: flat 4xx errors, the 5xx envelope, completions, model lists.

Kept apart from the server so the shapes are written once and tests can compare against them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from typing import Any

__all__ = [
    "DEFAULT_MODELS",
    "Reply",
    "client_error",
    "completion_body",
    "estimate_tokens",
    "models_body",
    "server_error",
    "text_completion_body",
    "time_info",
]

DEFAULT_MODELS: tuple[str, ...] = (
    "gpt-oss-120b",
    "zai-glm-4.7",
    "llama3.1-8b",
    "qwen-3-235b-a22b-instruct-2507",
)

_FINGERPRINT = "fp_extract_testing"


class Reply:
    """One HTTP answer before it is serialised: status, JSON body (or raw bytes), extra headers."""

    __slots__ = ("body", "headers", "parts", "status")

    def __init__(self, status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = status
        self.body = body
        self.headers = list(headers)
        self.parts: list[bytes] | None = None  # a streamed body's events, written one by one

    def __repr__(self) -> str:
        return f"Reply(status={self.status}, body={self.body!r})"


def client_error(
    status: int,
    message: str,
    *,
    type: str = "invalid_request_error",
    param: str = "",
    code: str = "",
    headers: Iterable[tuple[str, str]] = (),
) -> Reply:
    """A 4xx in the flat shape: {"message", "type", "param", "code"}."""
    return Reply(status, {"message": message, "type": type, "param": param, "code": code}, headers)


def server_error(
    status: int, message: str = "Internal server error.", *, headers: Iterable[tuple[str, str]] = ()
) -> Reply:
    """A 5xx in the envelope shape: {"status_code", "error": {...}}."""
    error = {"message": message, "type": "server_error", "param": "", "code": "", "id": ""}
    return Reply(status, {"status_code": status, "error": error}, headers)


def estimate_tokens(chars: int) -> int:
    """Tokens as roughly four characters each; never zero for non-empty text."""
    return (chars + 3) // 4


def time_info(
    elapsed: float, prompt_tokens: int, completion_tokens: int, queue_time: float
) -> dict[str, float]:
    """`time_info` as the provider reports it (seconds); compute times follow the token counts."""
    prompt_time = prompt_tokens / 20000
    completion_time = completion_tokens / 2000
    return {
        "queue_time": queue_time,
        "prompt_time": prompt_time,
        "completion_time": completion_time,
        "total_time": max(elapsed, queue_time + prompt_time + completion_time),
        "created": time.time(),
    }


def completion_body(
    *,
    model: str,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    reasoning: str | None,
    cached_tokens: int,
    elapsed: float,
    reasoning_tokens: int | None = None,
    logprobs: dict[str, Any] | None = None,
    reasoning_model: bool = False,
    accepted_prediction_tokens: int = 0,
    rejected_prediction_tokens: int = 0,
    service_tier: str | None = None,
    queue_time: float = 0.0001,
) -> dict[str, Any]:
    """A chat.completion object with usage and time_info filled the way the provider fills them.

    `reasoning` is the text shown in `message.reasoning` (None: no such field); `reasoning_tokens` what was
    spent on reasoning (default: the shown text's tokens), counted in completion_tokens either way.
    """
    if reasoning_tokens is None:
        reasoning_tokens = estimate_tokens(len(reasoning)) if reasoning else 0
    completion_tokens = estimate_tokens(len(content)) + reasoning_tokens
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning"] = reasoning
    message["tool_calls"] = None
    choice: dict[str, Any] = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason,
        "logprobs": logprobs,
    }
    if reasoning_model:
        choice["reasoning_logprobs"] = None
    timing = time_info(elapsed, prompt_tokens, completion_tokens, queue_time)
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4()}",
        "object": "chat.completion",
        "created": int(timing["created"]),
        "model": model,
        "system_fingerprint": _FINGERPRINT,
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
            "completion_tokens_details": {
                "accepted_prediction_tokens": accepted_prediction_tokens,
                "rejected_prediction_tokens": rejected_prediction_tokens,
                "reasoning_tokens": reasoning_tokens,
            },
        },
        "time_info": timing,
        "service_tier": service_tier,
    }
    if service_tier == "auto":
        body["service_tier_used"] = "default"  # the highest tier a shared endpoint has
    return body


def text_completion_body(
    *,
    model: str,
    text: str,
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    cached_tokens: int,
    elapsed: float,
    logprobs: dict[str, Any] | None,
    raw_tokens: list[int] | None,
    service_tier: str | None = None,
    queue_time: float = 0.0001,
) -> dict[str, Any]:
    """A text_completion object shaped like the seed page's example (POST /v1/completions)."""
    timing = time_info(elapsed, prompt_tokens, completion_tokens, queue_time)
    body: dict[str, Any] = {
        "id": f"cmpl-{uuid.uuid4()}",
        "choices": [
            {
                "index": 0,
                "finish_reason": finish_reason,
                "logprobs": logprobs,
                "text": text,
                "tokens": raw_tokens,
            }
        ],
        "created": int(timing["created"]),
        "model": model,
        "object": "text_completion",
        "system_fingerprint": _FINGERPRINT,
        "time_info": timing,
        "usage": {
            "completion_tokens": completion_tokens,
            "prompt_tokens": prompt_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "service_tier": service_tier,
    }
    if service_tier == "auto":
        body["service_tier_used"] = "default"
    return body


def models_body(models: Iterable[str]) -> dict[str, Any]:
    created = 1_700_000_000
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": "Cerebras"} for m in models],
    }
