"""Normalise a user's JSON Schema: every `$ref` becomes `#/$defs/<name>` and resolves, nothing else changes.

The result is still the user's full schema (it is what the client validates against); the wire transforms
live in `_transform`. Refs into `definitions`, into nested definitions, to arbitrary JSON pointers or to
`$id`/`$anchor` names are hoisted into root `$defs` so later passes only know one kind of reference.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote

from extract.errors import SchemaError

__all__ = ["DEFS_PREFIX", "def_name", "normalise", "subschemas"]

DEFS_PREFIX = "#/$defs/"

# keyword -> how its value holds sub-schemas: "one", "list", "map", or "one_or_list"
_SUB: dict[str, str] = {
    "additionalProperties": "one",
    "additionalItems": "one",
    "items": "one_or_list",
    "contains": "one",
    "propertyNames": "one",
    "not": "one",
    "if": "one",
    "then": "one",
    "else": "one",
    "unevaluatedProperties": "one",
    "unevaluatedItems": "one",
    "contentSchema": "one",
    "allOf": "list",
    "anyOf": "list",
    "oneOf": "list",
    "prefixItems": "list",
    "properties": "map",
    "patternProperties": "map",
    "$defs": "map",
    "definitions": "map",
    "dependentSchemas": "map",
    "dependencies": "map",
}


def subschemas(node: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """Yield (relative pointer, sub-schema) for every sub-schema directly under `node`."""
    for key, kind in _SUB.items():
        if key not in node:
            continue
        value = node[key]
        if kind == "one" or (kind == "one_or_list" and isinstance(value, (dict, bool))):
            if isinstance(value, (dict, bool)):
                yield key, value
        elif kind in ("list", "one_or_list") and isinstance(value, list):
            for i, sub in enumerate(value):
                yield f"{key}/{i}", sub
        elif kind == "map" and isinstance(value, dict):
            for name, sub in value.items():
                if isinstance(sub, (dict, bool)):  # dependencies may map to a list of names
                    yield f"{key}/{_escape(name)}", sub


def def_name(ref: str) -> str:
    return ref[len(DEFS_PREFIX) :]


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _unescape(part: str) -> str:
    return unquote(part).replace("~1", "/").replace("~0", "~")


class _Normaliser:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.defs: dict[str, Any] = {}
        self.hoisted: dict[int, str] = {}  # id(target node) -> name in $defs
        self.ids: dict[str, Any] = {}
        base = root.get("$id", root.get("id"))
        self.base = base.split("#")[0] if isinstance(base, str) else ""

    def run(self) -> dict[str, Any]:
        root = self.root
        for key in ("definitions", "$defs"):
            defs = root.get(key)
            if defs is None:
                continue
            if not isinstance(defs, dict):
                raise SchemaError(f"{key} must be an object of schemas", f"#/{key}")
            for name, sub in defs.items():
                self.defs.setdefault(name, sub)
                self.hoisted.setdefault(id(sub), name)
        self.index_ids(root)
        body = {k: v for k, v in root.items() if k not in ("definitions", "$defs")}
        self.rewrite(body, "#")
        done: set[str] = set()
        while len(done) < len(self.defs):  # rewriting may hoist more definitions
            for name in [n for n in self.defs if n not in done]:
                done.add(name)
                self.rewrite(self.defs[name], f"#/$defs/{_escape(name)}")
        if self.defs:
            body["$defs"] = self.defs
        return body

    def index_ids(self, node: Any) -> None:
        if not isinstance(node, dict):
            return
        for key in ("$id", "id", "$anchor"):
            value = node.get(key)
            if isinstance(value, str) and node is not self.root:
                name = value if key != "$anchor" else "#" + value
                self.ids[name] = node
                self.ids[name.split("/")[-1]] = node
        for _, sub in subschemas(node):
            self.index_ids(sub)

    def rewrite(self, node: Any, path: str) -> None:
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str):
            node["$ref"] = self.resolve(ref, path)
        elif ref is not None:
            raise SchemaError(f"$ref must be a string, got {type(ref).__name__}", path)
        if path != "#":
            # every ref is now root-relative: a nested base URI would make "#/$defs/..." resolve elsewhere
            for key in ("$id", "id"):
                if isinstance(node.get(key), str):
                    del node[key]
        for rel, sub in subschemas(node):
            if rel.startswith(("definitions/", "$defs/")):
                continue  # nested definitions are reached through refs, and hoisted then
            self.rewrite(sub, f"{path}/{rel}")

    def resolve(self, ref: str, path: str) -> str:
        if ref.startswith(DEFS_PREFIX) and _unescape(def_name(ref)) in self.defs:
            return ref  # already normal (or rewritten in an earlier pass over shared nodes)
        target_ref = ref
        if self.base and ref.startswith(self.base):
            target_ref = ref[len(self.base) :] or "#"
        if target_ref.startswith("#/") or target_ref == "#":
            parts = [_unescape(p) for p in target_ref[2:].split("/")] if target_ref != "#" else []
            if len(parts) == 2 and parts[0] in ("definitions", "$defs") and parts[1] in self.defs:
                top = self.root.get(parts[0])
                if isinstance(top, dict) and parts[1] in top:
                    return DEFS_PREFIX + _escape(self.hoisted.get(id(top[parts[1]]), parts[1]))
            target = self.pointer(parts, ref, path)
            hint = parts[-1] if parts else "Root"
            return DEFS_PREFIX + _escape(self.hoist(target, hint, is_root=not parts))
        for key in (target_ref, target_ref.lstrip("#"), target_ref.split("/")[-1]):
            if key in self.ids:
                return DEFS_PREFIX + _escape(self.hoist(self.ids[key], key.strip("#") or "Ref"))
        raise SchemaError(
            f"$ref {ref!r} cannot be resolved: only references inside this schema are supported; "
            "inline the referenced schema or add it under $defs",
            path,
        )

    def pointer(self, parts: list[str], ref: str, path: str) -> Any:
        node: Any = self.root
        for part in parts:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise SchemaError(f"$ref {ref!r} points to nothing in this schema (dangling reference)", path)
        if not isinstance(node, (dict, bool)):
            raise SchemaError(f"$ref {ref!r} points to a value that is not a schema", path)
        return node

    def hoist(self, target: Any, hint: str, is_root: bool = False) -> str:
        found = self.hoisted.get(id(target))
        if found is not None:
            return found
        base = re.sub(r"[^A-Za-z0-9_.-]", "_", hint) or "Ref"
        name, n = base, 1
        while name in self.defs:
            n += 1
            name = f"{base}_{n}"
        if is_root and isinstance(target, dict):
            target = {k: v for k, v in target.items() if k not in ("definitions", "$defs")}
        self.hoisted[id(target)] = name
        if is_root:
            self.hoisted[id(self.root)] = name
        self.defs[name] = target
        return name


def normalise(schema: Any) -> dict[str, Any]:
    """Return a normalised deep copy of `schema` (a dict or boolean JSON Schema)."""
    if schema is True:
        return {}
    if schema is False:
        raise SchemaError("the schema `false` accepts no value, so nothing can be extracted with it", "#")
    if not isinstance(schema, dict):
        raise SchemaError(f"a JSON Schema must be an object, got {type(schema).__name__}", "#")
    return _Normaliser(copy.deepcopy(schema)).run()
