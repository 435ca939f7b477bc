"""The provider emulation: routes, auth, scripted and random faults, rate limits, latency, answers.

Runs on one event loop; the counters and the fault queue are shared with the thread that owns the
`TestServer`, so every touch of them holds `self.lock`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson

from extract.testing._content import break_value, fault_content, json_text
from extract.testing._faults import Fault
from extract.testing._generate import generate
from extract.testing._http import HttpRequest, HttpResponse
from extract.testing._limits import Limits
from extract.testing._requests import Plan, Rules, plan_request
from extract.testing._wire import (
    DEFAULT_MODELS,
    Reply,
    client_error,
    completion_body,
    estimate_tokens,
    models_body,
    server_error,
)

__all__ = ["App", "RecordedRequest", "ServerSettings"]

_log = logging.getLogger("extract.testing")
_FLAVORS = ("cerebras", "llamacpp")
_MAX_PREFIXES = 10_000
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
    reasoning_models: models whose replies carry `message.reasoning` and reasoning tokens.
    record: keep every request body for `server.requests` (turn off for long benchmark runs).
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

    def __post_init__(self) -> None:
        if self.flavor not in _FLAVORS:
            raise ValueError(f"flavor must be one of {_FLAVORS}, got {self.flavor!r}")
        for name in ("invalid_rate", "fault_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")
        if self.latency < 0:
            raise ValueError(f"latency must be >= 0 seconds, got {self.latency!r}")
        if self.json_object_only_status not in (400, 422):
            raise ValueError("json_object_only_status must be 400 or 422")
        for name in self.fault_kinds:
            Fault.named(name)  # raises ValueError naming the valid ones
        if not isinstance(self.json_object_only, bool):
            object.__setattr__(self, "json_object_only", frozenset(self.json_object_only))
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "reasoning_models", frozenset(self.reasoning_models))
        object.__setattr__(self, "fault_kinds", tuple(self.fault_kinds))


class RecordedRequest(dict[str, Any]):
    """A received JSON body (a dict), plus `.headers` (no Authorization), `.path` and `.raw` bytes."""

    headers: dict[str, str]
    path: str
    raw: bytes

    def __init__(self, body: Any, headers: dict[str, str], path: str, raw: bytes) -> None:
        super().__init__(body if isinstance(body, dict) else {})
        self.headers = headers
        self.path = path
        self.raw = raw


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
        )
        self.limits = Limits(
            rpm=settings.rpm,
            rpd=settings.rpd,
            tpm=settings.tpm,
            time_scale=settings.time_scale,
            clock=time.monotonic,
        )
        self.requests: list[RecordedRequest] = []
        self.request_count = 0
        self.count_429 = 0
        self.script: deque[Fault] = deque()
        self.in_flight = 0
        self.seen: set[int] = set()
        self.prefixes: set[int] = set()
        self.fault_rng = random.Random(settings.seed)

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.request_count = 0
            self.count_429 = 0
            self.script.clear()
            self.seen.clear()
            self.prefixes.clear()
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
        if path == "/v1/chat/completions":
            if request.method != "POST":
                return self.finish(_method_not_allowed(request.method, path))
            return await self.chat(request)
        if path == "/v1/tcp_warming" and request.method == "GET":
            return self.finish(Reply(200, {}))
        if path.startswith("/v1/models") and request.method == "GET":
            return self.finish(self.auth(request) or self.models(path))
        return self.finish(
            client_error(
                404,
                f"Unknown endpoint {request.method} {request.path}; the test server serves "
                "POST /v1/chat/completions, GET /v1/models and GET /v1/tcp_warming.",
                type="not_found_error",
                code="not_found",
            )
        )

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

    # ---- chat completions -----------------------------------------------------------------------------
    async def chat(self, request: HttpRequest) -> HttpResponse | None:
        started = time.monotonic()
        try:
            body: Any = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            body = None
        fault = self.admit_request(request, body)
        denied = self.auth(request)
        if denied is not None:
            return self.finish(denied)
        if fault is not None and not fault.changes_content and fault.kind != "slow":
            await self.wait(self.settings.latency)
            return None if fault.kind == "drop" else self.fault_response(fault)
        if body is None:
            return self.finish(
                client_error(400, "The request body is not valid JSON.", code="wrong_api_format")
            )
        plan = plan_request(body, self.rules)
        if isinstance(plan, Reply):
            return self.finish(plan)
        reserved = plan.prompt_tokens + (
            plan.max_completion_tokens or self.settings.default_max_completion_tokens
        )
        with self.lock:
            verdict = self.limits.admit(reserved)
        if verdict.code is not None:
            return self.finish(_rate_limited(verdict.code, verdict.headers))
        limit = self.settings.max_concurrency
        if limit is not None and self.in_flight >= limit:
            return self.finish(_rate_limited("queue_exceeded", verdict.headers))
        self.in_flight += 1
        try:
            await self.wait(self.settings.latency + (fault.delay if fault is not None else 0.0))
        finally:
            self.in_flight -= 1
        reply = self.answer(plan, fault, time.monotonic() - started)
        reply.headers.extend(verdict.headers)
        return _respond(reply)

    def admit_request(self, request: HttpRequest, body: Any) -> Fault | None:
        """Record the request and take the fault it is owed: the next scripted one, else maybe a random one."""
        headers = {k: v for k, v in request.headers.items() if k != "authorization"}
        with self.lock:
            self.request_count += 1
            if self.settings.record:
                self.requests.append(RecordedRequest(body, headers, request.path, request.body))
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

    def answer(self, plan: Plan, fault: Fault | None, elapsed: float) -> Reply:
        schema = plan.schema if plan.schema is not None else plan.prompt_schema
        configured = self.settings.reply if plan.schema is None else None
        if configured is not None:
            value: Any = None
            content, finish = configured, "stop"
        else:
            value = generate(schema, words=plan.words, seed=plan.seed) if schema is not None else {}
            content, finish = json_text(value), "stop"
        if fault is not None and fault.changes_content:
            content, finish = fault_content(fault, value, schema)
        elif schema is not None and configured is None and self.unlucky(plan):
            content = json_text(break_value(value, schema))
        reasoning = self.settings.reasoning_text if plan.model in self.settings.reasoning_models else None
        content, reasoning, finish = _fit(content, reasoning, finish, plan.max_completion_tokens)
        body = completion_body(
            model=plan.model,
            content=content,
            finish_reason=finish,
            prompt_tokens=plan.prompt_tokens,
            reasoning=reasoning if plan.show_reasoning else None,
            cached_tokens=self.cached_tokens(plan),
            elapsed=elapsed,
        )
        if reasoning is not None and not plan.show_reasoning:
            details = body["usage"]["completion_tokens_details"]
            details["reasoning_tokens"] = estimate_tokens(len(reasoning))
            body["usage"]["completion_tokens"] += details["reasoning_tokens"]
            body["usage"]["total_tokens"] += details["reasoning_tokens"]
        if plan.stream:
            return Reply(200, _as_stream(body), [("content-type", "text/event-stream")])
        return Reply(200, body)

    def cached_tokens(self, plan: Plan) -> int:
        """Prompt caching as providers do it: a system prompt seen before is cached in blocks of 128 tokens."""
        if plan.prefix is None:
            return 0
        key, chars = plan.prefix
        with self.lock:
            if key not in self.prefixes:
                if len(self.prefixes) >= _MAX_PREFIXES:
                    self.prefixes.clear()
                self.prefixes.add(key)
                return 0
        return min(estimate_tokens(chars) // 128 * 128, plan.prompt_tokens)

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


def _as_stream(body: dict[str, Any]) -> bytes:
    """The completion as server-sent events: one content chunk, then usage and time_info, then [DONE]."""
    choice = body["choices"][0]
    base = {k: body[k] for k in ("id", "created", "model", "system_fingerprint")}
    base["object"] = "chat.completion.chunk"
    delta = {k: v for k, v in choice["message"].items() if k != "tool_calls"}
    first = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    last = {
        **base,
        "choices": [{"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}],
        "usage": body["usage"],
        "time_info": body["time_info"],
    }
    return (
        b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in (first, last)) + b"data: [DONE]\n\n"
    )


def _rate_limited(code: str, headers: Iterable[tuple[str, str]]) -> Reply:
    message, param = _RATE_LIMIT_MESSAGES.get(code, _RATE_LIMIT_MESSAGES["request_quota_exceeded"])
    return client_error(429, message, type="too_many_requests_error", param=param, code=code, headers=headers)


def _method_not_allowed(method: str, path: str) -> Reply:
    return client_error(405, f"{method} is not allowed on {path}; use POST.", code="method_not_allowed")


def _respond(reply: Reply) -> HttpResponse:
    body = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
    headers = reply.headers
    if not any(name == "content-type" for name, _ in headers):
        headers.insert(0, ("content-type", "application/json"))
    headers.append(("x-request-id", uuid.uuid4().hex))
    return HttpResponse(reply.status, body, headers)
