"""DataFrame in, DataFrame out: one row per input row, one column per schema field, plus `_error`.

    from extract import extract_frame
    people = extract_frame(df, Person, "bio")          # same index as df; nested fields as "address.city"

Runs through `extract_many` (concurrent, rate-limited), shows a tqdm bar that renders as a widget in Jupyter,
and never drops a row: a row that fails keeps its index, with empty fields and the reason in `_error`.
pandas is optional for the library; this module asks for it only when called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from extract.errors import ConfigurationError, ExtractError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "ALIGNMENT_SUFFIX",
    "CONFIDENCE_SUFFIX",
    "ERROR_COLUMN",
    "extract_frame",
    "flatten_value",
    "schema_columns",
]

ERROR_COLUMN = "_error"
# with evidence=True, each value column `c` is followed by `c__confidence` and `c__alignment`
CONFIDENCE_SUFFIX = "__confidence"
ALIGNMENT_SUFFIX = "__alignment"
_WORST_FIRST = ("none", "fuzzy", "normalised", "exact")


def _pandas() -> Any:
    try:
        import pandas
    except ImportError:
        raise ConfigurationError(
            'extract_frame needs pandas: pip install "extract-llm[pandas]" (pandas and tqdm)'
        ) from None
    return pandas


def _resolve(node: Any, root: Mapping[str, Any]) -> Any:
    """Follow local `$ref`s (#/$defs/...) so nested models can be flattened."""
    seen = 0
    while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and seen < 32:
        ref: str = node["$ref"]
        if not ref.startswith("#/"):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, Mapping) else None
        if target is None:
            return node
        node = target
        seen += 1
    return node


