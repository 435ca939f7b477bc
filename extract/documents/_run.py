"""One document's chunked extraction, as a generator of waves of chunk jobs. No I/O.

`run_document` yields a list of `ChunkTask`s and is sent back, in the same order, what each chunk's
extraction ended with (its Result, or the ExtractError that ended it). The drivers below run a wave's
tasks (the sync one on a thread pool, the async one as tasks on the running loop, both at most
`concurrency` at once) and the decisions live here once: a chunk the server refuses as too long for
its context is split again smaller (at most `MAX_RESPLITS` times, each strictly smaller: never a loop),
a chunk that fails otherwise is recorded (or, with on_chunk_error="raise", ends the document), and the
chunks' values are merged by the schema and checked against the user's full schema.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from extract.documents._merge import Part, merge_parts
from extract.documents._sizes import MIN_CHUNK_TOKENS
from extract.documents._split import split_text
from extract.documents._tokens import estimate_tokens
from extract.errors import ContextLengthError, ExtractError, ExtractionFailed, ValidationFailed
from extract.results import Attempt, ChunkReport, Result, Usage, sum_time_info

__all__ = [
    "CHUNK_CONCURRENCY",
    "MAX_RESPLITS",
    "ChunkTask",
    "DocumentIncomplete",
    "DocumentPlan",
    "drive_document_async",
    "drive_document_sync",
    "run_document",
]

CHUNK_CONCURRENCY = 8  # chunks of one document in flight at once (the Extractor's limiter paces them too)
MAX_RESPLITS = 3

OnChunkError = Literal["keep", "raise"]
T = TypeVar("T")


class DocumentIncomplete(ExtractionFailed):
    """A split document could not be extracted whole: a chunk failed (with on_chunk_error="raise"), or
    the merged value does not satisfy the full schema. `partial` is the Result with what was found (its
    `value` is the merged JSON, unvalidated; `missing` names the character ranges of the failed chunks)."""

    def __init__(self, message: str, *, partial: Result) -> None:
        self.partial = partial
        super().__init__(message, attempts=partial.attempts, usage=partial.usage)


@dataclass(frozen=True, slots=True)
class ChunkTask:
    """Extract characters [start, end) of the document (`text` is that slice)."""

    start: int
    end: int
    text: str
    depth: int = 0  # how many times this range was split again after a context-length refusal


@dataclass(frozen=True, slots=True)
class DocumentPlan:
    """What a document's run needs to know. `budget(limit)`: the chunk tokens a context window of
    `limit` tokens leaves (and remembers that limit for the server and model); `finish`: the merged
    JSON checked against the user's full schema (raises ValidationFailed)."""

    chunk_tokens: int
    overlap_tokens: int
    on_chunk_error: OnChunkError
    user_schema: Mapping[str, Any]
    model: str
    budget: Callable[[int | None, int], int]
    finish: Callable[[Any], Any]
    confidence: Callable[[ChunkTask, Result], Mapping[str, float]] | None = None
    # evidence=True: the merged value's evidence, given each merged leaf's confidence from the chunk reply
    # it came from (`confidence` must then be set, so the chunks' confidences are read)
    evidence: Callable[[Any, Mapping[str, float]], Mapping[str, Any]] | None = None


