"""The strict transform: a normalised user schema -> a wire schema, its codec, and the relaxations.

Shape changes (and why):
- optional property -> required and nullable; decode drops the null again. When null is itself a value of
  the property, null cannot also mean "absent", so such a property travels as `null` (absent) or
  `{"value": x}` (present) - unless its default is null, where absent and null are the same value.
- maps (`additionalProperties: {schema}`, open objects, `patternProperties`) -> arrays of
  `{"key", "value"}` entries; an object with both fixed and extra properties keeps its fixed properties and
  puts the extras under one more property whose name is chosen not to collide.
- non-object root -> `{"value": root}`.
- any value (`{}`, `true`, no type) -> a string holding JSON text. An anyOf of the primitive types would
  lose objects and arrays, and strict mode has no open-ended object; JSON text carries every value exactly,
  and decoding falls back to the plain string when the text is not JSON.
- recursion (where the profile forbids it) -> unrolled `unroll` levels deep, deeper data as JSON text.
- constraints the profile cannot enforce -> hints in `description`; `not`, `if/then/else`, dependencies ->
  client-side only. Everything is still validated against the user's full schema after decoding.

Wire dicts are never mutated once built (subtrees are shared); transforms build new dicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from extract.errors import SchemaError
from extract.schema._codec import (
    IDENTITY,
    Arr,
    Codec,
    Field,
    MapEntries,
    Obj,
    Ref,
    TupleObj,
    Wrap,
    wire_match,
)
from extract.schema._graph import cyclic_defs, reaches
from extract.schema._hints import CONSTRAINTS, constraint_hints, numeric_bounds
from extract.schema._merge import Unmergeable, merge_all
from extract.schema._normalise import DEFS_PREFIX, def_name
from extract.schema._options import Options, Relaxation, TooBig
from extract.schema._profiles import Profile
from extract.schema._shapes import NULL, Result, boxed, free_name
from extract.schema._unions import UnionBuilder

__all__ = ["Options", "Relaxation", "TooBig", "Transformed", "transform"]

_TYPES = ("string", "number", "integer", "boolean", "object", "array", "null")
_CLIENT_ONLY = (
    "not",
    "if",
    "then",
    "else",
    "dependencies",
    "dependentRequired",
    "dependentSchemas",
    "unevaluatedProperties",
    "unevaluatedItems",
)
_INFER: dict[str, str] = {
    **{k: v for k, v in CONSTRAINTS.items() if v != "number"},
    "minimum": "number",
    "maximum": "number",
    "exclusiveMinimum": "number",
    "exclusiveMaximum": "number",
    "multipleOf": "number",
    "properties": "object",
    "required": "object",
    "additionalProperties": "object",
    "patternProperties": "object",
    "items": "array",
    "prefixItems": "array",
    "additionalItems": "array",
}
_MISSING = object()


@dataclass(slots=True)
class Transformed:
    wire: dict[str, Any]
    codec: Codec
    relaxations: list[Relaxation]


class _Transformer(UnionBuilder):
    def __init__(self, user: dict[str, Any], profile: Profile, opts: Options) -> None:
        super().__init__(profile, opts)
        self.defs: dict[str, Any] = user.get("$defs", {})
        self.nodes = 0
        self.rec_codecs: dict[str, Codec] = {}
        self.recursive = cyclic_defs(self.defs)
        self.memo: dict[tuple[str, int], Result] = {}
        self.reaches_cycle = reaches(self.defs, self.recursive)

    def target(self, ref: Any, path: str) -> tuple[str, Any]:
        if not isinstance(ref, str) or not ref.startswith(DEFS_PREFIX):
            raise SchemaError(f"unsupported $ref {ref!r}; normalise the schema first", path)
        name = def_name(ref).replace("~1", "/").replace("~0", "~")
        if name not in self.defs:
            raise SchemaError(f"$ref {ref!r} points to no definition", path)
        return name, self.defs[name]

    # ---- entry ---------------------------------------------------------------------------------------
    def node(self, s: Any, path: str, depth: int, stack: tuple[str, ...]) -> Result:
        self.nodes += 1
        if self.nodes > self.opts.max_nodes:
            raise TooBig(f"the expanded schema has more than {self.opts.max_nodes} nodes")
        if s is True:
            s = {}
        if s is False:
            self.relaxed(path, "false", "the schema `false` accepts nothing; the wire sends null")
            return NULL, IDENTITY
        if not isinstance(s, dict):
            raise SchemaError(f"expected a schema (an object), got {type(s).__name__}", path)
        if "$ref" in s:
            return self.ref(s, path, depth, stack)
        if "allOf" in s:
            merged, inner_stack = self.merge(s, path, stack)
            return self.node(merged, path, depth, inner_stack)
        for key in _CLIENT_ONLY:
            if key in s:
                self.relaxed(path, key, f"`{key}` cannot be expressed in strict mode; checked after decoding")
        s = self.canonical(s, path)
        if "enum" in s:
            return self.enum(s, path)
        if "anyOf" in s:
            siblings = {
                k: v
                for k, v in s.items()
                if k not in ("anyOf", "description", "title", "default", "examples")
            }
            branches = [
                self.merge({"allOf": [siblings, b]}, path, stack) if siblings else (b, stack)
                for b in s["anyOf"]
            ]
            results = [self.node(b, f"{path}/anyOf/{i}", depth, st) for i, (b, st) in enumerate(branches)]
            wire, codec = self.union(results, path, depth)
            return (self.describe(wire, s, []) if "anyOf" in wire else wire), codec
        types = self.types(s, path)
        if not types:
            return self.any_value(s)
        if len(types) > 1:
            results = [self.typed(s, t, path, depth, stack) for t in types]
            wire, codec = self.union(results, path, depth)
            return (self.describe(wire, s, []) if "anyOf" in wire else wire), codec
        return self.typed(s, types[0], path, depth, stack)

    def canonical(self, s: dict[str, Any], path: str) -> dict[str, Any]:
        """Fold `nullable`, `const` and `oneOf` into the keywords the rest understands."""
        if "oneOf" in s:
            s = dict(s)
            one = s.pop("oneOf")
            if "anyOf" in s:
                self.relaxed(
                    path, "oneOf", "oneOf next to anyOf: the wire keeps anyOf, oneOf is checked after"
                )
            else:
                s["anyOf"] = one
                self.relaxed(path, "oneOf", "sent as anyOf; exactly-one is checked after decoding")
        if "const" in s:
            s = {**s, "enum": [s["const"]]}
            del s["const"]
        if s.get("nullable") is True:
            s = dict(s)
            del s["nullable"]
            t = s.get("type")
            if isinstance(t, str):
                s["type"] = [t, "null"]
            elif isinstance(t, list) and "null" not in t:
                s["type"] = [*t, "null"]
            if isinstance(s.get("enum"), list) and None not in s["enum"]:
                s["enum"] = [*s["enum"], None]
        return s

    def types(self, s: dict[str, Any], path: str) -> list[str]:
        t = s.get("type")
        if t is None:
            found = list(dict.fromkeys(_INFER[k] for k in s if k in _INFER))
            return found
        listed = t if isinstance(t, list) else [t]
        if "any" in listed:
            return []
        out = [x for x in listed if x in _TYPES]
        if not out:
            raise SchemaError(f"type {t!r} names no JSON type", path)
        if "number" in out and "integer" in out:
            out.remove("integer")
        return list(dict.fromkeys(out))

    # ---- references and allOf ------------------------------------------------------------------------
    def ref(self, s: dict[str, Any], path: str, depth: int, stack: tuple[str, ...]) -> Result:
        name, target = self.target(s["$ref"], path)
        siblings = {
            k: v for k, v in s.items() if k not in ("$ref", "title", "$comment", "examples", "default")
        }
        if set(siblings) - {"description"}:
            merged, inner_stack = self.merge({"allOf": [{"$ref": s["$ref"]}, siblings]}, path, stack)
            return self.node(merged, path, depth, inner_stack)
        if name in self.recursive:
            if self.profile.allow_recursion:
                wire, codec = self.recursive_ref(name)
                return wire, codec
            if stack.count(name) >= self.opts.unroll:
                self.relaxed(
                    path,
                    "$ref",
                    f"recursion deeper than {self.opts.unroll} levels is carried as JSON text",
                )
                return self.any_value(siblings)
        key = (name, depth)
        cacheable = name not in self.reaches_cycle
        if cacheable and key in self.memo:
            wire, codec = self.memo[key]
        else:
            wire, codec = self.node(target, f"#/$defs/{name}", depth, (*stack, name))
            if cacheable:
                self.memo[key] = (wire, codec)
        if "description" in siblings:
            wire = self.describe(wire, {**siblings}, [])
        return wire, codec

    def recursive_ref(self, name: str) -> Result:
        wire_name = name.replace("~", "_").replace("/", "_")
        if name not in self.rec_codecs:
            self.rec_codecs[name] = IDENTITY  # placeholder while the cycle is open
            wire, codec = self.node(self.defs[name], f"#/$defs/{name}", 1, (name,))
            self.wire_defs[wire_name] = wire
            self.rec_codecs[name] = codec
        return {"$ref": DEFS_PREFIX + wire_name}, Ref(name, self.rec_codecs)

    def merge(
        self, s: dict[str, Any], path: str, stack: tuple[str, ...]
    ) -> tuple[dict[str, Any], tuple[str, ...]]:
        """allOf (and $ref with siblings) -> one schema; on conflict the strictest branch.

        Returns the merged schema and the definition stack extended by every definition inlined, so
        recursion through allOf still counts towards the unroll depth.
        """
        flat: list[dict[str, Any]] = []
        inlined: list[str] = []
        self.flatten(s, flat, path, stack, inlined)
        new_stack = (*stack, *inlined)
        dropped: list[str] = []
        try:
            merged = merge_all(flat, dropped)
        except Unmergeable as exc:
            best = max(flat, key=lambda b: (len(b.get("properties", {})), len(b)))
            self.relaxed(path, "allOf", f"branches cannot be merged ({exc}); the wire keeps one")
            return best, new_stack
        for key in dropped:
            self.relaxed(
                path, key, "allOf branches disagree; the wire keeps the first, both are checked after"
            )
        return merged, new_stack

    def flatten(
        self, s: Any, out: list[dict[str, Any]], path: str, stack: tuple[str, ...], inlined: list[str]
    ) -> None:
        if s is True or not isinstance(s, dict):
            if s is False:
                raise SchemaError("allOf contains `false`: the schema accepts nothing", path)
            return
        own = {k: v for k, v in s.items() if k not in ("allOf", "$ref")}
        ref = s.get("$ref")
        if ref is not None:
            name, target = self.target(ref, path)
            seen = (*stack, *inlined)
            if name in self.recursive and (
                self.profile.allow_recursion or seen.count(name) >= self.opts.unroll
            ):
                self.relaxed(path, "$ref", "a recursive definition inside allOf is checked after decoding")
            else:
                inlined.append(name)
                self.flatten(target, out, path, stack, inlined)
        for sub in s.get("allOf", []) if isinstance(s.get("allOf"), list) else []:
            self.flatten(sub, out, path, stack, inlined)
        if own:
            out.append(own)

    # ---- types -----------------------------------------------------------------------------------------
    def typed(self, s: dict[str, Any], t: str, path: str, depth: int, stack: tuple[str, ...]) -> Result:
        if t in ("object", "array"):
            limit = self.profile.max_depth
            if limit is not None and depth > limit:
                self.relaxed(path, "type", f"nested deeper than {limit} levels: carried as JSON text")
                return self.any_value(s)
            if t == "object":
                return self.object_(s, path, depth, stack)
            return self.array(s, path, depth, stack)
        return self.scalar(s, t, path)

    def constraints(self, s: dict[str, Any], t: str, path: str) -> tuple[dict[str, Any], list[str]]:
        """Split the constraints of `s` into the ones kept on the wire and hints for the rest."""
        keep: dict[str, Any] = {}
        hints: list[str] = []
        allowed = self.profile.wire_constraints
        bounds = numeric_bounds(s) if t in ("number", "integer") else {}
        for key, hint in constraint_hints(s, t):
            value = bounds.get(key, s.get(key))
            ok = key in allowed and not (
                key == "format"
                and self.profile.allowed_formats is not None
                and value not in self.profile.allowed_formats
            )
            if ok:
                keep[key] = value
            else:
                hints.append(hint)
                self.relaxed(path, key, "not enforced by the provider's strict mode; checked after decoding")
        return keep, hints

    def scalar(self, s: dict[str, Any], t: str, path: str) -> Result:
        keep, hints = self.constraints(s, t, path)
        return self.describe({"type": t, **keep}, s, hints), IDENTITY

    def array(self, s: dict[str, Any], path: str, depth: int, stack: tuple[str, ...]) -> Result:
        keep, hints = self.constraints(s, "array", path)
        items = s.get("items", True)
        prefix = s.get("prefixItems")
        tail: Any = items
        if isinstance(items, list):
            prefix, tail = items, s.get("additionalItems", True)
        if isinstance(prefix, list) and prefix:
            results = [
                self.node(p, f"{path}/prefixItems/{i}", depth + 1, stack) for i, p in enumerate(prefix)
            ]
            if tail is not False:
                self.relaxed(path, "items", f"only the first {len(prefix)} items can be written")
            codecs = [c for _, c in results]
            if not self.profile.allow_prefix_items:
                names = [f"item_{i}" for i in range(len(results))]
                wire = {
                    "type": "object",
                    "properties": dict(zip(names, (w for w, _ in results), strict=True)),
                    "required": names,
                    "additionalProperties": False,
                }
                hints = ["a fixed-length list, written as item_0, item_1, ...", *hints]
                return self.describe(wire, s, hints), TupleObj(codecs)
            wire = {"type": "array", "prefixItems": [w for w, _ in results], "items": False, **keep}
            codec: Codec = IDENTITY if all(c.identity for c in codecs) else Arr(prefix=codecs)
            return self.describe(wire, s, hints), codec
        if tail is False:
            tail = True
        item_wire, item_codec = self.node(tail, f"{path}/items", depth + 1, stack)
        wire = {"type": "array", "items": item_wire, **keep}
        return self.describe(wire, s, hints), (IDENTITY if item_codec.identity else Arr(items=item_codec))

    def object_(self, s: dict[str, Any], path: str, depth: int, stack: tuple[str, ...]) -> Result:
        _, hints = self.constraints(s, "object", path)
        props = s.get("properties", {})
        if not isinstance(props, dict):
            raise SchemaError("properties must be an object", f"{path}/properties")
        required = s.get("required", [])
        if not isinstance(required, list):
            required = []
        extras = self.extras(s, props, path)
        props = dict(props)
        for name in required:
            if isinstance(name, str) and name not in props:
                props[name] = extras if extras is not None else True
        if not props and extras is not None:
            return self.map_(extras, s, path, depth, stack, hints)
        fields: list[Field] = []
        wire_props: dict[str, Any] = {}
        for name, sub in props.items():
            if sub is False:
                continue
            sub_path = f"{path}/properties/{name.replace('~', '~0').replace('/', '~1')}"
            inner, codec = self.node(sub, sub_path, depth + 1, stack)
            mode = "plain"
            wire = inner
            if name not in required:
                if not wire_match(inner, None, self.wire_defs):
                    mode = "drop_null"
                    wire, codec = self.or_null(inner, codec, sub_path)
                elif (isinstance(sub, dict) and sub.get("default", _MISSING) is None) or (
                    self.profile.max_depth is not None and depth + 1 > self.profile.max_depth
                ):
                    mode = "keep_null"
                else:
                    mode = "wrapped"
                    inner, codec = self.node(sub, sub_path, depth + 2, stack)
                    wire = boxed(inner)
            wire_props[name] = wire
            fields.append(Field(name, name, codec, inner, mode))
        extra_key = None
        extra_codec = None
        if extras is not None:
            extra_key = free_name("additional_properties", wire_props)
            entries, extra_codec = self.map_(extras, s, path, depth + 1, stack, [])
            wire_props[extra_key] = {**entries, "description": "entries beyond the named properties"}
        wire = {
            "type": "object",
            "properties": wire_props,
            "required": list(wire_props),
            "additionalProperties": False,
        }
        codec_out: Codec = Obj(fields, extra_key, extra_codec)
        if extras is None and all(f.mode == "plain" and f.codec.identity for f in fields):
            codec_out = IDENTITY
        return self.describe(wire, s, hints), codec_out

    def extras(self, s: dict[str, Any], props: dict[str, Any], path: str) -> Any:
        """The schema of properties beyond the named ones, or None when the wire allows none."""
        addl = s.get("additionalProperties", _MISSING)
        patterns = s.get("patternProperties")
        if isinstance(patterns, dict) and patterns:
            values = list(patterns.values())
            if isinstance(addl, dict) and addl:
                values.append(addl)
            self.relaxed(path, "patternProperties", "keys are checked against the patterns after decoding")
            return values[0] if len(values) == 1 else {"anyOf": values}
        if addl is False:
            return None
        if isinstance(addl, dict) and addl:
            return addl
        if addl is True or addl == {} or not props:
            return {} if (addl is not _MISSING or not props) else None
        return None

    def map_(
        self,
        value_schema: Any,
        s: dict[str, Any],
        path: str,
        depth: int,
        stack: tuple[str, ...],
        hints: list[str],
    ) -> Result:
        limit = self.profile.max_depth
        if limit is not None and depth + 1 > limit:
            self.relaxed(
                path, "additionalProperties", f"nested deeper than {limit} levels: carried as JSON text"
            )
            return self.any_value(s, hints)
        value_wire, value_codec = self.node(value_schema, f"{path}/additionalProperties", depth + 2, stack)
        entry = {
            "type": "object",
            "properties": {"key": {"type": "string"}, "value": value_wire},
            "required": ["key", "value"],
            "additionalProperties": False,
        }
        wire = {"type": "array", "items": entry}
        return self.describe(wire, s, ["a map, written as key/value entries", *hints]), MapEntries(
            value_codec
        )


def transform(user: dict[str, Any], profile: Profile, opts: Options) -> Transformed:
    """Build the wire schema and codec for `user` (normalised) under `profile`'s strict rules."""
    t = _Transformer(user, profile, opts)
    wire, codec = t.node(user, "#", 1, ())
    if wire.get("type") != "object":
        t = _Transformer(user, profile, opts)
        inner, codec = t.node(user, "#", 2, ())
        wire = {
            "type": "object",
            "properties": {"value": inner},
            "required": ["value"],
            "additionalProperties": False,
        }
        codec = Wrap("value", codec)
        t.relax.setdefault(("#", "type"), 'the root is not an object: sent as {"value": ...}')
    if t.wire_defs:
        wire = {**wire, "$defs": dict(t.wire_defs)}
    relaxations = [Relaxation(p, k, r) for (p, k), r in t.relax.items()]
    return Transformed(wire, codec, relaxations)
