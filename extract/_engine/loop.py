"""One extraction as a sans-IO generator: attempts, re-asks, mode demotion, transport retries, limiter.

`run(job)` yields `Send`/`Sleep` actions and returns a Result (or raises). It never touches a socket or a
clock it could block on, so `drive_sync` and `drive_async` share every decision.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from extract import modes
from extract._engine.drive import Action, Outcome, Send, SendStream, Sleep
from extract._engine.features import is_capacity_refusal, prediction_fields, reasoning_reserve
from extract._engine.judge import Verdict, correction, judge, quoted_reply, ungrounded_verdict
from extract.errors import (
    APIConnectionError,
    APIError,
    APITimeoutError,
    ContextLengthError,
    ExtractionFailed,
    UngroundedRequired,
    redact,
)
from extract.providers import ModelRow, Provider, error_fields
from extract.results import Attempt, Result, Usage, sum_time_info
from extract.transports import (
    PayloadPolicy,
    RetryPolicy,
    WireRequest,
    WireResponse,
    error_from_response,
    is_encoding_refusal,
    retry_delay,
    should_retry,
    unreadable_reply_error,
)

if TYPE_CHECKING:
    from extract.evidence import Check, Grounding, Settled
    from extract.ratelimit import Limiter
    from extract.schema import CompiledSchema

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

    compiled: CompiledSchema
    source: str | Sequence[Mapping[str, Any]]
    instructions: str | None
    model: str
    provider: Provider
    row: ModelRow
    params: dict[str, Any]
    extra_body: dict[str, Any]  # the caller's provider fields, merged into every body as given
    prepare: Callable[[str], Prepared]
    demoted: set[str]
    on_demote: Callable[[str, WireResponse], None]
    retry: RetryPolicy
    max_attempts: int
    token_budget: int | None
    limiter: Limiter | None
    secrets: tuple[str | None, ...]
    # request fields the engine added on the caller's behalf (a default reasoning effort, the derived
    # prompt_cache_key): a server that refuses one gets the request again without it, remembered in `demoted`
    optional: frozenset[str] = frozenset()
    # how bodies are encoded on the wire (None: JSON), and who hears that a server refused an encoding
    payload: PayloadPolicy | None = None
    on_encoding_refused: Callable[[str, WireResponse], None] | None = None
    # stream the reply (a streaming driver shows partial values) in the modes the model's row streams
    stream: bool = False
    # require_grounding: checks each valid reply's strings and numbers against the text, settles on a value
    ground: Grounding | None = None


# How a field refused by a server is remembered in Job.demoted (beside the refused modes).
FIELD_REFUSED = "field:"
# How a mode a server would not stream in is remembered in Job.demoted (then sent unstreamed).
STREAM_REFUSED = "stream:"


def _refused_field(job: Job, response: WireResponse, body: Mapping[str, Any]) -> str | None:
    """The optional field a 4xx refuses (its `param` names a field the engine added and sent), else None."""
    if not job.optional or not 400 <= response.status_code < 500 or response.status_code == 429:
        return None
    param = error_fields(response.data).get("param")
    return param if param in job.optional and param in body else None


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


def _estimate(
    messages: Sequence[Mapping[str, Any]], prepared: Prepared, max_tokens: int | None, reasoning: int = 0
) -> int:
    """Tokens to reserve: the prompt, and the completion budget (or, without one, a default reply plus
    the reasoning a reasoning model is expected to spend first)."""
    chars = prepared.chars
    for message in messages:
        content = message.get("content")
        chars += len(content) if isinstance(content, str) else 64
    return chars // 4 + (max_tokens or DEFAULT_RESERVED_COMPLETION + reasoning)


def _exchange(
    job: Job, mode: str, body: dict[str, Any], reserved: int
) -> Generator[Action, Outcome, tuple[WireResponse, float]]:
    """Send one body until it gets an answer worth reading: transport faults retried with backoff here."""
    request = WireRequest(CHAT_PATH, body, reserved, job.payload)
    action = SendStream if body.get("stream") is True else Send
    refusal: WireResponse | None = None  # an encoding refusal, until the JSON resend confirms it
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
            outcome = yield action(request)
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
                or (isinstance(error, APITimeoutError) and not job.row.retry_timeouts)
            ):
                raise error
            delay = retry_delay(retry, None, {}, policy)
            logger.debug("connection failed (%s); retry %d in %.2fs", type(error).__name__, retry + 1, delay)
        else:
            status = outcome.status_code
            headers = outcome.headers
            # "queue too long": the provider is busy, not this account over quota; retried with backoff,
            # and not shown to the limiter as a 429 (that would pace every request as if over quota)
            busy = status >= 400 and is_capacity_refusal(
                status, outcome.data if outcome.data is not None else outcome.body
            )
            if refusal is not None:
                _remember_refusal(job, refusal, outcome)
                refusal = None
            if limiter is not None:
                if busy:
                    limiter.observe(0, {}, None, reserved)
                else:
                    usage = outcome.data.get("usage") if isinstance(outcome.data, dict) else None
                    used = usage.get("total_tokens") if isinstance(usage, dict) else None
                    limiter.observe(status, headers, used if isinstance(used, int) else None, reserved)
            if 200 <= status < 300 and isinstance(outcome.data, dict):
                return outcome, latency
            if _refuses_encoding(job, outcome):  # before the mode check: "not valid JSON" is not a mode
                refusal = outcome
                request = WireRequest(CHAT_PATH, body, reserved)  # plain JSON, at once and uncounted
                continue
            if _refused_field(job, outcome, body) is not None:
                return outcome, latency
            if mode != "prompt" and job.provider.refuses_mode(status, outcome.data, outcome.body):
                return outcome, latency
            if 200 <= status < 300:  # HTML, invalid UTF-8, not JSON: a server fault, retried, never re-asked
                if retry >= policy.max_retries:
                    raise unreadable_reply_error(outcome, secrets=job.secrets)
            elif retry >= policy.max_retries or not (busy or should_retry(status, headers)):
                raise _refine(job, outcome, error_from_response(outcome, secrets=job.secrets))
            delay = retry_delay(retry, status, headers, policy)
            logger.debug("HTTP %d; retry %d in %.2fs", status, retry + 1, delay)
        retry += 1
        yield Sleep(delay)


def _refuses_encoding(job: Job, response: WireResponse) -> bool:
    """Whether the server seems to have refused the body's encoding (then it is resent as JSON)."""
    if response.encoding == "json" or job.payload is None:
        return False
    said = response.data if isinstance(response.data, Mapping) else response.body
    return is_encoding_refusal(response.status_code, said)