def _split(document: str, start: int, end: int, tokens: int, overlap: int, depth: int) -> list[ChunkTask]:
    piece = document[start:end]
    return [
        ChunkTask(start + c.start, start + c.end, document[start + c.start : start + c.end], depth)
        for c in split_text(piece, tokens, min(overlap, tokens // 2))
    ]


def _missing(
    failed: Sequence[tuple[int, int]], done: Sequence[tuple[int, int]]
) -> tuple[tuple[int, int], ...]:
    """The parts of the failed ranges that no successful chunk covers (overlaps may cover some)."""
    out: list[tuple[int, int]] = []
    covered = sorted(done)
    for start, end in sorted(failed):
        cursor = start
        for s, e in covered:
            if e <= cursor or s >= end:
                continue
            if s > cursor:
                out.append((cursor, s))
            cursor = max(cursor, e)
        if cursor < end:
            out.append((cursor, end))
    merged: list[tuple[int, int]] = []
    for start, end in out:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _attempts_of(outcome: Result | ExtractError) -> list[Attempt]:
    if isinstance(outcome, Result):
        return list(outcome.attempts)
    if isinstance(outcome, ExtractionFailed):
        return list(outcome.attempts)
    return []


def _usage_of(outcome: Result | ExtractError) -> Usage:
    if isinstance(outcome, Result):
        return outcome.usage
    used = getattr(outcome, "usage", None)
    return used if isinstance(used, Usage) else Usage()


def run_document(
    document: str, plan: DocumentPlan
) -> Generator[list[ChunkTask], list[Result | ExtractError], Result]:
    """Extract `document` chunk by chunk; returns the merged Result or raises DocumentIncomplete."""
    wave = _split(document, 0, len(document), plan.chunk_tokens, plan.overlap_tokens, 0)
    finished: list[tuple[ChunkTask, Result | ExtractError]] = []
    while wave:
        outcomes = yield wave
        again: list[ChunkTask] = []
        failed = False
        for task, outcome in zip(wave, outcomes, strict=True):
            if isinstance(outcome, ContextLengthError) and task.depth < MAX_RESPLITS:
                size = estimate_tokens(task.text)
                tokens = min(plan.budget(outcome.limit, size), size // 2)
                if tokens >= MIN_CHUNK_TOKENS:
                    again.extend(
                        _split(document, task.start, task.end, tokens, plan.overlap_tokens, task.depth + 1)
                    )
                    continue
            finished.append((task, outcome))
            failed = failed or not isinstance(outcome, Result)
        if failed and plan.on_chunk_error == "raise":
            # this wave's values are kept for the partial result; ranges waiting to be split again are lost
            skipped = ExtractError("not extracted: another chunk failed and on_chunk_error='raise'")
            finished.extend((task, skipped) for task in again)
            break
        wave = again
    return _conclude(document, plan, finished)


def _conclude(
    document: str, plan: DocumentPlan, finished: list[tuple[ChunkTask, Result | ExtractError]]
) -> Result:
    finished.sort(key=lambda pair: (pair[0].start, pair[0].end))
    attempts: list[Attempt] = []
    usage = Usage()
    reports: list[ChunkReport] = []
    parts: list[Part] = []
    failed: list[tuple[int, int]] = []
    mode = ""
    first_error: ExtractError | None = None
    for task, outcome in finished:
        tried = _attempts_of(outcome)
        attempts.extend(tried)
        usage = usage + _usage_of(outcome)
        if isinstance(outcome, Result):
            found = plan.confidence(task, outcome) if plan.confidence is not None else None
            parts.append(Part(task.start, task.end, outcome.value, found))
            mode = mode or outcome.mode
            reports.append(ChunkReport(task.start, task.end, len(tried), outcome.usage))
        else:
            first_error = first_error or outcome
            failed.append((task.start, task.end))
            reports.append(ChunkReport(task.start, task.end, len(tried), _usage_of(outcome), str(outcome)))
    scores: dict[str, float] = {}
    merged, disagreements = merge_parts(plan.user_schema, parts, scores)
    missing = _missing(failed, [(p.start, p.end) for p in parts])
    partial = Result(
        value=merged,
        attempts=attempts,
        usage=usage,
        time_info=sum_time_info(a.time_info for a in attempts),
        mode=mode,
        model=plan.model,
        complete=not failed,
        chunks=tuple(reports),
        missing=missing,
        disagreements=tuple(disagreements),
    )
    if first_error is not None and plan.on_chunk_error == "raise":
        where = ", ".join(f"{s}-{e}" for s, e in missing) or "(covered by overlaps)"
        raise DocumentIncomplete(
            f"a chunk of the document failed (characters {where} of {len(document)}): {first_error}. "
            "The partial value is in .partial; pass on_chunk_error='keep' to get it as a Result with "
            "complete=False instead.",
            partial=partial,
        ) from first_error
    try:
        value = plan.finish(merged)
    except ValidationFailed as exc:
        note = (
            f" ({len(failed)} of {len(reports)} chunks failed, first: {first_error})"
            if first_error is not None
            else ""
        )
        raise DocumentIncomplete(
            f"the value merged from {len(reports)} chunks does not satisfy the schema{note}: {exc}. "
            "The merged value is in .partial.value.",
            partial=partial,
        ) from exc
    return Result(
        value=value,
        attempts=attempts,
        usage=usage,
        time_info=partial.time_info,
        mode=mode,
        model=plan.model,
        complete=partial.complete,
        chunks=partial.chunks,
        missing=missing,
        disagreements=partial.disagreements,
        evidence=plan.evidence(value, scores) if plan.evidence is not None else None,
    )


def drive_document_sync(
    gen: Generator[list[ChunkTask], list[Result | ExtractError], T],
    run_chunk: Callable[[ChunkTask], Result],
    concurrency: int = CHUNK_CONCURRENCY,
) -> T:
    """Run the waves on a thread pool (the Extractor and its transport are thread-safe)."""

    def one(task: ChunkTask) -> Result | ExtractError:
        try:
            return run_chunk(task)
        except ExtractError as exc:
            return exc

    try:
        wave = next(gen)
        with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="extract-chunk") as pool:
            while True:
                outcomes = list(pool.map(one, wave)) if len(wave) > 1 else [one(t) for t in wave]
                wave = gen.send(outcomes)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()


async def drive_document_async(
    gen: Generator[list[ChunkTask], list[Result | ExtractError], T],
    run_chunk: Callable[[ChunkTask], Awaitable[Result]],
    concurrency: int = CHUNK_CONCURRENCY,
) -> T:
    """Run the waves as tasks on the running loop, at most `concurrency` at once."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(task: ChunkTask) -> Result | ExtractError:
        async with gate:
            try:
                return await run_chunk(task)
            except ExtractError as exc:
                return exc

    try:
        wave = next(gen)
        while True:
            outcomes = list(await asyncio.gather(*(one(t) for t in wave)))
            wave = gen.send(outcomes)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    finally:
        gen.close()
