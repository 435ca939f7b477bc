"""The callable class `map_batches` runs in each actor of the pool: one Extractor per actor, each batch run
by the batch engine (`run_batch`: bounded concurrency, AIMD on 429s) on the actor's own event loop.

A document that fails is a row with `error` set; only errors about the setup (a bad key, an unknown model
or URL, a server nobody answers at) fail the task, as they stop `extract_many`, since every other document
would fail the same way.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from extract._batch._engine import BatchConfig, run_batch
from extract._batch._outcome import BatchStats, Outcome, evidence_json, to_jsonable, usage_json
from extract.errors import ConfigurationError, InputError
from extract.ratelimit import Limiter
from extract.ray._arrow import ERROR_COLUMN, EVIDENCE_COLUMN, USAGE_COLUMN, VALUE_COLUMN, build_table
from extract.ray._resume import TEXT_DIGEST, DocId, ResultStore, normalise_id, text_digest
from extract.ray._secret import SecretKey

if TYPE_CHECKING:
    import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["ExtractWorker", "WorkerSpec"]


def _make_limiter(name: str) -> Limiter:
    """The one place that picks a worker's limiter: a lease on the job's cluster-wide limiter actor `name`
    (started on the driver by `extract_dataset`), so N actors together stay under the provider's limit."""
    from extract.ray._limiter import ClusterLimiter

    return ClusterLimiter(name)


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What every actor needs, built once on the driver; picklable (the key travels masked, see _secret)."""

    schema: Any
    text_column: str
    id_column: str
    fields: tuple[str, ...]  # value columns, in schema order
    field_types: Mapping[str, pa.DataType | None]  # see _arrow.arrow_type
    keep_columns: bool
    per_worker_concurrency: int
    instructions: str | None
    extractor_options: Mapping[str, Any]
    call_options: Mapping[str, Any] = field(default_factory=dict)
    secret: Any = None  # an ObjectRef to a SecretKey (ray.put on the driver), a SecretKey, or None
    limiter_name: str = "extract-limiter"
    limiter_actor: Any = None  # the driver's handle: referenced here so the actor lives as long as the job
    output: str | None = None


@dataclass(slots=True)
class _Row:
    value: Any = None  # JSON-shaped (pydantic models dumped in JSON mode)
    error: str | None = None
    usage: dict[str, int] | None = None
    evidence: str | None = None  # JSON text, with evidence=True


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


class ExtractWorker:
    """map_batches(ExtractWorker, fn_constructor_kwargs={"spec": ...}, batch_format="pyarrow")."""

    def __init__(self, spec: WorkerSpec) -> None:
        from extract.core import Extractor

        self._spec = spec
        options = dict(spec.extractor_options)
        secret = spec.secret
        if secret is not None and not isinstance(secret, SecretKey):
            import ray

            secret = ray.get(secret)
        if isinstance(secret, SecretKey):
            options["api_key"] = secret.reveal()
        options.setdefault("limiter", _make_limiter(spec.limiter_name))
        self._extractor = Extractor(**options)
        self._loop = asyncio.new_event_loop()
        self._store: ResultStore | None = None
        if spec.output is not None:
            self._store = ResultStore(spec.output, uuid.uuid4().hex)

    def __repr__(self) -> str:
        return f"ExtractWorker(text_column={self._spec.text_column!r}, output={self._spec.output!r})"

    def __call__(self, batch: pa.Table) -> pa.Table:
        return self._loop.run_until_complete(self._run(batch))

    async def _run(self, batch: pa.Table) -> pa.Table:
        spec = self._spec
        names = batch.column_names
        for column in (spec.text_column, spec.id_column):
            if column not in names:
                shown = ", ".join(repr(n) for n in names[:20])
                raise ConfigurationError(f"the dataset has no column {column!r}; its columns are: {shown}")
        if spec.keep_columns:
            added = (*(spec.fields or (VALUE_COLUMN,)), ERROR_COLUMN, USAGE_COLUMN, EVIDENCE_COLUMN)
            clash = [n for n in names if n in added and n != spec.id_column]
            if clash and (clash != [EVIDENCE_COLUMN] or spec.call_options.get("evidence")):
                raise ConfigurationError(
                    f"the dataset already has column(s) {', '.join(map(repr, clash))}, which extract_dataset "
                    "adds; pass keep_columns=False, or drop or rename those input columns"
                )
        texts: list[Any] = batch.column(spec.text_column).to_pylist()
        raw_ids: list[Any] = batch.column(spec.id_column).to_pylist()
        rows = [_Row() for _ in texts]
        ids: list[DocId | None] = [normalise_id(raw) for raw in raw_ids]
        store = self._store
        stored: dict[DocId, dict[str, Any]] = {}
        if store is not None:
            store.refresh()
            stored = store.stored(i for i in ids if i is not None)
        todo: list[tuple[int, str]] = []
        taken: set[DocId] = set()  # with output: ids this batch sends (a second one would share their line)
        for pos, (doc_id, text) in enumerate(zip(ids, texts, strict=True)):
            if store is not None and doc_id is None:
                rows[pos].error = _describe(
                    InputError(
                        f"id {raw_ids[pos]!r} in column {spec.id_column!r} cannot key the output: ids must be "
                        "unique strings or integers; this document was not sent"
                    )
                )
            elif doc_id is not None and doc_id in stored:
                line = stored[doc_id]
                if isinstance(text, str) and line.get(TEXT_DIGEST, text_digest(text)) != text_digest(text):
                    rows[pos].error = _describe(
                        InputError(
                            f"id {doc_id!r} is already in the output for another text (a duplicate id, or the "
                            "text changed since): ids must be unique; this document was not sent. Delete its "
                            "line from the output directory to extract it again"
                        )
                    )
                else:
                    rows[pos] = _Row(
                        value=line.get("value"), usage=_usage(line.get("usage")), evidence=_evidence(line)
                    )
            elif store is not None and doc_id in taken:
                rows[pos].error = _describe(
                    InputError(
                        f"duplicate id {doc_id!r} in this batch: ids must be unique because they key the output; "
                        "this document was not sent, the first one with this id was"
                    )
                )
            elif not isinstance(text, str):
                got = "null" if text is None else f"a {type(text).__name__}"
                rows[pos].error = _describe(
                    InputError(
                        f"column {spec.text_column!r} holds {got}, not a string; this document was not sent"
                    )
                )
            else:
                todo.append((pos, text))
                if doc_id is not None:
                    taken.add(doc_id)
        if todo:
            await self._extract(todo, ids, texts, rows)
        if store is not None:
            store.sync()
        return build_table(
            batch,
            spec.fields,
            spec.field_types,
            values=[row.value for row in rows],
            errors=[row.error for row in rows],
            usages=[row.usage for row in rows],
            keep_columns=spec.keep_columns,
            id_column=spec.id_column,
            evidence=[row.evidence for row in rows] if spec.call_options.get("evidence") else None,
        )

    async def _extract(
        self,
        todo: Sequence[tuple[int, str]],
        ids: Sequence[DocId | None],
        texts: Sequence[Any],
        rows: list[_Row],
    ) -> None:
        spec = self._spec
        store = self._store

        def finished(outcome: Outcome | None, stats: BatchStats) -> None:
            del stats
            if outcome is None:
                return
            pos = int(outcome.id)  # the documents went in as (position in the batch, text)
            row = rows[pos]
            row.usage = usage_json(outcome.usage)
            if outcome.error is not None:
                row.error = _describe(outcome.error)
                return
            row.value = to_jsonable(outcome.value)
            found = evidence_json(outcome.evidence) if outcome.evidence is not None else None
            if found is not None:
                row.evidence = orjson.dumps(found, option=orjson.OPT_NON_STR_KEYS).decode()
            doc_id = ids[pos]
            if store is not None and doc_id is not None and outcome.complete:
                line: dict[str, Any] = {
                    "id": doc_id,
                    "value": row.value,
                    "usage": row.usage,
                    TEXT_DIGEST: text_digest(texts[pos]),
                }
                if found is not None:
                    line["evidence"] = found
                store.append(line)

        config = BatchConfig(
            schema=spec.schema,
            extractor=self._extractor,
            concurrency=spec.per_worker_concurrency,
            instructions=spec.instructions,
            call_options=dict(spec.call_options),
            owns_extractor=False,
            on_outcome=finished,
        )
        async for _ in run_batch(config, todo):
            pass


def _evidence(line: Mapping[str, Any]) -> str | None:
    found = line.get("evidence")
    return (
        orjson.dumps(found, option=orjson.OPT_NON_STR_KEYS).decode() if isinstance(found, Mapping) else None
    )


def _usage(raw: Any) -> dict[str, int] | None:
    if not isinstance(raw, Mapping):
        return None
    return {k: int(v) for k, v in raw.items() if isinstance(v, int) and not isinstance(v, bool)}
