"""What the assistant says: the generated value, or that value bent by a content fault.

Pure. Returns the content string and the finish_reason.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from extract.testing._faults import Fault

__all__ = ["break_value", "fault_content", "json_text"]


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def break_value(value: Any, schema: dict[str, Any] | None) -> Any:
    """A JSON value close to `value` that `schema` rejects (a required field dropped, a type changed)."""
    for candidate in _candidates(value, schema):
        if schema is None or not _is_valid(candidate, schema):
            return candidate
    return "not a valid value"


def _candidates(value: Any, schema: dict[str, Any] | None) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, dict) and schema is not None:
        required = [r for r in schema.get("required", []) if r in value]
        if required:
            out.append({k: v for k, v in value.items() if k != required[0]})
        for key, item in value.items():
            out.append({**value, key: 12345 if isinstance(item, str) else "not-a-valid-value"})
            break
    out.extend([[value], "not a valid value", None, 0, {}])
    return out


def _is_valid(value: Any, schema: dict[str, Any]) -> bool:
    # Imported here: jsonschema takes ~1 s to import, and only faults need it.
    import jsonschema
    import referencing.exceptions

    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        return bool(cls(schema).is_valid(value))
    except (jsonschema.exceptions.SchemaError, referencing.exceptions.Unresolvable, re.error):
        return True


def fault_content(fault: Fault, value: Any, schema: dict[str, Any] | None) -> tuple[str, str]:
    """(content, finish_reason) for a content fault applied to the normal reply `value`."""
    kind = fault.kind
    if kind in ("invalid_json", "content", "refusal"):
        return (fault.text or "", "stop")
    if kind == "empty":
        return ("", "stop")
    if kind == "schema_violation":
        return (json_text(break_value(value, schema)), "stop")
    if kind == "schema_echo":
        return (json_text(schema if schema is not None else {"type": "object"}), "stop")
    if kind == "wrapped":
        return (json_text({fault.key: value}), "stop")
    if kind == "fenced":
        pretty = orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()
        return (f"Here is the extracted data:\n```json\n{pretty}\n```", "stop")
    if kind == "truncated":
        full = json_text(value)
        return (full[: int(len(full) * fault.fraction)], "length")
    raise ValueError(f"fault {kind!r} does not change content")
