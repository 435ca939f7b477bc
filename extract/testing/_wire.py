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

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = status
        self.body = body
        self.headers = list(headers)

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


def completion_body(
    *,
    model: str,
    content: str,
    finish_reason: str,
    prompt_tokens: int,
    reasoning: str | None,
    cached_tokens: int,
    elapsed: float,
) -> dict[str, Any]:
    """A chat.completion object with usage and time_info filled the way the provider fills them."""
    reasoning_tokens = estimate_tokens(len(reasoning)) if reasoning else 0
    completion_tokens = estimate_tokens(len(content)) + reasoning_tokens
    now = time.time()
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reasoning is not None:
        message["reasoning"] = reasoning
    message["tool_calls"] = None
    prompt_time = prompt_tokens / 20000
    completion_time = completion_tokens / 2000
    return {
        "id": f"chatcmpl-{uuid.uuid4()}",
        "object": "chat.completion",
        "created": int(now),
        "model": model,
        "system_fingerprint": _FINGERPRINT,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens},
            "completion_tokens_details": {
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
                "reasoning_tokens": reasoning_tokens,
            },
        },
        "time_info": {
            "queue_time": 0.0001,
            "prompt_time": prompt_time,
            "completion_time": completion_time,
            "total_time": max(elapsed, prompt_time + completion_time),
            "created": now,
        },
    }


def models_body(models: Iterable[str]) -> dict[str, Any]:
    created = 1_700_000_000
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": "Cerebras"} for m in models],
    }
