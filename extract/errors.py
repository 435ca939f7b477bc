"""One exception tree for the whole library.

Every error a caller can see derives from :class:`ExtractError`, so ``except extract.ExtractError`` is
enough to catch anything we raise on purpose. Messages say what went wrong and what to do about it, and
never contain an API key: an :class:`APIError` given ``secrets=`` redacts them from its message and from
every attribute it carries (code, param, body and headers included, nested values too), at construction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "APIConnectionError",
    "APIError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ContextLengthError",
    "ExtractError",
    "ExtractionFailed",
    "InputError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "SchemaError",
    "ServerError",
    "UngroundedRequired",
    "UnknownOptionError",
    "UnreadableResponseError",
    "Unrepresentable",
    "ValidationFailed",
    "Violation",
    "error_fields",
    "redact",
]


class ExtractError(Exception):
    """Base of every error raised by `extract`."""


class ConfigurationError(ExtractError):
    """The library was set up in a way that cannot work (no key and no local model, bad option)."""


class InputError(ExtractError):
    """A document or an input file cannot be used as given (no text, a duplicate id, a bad line or column);
    the message names the document, file or line and what to fix."""


class SchemaError(ExtractError):
    """The schema is malformed or unusable: not a schema, a dangling `$ref`, an unreadable file.

    `path` is a JSON-pointer-like location inside the schema (``#/properties/items``), or ``""`` for the root.
    """

    def __init__(self, message: str, path: str = "") -> None:
        self.path = path
        super().__init__(f"{message} (at {path or '#'})")


class Unrepresentable(ExtractError, ValueError):
    """`CompiledSchema.encode` was given a value the wire schema cannot carry exactly (data deeper than an
    unrolled recursion, extra keys on a closed object, a value that would decode to another branch)."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One reason a value does not satisfy the user's schema.

    `path` is a JSONPath-style location in the value (``$.items[0].price``).
    """

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


class ValidationFailed(ExtractError):
    """A value (usually a model reply) does not satisfy the user's schema.

    The message lists each violation with its path; it is short enough to send back to a model as a
    correction.
    """

    def __init__(self, violations: Sequence[Violation], *, max_listed: int = 20) -> None:
        self.violations: tuple[Violation, ...] = tuple(violations)
        shown = [f"- {v}" for v in self.violations[:max_listed]]
        more = len(self.violations) - max_listed
        if more > 0:
            shown.append(f"- ... and {more} more")
        super().__init__("the value does not match the schema:\n" + "\n".join(shown))


class APIError(ExtractError):
    """The server (or the way to it) failed a request.

    Carries what the server said: HTTP `status_code` (None when no response arrived), the provider's
    error `code`, `type` and `param`, its `server_message`, the raw `body` and the response `headers`.
    Every secret in `secrets` is removed from all of them (and from the message) before they are stored,
    so no attribute, str(), repr() or log line of the error can hold a key the server echoed.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        type: str | None = None,
        param: str | None = None,
        server_message: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        secrets: Sequence[str | None] = (),
    ) -> None:
        hidden = tuple(secrets)
        self.status_code = status_code
        self.code: str | None = _scrub(code, hidden)
        self.type: str | None = _scrub(type, hidden)
        self.param: str | None = _scrub(param, hidden)
        self.server_message: str | None = _scrub(server_message, hidden)
        self.body: Any = _scrub(body, hidden)
        self.headers: dict[str, str] | None = _scrub(dict(headers), hidden) if headers is not None else None
        super().__init__(_scrub(message, hidden))


class APIConnectionError(APIError):
    """The server could not be reached, or dropped the connection."""


class APITimeoutError(APIConnectionError):
    """The server did not answer within the timeout."""


class BadRequestError(APIError):
    """400 or 422: the server refused the request itself; sending it again will not help."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong or revoked."""


class PermissionDeniedError(APIError):
    """403: the key is valid but may not use this model or feature."""


class NotFoundError(APIError):
    """404: wrong base URL, or a model name the server does not know."""


