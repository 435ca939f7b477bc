"""The one scheduling loop: pull documents lazily, keep a bounded (adaptive) set in flight, write each
result to the checkpoint as it lands, and yield outcomes as they complete or in input order.

The sync API runs this same loop on a private event loop (see `_sync`), so there is one implementation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from extract._batch._aimd import AdaptiveLimit
from extract._batch._checkpoint import Checkpoint, Resumed
from extract._batch._guard import Job, schema_fingerprint
from extract._batch._inputs import Doc, iter_docs
from extract._batch._outcome import BatchStats, DocId, Outcome
from extract.errors import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    ConfigurationError,
    ExtractError,
    ExtractionFailed,
    InputError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from extract.ratelimit import RateLimiter
from extract.results import Usage

__all__ = ["BatchConfig", "run_batch"]

logger = logging.getLogger("extract")

# Errors about the setup, not the document: every other document would fail the same way, so the run
# stops (raising it) instead of writing the same error a million times.
FATAL = (AuthenticationError, PermissionDeniedError, NotFoundError, ConfigurationError)

# How long in-flight requests get to finish after a cancel before they are abandoned.
_CANCEL_GRACE_S = 3.0

# A server nobody answers at: this many documents in a row that could not connect stop the run (fewer
# while nothing has worked yet). Their outcomes are held back, not written, so they rerun on resume.
_UNREACHABLE_FIRST = 3
_UNREACHABLE_LATER = 10


class ServerUnreachable(APIConnectionError):
    """Documents in a row could not reach the server: the run stops rather than fail every document."""


@dataclass(slots=True)
class BatchConfig:
    """Everything one run needs besides the documents; built by `extract.batch`."""

    schema: Any
    extractor: Any
    concurrency: int = 32
    ordered: bool = False
    reorder_limit: int | None = None
    output: str | Path | None = None
    input_key: str | None = None  # names the input in the output's .meta (see _guard)
    retry_failed: bool = True
    instructions: str | None = None
    call_options: dict[str, Any] = field(default_factory=dict)
    owns_extractor: bool = False
    on_outcome: Callable[[Outcome | None, BatchStats], None] | None = None  # None: a skipped document
    on_resume: Callable[[Resumed, BatchStats], None] | None = None
    stats: BatchStats = field(default_factory=BatchStats)

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ConfigurationError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.reorder_limit is not None and self.reorder_limit < 1:
            raise ConfigurationError(f"reorder_limit must be at least 1, got {self.reorder_limit}")


def _last_latency(result: Any) -> float | None:
    attempts = getattr(result, "attempts", None)
    if attempts:
        latency = getattr(attempts[-1], "latency_s", None)
        if isinstance(latency, (int, float)):
            return float(latency)
    return None


class _Runner:
    def __init__(self, config: BatchConfig) -> None:
        self.config = config
        self.stats = config.stats
        self.window = AdaptiveLimit(config.concurrency)
        limiter = getattr(config.extractor, "limiter", None)
        self.limiter = limiter if isinstance(limiter, RateLimiter) else None
        self.throttled_seen = self.limiter.stats().throttled if self.limiter is not None else 0
        self.seen_ids: set[DocId] = set()
        self.held: list[Outcome] = []  # could not connect, not yet known whether the server is down
        self.reached = False  # some document got an answer from the server

    def hold(self, outcome: Outcome) -> list[Outcome]:
        """The outcomes to finish now: connection failures wait until the server shows it is alive."""
        if isinstance(outcome.error, APIConnectionError) and not isinstance(outcome.error, APITimeoutError):
            self.held.append(outcome)
            limit = _UNREACHABLE_LATER if self.reached else _UNREACHABLE_FIRST
            if len(self.held) >= max(limit, 1):
                raise self.unreachable(outcome.error)
            return []
        if not isinstance(outcome.error, APITimeoutError):
            self.reached = True
        released, self.held = [*self.held, outcome], []
        return released

    def release_at_end(self) -> list[Outcome]:
        """Nothing is in flight: held failures are real failures if the server ever answered, else it is down."""
        if self.held and not self.reached:
            error = self.held[-1].error
            raise self.unreachable(error if isinstance(error, APIConnectionError) else APIConnectionError(""))
        released, self.held = self.held, []
        return released

    def unreachable(self, last: APIConnectionError) -> ServerUnreachable:
        base_url = getattr(self.config.extractor, "base_url", None) or "the server"
        error = ServerUnreachable(
            f"cannot reach {base_url}: {len(self.held)} documents in a row failed to connect ({last}). "
            "Check base_url and that the server is running, then rerun: those documents and the unsent "
            "ones were not written and will be sent then",
            status_code=None,
        )
        self.held.clear()
        return error

    async def one(self, doc: Doc) -> Outcome:
        """Extract one document; every failure becomes an error outcome, only cancellation escapes."""
        cfg = self.config
        started = time.monotonic()
        try:
            result = await cfg.extractor.aextract(
                cfg.schema, doc.text, instructions=cfg.instructions, full=True, **cfg.call_options
            )
        except ExtractionFailed as exc:
            usage = exc.usage if isinstance(exc.usage, Usage) else Usage()
            return Outcome(
                doc.id, doc.index, error=exc, usage=usage, attempts=len(exc.attempts), seconds=_since(started)
            )
        except FATAL:
            raise
        except ExtractError as exc:
            return Outcome(doc.id, doc.index, error=exc, seconds=_since(started))
        except Exception as exc:
            # a bug, not a document problem: keep the batch going, but loudly
            logger.exception("unexpected error on document %r", doc.id)
            error = ExtractError(f"unexpected {type(exc).__name__} on this document: {exc}")
            error.__cause__ = exc
            return Outcome(doc.id, doc.index, error=error, seconds=_since(started))
        spent = getattr(result, "usage", None)
        attempts = getattr(result, "attempts", None)
        outcome = Outcome(
            doc.id,
            doc.index,
            value=getattr(result, "value", result),
            usage=spent if isinstance(spent, Usage) else Usage(),
            attempts=len(attempts) if isinstance(attempts, list) else 1,
            seconds=_since(started),
            evidence=getattr(result, "evidence", None),
            complete=getattr(result, "complete", True) is not False,
            missing=tuple(getattr(result, "missing", ()) or ()),
            dropped=dict(getattr(result, "dropped", None) or {}),
        )
        self.window.on_success(_last_latency(result), time.monotonic())
        return outcome

    def account(self, outcome: Outcome) -> None:
        stats = self.stats
        if outcome.ok:
            stats.done += 1
            if not outcome.complete:
                stats.incomplete += 1
        else:
            stats.failed += 1
        stats.tokens += outcome.usage.total_tokens
        stats.cached_tokens += outcome.usage.cached_tokens
        if self.limiter is not None:
            throttled = self.limiter.stats().throttled
            if throttled > self.throttled_seen:
                self.window.on_throttled(time.monotonic())
            stats.throttled += throttled - self.throttled_seen
            self.throttled_seen = throttled
        elif isinstance(outcome.error, RateLimitError):
            stats.throttled += 1
            self.window.on_throttled(time.monotonic())
        stats.concurrency = self.window.limit

    def input_error(self, doc: Doc, message: str) -> Outcome:
        return Outcome(doc.id, doc.index, error=InputError(message))

    def check_duplicate(self, doc: Doc, default_id: bool) -> str | None:
        """Explicit ids must be unique: they key the checkpoint. Index ids are unique by construction."""
        if default_id:
            return None
        if doc.id in self.seen_ids:
            return (
                f"duplicate id {doc.id!r} (document {doc.index}): ids must be unique because they key the "
                "output file; this document was not sent, the first one with this id was"
            )
        self.seen_ids.add(doc.id)
        return None


def _since(started: float) -> float:
    return time.monotonic() - started


async def run_batch(
    config: BatchConfig, documents: Iterable[Any] | AsyncIterable[Any]
) -> AsyncGenerator[Outcome, None]:
    """Yield one Outcome per document not already done in `config.output`."""
    runner = _Runner(config)
    stats = config.stats
    store: Checkpoint | None = None
    done_before: set[DocId] = set()
    if config.output is not None:
        job = Job(schema_fingerprint(config.schema), config.input_key)
        store = Checkpoint(config.output, job=job)
        store.acquire()
        try:
            resumed = store.load(retry_failed=config.retry_failed)
            store.open()
        except BaseException:
            store.close()
            raise
        done_before = resumed.done | resumed.failed | resumed.incomplete
        if config.on_resume is not None:
            config.on_resume(resumed, stats)
    reorder_limit = config.reorder_limit or max(4 * config.concurrency, 256)
    source = iter_docs(documents)
    pending: dict[asyncio.Task[Outcome], Doc] = {}
    buffered: dict[int, Outcome | None] = {}  # ordered mode: index -> outcome (None: skipped)
    next_index = 0  # ordered mode: the next index to hand out
    exhausted = False

    def finish(outcome: Outcome) -> None:
        runner.account(outcome)
        if store is not None:
            store.append(outcome.to_json())
        if config.on_outcome is not None:
            config.on_outcome(outcome, stats)

    try:
        while True:
            ready: list[Outcome] = []
            while not exhausted and len(pending) < runner.window.limit:
                if config.ordered and len(pending) + len(buffered) >= reorder_limit:
                    break  # the head-of-line document is slow: do not let the buffer grow
                try:
                    doc = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                default_id = doc.id == doc.index and doc.problem is None and isinstance(doc.id, int)
                if doc.id in done_before:
                    stats.skipped += 1
                    if config.on_outcome is not None:
                        config.on_outcome(None, stats)
                    if config.ordered:
                        buffered[doc.index] = None
                    continue
                problem = doc.problem or runner.check_duplicate(doc, default_id)
                if problem is not None:
                    outcome = runner.input_error(doc, problem)
                    finish(outcome)
                    ready.append(outcome)
                    continue
                task = asyncio.ensure_future(runner.one(doc))
                pending[task] = doc
            if not ready and not pending and runner.held:
                # nothing in flight can tell whether the server is alive (the input is done, or ordered
                # mode waits on a held document): decide now
                for outcome in runner.release_at_end():
                    finish(outcome)
                    ready.append(outcome)
            if not ready and not pending:
                if exhausted:
                    break
                if config.ordered and buffered:
                    pass  # only skipped entries left in the buffer: flushed below
                else:
                    continue
            if not ready and pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    pending.pop(task)
                    for outcome in runner.hold(task.result()):
                        finish(outcome)
                        ready.append(outcome)
            if not config.ordered:
                for outcome in ready:
                    yield outcome
                continue
            for outcome in ready:
                buffered[outcome.index] = outcome
            while next_index in buffered:
                item = buffered.pop(next_index)
                next_index += 1
                if item is not None:
                    yield item
    finally:
        stats.finished = time.monotonic()
        try:
            await _abandon(pending)
        finally:
            if store is not None:
                store.close()
            if config.owns_extractor:
                await config.extractor.aclose()
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()


async def _abandon(pending: dict[asyncio.Task[Outcome], Doc]) -> None:
    """Cancel what is still in flight and wait (briefly) for the cancellations to land."""
    if not pending:
        return
    for task in pending:
        task.cancel()
    done, still = await asyncio.wait(pending, timeout=_CANCEL_GRACE_S)
    for task in done:
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log "exception was never retrieved"
    if still:
        logger.warning("%d in-flight requests did not stop within %.0fs", len(still), _CANCEL_GRACE_S)
