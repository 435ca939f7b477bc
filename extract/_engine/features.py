"""The provider's optional request features as pure functions: what to add to a request body (reasoning
effort and format, prompt cache key, predicted outputs, service tier, logprobs) and what to read back
from a reply (reasoning text, token logprobs of chat and text completions, time_info, usage details), plus two predicates (a refusal
for queue or capacity is transient; a message layout keeps the constant part a cacheable prefix).

`feature_params` applies them all to one call's request fields, the engine's single entry point.

No I/O. Each builder takes the few capabilities it needs (`FeatureSupport`, or any object with the same
attributes, such as a provider record's model row) and returns a fragment to merge into the body, so the
engine's wiring is a dict update. A capability of None means "not known": what the caller asks for
explicitly is passed through within the documented values, and nothing is added on the caller's behalf.
Readers never trust a type: a missing or odd field reads as absent, never as an exception.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import orjson

from extract.errors import ConfigurationError

__all__ = [
    "CACHE_KEY_MAX_CHARS",
    "FEATURE_PARAMS",
    "PREDICTION_MAX_BYTES",
    "QUEUE_THRESHOLD_HEADER",
    "QUEUE_THRESHOLD_RANGE_MS",
    "REASONING_EFFORTS",
    "REASONING_FORMATS",
    "SERVICE_TIERS",
    "FeatureError",
    "FeatureSupport",
    "PrefixReport",
    "SupportsFeatures",
    "TokenLogprob",
    "UsageDetails",
    "add_time_info",
    "cache_prefix_report",
    "feature_params",
    "is_capacity_refusal",
    "logprob_fields",
    "prediction_fields",
    "prompt_cache_fields",
    "prompt_cache_key",
    "read_completion_logprobs",
    "read_logprobs",
    "read_reasoning",
    "read_reasoning_logprobs",
    "read_service_tier_used",
    "read_time_info",
    "read_usage_details",
    "reasoning_fields",
    "reasoning_reserve",
    "service_fields",
]

# The documented values (the provider's chat-completions reference and seed pages).
REASONING_EFFORTS: Final = ("none", "low", "medium", "high")
REASONING_FORMATS: Final = ("parsed", "text_parsed", "raw", "hidden", "none")
SERVICE_TIERS: Final = ("auto", "default", "flex", "priority")
QUEUE_THRESHOLD_HEADER: Final = "queue_threshold"
QUEUE_THRESHOLD_RANGE_MS: Final = (50, 20000)
_QUEUE_TIERS: Final = frozenset({"flex", "auto"})  # the threshold only applies to these tiers
CACHE_KEY_MAX_CHARS: Final = 1024
MAX_TOP_LOGPROBS: Final = 20
# "raw" puts the reasoning inside the content, which a JSON response_format cannot hold.
_RAW_FORMAT: Final = "raw"
TIME_FIELDS: Final = ("queue_time", "prompt_time", "completion_time", "total_time")
# A re-ask's prediction is the whole previous reply, so it is only sent while that stays small: a large
# prediction costs more rejected tokens than the accepted ones save.
PREDICTION_MAX_BYTES: Final = 16 * 1024
# Reasoning tokens the limiter reserves per effort when the caller sets no completion budget (a guess on
# the high side of what the provider's reasoning models spend; the response's usage corrects it).
_REASONING_RESERVE: Final = {"none": 0, "minimal": 256, "low": 512, "medium": 2048, "high": 8192}
_DEFAULT_EFFORT: Final = "medium"  # what the provider's reasoning models use when no effort is sent
# The request fields `feature_params` checks against the model's row.
FEATURE_PARAMS: Final = frozenset(
    {
        "reasoning_effort",
        "reasoning_format",
        "logprobs",
        "top_logprobs",
        "service_tier",
        "prompt_cache_key",
        "prediction",
    }
)


class FeatureError(ConfigurationError):
    """A request feature was asked for with a value this provider or model does not take; the message
    names the values it does take."""


class SupportsFeatures(Protocol):
    """What the feature builders read from a model's capabilities (a provider record's row fits)."""

    @property
    def reasoning_efforts(self) -> tuple[str, ...] | None: ...

    @property
    def reasoning_formats(self) -> tuple[str, ...] | None: ...

    @property
    def prompt_cache_key(self) -> bool | None: ...

    @property
    def predicted_outputs(self) -> bool | None: ...

    @property
    def logprobs(self) -> bool | None: ...

    @property
    def logprobs_need_top(self) -> bool: ...

    @property
    def service_tiers(self) -> tuple[str, ...] | None: ...


@dataclass(frozen=True, slots=True)
class FeatureSupport:
    """One model's optional features. None: not known (explicit requests pass, nothing is added);
    () / False: not accepted (explicit requests are refused with a FeatureError)."""

    reasoning_efforts: tuple[str, ...] | None = None
    reasoning_formats: tuple[str, ...] | None = None
    prompt_cache_key: bool | None = None
    predicted_outputs: bool | None = None
    logprobs: bool | None = None
    service_tiers: tuple[str, ...] | None = None
    logprobs_need_top: bool = False


def _choice(what: str, value: str, allowed: tuple[str, ...] | None, documented: tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise FeatureError(f"{what} must be a string such as {documented[1]!r}, not {type(value).__name__}")
    options = documented if allowed is None else allowed
    if value in options:
        return value
    if not options:
        raise FeatureError(f"this model takes no {what}; leave it unset or pick a model that has it")
    raise FeatureError(f"{what}={value!r} is not accepted by this model; use one of {', '.join(options)}")


# ------------------------------------------------------------------------------------------- builders


def reasoning_fields(
    caps: SupportsFeatures,
    effort: str | None = None,
    reasoning_format: str | None = None,
    *,
    json_reply: bool = True,
) -> dict[str, str]:
    """`reasoning_effort` and `reasoning_format` for the body, checked against the model's row.

    `json_reply` is True when the request asks for JSON (every mode but prompt): the "raw" format puts
    the reasoning inside the content, where it would break the JSON, so it is refused there.
    """
    out: dict[str, str] = {}
    if effort is not None:
        out["reasoning_effort"] = _choice(
            "reasoning_effort", effort, caps.reasoning_efforts, REASONING_EFFORTS
        )
    if reasoning_format is not None:
        fmt = _choice("reasoning_format", reasoning_format, caps.reasoning_formats, REASONING_FORMATS)
        if fmt == _RAW_FORMAT and json_reply:
            raise FeatureError(
                "reasoning_format='raw' mixes the reasoning into the JSON reply; use 'parsed' or 'hidden'"
            )
        out["reasoning_format"] = fmt
    return out


def prompt_cache_key(schema: Mapping[str, Any], instructions: str | None = None) -> str:
    """A stable key per (schema, instructions): the same on every machine and run (key order does not
    matter), different when either changes, well under the provider's 1024 characters."""
    canonical = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    digest = hashlib.sha256(canonical)
    digest.update(b"\x00")
    digest.update((instructions or "").strip().encode("utf-8", "surrogatepass"))
    return "extract-" + digest.hexdigest()[:32]


