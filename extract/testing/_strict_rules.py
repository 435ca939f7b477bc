"""The provider's documented rules for strict json_schema, as this server's own table.

Written from /work/shared/reference/cerebras-api.md ("Strict json_schema: what the schema may contain"),
independently of the library's `extract.schema.strict_violations`, so that a bug in the library's checker
shows up as a disagreement instead of being echoed back by the server. Where the page is unsure, the
conservative reading is taken (undocumented `const` and `title` are refused; every property must be required;
nesting is limited to 10 levels).

`violations(schema)` returns one "<json path>: <keyword>: <reason>" line per broken rule. Pure.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["LIMITS", "REFUSED_KEYWORDS", "STRUCTURE_KEYWORDS", "violations"]

# Keywords a strict schema may carry ($defs only at the root).
STRUCTURE_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "enum",
        "anyOf",
        "$ref",
    }
) | frozenset({"description", "$defs"})

# Keywords the page names as unsupported, with the reason quoted back to the client.
REFUSED_KEYWORDS: dict[str, str] = {
    "nullable": "not supported; use anyOf with {'type': 'null'}",
    "format": "not supported in strict mode",
    "pattern": "not supported in strict mode",
    "minimum": "numeric bounds are not supported",
    "maximum": "numeric bounds are not supported",
    "exclusiveMinimum": "numeric bounds are not supported",
    "exclusiveMaximum": "numeric bounds are not supported",
    "multipleOf": "not supported in strict mode",
    "minLength": "string length bounds are not supported",
    "maxLength": "string length bounds are not supported",
    "minItems": "array length bounds are not supported",
    "maxItems": "array length bounds are not supported",
    "uniqueItems": "not supported in strict mode",
    "oneOf": "not supported; use anyOf",
    "allOf": "not supported in strict mode",
    "not": "not supported in strict mode",
    "if": "conditional schemas are not supported",
    "then": "conditional schemas are not supported",
    "else": "conditional schemas are not supported",
    "patternProperties": "not supported in strict mode",
    "propertyNames": "not supported in strict mode",
    "minProperties": "not supported in strict mode",
    "maxProperties": "not supported in strict mode",
    "default": "not supported in strict mode",
    "examples": "not supported in strict mode",
    "const": "undocumented; send enum with one value",
    "title": "undocumented in strict mode",
    "definitions": "use $defs",
    "$anchor": "anchors are not supported",
    "$id": "external references are not supported",
    "$schema": "not supported in strict mode",
}

_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


@dataclass(frozen=True, slots=True)
class _Limits:
    chars: int = 5000
    depth: int = 10
    properties: int = 500
    enum_values: int = 500
    any_of_branches: int = 5
    big_enum: int = 250  # a string enum with more values than this ...
    big_enum_chars: int = 7500  # ... must total at most this many characters


LIMITS = _Limits()


def violations(schema: Any) -> list[str]:
    """Every documented strict-mode rule `schema` breaks; empty when the provider accepts it."""
    if not isinstance(schema, dict):
        return ["#: the schema must be a JSON object"]
    walk = _Walk(schema)
    return walk.run()


class _Walk:
    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        defs = root.get("$defs")
        self.defs: dict[str, Any] = defs if isinstance(defs, dict) else {}
        self.found: list[str] = []
        self.properties = 0
        self.enum_values = 0

    def say(self, path: str, keyword: str, reason: str) -> None:
        self.found.append(f"{path}: {keyword}: {reason}")

    def run(self) -> list[str]:
        if self.root.get("type") != "object":
            self.say("#", "type", "the root schema must be an object (type: object)")
        if "$defs" in self.root and not isinstance(self.root["$defs"], dict):
            self.say("#/$defs", "$defs", "must map names to schemas")
        self.visit(self.root, "#", root=True)
        for name, sub in self.defs.items():
            self.visit(sub, f"#/$defs/{name}", root=False)
        self.recursion_and_depth()
        self.totals()
        return self.found

    def visit(self, node: Any, path: str, *, root: bool) -> None:
        if not isinstance(node, dict):
            self.say(path, "schema", f"must be an object, not {json.dumps(node)} (no boolean schemas)")
            return
        for key in node:
            if key in REFUSED_KEYWORDS:
                self.say(path, key, REFUSED_KEYWORDS[key])
            elif key not in STRUCTURE_KEYWORDS:
                self.say(path, key, "unknown keyword, not accepted in strict mode")
        if "$defs" in node and not root:
            self.say(path, "$defs", "only allowed at the root")
        if "$ref" in node:
            self.reference(node, path)
            return
        if not any(k in node for k in ("type", "enum", "anyOf")):
            self.say(path, "type", "an empty schema (any value) is not accepted; give a type")
        kind = node.get("type")
        if isinstance(kind, list):
            self.say(path, "type", "a list of types is not supported; use anyOf")
        elif "type" in node and not (isinstance(kind, str) and kind in _TYPES):
            self.say(path, "type", f"unknown type {json.dumps(kind)}")
        if kind == "object":
            self.object(node, path)
        if kind == "array":
            self.array(node, path)
        if "anyOf" in node:
            self.any_of(node["anyOf"], path)
        if "enum" in node:
            self.enum(node["enum"], path)

    def reference(self, node: dict[str, Any], path: str) -> None:
        target = node["$ref"]
        if not isinstance(target, str) or not target.startswith("#/$defs/"):
            self.say(path, "$ref", f"only '#/$defs/...' references are accepted, got {json.dumps(target)}")
        elif target.removeprefix("#/$defs/") not in self.defs:
            self.say(path, "$ref", f"{target} names no entry of the root $defs")

    def object(self, node: dict[str, Any], path: str) -> None:
        props = node.get("properties", {})
        if not isinstance(props, dict):
            self.say(path, "properties", "must map names to schemas")
            props = {}
        if node.get("additionalProperties") is not False:
            self.say(path, "additionalProperties", "every object needs additionalProperties: false")
        required = node.get("required", [])
        listed = (
            set(required)
            if isinstance(required, list) and all(isinstance(r, str) for r in required)
            else set()
        )
        if not isinstance(required, list):
            self.say(path, "required", "must be a list of property names")
        absent = [name for name in props if name not in listed]
        if absent:
            self.say(path, "required", f"every property must be required; not listed: {', '.join(absent)}")
        self.properties += len(props)
        for name, sub in props.items():
            self.visit(sub, f"{path}/properties/{name}", root=False)

    def array(self, node: dict[str, Any], path: str) -> None:
        if "prefixItems" in node:
            prefix = node["prefixItems"]
            if node.get("items") is not False:
                self.say(path, "items", "prefixItems needs items: false")
            if not isinstance(prefix, list):
                self.say(path, "prefixItems", "must be a list of schemas")
                return
            for i, sub in enumerate(prefix):
                self.visit(sub, f"{path}/prefixItems/{i}", root=False)
            return
        items = node.get("items")
        if not isinstance(items, dict):
            self.say(
                path, "items", "an array needs an items schema (items: true or a missing items is refused)"
            )
            return
        self.visit(items, f"{path}/items", root=False)

    def any_of(self, branches: Any, path: str) -> None:
        if not isinstance(branches, list) or not branches:
            self.say(path, "anyOf", "must be a non-empty list of schemas")
            return
        if len(branches) > LIMITS.any_of_branches:
            self.say(path, "anyOf", f"{len(branches)} branches; at most {LIMITS.any_of_branches}")
        for i, sub in enumerate(branches):
            self.visit(sub, f"{path}/anyOf/{i}", root=False)

    def enum(self, values: Any, path: str) -> None:
        if not isinstance(values, list) or not values:
            self.say(path, "enum", "must be a non-empty list")
            return
        self.enum_values += len(values)
        strings = [v for v in values if isinstance(v, str)]
        if len(strings) > LIMITS.big_enum and sum(len(s) for s in strings) > LIMITS.big_enum_chars:
            self.say(
                path,
                "enum",
                f"{len(strings)} string values totalling over {LIMITS.big_enum_chars} characters",
            )

    def recursion_and_depth(self) -> None:
        """A $ref cycle is refused; nesting counts every object or array level met from the root."""
        cycle: list[str] = []

        def depth(node: Any, trail: tuple[str, ...]) -> int:
            if not isinstance(node, dict):
                return 0
            target = node.get("$ref")
            if isinstance(target, str) and target.startswith("#/$defs/"):
                name = target.removeprefix("#/$defs/")
                if name in trail:
                    if not cycle:
                        cycle.extend(trail[trail.index(name) :])
                    return 0
                return depth(self.defs.get(name), (*trail, name)) if name in self.defs else 0
            own = 1 if node.get("type") in ("object", "array") else 0
            return own + max((depth(child, trail) for child in _children(node)), default=0)

        deepest = depth(self.root, ())
        if cycle:
            self.say(
                "#/$defs", "$ref", f"recursive schemas are not supported (cycle through {' -> '.join(cycle)})"
            )
        if deepest > LIMITS.depth:
            self.say("#", "nesting", f"{deepest} levels deep; at most {LIMITS.depth}")

    def totals(self) -> None:
        size = len(json.dumps(self.root, separators=(",", ":"), ensure_ascii=False))
        if size > LIMITS.chars:
            self.say("#", "length", f"{size} characters of schema; at most {LIMITS.chars}")
        if self.properties > LIMITS.properties:
            self.say(
                "#",
                "properties",
                f"{self.properties} object properties in total; at most {LIMITS.properties}",
            )
        if self.enum_values > LIMITS.enum_values:
            self.say("#", "enum", f"{self.enum_values} enum values in total; at most {LIMITS.enum_values}")


def _children(node: dict[str, Any]) -> Iterator[Any]:
    props = node.get("properties")
    if isinstance(props, dict):
        yield from props.values()
    items = node.get("items")
    if isinstance(items, dict):
        yield items
    for key in ("prefixItems", "anyOf"):
        group = node.get(key)
        if isinstance(group, list):
            yield from group
