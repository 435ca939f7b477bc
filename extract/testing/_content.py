"""What the assistant says: the generated value, or that value bent by a content fault.

Pure. Returns the content string and the finish_reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from extract.testing._faults import Fault

__all__ = ["break_value", "fault_content", "json_text"]


def json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def break_value(value: Any, schema: dict[str, Any] | None) -> Any:
    """A JSON value close to `value` that `schema` rejects (a required field dropped, a type changed).

    Without a schema, or with one too malformed to validate against, the first candidate is returned.
    """
    candidates = _candidates(value, schema)
    check = _checker(schema) if schema is not None else None
    if check is None:
        return candidates[0]
    import referencing.exceptions  # loaded with jsonschema by _checker

    for candidate in candidates:
        try:
            if not check(candidate):
                return candidate
        except (referencing.exceptions.Unresolvable, TypeError, ValueError, KeyError, RecursionError):
            return candidate  # jsonschema cannot judge this schema; any candidate is as good
    return "not a valid value"


def _candidates(value: Any, schema: dict[str, Any] | None) -> list[Any]:
    out: list[Any] = []
    if isinstance(value, dict) and schema is not None:
        listed = schema.get("required")
        required = (
            [r for r in listed if isinstance(r, str) and r in value] if isinstance(listed, list) else []
        )
        if required:
            out.append({k: v for k, v in value.items() if k != required[0]})
        for key, item in value.items():
            out.append({**value, key: 12345 if isinstance(item, str) else "not-a-valid-value"})
            break
    out.extend([[value], "not a valid value", None, 0, {}])
    return out


_CHECKERS: dict[bytes, Callable[[Any], bool] | None] = {}
_CHECKERS_MAX = 256


def _checker(schema: dict[str, Any]) -> Callable[[Any], bool] | None:
    """`is_valid` of a validator for `schema`, built once per schema; None when the schema is malformed."""
    key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    if key in _CHECKERS:
        return _CHECKERS[key]
    # Imported here: jsonschema takes seconds to import, and only faults need it.
    import jsonschema

    check: Callable[[Any], bool] | None
    try:
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        cls.check_schema(schema)
        check = cls(schema).is_valid
    except (jsonschema.exceptions.SchemaError, re.error):
        check = None
    if len(_CHECKERS) >= _CHECKERS_MAX:
        _CHECKERS.clear()
    _CHECKERS[key] = check
    return check


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