def prompt_cache_fields(
    caps: SupportsFeatures,
    schema: Mapping[str, Any],
    instructions: str | None = None,
    *,
    key: str | None = None,
) -> dict[str, str]:
    """`prompt_cache_key` where the row says it is accepted (never on a guess: an account without it
    enabled may refuse the field). `key` overrides the derived one and is checked for length."""
    if key is not None and caps.prompt_cache_key is False:
        raise FeatureError("this model takes no prompt_cache_key; leave it unset or pick another model")
    if caps.prompt_cache_key is not True and key is None:
        return {}
    if key is not None:
        if not isinstance(key, str) or not key or len(key) > CACHE_KEY_MAX_CHARS:
            raise FeatureError(
                f"prompt_cache_key must be a non-empty string of at most {CACHE_KEY_MAX_CHARS} characters"
            )
        return {"prompt_cache_key": key}
    return {"prompt_cache_key": prompt_cache_key(schema, instructions)}


def prediction_fields(
    caps: SupportsFeatures, last_reply: str | None, *, max_bytes: int = PREDICTION_MAX_BYTES
) -> dict[str, dict[str, str]]:
    """On a re-ask, the previous reply as a predicted output (the corrected answer is mostly the same
    text), where the row allows predictions; nothing for an empty reply or one over `max_bytes`."""
    if caps.predicted_outputs is not True or not isinstance(last_reply, str) or not last_reply.strip():
        return {}
    if len(last_reply) > max_bytes or len(last_reply.encode("utf-8", "surrogatepass")) > max_bytes:
        return {}
    return {"prediction": {"type": "content", "content": last_reply}}


