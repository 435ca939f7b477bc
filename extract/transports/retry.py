"""The retry policy (which failures are worth sending again, and how long to wait) and the map from a
failed HTTP status to the error a caller sees.

The retry loop itself lives in the engine's generator (so sync and async share it); this module only
answers the questions the loop asks. Pure functions, no I/O.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from extract.errors import (
    APIError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnreadableResponseError,
    error_fields,
)
from extract.transports.base import WireResponse
from extract.transports.waits import DEFAULT_MAX_WAIT_S, check_cap, server_wait

__all__ = [
    "RetryPolicy",
    "error_fields",
    "error_from_response",
    "retry_delay",
    "should_retry",
    "unreadable_reply_error",
]

_RETRYABLE_STATUS = frozenset({408, 409, 429})
_EXCERPT_CHARS = 120


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times a transport failure is retried and how the wait grows (min(initial*2^n, cap)).

    `max_server_wait` caps any wait a server asks for (`retry-after` and friends); 60 s, as the SDKs do.
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)
    max_server_wait: float = DEFAULT_MAX_WAIT_S

    def __post_init__(self) -> None:
        check_cap(self.max_server_wait, "max_server_wait")


def should_retry(status_code: int | None, headers: Mapping[str, str]) -> bool:
    """Whether a failure is transient. `status_code` None means no response (connection error, timeout)."""
    hint = headers.get("x-should-retry")
    if hint == "true":
        return True
    if hint == "false":
        return False
    if status_code is None:
        return True
    return status_code in _RETRYABLE_STATUS or status_code >= 500


def retry_delay(
    retry_index: int,
    status_code: int | None,
    headers: Mapping[str, str],
    policy: RetryPolicy,
    *,
    now: float | None = None,
) -> float:
    """Seconds to wait before retry number `retry_index` (0-based): the server's word first (capped at
    `policy.max_server_wait`), else jittered exponential backoff."""
    hinted = server_wait(
        headers, status_code, cap=policy.max_server_wait, now=time.time() if now is None else now
    )
    if hinted is not None:
        return hinted
    base = min(policy.initial_delay * (2.0 ** min(retry_index, 64)), policy.max_delay)
    return base * (1.0 - 0.25 * policy.rng.random())


_ADVICE: dict[int, tuple[type[APIError], str]] = {
    400: (BadRequestError, "the server refused the request; check the parameters and the schema"),
    401: (
        AuthenticationError,
        "check CEREBRAS_API_KEY (or the api_key you passed) and that it matches the base_url",
    ),
    403: (PermissionDeniedError, "this key may not use this model or feature; pick another model or key"),
    404: (NotFoundError, "check base_url (it should end in /v1) and the model name"),
    408: (APITimeoutError, "the server timed out the request; try again later or raise the timeout"),
    409: (ServerError, "the server reported a conflict; try again later"),
    422: (BadRequestError, "the server could not process the request; check the parameters and the schema"),
    429: (
        RateLimitError,
        "the rate limit is exhausted; lower concurrency, pass a limiter, or raise max_retries",
    ),
}


def error_from_response(response: WireResponse, *, secrets: tuple[str | None, ...] = ()) -> APIError:
    """The error a caller sees for a failed status, with the server's words and advice; every field the
    error carries is redacted of `secrets` by the error itself."""
    status = response.status_code
    fields = error_fields(response.data)
    server_message = fields.get("message")
    if server_message is None and response.body:
        server_message = response.body[:500].decode("utf-8", "replace").strip() or None
    cls, advice = _ADVICE.get(status, (ServerError, "the server failed; try again later"))
    if 400 <= status < 500 and status not in _ADVICE:
        cls, advice = BadRequestError, "the server refused the request"
    said = f": {server_message}" if server_message else ""
    return cls(
        f"HTTP {status}{said} ({advice})",
        status_code=status,
        code=fields.get("code"),
        type=fields.get("type"),
        param=fields.get("param"),
        server_message=server_message,
        body=response.body.decode("utf-8", "replace") if response.body else None,
        headers=response.headers,
        secrets=secrets,
    )


def _excerpt(body: bytes) -> str:
    """A short, printable, single-line view of a body that may be HTML, binary or invalid UTF-8."""
    text = body[: _EXCERPT_CHARS * 4].decode("utf-8", "replace")
    shown = "".join(c if c.isprintable() else " " for c in text)
    shown = " ".join(shown.split())[:_EXCERPT_CHARS]
    return shown + ("..." if len(body) > len(shown.encode("utf-8", "replace")) else "")


def _why_unreadable(body: bytes) -> str:
    if not body:
        return "an empty body"
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return "a body that is not valid UTF-8"
    if body.lstrip()[:1] == b"<":
        return "an HTML/XML page, not JSON"
    return "a body that is not a JSON object"


def unreadable_reply_error(response: WireResponse, *, secrets: tuple[str | None, ...] = ()) -> APIError:
    """A success status whose body is not a JSON object (an HTML page from a proxy, bytes that are not
    UTF-8, plain text): a server fault, never something to re-ask the model about."""
    status = response.status_code
    content_type = response.headers.get("content-type") or "(none)"
    excerpt = _excerpt(response.body)
    return UnreadableResponseError(
        f"HTTP {status} with {_why_unreadable(response.body)} (content-type {content_type}; body starts "
        f"{excerpt!r}); the server, or a proxy in front of it, did not answer with a chat completion: "
        "check base_url (it should end in /v1) or try again later",
        status_code=status,
        server_message=excerpt or None,
        body=response.body.decode("utf-8", "replace") if response.body else None,
        headers=response.headers,
        secrets=secrets,
    )
