"""Bounds that keep every schema walker (ours and jsonschema's, all recursive) away from RecursionError.

Three checks, all iterative:

- `check_document`: the schema is a JSON document (string keys, JSON values, finite numbers) with at most
  MAX_SCHEMA_DEPTH objects and arrays nested in one another. Why 64: that is 64 levels of `items` or `not`,
  or 32 levels of `properties` (each level is a properties map plus a schema), three to six times what the
  strictest provider accepts (Cerebras: nesting <= 10 levels, so a deeper schema could never be strict
  there anyway); and the deepest recursive walk it allows (jsonschema checking the schema against its
  metaschema, ~7 Python frames per level) stays inside Python's default limit of 1000 frames with room
  for the caller's own stack.
- `check_ref_cycles`: no subschema reaches itself through keywords that apply to the same value (`$ref`,
  `allOf`/`anyOf`/`oneOf`, `not`, `if`/`then`/`else`, `dependentSchemas`): validating such a schema never
  ends, whatever the value (``{"$ref": "#"}``). Recursion through `properties`/`items` is fine: it descends
  into the value, which is finite.
- `too_deep`: a value nested deeper than MAX_INSTANCE_DEPTH, checked before a recursive schema validates it
  (its walkers recurse once per level of the value, not of the schema).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from extract.errors import SchemaError

__all__ = [
    "MAX_INSTANCE_DEPTH",
    "MAX_SCHEMA_DEPTH",
    "check_document",
    "check_ref_cycles",
    "has_ref_cycle",
    "too_deep",
]

MAX_SCHEMA_DEPTH = 64
MAX_INSTANCE_DEPTH = 64

_DATA = frozenset({"enum", "const", "default", "examples", "example"})  # values, not subschemas
_IN_PLACE_ONE = ("not", "if", "then", "else")
_IN_PLACE_LIST = ("allOf", "anyOf", "oneOf")
_IN_PLACE_MAP = ("dependentSchemas", "dependencies")


def _pointer(parts: tuple[str | int, ...]) -> str:
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def check_document(schema: Any) -> None:
    """SchemaError unless `schema` is a JSON document nested at most MAX_SCHEMA_DEPTH containers deep."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(schema, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if len(path) >= MAX_SCHEMA_DEPTH:
                raise _too_deep_schema(path)
            for key, value in node.items():
                if key == "$ref" and not isinstance(value, (str, dict, bool)):
                    raise SchemaError(
                        f"$ref must be a string (a URI reference such as '#/$defs/Item'), got "
                        f"{type(value).__name__}",
                        _pointer(path),
                    )
                if not isinstance(key, str):
                    raise SchemaError(
                        f"a JSON Schema's keys are strings, got the {type(key).__name__} key {key!r}; "
                        "write property names as strings",
                        _pointer(path),
                    )
                stack.append((value, (*path, key)))
        elif isinstance(node, list):
            if len(path) >= MAX_SCHEMA_DEPTH:
                raise _too_deep_schema(path)
            stack.extend((value, (*path, i)) for i, value in enumerate(node))
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise SchemaError(f"{node!r} is not a JSON number; use a finite number", _pointer(path))
        elif not (node is None or isinstance(node, (str, int))):
            raise SchemaError(
                f"a JSON Schema holds only JSON values (objects, arrays, strings, numbers, booleans, "
                f"null), got a {type(node).__name__}",
                _pointer(path),
            )


def _too_deep_schema(path: tuple[str | int, ...]) -> SchemaError:
    return SchemaError(
        f"the schema nests more than {MAX_SCHEMA_DEPTH} objects and arrays (about {MAX_SCHEMA_DEPTH // 2} "
        "levels of properties; providers accept ~10): flatten it, or make a repeated shape one "
        "recursive $ref",
        _pointer(path),
    )