def _remember_refusal(job: Job, refusal: WireResponse, resent: WireResponse) -> None:
    """Remember the refused encoding for this server and model, unless the JSON resend was turned down
    the same way: then the request itself was at fault, and the encoding stays in use."""
    said = resent.data if isinstance(resent.data, Mapping) else resent.body
    if resent.status_code == refusal.status_code and is_encoding_refusal(resent.status_code, said):
        return
    if job.payload is not None:
        job.payload.refuse(refusal.encoding)
    if job.on_encoding_refused is not None:
        job.on_encoding_refused(refusal.encoding, refusal)


def _refine(job: Job, response: WireResponse, error: APIError) -> APIError:
    """A more specific error where the provider's record recognises the response (context too long)."""
    overflow = job.provider.context_overflow(response.status_code, response.data, response.body)
    if overflow is None:
        return error
    sizes = (
        f" ({overflow.length} tokens; the limit is {overflow.limit})"
        if overflow.length is not None and overflow.limit is not None
        else ""
    )
    message = (
        f"HTTP {response.status_code}: the request does not fit {job.model}'s context window{sizes}. Shorten "
        "the text or split it into parts, or lower max_completion_tokens. The server said: "
        f"{error.server_message or '(nothing)'}"
    )
    return ContextLengthError(
        message,
        limit=overflow.limit,
        length=overflow.length,
        status_code=error.status_code,
        code=error.code,
        type=error.type,
        param=error.param,
        server_message=error.server_message,
        body=error.body,
    )


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
    tokens_field = job.row.max_tokens_field
    attempts: list[Attempt] = []
    usage = Usage()
    tail: list[Mapping[str, Any]] = []
    predicted: dict[str, Any] = {}  # the last reply as a predicted output, on a re-ask
    thinking = reasoning_reserve(job.row.reasoning, params.get("reasoning_effort"))
    refusals = 0
    why = "every attempt was used"
    checks: list[tuple[int, Check]] = []  # require_grounding: (attempt index, check) of valid replies
    while True:
        mode = modes.plan_modes(job.row, job.compiled.strict, job.demoted)[0]
        prepared = job.prepare(mode)
        messages = _conversation(job, prepared, document)
        messages.extend(tail)
        fields = {**params, **predicted} if predicted else params
        body = modes.build_body(mode, job.model, messages, prepared.response_format, fields, job.extra_body)
        if job.stream and job.row.streams(mode) and STREAM_REFUSED + mode not in job.demoted:
            body["stream"] = True
        max_tokens = params.get(tokens_field)
        reserved = _estimate(
            messages, prepared, max_tokens if isinstance(max_tokens, int) else None, thinking
        )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("request: model=%s mode=%s attempt=%d", job.model, mode, len(attempts) + 1)
        response, latency = yield from _exchange(job, mode, body, reserved)
        refused = _refused_field(job, response, body) if response.status_code >= 300 else None
        if refused == "stream":  # this mode cannot stream here: sent unstreamed from now on, uncounted
            logger.info("%s cannot stream in mode %s; sending it unstreamed", job.model, mode)
            job.demoted.add(STREAM_REFUSED + mode)
            continue
        if refused is not None:  # a field we added is refused: drop it, remember, retry at once, uncounted
            logger.info("%s refused %s; sending requests without it", job.model, refused)
            params.pop(refused, None)
            job.demoted.add(FIELD_REFUSED + refused)
            continue
        if response.status_code >= 300:  # the server refused the mode: demote, retry at once, uncounted
            job.demoted.add(mode)
            job.on_demote(mode, response)
            continue
        reply = modes.read_reply(response.data)
        verdict: Verdict = judge(job.compiled, reply)
        if verdict.ok and job.ground is not None:
            check = job.ground.check(verdict.value)
            if check.missing:
                checks.append((len(attempts), check))
                verdict = ungrounded_verdict(check.errors)
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
                logprobs=reply.logprobs,
                time_info=reply.time_info,
            )
        )
        if verdict.ok:
            time_info = sum_time_info(a.time_info for a in attempts)
            return Result(verdict.value, attempts, usage, time_info, mode, job.model)
        if verdict.kind == "ungrounded" and len(checks) > 1 and job.ground is not None:
            # the replies together may ground every value (one fixed what another invented)
            combined = job.ground.settle([check for _, check in checks], drop=False)
            if combined is not None and not combined.blocked:
                return _settled_result(job, combined, checks, attempts, usage)
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
                max_tokens if isinstance(max_tokens, int) else None, reply.usage, job.row.max_output_tokens
            )
            if grown is not None:
                params[tokens_field] = grown
                continue  # same conversation, more room
        params.pop("prediction", None)  # a caller's prediction is for the first reply only
        predicted = prediction_fields(job.row, reply.content)
        tail = []
        if reply.content and reply.content.strip():
            tail.append({"role": "assistant", "content": quoted_reply(reply.content)})
        tail.append({"role": "user", "content": correction(verdict)})
    if checks and job.ground is not None:
        # the attempts are spent but a valid reply exists: keep it, without what is not in the text
        settled = job.ground.settle([check for _, check in checks], drop=True)
        if settled is not None and not settled.blocked:
            return _settled_result(job, settled, checks, attempts, usage)
        if settled is not None:
            named = [u.path for u in settled.blocked]
            why = f"{why}; required values not in the text, which cannot be left out: {', '.join(named)}"
            partial = _settled_result(job, settled, checks, attempts, usage, settled.partial)
            raise UngroundedRequired(_failure_message(job, attempts, why), partial=partial, paths=named)
    raise ExtractionFailed(_failure_message(job, attempts, why), attempts=attempts, usage=usage)


def _settled_result(
    job: Job,
    settled: Settled,
    checks: list[tuple[int, Check]],
    attempts: list[Attempt],
    usage: Usage,
    partial: Any = None,
) -> Result:
    """require_grounding: the value the valid replies came to (see extract.evidence._require), as a
    Result read from its base reply, with what was removed in `dropped` (or, given `partial`, the
    unvalidated JSON an UngroundedRequired carries)."""
    index = checks[settled.base][0]
    if settled.dropped and partial is None:
        logger.warning(
            "require_grounding: %d value(s) not in the text were removed after %d attempt(s): %s",
            len(settled.dropped), len(attempts), ", ".join(settled.dropped),
        )  # fmt: skip
    time_info = sum_time_info(a.time_info for a in attempts)
    return Result(
        settled.value if partial is None else partial,
        list(attempts),
        usage,
        time_info,
        attempts[index].mode,
        job.model,
        dropped=settled.dropped,
        reply=index,
    )