def _object_branch(node: Any, root: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object schema behind a property: itself, or the one non-null branch of an Optional."""
    node = _resolve(node, root)
    if not isinstance(node, Mapping):
        return None
    if isinstance(node.get("properties"), Mapping):
        return node
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        real = [
            b
            for b in (_resolve(b, root) for b in branches)
            if not (isinstance(b, Mapping) and b.get("type") == "null")
        ]
        if len(real) == 1 and isinstance(real[0], Mapping) and isinstance(real[0].get("properties"), Mapping):
            return real[0]
    return None


def schema_columns(schema: Mapping[str, Any], *, flatten: bool = True) -> list[str]:
    """Column names for an object schema, in declaration order; nested objects dotted when flattening.

    Recursion stops at a model seen higher up (a recursive schema keeps that field as one object column).
    """
    columns: list[str] = []

    def walk(node: Mapping[str, Any], prefix: str, stack: tuple[int, ...]) -> None:
        props = node.get("properties")
        if not isinstance(props, Mapping):
            return
        for name, sub in props.items():
            column = f"{prefix}{name}"
            nested = _object_branch(sub, schema) if flatten else None
            if nested is not None and id(nested) not in stack:
                walk(nested, f"{column}.", (*stack, id(nested)))
            else:
                columns.append(column)

    root = _resolve(schema, schema)
    if isinstance(root, Mapping):
        walk(root, "", (id(root),))
    return columns


def _plain(value: Any, *, deep: bool) -> Any:
    """A pydantic model as a dict (deep: nested models too); anything else unchanged."""
    if deep:
        dump = getattr(value, "model_dump", None)
        return dump() if callable(dump) else value
    fields = getattr(type(value), "model_fields", None)
    if isinstance(fields, Mapping):
        return {name: getattr(value, name) for name in fields}
    return value


def flatten_value(value: Any, *, flatten: bool = True) -> dict[str, Any]:
    """One row: a dict (or model) as {column: cell}, nested dicts joined with dots when flattening."""
    plain = _plain(value, deep=flatten)
    if not isinstance(plain, Mapping):
        return {"value": plain}
    if not flatten:
        return dict(plain)
    row: dict[str, Any] = {}

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, cell in node.items():
            if isinstance(cell, Mapping) and cell:
                walk(cell, f"{prefix}{key}.")
            else:
                row[f"{prefix}{key}"] = cell

    walk(plain, "")
    return row


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def extract_frame(
    df: pd.DataFrame,
    schema: Any,
    text_column: str,
    *,
    flatten: bool = True,
    errors: Literal["column", "raise"] = "column",
    concurrency: int = 16,
    extractor: Any | None = None,
    instructions: str | None = None,
    progress: bool = True,
    evidence: bool = False,
    **options: Any,
) -> pd.DataFrame:
    """Extract `schema` from each row's `text_column`; a new DataFrame with the same index.

    Args:
        flatten: nested objects become dotted columns ("address.city"); False keeps them as objects.
        errors: "column" puts "Type: message" in `_error` (None where it worked); "raise" raises the first
            row's error after every row ran.
        concurrency, extractor, instructions, **options: as for `extract_many` (options build the Extractor).
        progress: a tqdm bar (a widget in Jupyter).
        evidence: after each value column `c`, `c__confidence` (the lowest confidence of the values in it,
            None without logprobs) and `c__alignment` (the weakest alignment: none < fuzzy < normalised <
            exact) from `Result.evidence`; a column that holds a list or an object sums up the values in it.
    """
    pd_mod = _pandas()
    if errors not in ("column", "raise"):
        raise ConfigurationError(f'errors must be "column" or "raise", not {errors!r}')
    if text_column not in df.columns:
        shown = ", ".join(repr(c) for c in list(df.columns)[:20])
        raise ConfigurationError(f"the DataFrame has no column {text_column!r}; its columns are: {shown}")
    from extract.batch import extract_many
    from extract.schema import compile_schema

    # the user-shaped schema is the same for every provider: it names the columns (and a schema error
    # surfaces here once, not once per row)
    columns = schema_columns(compile_schema(schema).user_schema, flatten=flatten)
    rows: list[dict[str, Any] | None] = [None] * len(df)
    failures: list[str | None] = [None] * len(df)
    found: list[Mapping[str, Any] | None] = [None] * len(df)
    first_error: ExtractError | None = None
    texts = df[text_column]
    documents = ((pos, text) for pos, text in enumerate(texts))
    if evidence:
        options = {**options, "evidence": True}
    run = extract_many(
        schema,
        documents,
        concurrency=concurrency,
        extractor=extractor,
        instructions=instructions,
        progress=progress,
        total=len(df),
        **options,
    )
    with run:
        for outcome in run:
            pos = outcome.index
            if outcome.error is None:
                rows[pos] = flatten_value(outcome.value, flatten=flatten)
                if evidence:
                    found[pos] = outcome.evidence
            else:
                failures[pos] = _describe(outcome.error)
                if first_error is None:
                    first_error = outcome.error
    if errors == "raise" and first_error is not None:
        raise first_error
    seen = set(columns)
    for row in rows:
        if row is not None:
            for key in row:
                if key not in seen:
                    seen.add(key)
                    columns.append(key)
    data = {name: [row.get(name) if row is not None else None for row in rows] for name in columns}
    if evidence:
        columns = _with_evidence_columns(columns, data, found)
    frame: pd.DataFrame = pd_mod.DataFrame(data, index=df.index, columns=columns)
    # object dtype set explicitly, so a row without error holds None whether or not another row failed
    # (left to inference, an all-None column can come out as float NaN)
    frame[ERROR_COLUMN] = pd_mod.Series(failures, index=frame.index, dtype=object)
    return frame


def _column_summary(column: str, evidence: Mapping[str, Any] | None) -> tuple[float | None, str | None]:
    """(lowest confidence, weakest alignment) of the evidence under one column; (None, None) if none."""
    if not evidence:
        return None, None
    from extract.evidence import format_path

    root = format_path(tuple(column.split(".")))
    under = [ev for path, ev in evidence.items() if path == root or path.startswith((root + ".", root + "["))]
    if not under:
        return None, None
    scores = [ev.confidence for ev in under if ev.confidence is not None]
    weakest = min((ev.alignment for ev in under), key=_WORST_FIRST.index)
    return (min(scores) if scores else None), weakest


def _with_evidence_columns(
    columns: list[str], data: dict[str, list[Any]], found: list[Mapping[str, Any] | None]
) -> list[str]:
    out: list[str] = []
    for column in columns:
        summaries = [_column_summary(column, evidence) for evidence in found]
        data[column + CONFIDENCE_SUFFIX] = [confidence for confidence, _ in summaries]
        data[column + ALIGNMENT_SUFFIX] = [alignment for _, alignment in summaries]
        out.extend((column, column + CONFIDENCE_SUFFIX, column + ALIGNMENT_SUFFIX))
    return out
