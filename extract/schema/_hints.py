"""Constraints the wire cannot carry, turned into short hints for the model's `description`.

The client still enforces every one of them (validation runs on the user's full schema); the hint only
makes a first-time-right reply likelier.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["CONSTRAINTS", "compose", "constraint_hints"]

# keyword -> the types it constrains
CONSTRAINTS: dict[str, str] = {
    "format": "string",
    "pattern": "string",
    "minLength": "string",
    "maxLength": "string",
    "contentEncoding": "string",
    "contentMediaType": "string",
    "minimum": "number",
    "maximum": "number",
    "exclusiveMinimum": "number",
    "exclusiveMaximum": "number",
    "multipleOf": "number",
    "minItems": "array",
    "maxItems": "array",
    "uniqueItems": "array",
    "contains": "array",
    "minContains": "array",
    "maxContains": "array",
    "minProperties": "object",
    "maxProperties": "object",
    "propertyNames": "object",
}


def _num(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (int, float)) else str(value)


def _plural(n: Any, word: str) -> str:
    return f"{_num(n)} {word}" if n == 1 else f"{_num(n)} {word}s"


def numeric_bounds(s: dict[str, Any]) -> dict[str, Any]:
    """Bounds in the 2019+ form (draft-04 wrote `exclusiveMinimum: true` next to `minimum`)."""
    out: dict[str, Any] = {}
    for low, excl in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
        bound, flag = s.get(low), s.get(excl)
        if isinstance(flag, bool):
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):
                out[excl if flag else low] = bound
        else:
            if isinstance(bound, (int, float)) and not isinstance(bound, bool):
                out[low] = bound
            if isinstance(flag, (int, float)):
                out[excl] = flag
    if isinstance(s.get("multipleOf"), (int, float)) and not isinstance(s.get("multipleOf"), bool):
        out["multipleOf"] = s["multipleOf"]
    return out


def constraint_hints(s: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """(keyword, hint) for each constraint of `s` that applies to values of JSON type `kind`."""
    out: list[tuple[str, str]] = []
    if kind == "string":
        if isinstance(s.get("format"), str):
            out.append(("format", f"format: {s['format']}"))
        if isinstance(s.get("pattern"), str):
            pattern = s["pattern"]
            out.append(("pattern", f"pattern: {pattern[:120]}{'...' if len(pattern) > 120 else ''}"))
        if "minLength" in s:
            out.append(("minLength", f"at least {_plural(s['minLength'], 'character')}"))
        if "maxLength" in s:
            out.append(("maxLength", f"at most {_plural(s['maxLength'], 'character')}"))
        if isinstance(s.get("contentEncoding"), str):
            out.append(("contentEncoding", f"encoding: {s['contentEncoding']}"))
    elif kind in ("number", "integer"):
        words = {
            "minimum": ">=",
            "exclusiveMinimum": ">",
            "maximum": "<=",
            "exclusiveMaximum": "<",
        }
        for key, value in numeric_bounds(s).items():
            if key == "multipleOf":
                out.append((key, f"a multiple of {_num(value)}"))
            else:
                out.append((key, f"{words[key]} {_num(value)}"))
    elif kind == "array":
        if "minItems" in s:
            out.append(("minItems", f"at least {_plural(s['minItems'], 'item')}"))
        if "maxItems" in s:
            out.append(("maxItems", f"at most {_plural(s['maxItems'], 'item')}"))
        if s.get("uniqueItems") is True:
            out.append(("uniqueItems", "items unique"))
        if "contains" in s:
            out.append(("contains", "must contain a matching item"))
    elif kind == "object":
        if "minProperties" in s:
            out.append(("minProperties", f"at least {_plural(s['minProperties'], 'entry')}"))
        if "maxProperties" in s:
            out.append(("maxProperties", f"at most {_plural(s['maxProperties'], 'entry')}"))
        names = s.get("propertyNames")
        if isinstance(names, dict) and isinstance(names.get("pattern"), str):
            out.append(("propertyNames", f"keys match {names['pattern'][:80]}"))
    return out


def compose(description: Any, hints: list[str], level: str) -> str | None:
    """The wire description at a size `level`: "full", "short" (user text cut), "hints" or "none"."""
    if level == "none":
        return None
    text = description if isinstance(description, str) and level in ("full", "short") else ""
    text = " ".join(text.split())
    if level == "short" and len(text) > 60:
        text = text[:57].rstrip() + "..."
    hint = "; ".join(hints)
    if text and hint:
        return f"{text} ({hint})"
    return text or hint or None
