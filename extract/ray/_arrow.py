"""Rows -> the Arrow table a worker returns: the input columns as they came, one column per top-level field
of the schema, `error` and `usage`.

Arrow types are fixed where the schema fixes them, so every batch of a job has the same schema whatever its
rows hold (a batch where every document failed would otherwise infer a `null` column): `error` is a string,
`usage` a struct of int64 token counts (zeros for a document never sent), and a field declared a string,
integer, number or boolean (or a list of those, or nullable) gets that type. With evidence=True an `evidence`
column (before `error`) holds each row's `Outcome.evidence` as JSON text (the object `extract run` writes). Other fields (objects, unions)
are inferred from their JSON values (objects become structs); a field whose values Arrow cannot hold in
one type (an integer beyond 64 bits, mixed kinds) is written as JSON text instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
import pyarrow as pa  # type: ignore[import-untyped]

__all__ = [
    "ERROR_COLUMN",
    "EVIDENCE_COLUMN",
    "USAGE_COLUMN",
    "USAGE_TYPE",
    "VALUE_COLUMN",
    "arrow_type",
    "build_table",
]

ERROR_COLUMN = "error"
EVIDENCE_COLUMN = (
    "evidence"  # with evidence=True: path -> {value, spans, alignment, confidence, ...} as JSON text
)
USAGE_COLUMN = "usage"
VALUE_COLUMN = "value"  # the one value column of a schema whose root is not an object
USAGE_TYPE = pa.struct(
    [("prompt_tokens", pa.int64()), ("completion_tokens", pa.int64()), ("total_tokens", pa.int64())]
)
_ZERO_USAGE = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
_SCALARS = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(), "boolean": pa.bool_()}


def _non_null(node: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The one non-null branch of an Optional (`anyOf: [X, {type: null}]`), else the node itself."""
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        real = [b for b in branches if not (isinstance(b, Mapping) and b.get("type") == "null")]
        if len(real) == 1 and isinstance(real[0], Mapping):
            return real[0]
        return None
    return node


def arrow_type(node: Any, root: Mapping[str, Any]) -> pa.DataType | None:
    """The Arrow type a field's JSON Schema pins down, or None to infer it from the values."""
    from extract.frame import _resolve

    node = _resolve(node, root)
    if not isinstance(node, Mapping):
        return None
    node = _non_null(node)
    if node is None:
        return None
    kind = node.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if isinstance(kind, str) and kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        item = arrow_type(node.get("items"), root)
        return pa.list_(item) if item is not None else None
    return None


def _column(cells: list[Any], wanted: pa.DataType | None) -> pa.Array:
    try:
        return pa.array(cells, type=wanted)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        text = [
            None if c is None else orjson.dumps(c, option=orjson.OPT_NON_STR_KEYS).decode() for c in cells
        ]
        return pa.array(text, type=pa.string())


def build_table(
    batch: pa.Table,
    fields: Sequence[str],
    types: Mapping[str, pa.DataType | None],
    *,
    values: Sequence[Any],
    errors: Sequence[str | None],
    usages: Sequence[Mapping[str, int] | None],
    keep_columns: bool,
    id_column: str,
    evidence: Sequence[str | None] | None = None,
) -> pa.Table:
    out = batch if keep_columns else batch.select([id_column])
    if fields:
        for name in fields:
            cells = [v.get(name) if isinstance(v, Mapping) else None for v in values]
            out = out.append_column(name, _column(cells, types.get(name)))
    else:
        out = out.append_column(VALUE_COLUMN, _column(list(values), types.get(VALUE_COLUMN)))
    if evidence is not None:
        out = out.append_column(EVIDENCE_COLUMN, pa.array(list(evidence), type=pa.string()))
    out = out.append_column(ERROR_COLUMN, pa.array(list(errors), type=pa.string()))
    usage = [{**_ZERO_USAGE, **u} if u else dict(_ZERO_USAGE) for u in usages]
    return out.append_column(USAGE_COLUMN, pa.array(usage, type=USAGE_TYPE))