def reasoning_reserve(reasoning: bool, effort: str | None) -> int:
    """Completion tokens to reserve for a reasoning model's thinking when no budget bounds it."""
    if not reasoning:
        return 0
    return _REASONING_RESERVE.get(effort or _DEFAULT_EFFORT, _REASONING_RESERVE[_DEFAULT_EFFORT])


def feature_params(
    caps: SupportsFeatures,
    params: Mapping[str, Any],
    schema: Mapping[str, Any],
    instructions: str | None = None,
    *,
    default_effort: str | None = None,
) -> dict[str, Any]:
    """The caller's request fields with every optional feature checked against the model's row (a
    FeatureError before anything is sent), plus what the row adds itself: the default reasoning effort
    (unless the caller passed `reasoning_effort=None`) and a prompt_cache_key per (schema, instructions).
    """
    out = {k: v for k, v in params.items() if k not in FEATURE_PARAMS}
    effort = params.get("reasoning_effort", default_effort)
    out.update(reasoning_fields(caps, effort, params.get("reasoning_format")))
    out.update(logprob_fields(caps, params.get("logprobs"), params.get("top_logprobs")))
    out.update(service_fields(caps, params.get("service_tier"))[0])
    out.update(prompt_cache_fields(caps, schema, instructions, key=params.get("prompt_cache_key")))
    prediction = params.get("prediction")
    if prediction is not None:
        if caps.predicted_outputs is False:
            raise FeatureError("this model takes no prediction; leave it unset or pick another model")
        out["prediction"] = prediction
    return out


def service_fields(
    caps: SupportsFeatures, tier: str | None = None, queue_threshold_ms: int | None = None
) -> tuple[dict[str, str], dict[str, str]]:
    """(body fragment, headers) for `service_tier` and the queue-threshold header.

    The threshold only applies to the flex and auto tiers (the provider rejects a request early when its
    rolling queue time exceeds it), so asking for it on another tier is refused rather than ignored.
    """
    body: dict[str, str] = {}
    headers: dict[str, str] = {}
    if tier is not None:
        body["service_tier"] = _choice("service_tier", tier, caps.service_tiers, SERVICE_TIERS)
    if queue_threshold_ms is not None:
        low, high = QUEUE_THRESHOLD_RANGE_MS
        if isinstance(queue_threshold_ms, bool) or not isinstance(queue_threshold_ms, int):
            raise FeatureError(f"queue_threshold must be whole milliseconds between {low} and {high}")
        if not low <= queue_threshold_ms <= high:
            raise FeatureError(
                f"queue_threshold={queue_threshold_ms} ms is out of range; use {low} to {high} milliseconds"
            )
        if tier not in _QUEUE_TIERS:
            raise FeatureError(
                "queue_threshold applies only to service_tier 'flex' or 'auto'; set one of them"
            )
        headers[QUEUE_THRESHOLD_HEADER] = str(queue_threshold_ms)
    return body, headers


def logprob_fields(
    caps: SupportsFeatures, logprobs: bool | None = None, top_logprobs: int | None = None
) -> dict[str, bool | int]:
    """`logprobs` / `top_logprobs` for the body. `top_logprobs` needs `logprobs: true`, so it turns it on;
    a server that sends logprobs only with `top_logprobs` (`logprobs_need_top`) gets `top_logprobs: 1`."""
    if top_logprobs is not None:
        if isinstance(top_logprobs, bool) or not isinstance(top_logprobs, int):
            raise FeatureError(f"top_logprobs must be a whole number from 0 to {MAX_TOP_LOGPROBS}")
        if not 0 <= top_logprobs <= MAX_TOP_LOGPROBS:
            raise FeatureError(f"top_logprobs={top_logprobs} is out of range; use 0 to {MAX_TOP_LOGPROBS}")
        if logprobs is False:
            raise FeatureError("top_logprobs needs logprobs=True; drop top_logprobs or set logprobs=True")
        logprobs = True
    if not logprobs:
        return {}
    if caps.logprobs is False:
        raise FeatureError("this model does not return logprobs; leave logprobs unset or pick another model")
    out: dict[str, bool | int] = {"logprobs": True}
    if top_logprobs is not None:
        out["top_logprobs"] = top_logprobs
    elif caps.logprobs_need_top:
        out["top_logprobs"] = 1
    return out


