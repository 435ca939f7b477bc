"""One extraction as a sans-IO generator: attempts, re-asks, mode demotion, transport retries, limiter.

`run(job)` yields `Send`/`Sleep` actions and returns a Result (or raises). It never touches a socket or a
clock it could block on, so `drive_sync` and `drive_async` share every decision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from extract import modes
from extract._engine.drive import Action, Outcome, Send, Sleep
from extract._engine.judge import Verdict, correction, judge, quoted_reply
from extract._engine.results import Attempt, Result, Usage
from extract.errors import APIConnectionError, APIError, APITimeoutError, ExtractionFailed, redact
from extract.models import Capabilities
from extract.transport import (
    RetryPolicy,
    WireRequest,
    WireResponse,
    error_from_response,
    retry_delay,
    should_retry,
)

__all__ = ["Job", "Prepared", "run"]

logger = logging.getLogger("extract")

CHAT_PATH = "/chat/completions"
# Completion tokens reserved with the limiter when the caller sets no max_completion_tokens.
DEFAULT_RESERVED_COMPLETION = 1024
_MAX_REFUSALS = 2


@dataclass(frozen=True, slots=True)
class Prepared:
    """Per (schema, mode, instructions) constants, built once per Extractor and reused on every call."""

    mode: str
    system: str
    format_note: str
    response_format: dict[str, Any] | None
    chars: int  # size of the constant parts, for the limiter's token estimate


@dataclass(slots=True)
class Job:
    """Everything one extraction needs; the Extractor fills it, `run` reads it (and updates `demoted`)."""

    compiled: Any
    source: str | Sequence[Mapping[str, Any]]
    instructions: str | None
    model: str
    caps: Capabilities
    params: dict[str, Any]
    prepare: Callable[[str], Prepared]
    demoted: set[str]
    on_demote: Callable[[str, WireResponse], None]
    retry: RetryPolicy
    max_attempts: int
    token_budget: int | None
    limiter: Any | None
    secrets: tuple[str | None, ...]


def _conversation(job: Job, prepared: Prepared, document: dict[str, str] | None) -> list[Mapping[str, Any]]:
    """The base messages for a mode: [system, user(document)], or the caller's list with our notes added."""
    if document is not None:
        return [{"role": "system", "content": prepared.system}, document]
    given: list[Mapping[str, Any]] = list(cast("Sequence[Mapping[str, Any]]", job.source))
    notes = [prepared.format_note]
    if job.instructions:
        notes.append(job.instructions.strip())
    note = "\n\n".join(notes)
    if given and given[0].get("role") in ("system", "developer") and isinstance(given[0].get("content"), str):
        first: dict[str, Any] = dict(given[0])
        first["content"] = f"{first['content']}\n\n{note}"
        given[0] = first
    else:
        given.insert(0, {"role": "system", "content": note})
    return given


def _estimate(messages: Sequence[Mapping[str, Any]], prepared: Prepared, max_tokens: int | None) -> int:
    chars = prepared.chars
    for message in messages:
        content = message.get("content")
        chars += len(content) if isinstance(content, str) else 64
    return chars // 4 + (max_tokens or DEFAULT_RESERVED_COMPLETION)


def _exchange(
    job: Job, mode: str, body: dict[str, Any], reserved: int
) -> Generator[Action, Outcome, tuple[WireResponse, float]]:
    """Send one body until it gets an answer worth reading: transport faults retried with backoff here."""
    request = WireRequest(CHAT_PATH, body, reserved)
    policy = job.retry
    limiter = job.limiter
    retry = 0
    while True:
        if limiter is not None:
            wait = limiter.reserve(reserved)
            while wait > 0:
                yield Sleep(wait)
                wait = limiter.reserve(reserved)
        started = time.perf_counter()
        try:
            outcome = yield Send(request)
        except GeneratorExit:  # cancelled mid-flight: hand the reservation back
            if limiter is not None:
                limiter.observe(0, {}, None, reserved)
            raise
        latency = time.perf_counter() - started
        if not isinstance(outcome, WireResponse):
            if limiter is not None:
                limiter.observe(0, {}, None, reserved)
            error = (
                outcome if isinstance(outcome, APIError) else APIConnectionError("no response from transport")
            )
            if (
                not isinstance(error, APIConnectionError)
                or retry >= policy.max_retries
                or (isinstance(error, APITimeoutError) and not job.caps.retry_timeouts)
            ):
                raise error
            delay = retry_delay(retry, None, {}, policy)
            logger.debug("connection failed (%s); retry %d in %.2fs", type(error).__name__, retry + 1, delay)
        else:
            status = outcome.status_code
            headers = outcome.headers
            if limiter is not None:
                usage = outcome.data.get("usage") if isinstance(outcome.data, dict) else None
                used = usage.get("total_tokens") if isinstance(usage, dict) else None
                limiter.observe(status, headers, used if isinstance(used, int) else None, reserved)
            if 200 <= status < 300:
                return outcome, latency
            if mode != "prompt" and modes.is_mode_rejection(status, outcome.data, outcome.body):
                return outcome, latency
            if retry >= policy.max_retries or not should_retry(status, headers):
                raise error_from_response(outcome, secrets=job.secrets)
            delay = retry_delay(retry, status, headers, policy)
            logger.debug("HTTP %d; retry %d in %.2fs", status, retry + 1, delay)
        retry += 1
        yield Sleep(delay)