class RateLimitError(APIError):
    """429 after every transport retry: the provider's request or token budget is exhausted."""


class ServerError(APIError):
    """5xx after every transport retry."""


class UnreadableResponseError(ServerError):
    """A success status whose body is not a JSON object (HTML from a proxy, invalid UTF-8, plain text):
    a server fault, retried like a 5xx and never re-asked of the model."""


class ResponseTooLargeError(APIError):
    """The response body is larger than the transport's `max_response_bytes`; it was refused (or cut off
    while streaming) so memory stays bounded. Not retried: the same request would get the same body."""


class ExtractionFailed(ExtractError):
    """Every attempt ended in a reply that could not be parsed or validated.

    `attempts` holds each attempt (mode, raw reply, errors, usage); `usage` is the sum over them.
    """

    def __init__(self, message: str, *, attempts: Sequence[Any] = (), usage: Any = None) -> None:
        self.attempts: tuple[Any, ...] = tuple(attempts)
        self.usage = usage
        super().__init__(message)


class UngroundedRequired(ExtractionFailed):
    """`require_grounding=True`: after every attempt, a required, non-nullable value still does not appear
    in the text, so no valid value can leave it out. `paths` names those values; `partial` is the Result of
    the best grounded reply with every ungrounded value removed (its `value` is that JSON, unvalidated: the
    required fields named are missing; `dropped` maps each removed path to the value the model gave), so
    the grounded fields are not lost."""

    def __init__(self, message: str, *, partial: Any, paths: Sequence[str]) -> None:
        self.partial = partial
        self.paths: tuple[str, ...] = tuple(paths)
        super().__init__(message, attempts=partial.attempts, usage=partial.usage)


def _scrub(value: Any, secrets: tuple[str | None, ...]) -> Any:
    """`value` with every secret redacted, however deeply it sits in dicts, lists and tuples."""
    if not secrets or value is None:
        return value
    if isinstance(value, str):
        return redact(value, *secrets)
    if isinstance(value, bytes):
        for secret in secrets:
            if secret and len(secret) >= 4:
                value = value.replace(secret.encode("utf-8", "replace"), b"***")
        return value
    if isinstance(value, Mapping):
        return {_scrub(k, secrets): _scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_scrub(v, secrets) for v in value)
    return value


def redact(text: str, *secrets: str | None) -> str:
    """Remove every secret (API keys) from `text` before it reaches a message, log or repr."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class UnknownOptionError(ConfigurationError, TypeError):
    """A keyword argument the call does not take (a typo, or a provider field: pass those in
    `extra_body={...}`). `option` is the name given, `suggestion` the closest valid one (or None)."""

    def __init__(self, message: str, *, option: str, suggestion: str | None) -> None:
        self.option = option
        self.suggestion = suggestion
        super().__init__(message)


class ContextLengthError(BadRequestError):
    """The request does not fit the model's context window. `limit` and `length` (tokens) are what the
    server said, None when it did not say; shorten or split the text, or lower max_completion_tokens."""

    def __init__(self, message: str, *, limit: int | None, length: int | None, **fields: Any) -> None:
        self.limit = limit
        self.length = length
        super().__init__(message, **fields)


def error_fields(data: object) -> dict[str, str | None]:
    """message/type/param/code from any of the error shapes seen: flat (Cerebras 4xx), enveloped
    (`{"error": {...}}`, Cerebras 5xx and OpenAI), a bare string error, or FastAPI's `detail`."""
    if not isinstance(data, dict):
        return {}
    inner = data.get("error")
    if isinstance(inner, dict):
        data = inner
    elif isinstance(inner, str) and "message" not in data:
        data = {"message": inner}
    elif "detail" in data and "message" not in data:
        data = {"message": str(data["detail"])}
    out: dict[str, str | None] = {}
    for key in ("message", "type", "param", "code"):
        value = data.get(key)
        out[key] = str(value) if value not in (None, "") else None
    return out
