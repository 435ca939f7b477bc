"""Turn what the caller passed (pydantic type, JSON Schema dict, or .json path) into a JSON Schema dict.

The only I/O in the schema package: reading a schema file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pydantic

from extract.errors import SchemaError
from extract.schema._guard import check_document
from extract.schema._json import json_type

__all__ = ["Source", "is_path", "load", "response_name"]

_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]+")


@dataclass(frozen=True, slots=True)
class Source:
    schema: Any  # the user's JSON Schema (dict or bool)
    name: str
    pydantic_type: Any = None  # set when validation goes through pydantic


def response_name(*candidates: Any) -> str:
    """The first usable candidate, squeezed into ^[A-Za-z0-9_-]{1,64}$ (providers reject anything else)."""
    for candidate in candidates:
        if isinstance(candidate, str):
            name = _NAME_BAD.sub("_", candidate).strip("_")[:64]
            if name:
                return name
    return "response"


def is_path(schema: Any) -> bool:
    return isinstance(schema, Path) or (
        isinstance(schema, str) and schema.lower().endswith(".json") and "\n" not in schema
    )


def _read(path: Path) -> Source:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise SchemaError(f"cannot read schema file {str(path)!r}: {exc.strerror or exc}", "") from exc
    except orjson.JSONDecodeError as exc:
        raise SchemaError(
            f"schema file {str(path)!r} is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}",
            "",
        ) from exc
    if not isinstance(data, (dict, bool)):
        raise SchemaError(
            f"schema file {str(path)!r} holds a JSON {json_type(data)}; a JSON Schema is an object (or a boolean)",
            "",
        )
    check_document(data)
    title = data.get("title") if isinstance(data, dict) else None
    return Source(data, response_name(title, path.stem))


def _type_name(tp: Any) -> str | None:
    name = getattr(tp, "__name__", None)
    if isinstance(name, str) and not getattr(tp, "__args__", None):
        return name
    return re.sub(r"\b[A-Za-z_][\w]*\.", "", repr(tp))  # typing.List[__main__.Item] -> List[Item]


_VALUES = (list, tuple, set, frozenset, int, float, complex, bytes, bytearray)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def load(schema: Any) -> Source:
    """Read the user's schema; raises SchemaError naming what is wrong and what to pass instead."""
    if is_path(schema):
        return _read(Path(schema))
    if isinstance(schema, (dict, bool)):
        check_document(schema)
        title = schema.get("title") if isinstance(schema, dict) else None
        return Source(schema, response_name(title))
    if schema is None or isinstance(schema, _VALUES):
        raise SchemaError(
            f"a schema is a pydantic model or type, a JSON Schema dict or a path to a .json file; got the "
            f"{type(schema).__name__} {_short(schema)} (a value, not a schema)",
            "",
        )
    if isinstance(schema, str):
        raise SchemaError(
            f"a string schema must be a path to a .json file, got {schema[:60]!r}; "
            "pass a dict for an inline JSON Schema",
            "",
        )
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(schema)
        produced = adapter.json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError) as exc:
        raise SchemaError(
            f"cannot build a JSON Schema from {schema!r}: {exc}; pass a pydantic model, a type pydantic's "
            "TypeAdapter accepts, a JSON Schema dict or a path to a .json file",
            "",
        ) from exc
    title = produced.get("title") if isinstance(produced, dict) else None
    return Source(produced, response_name(_type_name(schema), title), pydantic_type=schema)