def _resolve(root: Any, ref: str) -> tuple[Any, tuple[str | int, ...]] | None:
    if ref == "#":
        return root, ()
    if not ref.startswith("#/"):
        return None
    node: Any = root
    parts: list[str | int] = []
    for raw in ref[2:].split("/"):
        part = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
            parts.append(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            parts.append(int(part))
        else:
            return None
    return node, tuple(parts)


def _in_place(node: dict[str, Any]) -> Iterator[tuple[str | int, ...]]:
    for key in _IN_PLACE_ONE:
        if isinstance(node.get(key), dict):
            yield (key,)
    for key in _IN_PLACE_LIST:
        value = node.get(key)
        if isinstance(value, list):
            yield from ((key, i) for i, sub in enumerate(value) if isinstance(sub, dict))
    for key in _IN_PLACE_MAP:
        value = node.get(key)
        if isinstance(value, dict):
            yield from ((key, name) for name, sub in value.items() if isinstance(sub, dict))


def _get(root: Any, path: tuple[str | int, ...]) -> Any:
    node = root
    for part in path:
        node = node[part]
    return node


def _embedded_id(node: dict[str, Any], is_root: bool) -> bool:
    return not is_root and (isinstance(node.get("$id"), str) or isinstance(node.get("id"), str))


def _edges(root: Any, path: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    """Subschemas that apply to the same value as the one at `path` (refs resolved from the root)."""
    node = _get(root, path)
    if not isinstance(node, dict):
        return []
    out = [(*path, *rel) for rel in _in_place(node)]
    ref = node.get("$ref")
    if isinstance(ref, str) and not _embedded_id(node, not path):
        found = _resolve(root, ref)
        if found is not None and isinstance(found[0], dict):
            out.append(found[1])
    return out


def _find_cycle(schema: Any, *, in_place: bool) -> tuple[str | int, ...] | None:
    """The path of a subschema on a `$ref` cycle (in-place keywords only when `in_place`), or None."""
    if not isinstance(schema, dict):
        return None
    starts = _ref_holders(schema)
    state: dict[tuple[str | int, ...], int] = {}  # 1 on the DFS stack, 2 finished
    for start in starts:
        if state.get(start):
            continue
        stack: list[tuple[tuple[str | int, ...], Iterator[tuple[str | int, ...]]]] = []
        state[start] = 1
        stack.append((start, iter(_edges(schema, start) if in_place else _all_edges(schema, start))))
        while stack:
            path, edges = stack[-1]
            nxt = next(edges, None)
            if nxt is None:
                state[path] = 2
                stack.pop()
                continue
            seen = state.get(nxt, 0)
            if seen == 1:
                return nxt
            if seen == 0:
                state[nxt] = 1
                stack.append((nxt, iter(_edges(schema, nxt) if in_place else _all_edges(schema, nxt))))
    return None


def _ref_holders(schema: dict[str, Any]) -> list[tuple[str | int, ...]]:
    """Paths of every subschema (dicts outside data keywords), the root first."""
    out: list[tuple[str | int, ...]] = []
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(schema, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            out.append(path)
            stack.extend((v, (*path, k)) for k, v in node.items() if k not in _DATA)
        elif isinstance(node, list):
            stack.extend((v, (*path, i)) for i, v in enumerate(node))
    return out


def _all_edges(root: Any, path: tuple[str | int, ...]) -> Iterator[tuple[str | int, ...]]:
    """Children of a node in the document plus the target of its `$ref` (recursion of any kind)."""
    node = _get(root, path)
    if isinstance(node, dict):
        for key, value in node.items():
            if key not in _DATA and isinstance(value, (dict, list)):
                yield (*path, key)
        ref = node.get("$ref")
        if isinstance(ref, str):
            found = _resolve(root, ref)
            if found is not None:
                yield found[1]
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, (dict, list)):
                yield (*path, i)


def check_ref_cycles(schema: Any) -> None:
    """SchemaError when a subschema reaches itself without descending into the value."""
    where = _find_cycle(schema, in_place=True)
    if where is not None:
        raise SchemaError(
            "the schema refers to itself without descending into the value (a `$ref` cycle through "
            "allOf/anyOf/oneOf/not/if/then/else or `$ref` alone), so validating would never end; make "
            "each recursive reference go through `properties` or `items`",
            _pointer(where),
        )


def has_ref_cycle(schema: Any) -> bool:
    """True for a recursive schema (a `$ref` that leads back to where it is), whose walkers recurse once
    per level of the value."""
    return isinstance(schema, dict) and _find_cycle(schema, in_place=False) is not None


def too_deep(value: Any, limit: int = MAX_INSTANCE_DEPTH) -> list[str | int] | None:
    """The path of the first container nested more than `limit` levels deep in `value`, else None."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    trail: dict[int, tuple[Any, str | int]] = {}  # id(child) -> (parent, key): rebuilt into a path on failure
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth >= limit:
                return _path_to(node, value, trail)
            items = node.items() if isinstance(node, Mapping) else enumerate(node)
            for key, child in items:
                if isinstance(child, (dict, list)):
                    trail[id(child)] = (node, key)
                    stack.append((child, depth + 1))
    return None


def _path_to(node: Any, root: Any, trail: dict[int, tuple[Any, str | int]]) -> list[str | int]:
    parts: list[str | int] = []
    while node is not root and id(node) in trail:
        node, key = trail[id(node)]
        parts.append(key)
    return parts[::-1]
