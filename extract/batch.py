"""Many documents: bounded-memory concurrent runs that respect rate limits, checkpoint and resume.

    from extract import extract_many

    for outcome in extract_many(Invoice, texts, output="invoices.jsonl", base_url=..., model=...):
        print(outcome.id, outcome.value if outcome.ok else outcome.error)

`documents` is any iterable or async iterable of strings, (id, text) pairs or {"id", "text"} dicts, read
lazily: only the documents in flight (and, with ordered=True, a bounded reorder buffer) are in memory.
Ids default to the input index; explicit ids must be unique (a repeated id gets an error outcome and is
not sent).

Every document yields exactly one Outcome, errors included (a failing document never stops the others),
except documents already in `output`. Errors about the setup rather than a document (a bad key (401/403), an
unknown model or URL (404), a ConfigurationError) stop the run and are raised, since every document would
fail the same way. With `output`, results are appended to that JSONL file as they finish (in completion
order, also when ordered=True) and a rerun of the same job skips the ids that have a value there. Ids that failed are retried on rerun
(their error lines are removed first) unless retry_failed=False; so are long documents left incomplete (a
chunk failed: their line has `"complete": false` and the `"missing"` character ranges).

The output is guarded (see `_batch/_guard`): one run writes it at a time (a lock on `OUT.lock`; a second
run is refused with a message naming the first), and `OUT.meta` records the job (a fingerprint of the
schema, and `input_key` when given), so a rerun resumes only its own output; an output holding lines of
another job, or lines without a `.meta`, is refused with nothing touched. If many documents in a row
cannot connect to the server, the run stops with ServerUnreachable and those documents are not written,
so a rerun sends them. Stopping early (break, Ctrl-C, task
cancellation) cancels what is in flight and keeps every line already written; rerun to resume.

`aextract_many` is the engine (an async iterator); `extract_many` runs it on a private event loop in a
background thread, so both behave the same.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from extract._batch._checkpoint import Resumed
from extract._batch._engine import BatchConfig, run_batch
from extract._batch._outcome import BatchStats, Outcome
from extract._batch._progress import Progress
from extract._batch._sync import ThreadedIterator
from extract.errors import ConfigurationError
from extract.ratelimit import RateLimiter

__all__ = ["AsyncBatch", "Batch", "BatchStats", "Outcome", "aextract_many", "extract_many"]

DEFAULT_CONCURRENCY = 32

Documents = Iterable[Any] | AsyncIterable[Any]


# per-call options (chunking, evidence) go to every aextract call, not to the Extractor
_PER_CALL = ("chunking", "chunk_tokens", "overlap_tokens", "on_chunk_error", "evidence", "require_grounding")


class _Job:
    """The parts shared by the sync and async faces: configuration, progress, stats."""

    def __init__(
        self,
        schema: Any,
        documents: Documents,
        *,
        concurrency: int,
        extractor: Any | None,
        ordered: bool,
        output: str | Path | None,
        input_key: str | None,
        retry_failed: bool,
        instructions: str | None,
        progress: bool | Progress,
        total: int | None,
        reorder_limit: int | None,
        notebook: bool,
        options: dict[str, Any],
    ) -> None:
        # per-call options (chunking: extract/documents/, evidence=, require_grounding=) go to every
        # aextract call, not to the Extractor
        call_options = {k: options.pop(k) for k in _PER_CALL if k in options}
        if extractor is not None and options:
            raise ConfigurationError(
                f"pass either extractor= or Extractor options ({', '.join(sorted(options))}), not both: "
                "set those options on your Extractor"
            )
        if total is None and hasattr(documents, "__len__"):
            total = len(documents)  # type: ignore[arg-type]
        self.stats = BatchStats(total=total)
        self.resumed: Resumed | None = None
        self._documents = documents
        self._options = options
        self._progress: Progress | None
        if isinstance(progress, Progress):
            self._progress = progress
        elif progress:
            self._progress = Progress(total=total, notebook=notebook)
        else:
            self._progress = None
        self._config = BatchConfig(
            schema=schema,
            extractor=extractor,
            concurrency=concurrency,
            ordered=ordered,
            reorder_limit=reorder_limit,
            output=output,
            input_key=input_key,
            retry_failed=retry_failed,
            instructions=instructions,
            owns_extractor=extractor is None,
            on_outcome=self._progress.update if self._progress is not None else None,
            on_resume=self._on_resume,
            stats=self.stats,
            call_options=call_options,
        )

    def _on_resume(self, resumed: Resumed, stats: BatchStats) -> None:
        del stats
        self.resumed = resumed

    async def iterate(self) -> AsyncGenerator[Outcome, None]:
        if self._config.extractor is None:
            from extract.core import Extractor

            options = dict(self._options)
            options.setdefault("limiter", RateLimiter())
            self._config.extractor = Extractor(**options)
        inner = run_batch(self._config, self._documents)
        try:
            async for outcome in inner:
                yield outcome
        finally:
            # closed here, not left to garbage collection: in-flight work stops now
            await inner.aclose()
            if self._progress is not None:
                self._progress.close(self.stats)


class AsyncBatch:
    """`async for outcome in aextract_many(...)`; `.stats` holds the running totals."""

    def __init__(self, job: _Job) -> None:
        self._job = job
        self._iterator: AsyncIterator[Outcome] | None = None

    @property
    def stats(self) -> BatchStats:
        return self._job.stats

    @property
    def resumed(self) -> Resumed | None:
        """What `output` already held when the run started (None before that, or without output)."""
        return self._job.resumed

    def __aiter__(self) -> AsyncIterator[Outcome]:
        if self._iterator is None:
            self._iterator = self._job.iterate()
        return self._iterator

    async def aclose(self) -> None:
        """Stop early: cancel in-flight documents, keep what was written."""
        iterator = self._iterator
        if iterator is not None:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                await aclose()

    async def __aenter__(self) -> AsyncBatch:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


class Batch:
    """`for outcome in extract_many(...)`; use it in a `with` block (or call close()) to stop early cleanly."""

    def __init__(self, job: _Job, buffer: int) -> None:
        self._job = job
        self._buffer = buffer
        self._iterator: ThreadedIterator[Outcome] | None = None

    @property
    def stats(self) -> BatchStats:
        return self._job.stats

    @property
    def resumed(self) -> Resumed | None:
        """What `output` already held when the run started (None before that, or without output)."""
        return self._job.resumed

    def __iter__(self) -> Iterator[Outcome]:
        if self._iterator is None:
            self._iterator = ThreadedIterator(self._job.iterate, buffer=self._buffer)
        return self._iterator

    def close(self, timeout: float | None = None) -> None:
        """Stop early; wait at most `timeout` seconds (default 10) for in-flight work to wind down."""
        if self._iterator is not None:
            self._iterator.close(timeout)

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def aextract_many(
    schema: Any,
    documents: Documents,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    extractor: Any | None = None,
    ordered: bool = False,
    output: str | Path | None = None,
    input_key: str | None = None,
    retry_failed: bool = True,
    instructions: str | None = None,
    progress: bool | Progress = False,
    total: int | None = None,
    reorder_limit: int | None = None,
    **options: Any,
) -> AsyncBatch:
    """Extract `schema` from every document concurrently; an async iterator of Outcomes.

    Args:
        concurrency: most documents in flight; the run starts there, halves on 429s and climbs back.
        extractor: an Extractor to use (its limiter, if a RateLimiter, also steers concurrency); by default
            one is built from `**options` (base_url, api_key, model, ...) with a shared RateLimiter.
        ordered: yield in input order (holding at most `reorder_limit` finished documents back).
        output: JSONL checkpoint file; a rerun skips ids that already have a value there.
        input_key: names the input (any string, e.g. a path); recorded in the output's `.meta`, and a rerun
            with another key (or another schema) is refused rather than mixing two jobs in one file.
        retry_failed: on rerun, retry ids whose line in `output` is an error or an incomplete document
            (else skip them too).
        progress: show a progress bar (tqdm, or a plain line on stderr when tqdm is missing).
        total: number of documents, for the progress bar's ETA (taken from len(documents) when it has one).
        evidence / require_grounding (in `**options`): as for `extract`, per document; with evidence=True
            each Outcome has `.evidence` and its output line an "evidence" object.
    """
    job = _Job(
        schema,
        documents,
        concurrency=concurrency,
        extractor=extractor,
        ordered=ordered,
        output=output,
        input_key=input_key,
        retry_failed=retry_failed,
        instructions=instructions,
        progress=progress,
        total=total,
        reorder_limit=reorder_limit,
        notebook=True,
        options=options,
    )
    return AsyncBatch(job)


def extract_many(
    schema: Any,
    documents: Documents,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    extractor: Any | None = None,
    ordered: bool = False,
    output: str | Path | None = None,
    input_key: str | None = None,
    retry_failed: bool = True,
    instructions: str | None = None,
    progress: bool | Progress = False,
    total: int | None = None,
    reorder_limit: int | None = None,
    **options: Any,
) -> Batch:
    """Blocking twin of `aextract_many` (same arguments): an iterator of Outcomes as documents finish."""
    job = _Job(
        schema,
        documents,
        concurrency=concurrency,
        extractor=extractor,
        ordered=ordered,
        output=output,
        input_key=input_key,
        retry_failed=retry_failed,
        instructions=instructions,
        progress=progress,
        total=total,
        reorder_limit=reorder_limit,
        notebook=True,
        options=options,
    )
    return Batch(job, buffer=max(64, concurrency))
