"""The provider emulation: routes, auth, scripted and random faults, rate limits, latency, answers.

Runs on one event loop; the counters and the fault queue are shared with the thread that owns the
`TestServer`, so every touch of them holds `self.lock`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from extract.errors import ConfigurationError
from extract.testing._body import ENCODINGS, Decoded, decode_body
from extract.testing._cache import PromptCache
from extract.testing._completions import TextPlan, continuation, plan_completion, raw_token_ids
from extract.testing._content import break_value, fault_content, json_text
from extract.testing._faults import Fault
from extract.testing._generate import generate
from extract.testing._http import HttpRequest, HttpResponse
from extract.testing._latency import TokenLatency
from extract.testing._limits import Limits
from extract.testing._oracle import oracle_value
from extract.testing._requests import Plan, Rules, plan_request
from extract.testing._tokens import chat_logprobs, matched_chars, pinned_ranges, text_logprobs, value_ranges
from extract.testing._wire import (
    DEFAULT_MODELS,
    Reply,
    client_error,
    completion_body,
    estimate_tokens,
    models_body,
    server_error,
    text_completion_body,
)

__all__ = ["App", "LoggedRequest", "RecordedRequest", "ServerSettings"]

_log = logging.getLogger("extract.testing")
_FLAVORS = ("cerebras", "llamacpp")
_COMPLETION_PATHS = ("/v1/chat/completions", "/v1/completions")
_QUEUE_TIERS = ("flex", "auto")
_QUEUE_THRESHOLD_MS = (50, 20_000)
_RATE_LIMIT_MESSAGES = {
    "request_quota_exceeded": ("Requests per minute limit exceeded - too many requests sent.", "quota"),
    "token_quota_exceeded": ("Tokens per minute limit exceeded - too many tokens processed.", "quota"),
    "queue_exceeded": ("We're experiencing high traffic right now! Please try again soon.", "queue"),
}
_REASONING = "The user wants structured data. I will read the text and fill each field of the schema."


@dataclass(frozen=True)
class ServerSettings:
    """How the server behaves. Every field is also a keyword argument of `TestServer`.

    api_key: when set, requests need `Authorization: Bearer <api_key>` (401 otherwise).
    models: model names the server knows (404 for others; the "llamacpp" flavor accepts any).
    json_object_only: True, or a set of model names, that refuse json_schema with
        `json_object_only_status` (400 or 422) and code wrong_api_format.
    flavor: "cerebras", or "llamacpp" (json_schema -> HTTP 500 "Input should be 'text' or 'json_object'").
    latency: seconds every chat completion waits before answering (asyncio.sleep).
    rpm / rpd / tpm: requests per minute / per day and tokens per minute (None: unlimited); tokens are
        reserved as prompt tokens + max_completion_tokens (`default_max_completion_tokens` when absent).
    time_scale: simulated seconds per real second for the rate limits (60: a minute lasts one second).
    max_concurrency: requests answered at once before 429 queue_exceeded (None: unlimited).
    invalid_rate / seed: probability that a first-turn request (no assistant message) gets a
        schema-violating reply the first time its document is seen; decided by a hash of (seed, document).
    fault_rate / fault_kinds: probability that a request gets a transient fault, drawn from the named faults.
    reply: the content for requests with no schema (text mode, json_object without schema); default "{}"
        unless a message carries a JSON Schema, which is then answered.
    reasoning_models: models whose replies carry `message.reasoning` and reasoning tokens; they spend
        64/256/1024 reasoning tokens for reasoning_effort low/medium (the default)/high, none for "none".
    reasoning_text: the sentence the reasoning text repeats, cut to the tokens spent.
    record: keep every request body for `server.requests` (turn off for long benchmark runs).
    accept_encodings: optional request body encodings accepted, a subset of {"gzip", "msgpack"}; the others
        get 415 (None: both on the cerebras flavor, none on llamacpp).
    context_windows: {model: tokens} overriding the per-model table (prompt + max_completion_tokens above
        it is the provider's 400 context_length_exceeded).
    service_tiers: tiers accepted (the page keeps "priority" to dedicated endpoints).
    queue_ms: the simulated rolling queue time; flex/auto requests whose `queue_threshold` header is below it
        get 429 queue_exceeded, and `time_info.queue_time` reports it.
    prompt_cache / prompt_cache_blocks: bill repeated prompt prefixes as cached_tokens (128-token blocks,
        LRU of at most this many blocks).
    token_latency: time per token on top of `latency` for chat completions (uncached and cached prompt tokens,
        generated tokens, prediction tokens at a fraction of a generated one); all zero (off) by default.
    oracle / oracle_fields: answer as an oracle (see _oracle.py): the records the `oracle` regex (named
        groups) finds in the request's document fill the schema's first array, and `oracle_fields` matches
        (groups key, value) its top-level scalars; None (the default): generated values as usual.
    oracle_unavailable: a regex; every chat request whose document matches it is answered 503 (a part of a
        long document that always fails, for tests of failure isolation).
    stream_chunk_chars / stream_gap: streamed replies carry their content in pieces of this many
        characters (0: one piece), one event every `stream_gap` seconds.
    """

    api_key: str | None = field(default=None, repr=False)
    models: tuple[str, ...] = DEFAULT_MODELS
    json_object_only: bool | frozenset[str] = False
    json_object_only_status: int = 400
    flavor: str = "cerebras"
    latency: float = 0.0
    rpm: int | None = None
    rpd: int | None = None
    tpm: int | None = None
    time_scale: float = 1.0
    max_concurrency: int | None = None
    default_max_completion_tokens: int = 1024
    invalid_rate: float = 0.0
    fault_rate: float = 0.0
    fault_kinds: tuple[str, ...] = ("server_error", "unavailable", "rate_limited")
    seed: int = 0
    reply: str | None = None
    reasoning_models: frozenset[str] = frozenset({"gpt-oss-120b", "zai-glm-4.7"})
    reasoning_text: str = _REASONING
    record: bool = True
    accept_encodings: frozenset[str] | None = None
    context_windows: Mapping[str, int] = field(default_factory=dict)
    service_tiers: frozenset[str] = frozenset({"auto", "default", "flex"})
    queue_ms: float = 0.0
    prompt_cache: bool = True
    prompt_cache_blocks: int = 100_000
    token_latency: TokenLatency = field(default_factory=TokenLatency)
    oracle: str | None = None
    oracle_fields: str | None = None
    oracle_unavailable: str | None = None
    stream_chunk_chars: int = 0
    stream_gap: float = 0.0

    def __post_init__(self) -> None:
        if self.flavor not in _FLAVORS:
            raise ConfigurationError(f"flavor must be one of {_FLAVORS}, got {self.flavor!r}")
        for name in ("invalid_rate", "fault_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ConfigurationError(f"{name} must be between 0 and 1, got {rate!r}")
        if self.latency < 0:
            raise ConfigurationError(f"latency must be >= 0 seconds, got {self.latency!r}")
        if self.json_object_only_status not in (400, 422):
            raise ConfigurationError("json_object_only_status must be 400 or 422")
        for name in self.fault_kinds:
            Fault.named(name)  # raises ValueError naming the valid ones
        if not isinstance(self.json_object_only, bool):
            object.__setattr__(self, "json_object_only", frozenset(self.json_object_only))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "reasoning_models", frozenset(self.reasoning_models))
        object.__setattr__(self, "fault_kinds", tuple(self.fault_kinds))
        if self.accept_encodings is not None:
            unknown = set(self.accept_encodings) - ENCODINGS
            if unknown:
                raise ConfigurationError(
                    f"accept_encodings: unknown {sorted(unknown)}; use a subset of {sorted(ENCODINGS)}"
                )
            object.__setattr__(self, "accept_encodings", frozenset(self.accept_encodings))
        for model, window in dict(self.context_windows).items():
            if isinstance(window, bool) or not isinstance(window, int) or window < 1:
                raise ConfigurationError(
                    f"context_windows[{model!r}] must be a positive integer, got {window!r}"
                )
        object.__setattr__(self, "context_windows", dict(self.context_windows))  # a copy (picklable)
        object.__setattr__(self, "service_tiers", frozenset(self.service_tiers))
        if self.queue_ms < 0:
            raise ConfigurationError(f"queue_ms must be >= 0, got {self.queue_ms!r}")
        if self.stream_chunk_chars < 0 or not self.stream_gap >= 0:
            raise ConfigurationError(
                f"stream_chunk_chars and stream_gap must be >= 0, got {self.stream_chunk_chars!r} and "
                f"{self.stream_gap!r}"
            )
        if self.prompt_cache_blocks < 1:
            raise ConfigurationError(f"prompt_cache_blocks must be >= 1, got {self.prompt_cache_blocks!r}")
        if not self.reasoning_text:
            raise ConfigurationError("reasoning_text must not be empty")
        for name in ("oracle", "oracle_fields", "oracle_unavailable"):
            pattern = getattr(self, name)
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise ConfigurationError(f"{name} is not a valid regular expression: {exc}") from None
        if self.oracle_fields is not None and not {"key", "value"} <= set(
            re.compile(self.oracle_fields).groupindex
        ):
            raise ConfigurationError("oracle_fields needs the named groups (?P<key>...) and (?P<value>...)")

    @property
    def encodings(self) -> frozenset[str]:
        """The optional body encodings this server accepts."""
        if self.accept_encodings is not None:
            return self.accept_encodings
        return ENCODINGS if self.flavor == "cerebras" else frozenset()


class RecordedRequest(dict[str, Any]):
    """A received body (a dict), plus `.headers` (no Authorization), `.path`, `.raw` bytes and `.encoding`.

    `.raw` is the body after Content-Encoding is undone (JSON text, or msgpack bytes); `.encoding` says how it
    arrived: "json", "gzip", "msgpack" or "msgpack+gzip" (or the unsupported type/encoding named).
    """

    headers: dict[str, str]
    path: str
    raw: bytes
    encoding: str

    def __init__(
        self, body: Any, headers: dict[str, str], path: str, raw: bytes, encoding: str = "json"
    ) -> None:
        super().__init__(body if isinstance(body, dict) else {})
        self.headers = headers
        self.path = path
        self.raw = raw
        self.encoding = encoding


@dataclass(slots=True)
class LoggedRequest:
    """One completion request as it arrived on the wire, for tests of what a client sent.

    `wire_bytes` is the body size as sent, `body_bytes` after Content-Encoding is undone; `status` is the
    answer's HTTP status (None while in flight, or when the connection was dropped).
    """

    path: str
    encoding: str
    content_type: str
    content_encoding: str
    wire_bytes: int
    body_bytes: int
    headers: dict[str, str]
    status: int | None = None


class App:
    """Answers HTTP requests like the provider would, given the settings and the scripted faults."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.rules = Rules(
            models=frozenset(settings.models),
            json_object_only=settings.json_object_only
            if isinstance(settings.json_object_only, bool)
            else frozenset(settings.json_object_only),
            json_object_only_status=settings.json_object_only_status,
            flavor=settings.flavor,
            seed=settings.seed,
            reasoning_models=settings.reasoning_models,
            context_windows=tuple(settings.context_windows.items()),
            service_tiers=settings.service_tiers,
        )
        self.limits = Limits(
            rpm=settings.rpm,
            rpd=settings.rpd,
            tpm=settings.tpm,
            time_scale=settings.time_scale,
            clock=time.monotonic,
        )
        self.requests: list[RecordedRequest] = []
        self.request_log: list[LoggedRequest] = []
        self.cache = PromptCache(settings.prompt_cache_blocks)
        self.oracle_records = re.compile(settings.oracle) if settings.oracle else None
        self.oracle_fields = re.compile(settings.oracle_fields) if settings.oracle_fields else None
        self.oracle_unavailable = (
            re.compile(settings.oracle_unavailable) if settings.oracle_unavailable else None
        )
        self.request_count = 0
        self.count_429 = 0
        self.script: deque[Fault] = deque()
        self.in_flight = 0
        self.seen: set[int] = set()
        self.fault_rng = random.Random(settings.seed)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.request_log.clear()
            self.cache.clear()
            self.request_count = 0
            self.count_429 = 0
            self.script.clear()
            self.seen.clear()
            self.fault_rng = random.Random(self.settings.seed)
            self.limits.reset()

    def enqueue(self, faults: Iterable[Fault]) -> None:
        with self.lock:
            self.script.extend(faults)

    # ---- routing --------------------------------------------------------------------------------
    async def handle(self, request: HttpRequest) -> HttpResponse | None:
        """Route one request; a bug in the emulation becomes a logged 500, never a silent hang-up."""
        try:
            return await self.route(request)
        except Exception as exc:  # noqa: BLE001 - logged and answered, else the client sees a hang-up
            _log.exception("extract.testing failed on %s %s", request.method, request.path)
            return self.finish(server_error(500, f"extract.testing internal error: {exc!r}"))

    async def route(self, request: HttpRequest) -> HttpResponse | None:
        path = request.path.rstrip("/")
        if path in _COMPLETION_PATHS:
            if request.method != "POST":
                return self.finish(_method_not_allowed(request.method, path))
            entry = self.log_request(request, path)
            handler = self.chat if path == _COMPLETION_PATHS[0] else self.text
            response = await handler(request, entry)
            if entry is not None:
                with self.lock:
                    entry.status = None if response is None else response.status
            return response
        if path == "/v1/tcp_warming" and request.method == "GET":
            return self.finish(Reply(200, {}))
        if path.startswith("/v1/models") and request.method == "GET":
            return self.finish(self.auth(request) or self.models(path))
        return self.finish(
            client_error(
                404,
                f"Unknown endpoint {request.method} {request.path}; the test server serves "
                "POST /v1/chat/completions, POST /v1/completions, GET /v1/models and GET /v1/tcp_warming.",
                type="not_found_error",
                code="not_found",
            )
        )

    def log_request(self, request: HttpRequest, path: str) -> LoggedRequest | None:
        if not self.settings.record:
            return None
        headers = request.headers
        entry = LoggedRequest(
            path=path,
            encoding="",
            content_type=headers.get("content-type", ""),
            content_encoding=headers.get("content-encoding", ""),
            wire_bytes=len(request.body),
            body_bytes=len(request.body),
            headers={k: v for k, v in headers.items() if k != "authorization"},
        )
        with self.lock:
            self.request_log.append(entry)
        return entry

    def models(self, path: str) -> Reply:
        listing = models_body(self.settings.models)
        if path == "/v1/models":
            return Reply(200, listing)
        wanted = path.removeprefix("/v1/models/")
        for item in listing["data"]:
            if item["id"] == wanted:
                return Reply(200, item)
        return client_error(
            404,
            f"Model {wanted} does not exist.",
            type="not_found_error",
            param="model",
            code="model_not_found",
        )

    def auth(self, request: HttpRequest) -> Reply | None:
        key = self.settings.api_key
        if key is None:
            return None
        if request.headers.get("authorization", "") == f"Bearer {key}":
            return None
        return client_error(401, "Wrong API Key", param="api_key", code="wrong_api_key")

    # ---- completions -------------------------------------------------------------------------------
    def decode(self, request: HttpRequest, entry: LoggedRequest | None) -> Decoded:
        decoded = decode_body(request.headers, request.body, self.settings.encodings)
        if entry is not None:
            with self.lock:
                entry.encoding = decoded.encoding
                entry.body_bytes = len(decoded.content)
        return decoded

    async def admit(
        self, request: HttpRequest, entry: LoggedRequest | None
    ) -> tuple[Decoded, Fault | None, HttpResponse | None]:
        """Decode, record, take the owed fault, check the key; a response when the request ends here."""
        decoded = self.decode(request, entry)
        fault = self.admit_request(request, decoded)
        denied = self.auth(request)
        if denied is not None:
            return decoded, fault, self.finish(denied)
        if fault is not None and not fault.changes_content and fault.kind not in ("slow", "stream_drop"):
            await self.wait(self.settings.latency)
            return decoded, fault, None if fault.kind == "drop" else self.fault_response(fault)
        if decoded.error is not None:
            return decoded, fault, self.finish(decoded.error)
        queued = self.queue_refusal(request, decoded.value)
        if queued is not None:
            return decoded, fault, self.finish(queued)
        return decoded, fault, None

    def queue_refusal(self, request: HttpRequest, body: Any) -> Reply | None:
        """The `queue_threshold` header: checked for range, and refused early when the queue is longer."""
        raw = request.headers.get("queue_threshold")
        if raw is None:
            return None
        low, high = _QUEUE_THRESHOLD_MS
        try:
            threshold = float(raw)
        except ValueError:
            threshold = -1.0
        if not low <= threshold <= high:
            return client_error(
                400,
                f"queue_threshold must be a number of milliseconds between {low} and {high}; got {raw!r}.",
                param="queue_threshold",
                code="wrong_api_format",
            )
        tier = body.get("service_tier") if isinstance(body, dict) else None
        if tier in _QUEUE_TIERS and self.settings.queue_ms > threshold:
            with self.lock:
                verdict_headers = self.limits.headers()
            return _rate_limited("queue_exceeded", verdict_headers)
        return None

    async def reserve(
        self, prompt_tokens: int, max_tokens: int | None, fault: Fault | None
    ) -> Reply | list[tuple[str, str]]:
        """Rate limits and the concurrency cap, then the latency; the rate-limit headers when admitted."""
        reserved = prompt_tokens + (max_tokens or self.settings.default_max_completion_tokens)
        with self.lock:
            verdict = self.limits.admit(reserved)
        if verdict.code is not None:
            return _rate_limited(verdict.code, verdict.headers)
        limit = self.settings.max_concurrency
        if limit is not None and self.in_flight >= limit:
            return _rate_limited("queue_exceeded", verdict.headers)
        self.in_flight += 1
        try:
            await self.wait(self.settings.latency + (fault.delay if fault is not None else 0.0))
        finally:
            self.in_flight -= 1
        return verdict.headers

    async def chat(self, request: HttpRequest, entry: LoggedRequest | None = None) -> HttpResponse | None:
        started = time.monotonic()
        decoded, fault, ended = await self.admit(request, entry)
        if ended is not None or (fault is not None and fault.kind == "drop"):
            return ended
        plan = plan_request(decoded.value, self.rules)
        if isinstance(plan, Reply):
            return self.finish(plan)
        if self.oracle_unavailable is not None and self.oracle_unavailable.search(plan.document):
            return self.finish(server_error(503, "Service temporarily unavailable."))
        admitted = await self.reserve(plan.prompt_tokens, plan.max_completion_tokens, fault)
        if isinstance(admitted, Reply):
            return self.finish(admitted)
        reply, usage = self.answer(plan, fault, time.monotonic() - started)
        await self.wait(self.settings.token_latency.seconds(**usage))
        reply.headers.extend(admitted)
        response = _respond(reply)
        if reply.parts is not None:
            response.parts = reply.parts
            response.gap = self.settings.stream_gap
            if fault is not None and fault.kind == "stream_drop":
                response.cut_after = int(fault.extra["after"])
        return response

    async def text(self, request: HttpRequest, entry: LoggedRequest | None = None) -> HttpResponse | None:
        """POST /v1/completions; content faults do not apply (the reply is not JSON), the others do."""
        started = time.monotonic()
        decoded, fault, ended = await self.admit(request, entry)
        if ended is not None or (fault is not None and fault.kind == "drop"):
            return ended
        plan = plan_completion(decoded.value, self.rules)
        if isinstance(plan, Reply):
            return self.finish(plan)
        admitted = await self.reserve(plan.prompt_tokens, plan.max_tokens, fault)
        if isinstance(admitted, Reply):
            return self.finish(admitted)
        reply = self.answer_text(plan, time.monotonic() - started)
        reply.headers.extend(admitted)
        return _respond(reply)

    def admit_request(self, request: HttpRequest, decoded: Decoded) -> Fault | None:
        """Record the request and take the fault it is owed: the next scripted one, else maybe a random one."""
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        with self.lock:
            self.request_count += 1
            if self.settings.record:
                self.requests.append(
                    RecordedRequest(decoded.value, headers, request.path, decoded.content, decoded.encoding)
                )
            if self.script:
                return self.script.popleft()
            rate = self.settings.fault_rate
            if rate and self.fault_rng.random() < rate:
                kinds = self.settings.fault_kinds
                return Fault.named(kinds[self.fault_rng.randrange(len(kinds))])
        return None

    async def wait(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    def finish(self, reply: Reply) -> HttpResponse:
        """An answer other than a completion, with the rate-limit headers every provider response carries."""
        if reply.status == 429:
            with self.lock:
                self.count_429 += 1
        if not any(name.startswith("x-ratelimit-") for name, _ in reply.headers):
            with self.lock:
                reply.headers.extend(self.limits.headers())
        return _respond(reply)

    def fault_response(self, fault: Fault) -> HttpResponse:
        if fault.kind == "rate_limited":
            code = fault.text or "request_quota_exceeded"
            reply = _rate_limited(code, fault.headers)
            with self.lock:
                self.count_429 += 1
            return _respond(reply)
        status = fault.status
        if fault.body is not None:
            return self.finish(Reply(status, fault.body, fault.headers))
        if status >= 500:
            return self.finish(
                server_error(status, fault.text or "Internal server error.", headers=fault.headers)
            )
        if status == 401:
            return self.finish(client_error(401, "Wrong API Key", param="api_key", code="wrong_api_key"))
        if status == 429:
            return self.fault_response(Fault.rate_limited())
        return self.finish(
            client_error(
                status, fault.text or f"Scripted HTTP {status}.", code=str(status), headers=fault.headers
            )
        )

    def answer(self, plan: Plan, fault: Fault | None, elapsed: float) -> tuple[Reply, dict[str, int]]:
        """The reply, and the token counts of its usage that the latency model prices."""
        schema = plan.schema if plan.schema is not None else plan.prompt_schema
        configured = self.settings.reply if plan.schema is None else None
        if configured is not None:
            value: Any = None
            content, finish = configured, "stop"
        else:
            if schema is not None and (self.settings.oracle or self.settings.oracle_fields):
                value = oracle_value(schema, plan.document, self.oracle_records, self.oracle_fields)
            else:
                value = generate(schema, words=plan.words, seed=plan.seed) if schema is not None else {}
            content, finish = json_text(value), "stop"
        if fault is not None and fault.changes_content:
            content, finish = fault_content(fault, value, schema)
        elif schema is not None and configured is None and self.unlucky(plan):
            content = json_text(break_value(value, schema))
        reasoning = _reasoning_text(self.settings.reasoning_text, plan.reasoning_tokens)
        content, reasoning, finish = _fit(content, reasoning, finish, plan.max_completion_tokens)
        reasoning_tokens = estimate_tokens(len(reasoning)) if reasoning else 0
        accepted = rejected = 0
        if plan.prediction is not None:
            accepted = min(
                estimate_tokens(matched_chars(content, plan.prediction)), estimate_tokens(len(content))
            )
            rejected = max(estimate_tokens(len(plan.prediction)) - accepted, 0)
        shown = reasoning if plan.show_reasoning else None
        delivered = content
        if plan.reasoning_format == "raw" and reasoning:
            delivered, shown = (
                f"<think>{reasoning}</think>{content}",
                None,
            )  # counted as reasoning, not content
        body = completion_body(
            model=plan.model,
            content=content,
            finish_reason=finish,
            prompt_tokens=plan.prompt_tokens,
            reasoning=shown,
            reasoning_tokens=reasoning_tokens,
            cached_tokens=self.cached_tokens(plan.cache_scope, plan.prompt_text, plan.prompt_tokens),
            elapsed=elapsed,
            logprobs=chat_logprobs(
                delivered, plan.seed, plan.top_logprobs, *_pinned(fault, content, delivered)
            )
            if plan.logprobs
            else None,
            reasoning_model=plan.reasoning_tokens > 0,
            accepted_prediction_tokens=accepted,
            rejected_prediction_tokens=rejected,
            service_tier=plan.service_tier,
            queue_time=self.queue_time(),
        )
        body["choices"][0]["message"]["content"] = delivered
        usage = body["usage"]
        priced = {
            "prompt_tokens": usage["prompt_tokens"],
            "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
            "completion_tokens": usage["completion_tokens"],
            "accepted_prediction_tokens": accepted,
            "rejected_prediction_tokens": rejected,
        }
        if plan.stream:
            events = _as_stream(body, self.settings.stream_chunk_chars)
            streamed = Reply(200, b"".join(events), [("content-type", "text/event-stream")])
            streamed.parts = events
            return streamed, priced
        return Reply(200, body), priced

    def answer_text(self, plan: TextPlan, elapsed: float) -> Reply:
        tokens, finish = continuation(plan)
        text = "".join(tokens)
        logprobs = None
        if plan.logprobs is not None:
            logprobs = text_logprobs(tokens, len(plan.prompt), plan.seed, plan.logprobs)
        body = text_completion_body(
            model=plan.model,
            text=text,
            finish_reason=finish,
            prompt_tokens=plan.prompt_tokens,
            completion_tokens=len(tokens),
            cached_tokens=self.cached_tokens(plan.cache_scope, plan.prompt, plan.prompt_tokens),
            elapsed=elapsed,
            logprobs=logprobs,
            raw_tokens=raw_token_ids(tokens) if plan.raw_tokens else None,
            service_tier=plan.service_tier,
            queue_time=self.queue_time(),
        )
        if plan.stream:
            return Reply(200, _as_text_stream(body), [("content-type", "text/event-stream")])
        return Reply(200, body)

    def queue_time(self) -> float:
        return self.settings.queue_ms / 1000 if self.settings.queue_ms else 0.0001

    def cached_tokens(self, scope: str, prompt_text: str, prompt_tokens: int) -> int:
        """Prompt caching as providers do it: a prefix seen before (same scope) is cached in 128-token blocks."""
        if not self.settings.prompt_cache:
            return 0
        with self.lock:
            return self.cache.admit(scope, prompt_text, prompt_tokens)

    def unlucky(self, plan: Plan) -> bool:
        """The seeded invalid_rate draw: first turns only, and only the first time a document is seen.

        The draw is keyed on the seed and the document text, not on the whole request, so clients that
        word their prompts differently still meet the same bad first replies (a fair retry comparison).
        """
        rate = self.settings.invalid_rate
        if not rate or not plan.first_turn:
            return False
        key = self.settings.seed.to_bytes(8, "big", signed=True) + plan.document_key
        draw = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")
        with self.lock:
            if draw in self.seen:
                return False
            self.seen.add(draw)
        return draw / 2**64 < rate


def _fit(content: str, reasoning: str | None, finish: str, limit: int | None) -> tuple[str, str | None, str]:
    """Cut the reply to max_completion_tokens (reasoning first, as reasoning models spend it first)."""
    if limit is None:
        return content, reasoning, finish
    budget = limit * 4
    if reasoning is not None:
        if len(reasoning) >= budget:
            return "", reasoning[:budget], "length"
        budget -= len(reasoning)
    if len(content) > budget:
        return content[:budget], reasoning, "length"
    return content, reasoning, finish


def _reasoning_text(sentence: str, tokens: int) -> str | None:
    """Reasoning of exactly `tokens` tokens (four characters each): the sentence repeated and cut."""
    if tokens <= 0:
        return None
    unit = sentence + " "
    return (unit * (tokens * 4 // len(unit) + 1))[: tokens * 4]


def _as_text_stream(body: dict[str, Any]) -> bytes:
    """A text completion as server-sent events: the text, then finish_reason with usage and time_info."""
    choice = body["choices"][0]
    base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint", "object")}
    first = {**base, "choices": [{**choice, "finish_reason": None}]}
    last = {
        **base,
        "choices": [{"index": 0, "text": "", "finish_reason": choice["finish_reason"], "logprobs": None}],
        "usage": body["usage"],
        "time_info": body["time_info"],
    }
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in (first, last)) + b"data: [DONE]\n\n"


def _as_stream(body: dict[str, Any], chunk_chars: int = 0) -> list[bytes]:
    """The completion as server-sent events: the reasoning, the content (in one chunk, or in pieces of
    `chunk_chars`), then a chunk with finish_reason, usage and time_info, then [DONE]."""
    choice = body["choices"][0]
    base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    delta = {k: v for k, v in choice["message"].items() if k != "tool_calls"}
    chunks: list[dict[str, Any]] = []
    content = delta.get("content")
    if chunk_chars > 0 and isinstance(content, str) and len(content) > chunk_chars:
        head = {k: v for k, v in delta.items() if k != "content"}
        pieces = [content[i : i + chunk_chars] for i in range(0, len(content), chunk_chars)]
        deltas = [{**head, "content": ""}] + [{"content": piece} for piece in pieces]
    else:
        deltas = [delta]
    for index, part in enumerate(deltas):
        logprobs = choice["logprobs"] if index == 0 else None
        chunks.append(
            {**base, "choices": [{"index": 0, "delta": part, "finish_reason": None, "logprobs": logprobs}]}
        )
    last = {
        **base,
        "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
        "usage": body["usage"],
        "time_info": body["time_info"],
    }
    chunks.append(last)
    return [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks] + [b"data: [DONE]\n\n"]


def _rate_limited(code: str, headers: Iterable[tuple[str, str]]) -> Reply:
    message, param = _RATE_LIMIT_MESSAGES.get(code, _RATE_LIMIT_MESSAGES["request_quota_exceeded"])
    return client_error(429, message, type="too_many_requests_error", param=param, code=code, headers=headers)


def _method_not_allowed(method: str, path: str) -> Reply:
    return client_error(405, f"{method} is not allowed on {path}; use POST.", code="method_not_allowed")


def _pinned(
    fault: Fault | None, content: str, delivered: str
) -> tuple[list[tuple[int, int, float]], dict[int, dict[str, float]]]:
    """The scripted logprobs and alternatives of a `Fault.content(..., logprobs=, alternatives=)`, as
    character ranges and offsets of the delivered text."""
    if fault is None or fault.kind != "content" or "logprobs" not in fault.extra or not content:
        return [], {}
    shift = delivered.rfind(content)  # after a raw <think> block, when there is one
    if shift < 0:
        return [], {}
    pinned = [(s + shift, e + shift, lp) for s, e, lp in pinned_ranges(content, fault.extra["logprobs"])]
    ranges = value_ranges(content)
    rivals = {ranges[path][0] + shift: dict(alts) for path, alts in fault.extra["alternatives"].items()}
    return pinned, rivals


def _respond(reply: Reply) -> HttpResponse:
    body = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
    headers = reply.headers
    if not any(name == "content-type" for name, _ in headers):
        headers.insert(0, ("content-type", "application/json"))
    headers.append(("x-request-id", uuid.uuid4().hex))
    return HttpResponse(reply.status, body, headers)
