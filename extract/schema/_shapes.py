"""Small wire-shape builders shared by the transform steps (pure functions over wire dicts)."""

from __future__ import annotations

from typing import Any

from extract.schema._codec import IDENTITY, Codec

__all__ = ["NULL", "Result", "boxed", "coalesce_enums", "fits", "free_name", "json_kind", "nullable"]

Result = tuple[dict[str, Any], Codec]
NULL: dict[str, Any] = {"type": "null"}


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "json"


def fits(value: Any, t: str) -> bool:
    kind = json_kind(value)
    if t == "integer":
        return kind == "number" and float(value).is_integer()
    return kind == t


def coalesce_enums(results: list[Result]) -> list[Result]:
    """anyOf branches that are plain enums of one type become one enum (same values, fewer branches)."""
    out: list[Result] = []
    at: dict[str, int] = {}
    for wire, codec in results:
        t = wire.get("type")
        if set(wire) == {"type", "enum"} and isinstance(t, str) and codec.identity:
            if t in at:
                prev = out[at[t]][0]
                values = [*prev["enum"], *(v for v in wire["enum"] if v not in prev["enum"])]
                out[at[t]] = ({"type": t, "enum": values}, IDENTITY)
                continue
            at[t] = len(out)
        out.append((wire, codec))
    return out


def boxed(inner: dict[str, Any]) -> dict[str, Any]:
    """An optional property whose values include null: null = absent, {"value": x} = present."""
    desc = inner.get("description")
    if desc is not None:
        inner = {k: v for k, v in inner.items() if k != "description"}
    box = {
        "type": "object",
        "properties": {"value": inner},
        "required": ["value"],
        "additionalProperties": False,
    }
    note = 'null when absent, else {"value": ...}'
    return {"anyOf": [box, NULL], "description": f"{desc} ({note})" if desc else note}


def nullable(wire: dict[str, Any]) -> dict[str, Any]:
    """`wire` or null, with the description kept on the outside."""
    desc = wire.get("description")
    inner = {k: v for k, v in wire.items() if k != "description"} if desc is not None else wire
    if set(inner) == {"anyOf"}:
        out: dict[str, Any] = {"anyOf": [*inner["anyOf"], NULL]}
    else:
        out = {"anyOf": [inner, NULL]}
    if desc is not None:
        out["description"] = desc
    return out


def free_name(base: str, taken: dict[str, Any]) -> str:
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    return name