# ------------------------------------------------------------------------------------------- readers


def _first_choice(data: object) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        return {}
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
        return choices[0]
    return {}


def _message(data: object) -> Mapping[str, Any]:
    message = _first_choice(data).get("message")
    return message if isinstance(message, Mapping) else {}


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def read_reasoning(data: object) -> str | None:
    """The reasoning text of choices[0] (`reasoning`, or `reasoning_content` on some servers); None when
    absent or empty. Content parts ([{"type": "text", "text": ...}]) are joined."""
    message = _message(data)
    for name in ("reasoning", "reasoning_content"):
        value = message.get(name)
        if isinstance(value, list):
            value = "".join(
                p["text"] for p in value if isinstance(p, Mapping) and isinstance(p.get("text"), str)
            )
        if isinstance(value, str) and value:
            return value
    return None


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token: its text, log probability (None when the server sent none), UTF-8 bytes
    when given, the most likely alternatives at that position as (token, logprob) pairs, and (for text
    completions) where it starts in the text."""

    token: str
    logprob: float | None
    bytes: tuple[int, ...] | None
    top: tuple[tuple[str, float], ...]
    offset: int | None = None  # character offset in the generated text (text completions' text_offset)


def _token(item: object) -> TokenLogprob | None:
    if not isinstance(item, Mapping) or not isinstance(item.get("token"), str):
        return None
    raw_bytes = item.get("bytes")
    byte_values: tuple[int, ...] | None = None
    if isinstance(raw_bytes, list) and all(
        isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in raw_bytes
    ):
        byte_values = tuple(raw_bytes)
    top: list[tuple[str, float]] = []
    alternatives = item.get("top_logprobs")
    if isinstance(alternatives, list):
        for alt in alternatives:
            if isinstance(alt, Mapping) and isinstance(alt.get("token"), str):
                value = _number(alt.get("logprob"))
                if value is not None:
                    top.append((alt["token"], value))
    return TokenLogprob(item["token"], _number(item.get("logprob")), byte_values, tuple(top))


def _tokens(container: object) -> list[TokenLogprob] | None:
    items = container.get("content") if isinstance(container, Mapping) else container
    if not isinstance(items, list):
        return None
    tokens = [t for t in map(_token, items) if t is not None]
    return tokens


def read_logprobs(data: object) -> list[TokenLogprob] | None:
    """Per-token logprobs of choices[0]'s content (`choices[0].logprobs.content`); None when the reply
    carries none. Items without a token string are skipped."""
    return _tokens(_first_choice(data).get("logprobs"))


def read_reasoning_logprobs(data: object) -> list[TokenLogprob] | None:
    """Per-token logprobs of the reasoning, which reasoning models may return beside the content's (as
    `choices[0].reasoning_logprobs`, a list or an object with `content`)."""
    return _tokens(_first_choice(data).get("reasoning_logprobs"))


def read_completion_logprobs(data: object) -> list[TokenLogprob] | None:
    """Per-token logprobs of a text completion (`POST /v1/completions` with `logprobs: N`): the parallel
    lists `tokens`, `token_logprobs`, `top_logprobs` (one {token: logprob} dict per position) and
    `text_offset` of choices[0].logprobs, zipped; None when absent. A position whose token is not a
    string ends the list (the lists are parallel, so nothing after it can be placed)."""
    logprobs = _first_choice(data).get("logprobs")
    if not isinstance(logprobs, Mapping) or not isinstance(logprobs.get("tokens"), list):
        return None

    def column(name: str) -> list[object]:
        value = logprobs.get(name)
        return value if isinstance(value, list) else []

    values, tops, offsets = column("token_logprobs"), column("top_logprobs"), column("text_offset")
    out: list[TokenLogprob] = []
    for i, token in enumerate(logprobs["tokens"]):
        if not isinstance(token, str):
            break
        top = tops[i] if i < len(tops) else None
        pairs: list[tuple[str, float]] = []
        if isinstance(top, Mapping):
            for alt, value in top.items():
                number = _number(value)
                if isinstance(alt, str) and number is not None:
                    pairs.append((alt, number))
        offset = offsets[i] if i < len(offsets) else None
        out.append(
            TokenLogprob(
                token,
                _number(values[i]) if i < len(values) else None,
                None,
                tuple(pairs),
                offset if isinstance(offset, int) and not isinstance(offset, bool) and offset >= 0 else None,
            )
        )
    return out


def read_time_info(data: object) -> dict[str, float] | None:
    """`time_info` as seconds (queue, prompt, completion, total, and `created` as a timestamp): only the
    finite numbers are kept; None when the reply has no time_info object."""
    info = data.get("time_info") if isinstance(data, Mapping) else None
    if not isinstance(info, Mapping):
        return None
    out: dict[str, float] = {}
    for key, value in info.items():
        number = _number(value)
        if isinstance(key, str) and number is not None:
            out[key] = number
    return out


def add_time_info(
    total: Mapping[str, float] | None, more: Mapping[str, float] | None
) -> dict[str, float] | None:
    """Sum two time_info readings over the durations (queue, prompt, completion, total) for a Result of
    several attempts; `created` is not a duration and is dropped."""
    if total is None and more is None:
        return None
    out: dict[str, float] = {}
    for part in (total, more):
        for key in TIME_FIELDS:
            if part is not None and key in part:
                out[key] = out.get(key, 0.0) + part[key]
    return out


@dataclass(frozen=True, slots=True)
class UsageDetails:
    """The parts of `usage` beyond the three totals: cached prompt tokens, reasoning tokens, and the
    predicted-output tokens accepted and rejected. `+` sums them across attempts."""

    cached_tokens: int = 0
    reasoning_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0

    def __add__(self, other: UsageDetails) -> UsageDetails:
        if not isinstance(other, UsageDetails):
            return NotImplemented
        return UsageDetails(
            self.cached_tokens + other.cached_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.accepted_prediction_tokens + other.accepted_prediction_tokens,
            self.rejected_prediction_tokens + other.rejected_prediction_tokens,
        )


def read_usage_details(data: object) -> UsageDetails:
    """Usage details of a chat completion (the whole response, or its `usage` object); absent, negative
    or non-integer counts read as 0."""
    usage = data.get("usage", data) if isinstance(data, Mapping) else None
    if not isinstance(usage, Mapping):
        return UsageDetails()
    prompt = usage.get("prompt_tokens_details")
    completion = usage.get("completion_tokens_details")
    prompt = prompt if isinstance(prompt, Mapping) else {}
    completion = completion if isinstance(completion, Mapping) else {}
    return UsageDetails(
        cached_tokens=_count(prompt.get("cached_tokens")),
        reasoning_tokens=_count(completion.get("reasoning_tokens")),
        accepted_prediction_tokens=_count(completion.get("accepted_prediction_tokens")),
        rejected_prediction_tokens=_count(completion.get("rejected_prediction_tokens")),
    )


def read_service_tier_used(data: object) -> str | None:
    """The tier that served the request (`service_tier_used`, sent when the request asked for auto; else
    `service_tier`), or None."""
    if not isinstance(data, Mapping):
        return None
    for name in ("service_tier_used", "service_tier"):
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


# ------------------------------------------------------------------------------------------- refusals

_CAPACITY_CODES: Final = frozenset({"queue_exceeded", "capacity_exceeded", "server_overloaded", "overloaded"})
_CAPACITY_WORDS: Final = ("high traffic", "capacity", "overloaded", "queue", "try again soon")


def _error_fields(body: object) -> tuple[str, str, str]:
    """(code, param, message) of either error shape (flat 4xx, enveloped 5xx), lower-cased."""
    if isinstance(body, (bytes, bytearray)):
        raw = bytes(body)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return "", "", raw[:2048].decode("utf-8", "replace").lower()
    if isinstance(body, str):
        return "", "", body[:2048].lower()
    if not isinstance(body, Mapping):
        return "", "", ""
    inner = body.get("error")
    fields: Mapping[Any, Any] = inner if isinstance(inner, Mapping) else body
    message = fields.get("message")
    if not isinstance(message, str):
        message = inner if isinstance(inner, str) else ""

    def text(value: object) -> str:
        return value.lower() if isinstance(value, str) else ""

    return text(fields.get("code")), text(fields.get("param")), message[:2048].lower()


def is_capacity_refusal(status_code: int, body: object) -> bool:
    """Whether a refusal says the provider is busy (queue too long, over capacity), not that this request
    or this account is wrong: transient, to retry with backoff. Per the provider: 429 `queue_exceeded` on
    param `queue` ("We're experiencing high traffic right now!"), and the early rejection of a request
    whose tier's queue time exceeds its `queue_threshold` (status not documented, so read by its words).
    A per-minute quota 429 is a rate limit, not capacity: False here."""
    if status_code < 400:
        return False
    code, param, message = _error_fields(body)
    if "quota" in code or "limit exceeded" in message:
        return False
    if code in _CAPACITY_CODES or param == "queue":
        return True
    if status_code in (429, 503, 529):
        return any(word in message for word in _CAPACITY_WORDS)
    return "queue" in message and ("threshold" in message or "exceed" in message)


# ------------------------------------------------------------------------------------------- layout


@dataclass(frozen=True, slots=True)
class PrefixReport:
    """How two requests that differ only in their document share a prefix.

    `shared_bytes` is the length of the byte-identical start of the two serialised message lists;
    `constant_bytes` what it should be (everything before the document's text); `problems` says in
    words what breaks the layout ([] when the constant part is a shared prefix and the document last).
    """

    shared_bytes: int
    constant_bytes: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def _serialise(messages: Sequence[Mapping[str, Any]]) -> bytes:
    return orjson.dumps([dict(m) for m in messages])


def _common(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


# Two documents that share no first character, so the shared prefix stops where the document starts.
_MAX_CLOSING_CHARS: Final = 32  # a closing delimiter such as </document> may follow it
_PROBES: Final = ("Alpha: the first probe document.", "Zulu, a second and longer probe document!")


def cache_prefix_report(build: Callable[[str], Sequence[Mapping[str, Any]]]) -> PrefixReport:
    """Check a message builder for prompt caching: `build(document)` must return messages whose bytes
    before the document are identical for every document (system prompt, format notes, schema, the
    caller's instructions), with the document in the last message. The provider caches shared prefixes
    in blocks of about 128 tokens, so anything variable placed early makes every later token uncached."""
    a_messages, b_messages = build(_PROBES[0]), build(_PROBES[1])
    a, b = _serialise(a_messages), _serialise(b_messages)
    shared = _common(a, b)
    problems: list[str] = []
    if not a_messages or not b_messages:
        return PrefixReport(shared, 0, ("the builder returned no messages",))
    marker = orjson.dumps(_PROBES[0])[1:-1]  # the document as it appears inside a JSON string
    where = a.find(marker)
    if where < 0:
        problems.append("the document does not appear verbatim in the messages")
        constant = shared
    else:
        constant = where
        last = a_messages[-1].get("content")
        if not (isinstance(last, str) and _PROBES[0] in last):
            problems.append("the document is not in the last message: what follows it cannot be cached")
        else:
            after = last.split(_PROBES[0], 1)[1]
            if len(after) > _MAX_CLOSING_CHARS:
                problems.append(
                    f"{len(after)} characters follow the document in its message: put constant text before "
                    "the document, where it can be cached"
                )
        if shared < constant:
            problems.append(
                f"the messages differ at byte {shared}, before the document starts at byte {constant}: "
                "something before the document varies with it"
            )
    if len(a_messages) != len(b_messages):
        problems.append("the number of messages depends on the document")
    return PrefixReport(shared, constant, tuple(problems))
