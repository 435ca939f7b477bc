"""The vocabulary of scripted misbehaviour: one `Fault` per request, built by named constructors.

A fault either replaces the whole HTTP answer (a status, a dropped connection) or only the reply content of an
otherwise normal completion (bad JSON, a fenced block, a refusal). `Fault.named("drop")` and plain strings
passed to `TestServer.script` use the constructor of that name with its defaults.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from extract.errors import ConfigurationError

__all__ = ["CONTENT_KINDS", "FAULT_NAMES", "Fault"]

CONTENT_KINDS = frozenset(
    {
        "invalid_json",
        "schema_violation",
        "content",
        "truncated",
        "schema_echo",
        "wrapped",
        "fenced",
        "empty",
        "refusal",
    }
)
_SERVER_MESSAGES = {
    500: "Internal server error.",
    502: "Bad gateway.",
    503: "Service temporarily unavailable.",
    504: "Gateway timeout.",
}
_REFUSAL = "I'm sorry, but I can't help with that request."


@dataclass(frozen=True, slots=True)
class Fault:
    """One scripted behaviour, consumed by exactly one chat-completions request.

    The request takes its fault before it is checked, so a fault meant to change the content of a reply is
    used up (with no effect) by a request the server refuses with a 4xx.

    Build them with the class methods (`Fault.server_error(503)`, `Fault.slow(2.0)`, ...); the fields are
    what the server reads, not a stable API.
    """

    kind: str
    status: int = 200
    text: str | None = None
    delay: float = 0.0
    headers: tuple[tuple[str, str], ...] = ()
    body: Any = None
    fraction: float = 0.5
    key: str = "json"
    extra: Mapping[str, Any] = field(default_factory=dict)

    # ---- reply content --------------------------------------------------------------------------
    @classmethod
    def invalid_json(cls, text: str = '{"answer": "unterminated') -> Fault:
        """Content that is not JSON at all (a cut object by default)."""
        return cls("invalid_json", text=text)

    @classmethod
    def schema_violation(cls) -> Fault:
        """Valid JSON that breaks the sent schema: a required field missing or a field of the wrong type."""
        return cls("schema_violation")

    @classmethod
    def content(
        cls,
        text: str,
        *,
        logprobs: Mapping[str, float] | None = None,
        alternatives: Mapping[str, Mapping[str, float]] | None = None,
    ) -> Fault:
        """Exactly this content string, finish_reason "stop".

        `logprobs`: JSONPath ("$.items[0].name") -> the log probability every token of that value gets
        when the request asks for logprobs (the other tokens keep their made-up figures). The content must
        then be compact JSON as `json.dumps(value, separators=(",", ":"), ensure_ascii=False)` writes it,
        and every path must name a value in it. `alternatives`: JSONPath -> {token: logprob}, the
        `top_logprobs` alternatives of that value's first token (after the sampled one, up to the
        request's top_logprobs), replacing the made-up ones.
        """
        if not logprobs and not alternatives:
            return cls("content", text=text)
        from extract.testing._tokens import value_ranges

        ranges = value_ranges(text)
        unknown = sorted((set(logprobs or {}) | set(alternatives or {})) - set(ranges))
        if unknown:
            raise ConfigurationError(f"no value at {unknown} in the content; paths there: {sorted(ranges)}")
        extra = {
            "logprobs": dict(logprobs or {}),
            "alternatives": {k: dict(v) for k, v in (alternatives or {}).items()},
        }
        return cls("content", text=text, extra=extra)

    @classmethod
    def truncated(cls, fraction: float = 0.5) -> Fault:
        """The normal reply cut to `fraction` of its length, finish_reason "length"."""
        if not 0.0 <= fraction < 1.0:
            raise ConfigurationError(f"fraction must be in [0, 1), got {fraction!r}")
        return cls("truncated", fraction=fraction)

    @classmethod
    def schema_echo(cls) -> Fault:
        """The schema itself as the content, as some models do in json_object mode."""
        return cls("schema_echo")

    @classmethod
    def wrapped(cls, key: str = "json") -> Fault:
        """The normal reply wrapped in an object: {key: value}."""
        return cls("wrapped", key=key)

    @classmethod
    def fenced(cls) -> Fault:
        """The normal reply inside a ```json fenced block with a line of prose before it."""
        return cls("fenced")

    @classmethod
    def empty(cls) -> Fault:
        """Empty content, finish_reason "stop"."""
        return cls("empty")

    @classmethod
    def refusal(cls, text: str = _REFUSAL) -> Fault:
        """A plain-text refusal instead of JSON."""
        return cls("refusal", text=text)

    # ---- whole-answer faults ------------------------------------------------------------------------
    @classmethod
    def server_error(cls, status: int = 500, message: str | None = None) -> Fault:
        """A 5xx in the provider's envelope shape."""
        if not 500 <= status <= 599:
            raise ConfigurationError(f"server_error needs a 5xx status, got {status}")
        return cls("status", status=status, text=message or _SERVER_MESSAGES.get(status, "Server error."))

    @classmethod
    def rate_limited(
        cls,
        *,
        retry_after: float | None = None,
        retry_after_ms: float | None = None,
        reset_requests: float | None = None,
        reset_tokens: float | None = None,
        code: str = "request_quota_exceeded",
    ) -> Fault:
        """A 429 carrying exactly the headers asked for (none by default).

        `code` picks the body variant: "request_quota_exceeded", "token_quota_exceeded" or "queue_exceeded".
        """
        headers: list[tuple[str, str]] = []
        if retry_after is not None:
            headers.append(("retry-after", _number(retry_after)))
        if retry_after_ms is not None:
            headers.append(("retry-after-ms", _number(retry_after_ms)))
        if reset_requests is not None:
            headers.append(("x-ratelimit-reset-requests-day", _number(reset_requests)))
        if reset_tokens is not None:
            headers.append(("x-ratelimit-reset-tokens-minute", _number(reset_tokens)))
        return cls("rate_limited", status=429, headers=tuple(headers), text=code)

    @classmethod
    def queue_exceeded(cls, *, retry_after: float | None = None) -> Fault:
        """The provider's capacity refusal: 429, code queue_exceeded, param queue ("high traffic")."""
        return cls.rate_limited(retry_after=retry_after, code="queue_exceeded")

    @classmethod
    def timeout(cls) -> Fault:
        """408 Request Timeout (a retryable client error)."""
        return cls("status", status=408, text="Request timed out.")

    @classmethod
    def unauthorized(cls) -> Fault:
        """401 as if the key were wrong, whatever key was sent."""
        return cls("status", status=401, text="Wrong API Key")

    @classmethod
    def http_error(cls, status: int, body: Any = None, headers: Mapping[str, str] | None = None) -> Fault:
        """Any status with an explicit JSON body (default: the provider's shape for that status)."""
        return cls("status", status=status, body=body, headers=tuple((headers or {}).items()))

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait `seconds` (without blocking the server), then answer normally."""
        if seconds < 0:
            raise ConfigurationError(f"seconds must be >= 0, got {seconds!r}")
        return cls("slow", delay=seconds)

    @classmethod
    def drop(cls) -> Fault:
        """Read the request, then close the connection without answering."""
        return cls("drop")

    @classmethod
    def stream_drop(cls, after: int = 2) -> Fault:
        """A streamed reply whose connection drops after `after` events (a server failing mid-stream);
        an unstreamed request gets its answer whole."""
        if after < 0:
            raise ConfigurationError(f"after must be >= 0, got {after!r}")
        return cls("stream_drop", extra={"after": after})

    # ---- names ----------------------------------------------------------------------------------------
    @classmethod
    def named(cls, name: str) -> Fault:
        """The fault called `name` with default arguments (see FAULT_NAMES)."""
        factory = _BY_NAME.get(name)
        if factory is None:
            raise ConfigurationError(f"unknown fault {name!r}; use one of: {', '.join(sorted(_BY_NAME))}")
        return factory()

    @property
    def changes_content(self) -> bool:
        return self.kind in CONTENT_KINDS


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


_BY_NAME: dict[str, Callable[[], Fault]] = {
    "invalid_json": Fault.invalid_json,
    "schema_violation": Fault.schema_violation,
    "truncated": Fault.truncated,
    "schema_echo": Fault.schema_echo,
    "wrapped": Fault.wrapped,
    "fenced": Fault.fenced,
    "empty": Fault.empty,
    "refusal": Fault.refusal,
    "server_error": Fault.server_error,
    "bad_gateway": lambda: Fault.server_error(502),
    "unavailable": lambda: Fault.server_error(503),
    "rate_limited": Fault.rate_limited,
    "queue_exceeded": Fault.queue_exceeded,
    "timeout": Fault.timeout,
    "unauthorized": Fault.unauthorized,
    "slow": lambda: Fault.slow(1.0),
    "drop": Fault.drop,
    "stream_drop": Fault.stream_drop,
}
FAULT_NAMES: tuple[str, ...] = tuple(sorted(_BY_NAME))