def _grow(current: int | None, reply_usage: Usage, cap: int) -> int | None:
    """A larger completion budget after a truncated reply, or None when it cannot grow."""
    base = current or reply_usage.completion_tokens
    if base <= 0:
        return None
    grown = min(base * 2, cap)
    return grown if grown > (current or 0) else None


def _failure_message(job: Job, attempts: list[Attempt], why: str) -> str:
    last = attempts[-1]
    shown = "\n".join(f"- {e}" for e in last.errors[:10]) or "- (no detail)"
    text = (
        f"no valid reply from {job.model} after {len(attempts)} attempt(s) ({why}); last mode {last.mode}, "
        f"last errors:\n{shown}\nEach attempt's raw reply is in .attempts. Raise max_attempts, pass "
        "instructions=, or simplify the schema."
    )
    return redact(text, *job.secrets)


def run(job: Job) -> Generator[Action, Outcome, Result]:
    """One extraction: returns a Result, raises ExtractionFailed or the APIError that ended it."""
    document = modes.document_message(job.source) if isinstance(job.source, str) else None
    params = dict(job.params)
    tokens_field = job.caps.max_tokens_field
    attempts: list[Attempt] = []
    usage = Usage()
    tail: list[Mapping[str, Any]] = []
    refusals = 0
    why = "every attempt was used"
    while True:
        mode = modes.plan_modes(job.caps, job.compiled.strict, job.demoted)[0]
        prepared = job.prepare(mode)
        messages = _conversation(job, prepared, document)
        messages.extend(tail)
        body = modes.build_body(mode, job.model, messages, prepared.response_format, params)
        max_tokens = params.get(tokens_field)
        reserved = _estimate(messages, prepared, max_tokens if isinstance(max_tokens, int) else None)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("request: model=%s mode=%s attempt=%d", job.model, mode, len(attempts) + 1)
        response, latency = yield from _exchange(job, mode, body, reserved)
        if response.status_code >= 300:  # the server refused the mode: demote, retry at once, uncounted
            job.demoted.add(mode)
            job.on_demote(mode, response)
            continue
        reply = modes.read_reply(response.data)
        verdict: Verdict = judge(job.compiled, reply)
        usage = usage + reply.usage
        attempts.append(
            Attempt(
                mode=mode,
                content=reply.content,
                reasoning=reply.reasoning,
                errors=list(verdict.errors),
                usage=reply.usage,
                finish_reason=reply.finish_reason,
                latency_s=latency,
                status_code=response.status_code,
            )
        )
        if verdict.ok:
            return Result(verdict.value, attempts, usage, reply.time_info, mode, job.model)
        if verdict.kind == "refusal":
            refusals += 1
            if refusals >= _MAX_REFUSALS:
                why = "the model refused twice"
                break
        if len(attempts) >= job.max_attempts:
            break
        if job.token_budget is not None and usage.total_tokens >= job.token_budget:
            why = f"the token budget of {job.token_budget} is spent ({usage.total_tokens} used)"
            break
        if verdict.kind == "length":
            grown = _grow(
                max_tokens if isinstance(max_tokens, int) else None, reply.usage, job.caps.max_output_tokens
            )
            if grown is not None:
                params[tokens_field] = grown
                continue  # same conversation, more room
        tail = []
        if reply.content and reply.content.strip():
            tail.append({"role": "assistant", "content": quoted_reply(reply.content)})
        tail.append({"role": "user", "content": correction(verdict)})
    raise ExtractionFailed(_failure_message(job, attempts, why), attempts=attempts, usage=usage)
