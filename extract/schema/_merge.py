"""Merge `allOf` branches (and `$ref` with siblings) into one schema for the wire.

The wire only needs the branches' structure (properties, required, types, items); every branch is still
enforced client-side, so a conflict never costs soundness: it is reported and the strictest branch wins.
"""

from __future__ import annotations

from typing import Any

from extract.schema._codec import same_json

__all__ = ["Unmergeable", "merge_all"]

_LOWER = ("minimum", "minLength", "minItems", "minProperties", "exclusiveMinimum")
_UPPER = ("maximum", "maxLength", "maxItems", "maxProperties", "exclusiveMaximum")


class Unmergeable(ValueError):
    """Two branches disagree in a way one schema cannot express (e.g. disjoint types)."""


def _types(s: dict[str, Any]) -> set[str] | None:
    t = s.get("type")
    if t is None:
        return None
    return set(t) if isinstance(t, list) else {t}


def _meet_types(a: set[str] | None, b: set[str] | None) -> set[str] | None:
    if a is None:
        return b
    if b is None:
        return a
    out = a & b
    if ("integer" in a and "number" in b) or ("number" in a and "integer" in b):
        out.add("integer")
    if not out:
        raise Unmergeable(f"types {sorted(a)} and {sorted(b)} have no value in common")
    return out


def _both(a: Any, b: Any) -> Any:
    if same_json(a, b):
        return a
    return {"allOf": [a, b]}


def merge_two(a: dict[str, Any], b: dict[str, Any], dropped: list[str]) -> dict[str, Any]:
    out = dict(a)
    types = _meet_types(_types(a), _types(b))
    for key, bv in b.items():
        if key not in out:
            out[key] = bv
            continue
        av = out[key]
        if key == "type":
            continue
        if key == "properties" and isinstance(av, dict) and isinstance(bv, dict):
            props = dict(av)
            for name, sub in bv.items():
                props[name] = _both(props[name], sub) if name in props else sub
            out[key] = props
        elif key == "required" and isinstance(av, list) and isinstance(bv, list):
            out[key] = list(dict.fromkeys([*av, *bv]))
        elif key == "enum" and isinstance(av, list) and isinstance(bv, list):
            common = [x for x in av if any(same_json(x, y) for y in bv)]
            if not common:
                raise Unmergeable("the enums have no value in common")
            out[key] = common
        elif key in ("additionalProperties", "items", "additionalItems"):
            if av is False or bv is False:
                out[key] = False
            elif av is True or av == {}:
                out[key] = bv
            elif not (bv is True or bv == {}):
                out[key] = _both(av, bv)
        elif key in _LOWER and _is_num(av) and _is_num(bv):
            out[key] = max(av, bv)
        elif key in _UPPER and _is_num(av) and _is_num(bv):
            out[key] = min(av, bv)
        elif key in ("description", "title", "default", "examples"):
            continue
        elif not same_json(av, bv):
            dropped.append(key)  # the wire keeps the first; the client enforces both
    if types is not None:
        out["type"] = sorted(types) if len(types) > 1 else next(iter(types))
    return out


def _is_num(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def merge_all(schemas: list[dict[str, Any]], dropped: list[str]) -> dict[str, Any]:
    """Merge flat schemas (no allOf left in them) into one; raises Unmergeable on a conflict.

    Keywords that conflict without making the merge impossible (two different patterns, two anyOfs) are
    appended to `dropped`: the wire keeps the first, the client enforces both.
    """
    out: dict[str, Any] = {}
    for s in schemas:
        out = merge_two(out, s, dropped)
    return out
