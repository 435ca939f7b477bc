"""Batch extraction on Ray Data: `extract_dataset(ds, Schema, text_column=...)` -> a lazy Dataset.

    import ray, extract.ray
    ds = ray.data.read_parquet("s3://bucket/docs/")
    out = extract.ray.extract_dataset(ds, Invoice, text_column="body", model="gpt-oss-120b",
                                      concurrency=8, per_worker_concurrency=64)
    out.write_parquet("s3://bucket/invoices/")

Workers are an actor pool (`map_batches` with `_worker.ExtractWorker`): each actor holds one Extractor and
runs every batch through the batch engine with `per_worker_concurrency` documents in flight. The API key is
resolved on the driver and reaches the workers masked (`_secret`); with `output=DIR` every finished document
is written there as it finishes and skipped by task retries and reruns (`_resume`). The result's columns are
described in `_arrow`. All actors share one rate limit through a limiter actor (`start_limiter`, and a
`ClusterLimiter` in each worker: `_limiter`). Needs the `ray` extra: `pip install "extract-llm[ray]"`; `import extract` never
imports Ray.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from extract.errors import ConfigurationError

if TYPE_CHECKING:
    from ray.data import Dataset

from extract.ray._limiter import ClusterLimiter, start_limiter

__all__ = ["ClusterLimiter", "extract_dataset", "start_limiter"]

_INSTALL = 'pip install "extract-llm[ray]"'
# options that configure the run, never the Extractor; each would be wrong or unpicklable in a worker
_REFUSED = {
    "transport": "a transport is one process's connection pool; pass base_url/api_key and each worker opens its own",
    "extractor": "workers build their own Extractor from these options; pass its settings instead",
}


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ConfigurationError(f"extract.ray needs Ray Data ({exc}): {_INSTALL}") from None
    return ray


def extract_dataset(
    ds: Dataset,
    schema: Any,
    *,
    text_column: str,
    id_column: str = "id",
    concurrency: int | tuple[int, int] = 2,
    per_worker_concurrency: int = 32,
    output: str | os.PathLike[str] | None = None,
    keep_columns: bool = True,
    batch_size: int | None = None,
    instructions: str | None = None,
    rpm: int | None = None,
    tpm: int | None = None,
    num_cpus: float = 0.5,
    ray_remote_args: Mapping[str, Any] | None = None,
    **options: Any,
) -> Dataset:
    """Extract `schema` from every row's `text_column`; a lazy Dataset, one row per input row.

    Columns: `id_column` and the other input columns (only the id with keep_columns=False), one column per
    top-level field of the schema (as `extract_frame(..., flatten=False)` lays them out; `value` for a schema
    whose root is not an object), `error` ("Type: message", None where it worked) and `usage` (a struct of
    prompt_tokens, completion_tokens, total_tokens; for a row answered from `output`, what it cost when it
    was extracted), and with evidence=True an `evidence` column (JSON text: path -> spans, alignment,
    confidence, as `extract run` writes it). Values are in JSON form (dates as ISO strings). A
    document that fails is a row with `error`; a bad key, an unknown model or an unreachable server fails the
    job, as it stops `extract_many`.

    Args:
        concurrency: actors in the pool (or (min, max) to autoscale).
        per_worker_concurrency: documents in flight per actor (halved on 429s and climbing back).
        output: a directory (shared by every worker) where each finished document is written as it
            finishes; a task retry or a rerun of the job skips the ids found there. Ids must then be unique
            strings or integers.
        rpm, tpm: the provider's request and token budgets per minute, shared by all workers through one
            limiter actor (`extract.ray._limiter`); None learns them from the `x-ratelimit-*` headers. With
            `limiter=` in options, that limiter is used in each worker instead (and rpm/tpm are refused).
        batch_size: rows per batch (default 4 x per_worker_concurrency, so an actor's slowest document holds
            back little of its batch).
        num_cpus, ray_remote_args: the actors' Ray resources and other remote options. Ray's defaults for an
            actor pool restart a dead actor and retry the batch it held (which `output` makes safe to re-send).
        **options: the Extractor's (base_url, api_key, model, provider, timeout, limiter, request parameters
            ...) and the per-document ones (evidence, chunking ...), as `extract_many` takes them. The key comes
            from `api_key` or the driver's environment and never travels in plain text.
    """
    ray = _ray()
    from extract.batch import _PER_CALL
    from extract.frame import schema_columns
    from extract.providers import resolve
    from extract.ray._arrow import ERROR_COLUMN, EVIDENCE_COLUMN, USAGE_COLUMN, VALUE_COLUMN, arrow_type
    from extract.ray._worker import ExtractWorker, WorkerSpec
    from extract.schema import compile_schema

    if not isinstance(ds, ray.data.Dataset):
        raise ConfigurationError(
            f"extract_dataset takes a ray.data.Dataset, not {type(ds).__name__}; e.g. ray.data.from_pandas(df), "
            "ray.data.read_parquet(path), or extract_frame/extract_many without Ray"
        )
    for name, why in _REFUSED.items():
        if name in options:
            raise ConfigurationError(f"extract_dataset does not take {name}=: {why}")
    if not isinstance(text_column, str) or not isinstance(id_column, str):
        raise ConfigurationError("text_column and id_column must be column names (strings)")
    if per_worker_concurrency < 1:
        raise ConfigurationError(f"per_worker_concurrency must be at least 1, got {per_worker_concurrency}")
    if batch_size is None:
        batch_size = max(4 * per_worker_concurrency, 16)
    elif batch_size < 1:
        raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")

    user_schema = compile_schema(schema).user_schema
    fields = tuple(schema_columns(user_schema, flatten=False))
    field_nodes = _top_level(user_schema)
    if fields:
        types = {name: arrow_type(field_nodes.get(name), user_schema) for name in fields}
    else:
        types = {VALUE_COLUMN: arrow_type(user_schema, user_schema)}
    made = fields or (VALUE_COLUMN,)
    added = (ERROR_COLUMN, USAGE_COLUMN, *((EVIDENCE_COLUMN,) if options.get("evidence") else ()))
    for reserved in (*added, id_column):
        if reserved in made:
            raise ConfigurationError(
                f"the schema has a top-level field {reserved!r}, which would clash with the {reserved!r} column "
                "extract_dataset adds; rename that field in the schema (or pass another id_column)"
            )
    _check_columns(ds, text_column, id_column, (*made, *added) if keep_columns else ())

    call_options = {k: options.pop(k) for k in _PER_CALL if k in options}
    secret = _resolve_key(options, resolve)

    limiter_name = f"extract-limiter-{uuid.uuid4().hex[:12]}"
    limiter_actor = None
    if "limiter" in options:
        if rpm is not None or tpm is not None:
            raise ConfigurationError("pass rpm/tpm or limiter=, not both: set the limits on your limiter")
    else:
        from extract.ray._limiter import start_limiter

        limiter_actor = start_limiter(limiter_name, rpm=rpm, tpm=tpm)

    fingerprint = None
    if output is not None:
        from extract._batch._guard import schema_fingerprint
        from extract.ray._resume import prepare_output

        fingerprint = schema_fingerprint(schema)
        output = str(prepare_output(output, fingerprint).resolve())

    spec = WorkerSpec(
        schema=schema,
        text_column=text_column,
        id_column=id_column,
        fields=fields,
        field_types=types,
        keep_columns=keep_columns,
        per_worker_concurrency=per_worker_concurrency,
        instructions=instructions,
        extractor_options=options,
        call_options=call_options,
        secret=None if secret is None else ray.put(secret),
        limiter_name=limiter_name,
        limiter_actor=limiter_actor,
        output=output,
    )
    if isinstance(concurrency, tuple):
        low, high = concurrency
        compute = ray.data.ActorPoolStrategy(min_size=low, max_size=high)
    else:
        compute = ray.data.ActorPoolStrategy(size=concurrency)
    result: Dataset = ds.map_batches(
        ExtractWorker,
        fn_constructor_kwargs={"spec": spec},
        batch_size=batch_size,
        batch_format="pyarrow",
        zero_copy_batch=True,
        compute=compute,
        num_cpus=num_cpus,
        **dict(ray_remote_args or {}),
    )
    return result


def _top_level(user_schema: Mapping[str, Any]) -> Mapping[str, Any]:
    from extract.frame import _resolve

    root = _resolve(user_schema, user_schema)
    props = root.get("properties") if isinstance(root, Mapping) else None
    return props if isinstance(props, Mapping) else {}


def _check_columns(ds: Dataset, text_column: str, id_column: str, added: tuple[str, ...]) -> None:
    """Check the columns now when Ray knows the schema without running anything (else the workers do)."""
    try:
        known = ds.schema(fetch_if_missing=False)
    except Exception:  # noqa: BLE001 - a schema Ray cannot tell cheaply is checked by the workers instead
        return
    names = list(getattr(known, "names", None) or [])
    if not names:
        return
    for column in (text_column, id_column):
        if column not in names:
            shown = ", ".join(repr(n) for n in names[:20])
            hint = " (add one, e.g. with ds.add_column)" if column == id_column else ""
            raise ConfigurationError(f"the dataset has no column {column!r}{hint}; its columns are: {shown}")
    clash = [n for n in added if n in names and n != id_column]
    if clash:
        raise ConfigurationError(
            f"the dataset already has column(s) {', '.join(map(repr, clash))}, which extract_dataset adds "
            "(one per schema field, error, usage); pass keep_columns=False, or drop or rename those input columns"
        )


def _resolve_key(options: dict[str, Any], resolve: Any) -> Any:
    """Resolve the backend on the driver (its key, from `api_key` or its environment) and pin base_url and
    provider, so workers on other machines neither need nor consult their own environment. Returns the masked
    key (None when there is none) and leaves `options` without a plain `api_key`."""
    from extract.ray._secret import SecretKey

    resolved = resolve(
        provider=options.get("provider"),
        base_url=options.get("base_url"),
        api_key=options.pop("api_key", None),
        model=options.get("model"),
    )
    if resolved.in_process:
        return None  # the embedded model: each worker loads its own, no key involved
    options["base_url"] = resolved.base_url
    options["provider"] = resolved.provider.name
    if resolved.model is not None:
        options.setdefault("model", resolved.model)
    return None if resolved.api_key is None else SecretKey(resolved.api_key)
