"""Is a wire schema inside a provider's strict subset? The reasons it is not, one per offence.

This is the rule book the compiler is held to (its tests assert `strict_violations(wire) == []`), and the
loopback test server uses it to reject schemas the way the real API does.

Nesting depth counts data levels: every object or array schema met on a path from the root (following
`$ref`, not counting `anyOf` wrappers) adds one, so the root object alone has depth 1.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from extract.schema._guard import MAX_SCHEMA_DEPTH, too_deep
from extract.schema._json import json_type
from extract.schema._profiles import Profile, get_profile

__all__ = ["compact_size", "strict_violations"]

_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
_PY_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def compact_size(schema: Any) -> int:
    """Characters of `schema` as compact JSON, the measure providers limit."""
    try:
        return len(orjson.dumps(schema).decode())
    except TypeError:  # integers beyond 64 bits
        return len(json.dumps(schema, separators=(",", ":"), ensure_ascii=False))


class _Checker:
    def __init__(self, root: dict[str, Any], profile: Profile) -> None:
        self.root = root
        self.profile = profile
        self.out: list[str] = []
        self.properties = 0
        self.enum_values = 0
        defs = root.get("$defs", {})
        self.defs: dict[str, Any] = defs if isinstance(defs, dict) else {}

    def add(self, path: str, message: str) -> None:
        self.out.append(f"{path or '#'}: {message}")

    def run(self) -> list[str]:
        p, root = self.profile, self.root
        if not p.strict_json_schema:
            self.add("#", f"provider {p.name!r} has no strict json_schema mode")
            return self.out
        if root.get("type") != "object":
            self.add("#", "type: the root must be an object schema (`type: object`)")
        defs = root.get("$defs")
        if defs is not None and not isinstance(defs, dict):
            self.add("#/$defs", "$defs must be an object of schemas")
        self.node(root, "#", is_root=True)
        for name, sub in self.defs.items():
            self.node(sub, f"#/$defs/{name}")
        self.refs_and_depth()
        self.limits()
        return self.out

    def node(self, s: Any, path: str, is_root: bool = False) -> None:
        p = self.profile
        if not isinstance(s, dict):
            self.add(
                path, f"a schema must be an object, got {json_type(s)} (boolean schemas are not accepted)"
            )
            return
        if not s:
            self.add(path, "empty schema {} (any value) is not accepted; give a type")
            return
        for key in s:
            if key not in p.allowed_keywords:
                self.add(path, f"{key}: keyword not accepted in strict mode")
        if "$defs" in s and not is_root:
            self.add(path, "$defs: only allowed at the root")
        if "description" in s and not isinstance(s["description"], str):
            self.add(path, "description: must be a string")
        if "$ref" in s:
            self.ref(s, path)
            return
        has_type = "type" in s
        if has_type:
            self.type_(s, path)
        if "anyOf" in s:
            self.any_of(s, path)
        elif not has_type and "enum" not in s:
            self.add(path, "type: missing (every schema needs a type, an enum, an anyOf or a $ref)")
        if "enum" in s:
            self.enum(s, path)
        self.constraints(s, path)

    def ref(self, s: dict[str, Any], path: str) -> None:
        ref = s["$ref"]
        extra = sorted(k for k in s if k != "$ref")
        if extra:
            self.add(path, f"$ref: must stand alone, found siblings {extra}")
        if not isinstance(ref, str) or not ref.startswith("#/$defs/"):
            self.add(path, f"$ref: only local '#/$defs/<name>' references are accepted, got {ref!r}")
        elif ref[len("#/$defs/") :] not in self.defs:
            self.add(path, f"$ref: {ref!r} points to no entry of the root $defs")

    def type_(self, s: dict[str, Any], path: str) -> None:
        t = s["type"]
        if isinstance(t, list):
            if not self.profile.allow_type_lists:
                self.add(path, "type: a list of types is not accepted; use anyOf")
                return
            types = t
        else:
            types = [t]
        for one in types:
            if not isinstance(one, str) or one not in _TYPES:
                self.add(path, f"type: unknown type {one!r}")
        types = [one for one in types if isinstance(one, str)]
        if "anyOf" in s:
            self.add(path, "anyOf: must not be combined with type in the same schema")
        if "object" in types:
            self.object_(s, path)
        elif "properties" in s or "required" in s or "additionalProperties" in s:
            self.add(path, "properties: object keywords on a schema whose type is not object")
        if "array" in types:
            self.array(s, path)
        elif "items" in s or "prefixItems" in s:
            self.add(path, "items: array keywords on a schema whose type is not array")

    def object_(self, s: dict[str, Any], path: str) -> None:
        props = s.get("properties", {})
        if not isinstance(props, dict):
            self.add(f"{path}/properties", "properties: must be an object")
            props = {}
        if s.get("additionalProperties") is not False:
            self.add(path, "additionalProperties: must be false on every object")
        required = s.get("required", [])
        if not isinstance(required, list):
            self.add(path, "required: must be a list")
            required = []
        missing = [k for k in props if k not in required]
        if missing:
            self.add(path, f"required: every property must be required, missing {missing}")
        unknown = [k for k in required if k not in props]
        if unknown:
            self.add(path, f"required: names not in properties {unknown}")
        self.properties += len(props)
        for name, sub in props.items():
            self.node(sub, f"{path}/properties/{name}")

    def array(self, s: dict[str, Any], path: str) -> None:
        if "prefixItems" in s:
            prefix = s["prefixItems"]
            if not isinstance(prefix, list) or not prefix:
                self.add(f"{path}/prefixItems", "prefixItems: must be a non-empty list of schemas")
                prefix = []
            if s.get("items") is not False:
                self.add(path, "items: must be false next to prefixItems")
            for i, sub in enumerate(prefix):
                self.node(sub, f"{path}/prefixItems/{i}")
            return
        if "items" not in s:
            self.add(path, "items: an array needs an items schema (or prefixItems with items: false)")
            return
        self.node(s["items"], f"{path}/items")

    def any_of(self, s: dict[str, Any], path: str) -> None:
        branches = s["anyOf"]
        if not isinstance(branches, list) or not branches:
            self.add(f"{path}/anyOf", "anyOf: must be a non-empty list of schemas")
            return
        limit = self.profile.max_any_of
        if limit is not None and len(branches) > limit:
            self.add(f"{path}/anyOf", f"anyOf: {len(branches)} branches, at most {limit} are accepted")
        extra = sorted(k for k in s if k not in ("anyOf", "description"))
        if extra:
            self.add(path, f"anyOf: must not have sibling keywords {extra}")
        for i, sub in enumerate(branches):
            self.node(sub, f"{path}/anyOf/{i}")

    def enum(self, s: dict[str, Any], path: str) -> None:
        values = s["enum"]
        if not isinstance(values, list) or not values:
            self.add(f"{path}/enum", "enum: must be a non-empty list")
            return
        self.enum_values += len(values)
        kinds = {json_type(v) for v in values}
        if kinds & {"object", "array"}:
            self.add(f"{path}/enum", "enum: values must be strings, numbers, booleans or null")
        if len(kinds - {"integer"} if "number" in kinds else kinds) > 1:
            self.add(f"{path}/enum", f"enum: values of mixed types {sorted(kinds)}; split them with anyOf")
        t = s.get("type")
        if isinstance(t, str) and t in _PY_TYPES:
            bad = [v for v in values if not _matches_type(v, t)]
            if bad:
                self.add(f"{path}/enum", f"enum: values {bad[:3]!r} do not match type {t!r}")
        strings = [v for v in values if isinstance(v, str)]
        limit = self.profile.large_enum_chars
        if (
            limit is not None
            and len(strings) > self.profile.large_enum_threshold
            and sum(len(v) for v in strings) > limit
        ):
            self.add(
                f"{path}/enum",
                f"enum: {len(strings)} strings totalling more than {limit} characters",
            )

    def constraints(self, s: dict[str, Any], path: str) -> None:
        allowed = self.profile.allowed_formats
        fmt = s.get("format")
        if fmt is not None and allowed is not None and fmt not in allowed:
            self.add(path, f"format: {fmt!r} is not one of the accepted formats {sorted(allowed)}")

    def children(self, s: Any) -> list[tuple[Any, bool]]:
        """Sub-schemas of `s` with whether stepping into them adds a data level."""
        if not isinstance(s, dict):
            return []
        out: list[tuple[Any, bool]] = []
        props = s.get("properties")
        if isinstance(props, dict):
            out.extend((v, False) for v in props.values())
        items = s.get("items")
        if isinstance(items, dict):
            out.append((items, False))
        prefix = s.get("prefixItems")
        if isinstance(prefix, list):
            out.extend((v, False) for v in prefix)
        branches = s.get("anyOf")
        if isinstance(branches, list):
            out.extend((v, False) for v in branches)
        return out

    def refs_and_depth(self) -> None:
        """Report recursion (a cycle of $refs) and the deepest data nesting, following refs."""
        p = self.profile
        memo: dict[str, int] = {}
        cyclic: set[str] = set()

        def depth(s: Any, stack: tuple[str, ...]) -> int:
            if not isinstance(s, dict):
                return 0
            ref = s.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                name = ref[len("#/$defs/") :]
                if name not in self.defs:
                    return 0
                if name in stack:
                    cyclic.update(stack[stack.index(name) :])
                    return 0
                if name not in memo:
                    memo[name] = depth(self.defs[name], (*stack, name))
                return memo[name]
            own = 1 if s.get("type") in ("object", "array") else 0
            kids = [depth(c, stack) for c, _ in self.children(s)]
            return own + max(kids, default=0)

        deepest = depth(self.root, ())
        if cyclic and not p.allow_recursion:
            self.add("#/$defs", f"$ref: recursive schemas are not accepted (cycle through {sorted(cyclic)})")
        if p.max_depth is not None and deepest > p.max_depth:
            self.add("#", f"nesting depth {deepest} exceeds the limit of {p.max_depth}")

    def limits(self) -> None:
        p = self.profile
        if p.max_chars is not None:
            size = compact_size(self.root)
            if size > p.max_chars:
                self.add("#", f"schema is {size} characters as compact JSON, the limit is {p.max_chars}")
        if p.max_properties is not None and self.properties > p.max_properties:
            self.add("#", f"{self.properties} object properties in total, the limit is {p.max_properties}")
        if p.max_enum_values is not None and self.enum_values > p.max_enum_values:
            self.add("#", f"{self.enum_values} enum values in total, the limit is {p.max_enum_values}")


def _matches_type(value: Any, t: str) -> bool:
    if t in ("integer", "number") and isinstance(value, bool):
        return False
    if t == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _PY_TYPES[t])


def strict_violations(schema: dict[str, Any], profile: str | Profile = "cerebras") -> list[str]:
    """Why `schema` is not inside `profile`'s strict subset, each as "<json path>: <keyword>: <reason>".

    An empty list means the provider's strict json_schema mode accepts it.
    """
    if not isinstance(schema, dict):
        return ["#: the schema must be a JSON object"]
    where = too_deep(schema, MAX_SCHEMA_DEPTH)
    if where is not None:  # the checker recurses per level: refuse what no provider nests anyway
        pointer = "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in where)
        return [f"{pointer}: nesting: the schema nests more than {MAX_SCHEMA_DEPTH} objects and arrays"]
    return _Checker(schema, get_profile(profile)).run()
