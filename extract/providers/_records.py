"""The record types: what one provider is and what each of its models can do, as immutable data.

Provider line-ups change every few months; adding a model is adding a row, not a branch. Lookups match
the model name with shell-style patterns, most specific row first, so an unknown model still gets its
provider's defaults, and a wrong guess costs one demotion (the engine falls back when a server refuses
a mode), never a crash.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from extract.providers._signatures import (
    ContextOverflow,
    ErrorSignature,
    error_fields,
    parse_context_overflow,
)
from extract.schema._profiles import Profile

__all__ = ["MODES", "ModelRow", "Provider"]

# Output modes, strongest guarantee first.
#   json_schema         response_format json_schema, strict: constrained decoding to the wire schema
#   json_object_schema  response_format {"type": "json_object", "schema": S} (llama.cpp enforces S with a grammar)
#   json_object         response_format json_object, the schema in the prompt
#   prompt              no response_format, the schema in the prompt, lenient parsing
MODES: Final = ("json_schema", "json_object_schema", "json_object", "prompt")


@dataclass(frozen=True, slots=True)
class ModelRow:
    """What the engine may ask of the models whose names match `pattern` (fnmatch, case-sensitive).

    `max_output_tokens` bounds how far a truncated reply's completion budget is doubled; `reasoning` says
    the model spends completion tokens thinking before it answers (so a tight budget ends in
    finish_reason "length"), with `reasoning_efforts` the values its `reasoning_effort` field takes;
    `max_tokens_field` is the request field that budget goes in (llama-cpp-python's server only reads
    `max_tokens`); `retry_timeouts` is False where a timeout is the computation itself (the embedded
    model), not a network fault. The wire capabilities (`request_fields`, `encodings`, `logprobs`,
    `predicted_outputs`, `prompt_cache_key`, `service_tiers`, `streaming`) say what a request may carry;
    nothing is sent that the row does not allow. For the optional features (`reasoning_efforts`,
    `reasoning_formats`, `logprobs`, `predicted_outputs`, `prompt_cache_key`, `service_tiers`) None means
    "not known": what the caller asks for explicitly passes within the documented values, nothing is
    added on the caller's behalf (the row satisfies `extract._engine.features.SupportsFeatures`).
    `reasoning_effort` is the effort sent when the caller names none.
    """

    pattern: str
    modes: tuple[str, ...]
    context_window: int | None = None
    max_output_tokens: int = 16384
    reasoning: bool = False
    reasoning_efforts: tuple[str, ...] | None = ()
    reasoning_formats: tuple[str, ...] | None = ()
    reasoning_effort: str | None = None  # sent when the caller names no effort (chosen by measurement)
    max_tokens_field: str = "max_completion_tokens"
    retry_timeouts: bool = True
    request_fields: frozenset[str] = frozenset()
    encodings: frozenset[str] = frozenset()  # request body encodings beyond plain JSON: "gzip", "msgpack"
    streaming: bool = True
    # the modes a streamed request may use (None: every mode, when `streaming`); a mode not listed is sent
    # unstreamed and its value yielded once (Cerebras: json_object cannot be combined with stream: true)
    stream_modes: tuple[str, ...] | None = None
    logprobs: bool | None = False
    # the server sends logprobs only when `top_logprobs` is also set (llama-cpp-python's server reads
    # `logprobs` as a switch and `top_logprobs` as the count, None meaning no logprobs at all)
    logprobs_need_top: bool = False
    predicted_outputs: bool | None = False
    prompt_cache_key: bool | None = False
    service_tiers: tuple[str, ...] | None = ()

    def streams(self, mode: str) -> bool:
        """Whether a request in `mode` may be streamed for this model."""
        return self.streaming and (self.stream_modes is None or mode in self.stream_modes)

    def accepts(self, field: str) -> bool:
        """Whether a request for this model may carry `field` (an empty set means: not known, allow)."""
        return not self.request_fields or field in self.request_fields


_BRACKETS = re.compile(r"\[[^\]]*\]")


def _specificity(pattern: str) -> tuple[int, int]:
    """More literal characters first (`gpt-oss-120b` > `gpt-5*` > `o[0-9]*` > `*`), then fewer wildcards."""
    literal = _BRACKETS.sub("", pattern)
    wildcards = literal.count("*") + literal.count("?") + pattern.count("[")
    return (len(literal) - literal.count("*") - literal.count("?"), -wildcards)


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider as data: where it lives, whose key it takes, its schema profile, models and errors.

    Key policy: the key in `key_env` is only ever sent to a URL whose host ends in one of
    `host_suffixes`, to `default_base_url`, or to the URL in `base_url_env` (see `owns_url`).
    `embedded` providers answer in-process (no URL, no key). `mode_refusals` are the error responses
    that refuse an output mode (demote, do not fail); `context_overflows` those that say the request is
    longer than the model's context.
    """

    name: str
    profile: Profile
    rows: tuple[ModelRow, ...]
    host_suffixes: tuple[str, ...] = ()
    default_base_url: str | None = None
    default_model: str | None = None
    key_env: str | None = None
    base_url_env: str | None = None
    embedded: bool = False
    mode_refusals: tuple[ErrorSignature, ...] = ()
    context_overflows: tuple[ErrorSignature, ...] = ()

    def __post_init__(self) -> None:
        # most specific pattern first, so `row` takes the first match
        ordered = tuple(sorted(self.rows, key=lambda r: _specificity(r.pattern), reverse=True))
        object.__setattr__(self, "rows", ordered)

    def row(self, model: str) -> ModelRow:
        """The most specific row matching `model`; every record ends with a catch-all `*` row."""
        for row in self.rows:
            if fnmatch.fnmatchcase(model, row.pattern):
                return row
        return self.rows[-1]

    def owns_host(self, base_url: str) -> bool:
        """Whether `base_url`'s host is one of this provider's (exact suffix match on a dot boundary)."""
        host = (urlsplit(base_url).hostname or "").lower()
        return any(host == s or host.endswith("." + s) for s in self.host_suffixes)

    def owns_url(self, base_url: str, environ: Mapping[str, str]) -> bool:
        """Whether this provider's key may go to `base_url`: its hosts, its default URL or its env URL."""
        wanted = base_url.rstrip("/")
        urls = [self.default_base_url, environ.get(self.base_url_env) if self.base_url_env else None]
        return self.owns_host(base_url) or any(u and u.rstrip("/") == wanted for u in urls)

    def refuses_mode(self, status_code: int, data: object, raw: bytes) -> bool:
        """Whether an error response refuses the output mode itself (so demoting, not failing, is right)."""
        if not self.mode_refusals:
            return False
        fields = error_fields(data)
        return any(s.matches(status_code, fields, raw) for s in self.mode_refusals)

    def context_overflow(self, status_code: int, data: object, raw: bytes) -> ContextOverflow | None:
        """The parsed limit and length when an error response says the request exceeds the context."""
        fields = error_fields(data)
        if not any(s.matches(status_code, fields, raw) for s in self.context_overflows):
            return None
        message = fields.get("message") or raw[:2000].decode("utf-8", "replace")
        return parse_context_overflow(message)
