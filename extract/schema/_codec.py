"""Codecs: move values between the wire shape the model writes and the shape the user's schema describes.

Each transform in `_transform` that changes a value's shape builds one codec node here; the tree of nodes
mirrors the wire schema. Decoding is lenient (a value in an unexpected shape passes through unchanged, so
validation reports it); encoding is exact and raises `Unrepresentable` when the wire cannot carry a value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from extract import _json
from extract._json import loads
from extract.errors import Unrepresentable

__all__ = [
    "IDENTITY",
    "Arr",
    "Codec",
    "EnumMap",
    "Field",
    "JsonText",
    "MapEntries",
    "Obj",
    "Ref",
    "TupleObj",
    "Union",
    "Unrepresentable",
    "Wrap",
    "wire_match",
]


class Codec:
    """Identity: the wire shape is the user shape."""

    identity = True

    def decode(self, w: Any) -> Any:
        return w

    def encode(self, v: Any) -> Any:
        return v


IDENTITY = Codec()


def dump_json(value: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON text; integers beyond 64 bits (which orjson refuses) go through the json module."""
    try:
        return _json.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0).decode()
    except TypeError:
        try:
            return json.dumps(
                value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=sort_keys
            )
        except (TypeError, ValueError) as exc:
            raise Unrepresentable(f"not JSON-serialisable: {exc}") from exc


class JsonText(Codec):
    """Any value carried as a JSON-encoded string (the wire cannot express "any JSON" in strict mode).

    Parsed by the exact loader: orjson alone would turn integers beyond 64 bits into floats.
    """

    identity = False

    def decode(self, w: Any) -> Any:
        if isinstance(w, str):
            try:
                return loads(w)
            except ValueError:
                return w  # a bare string is itself a JSON value; validation decides
        return w

    def encode(self, v: Any) -> Any:
        return dump_json(v)


@dataclass(eq=False)
class EnumMap(Codec):
    """Enum members that are objects or arrays, carried as their compact JSON text."""

    by_text: dict[str, Any]
    identity = False

    def decode(self, w: Any) -> Any:
        if isinstance(w, str) and w in self.by_text:
            return self.by_text[w]
        return w

    def encode(self, v: Any) -> Any:
        if isinstance(v, (dict, list)):
            text = dump_json(v, sort_keys=True)
            if text in self.by_text:
                return text
            raise Unrepresentable("not one of the enum values")
        return v


# how an object property travels:
#   "plain"      required in the user schema: sent as is
#   "drop_null"  optional, null not a user value: wire null means absent
#   "keep_null"  optional, nullable, default null: absent and null are the same value; wire null is null
#   "wrapped"    optional and nullable without a null default: wire null = absent, {"value": x} = present
@dataclass(eq=False)
class Field:
    name: str
    wire_name: str
    codec: Codec
    inner_wire: dict[str, Any]
    mode: str = "plain"


@dataclass(eq=False)
class Obj(Codec):
    fields: list[Field]
    extra_key: str | None = None  # wire property holding extra entries, when the user object allows them
    extra: Codec | None = None
    identity = False

    def decode(self, w: Any) -> Any:
        if not isinstance(w, dict):
            return w
        out: dict[str, Any] = {}
        known: set[str] = set()
        for f in self.fields:
            known.add(f.wire_name)
            if f.wire_name not in w:
                continue
            value = w[f.wire_name]
            if f.mode == "drop_null" and value is None:
                continue
            if f.mode == "wrapped":
                if value is None:
                    continue
                if isinstance(value, dict) and set(value) == {"value"}:
                    value = value["value"]
            out[f.name] = f.codec.decode(value)
        if self.extra_key is not None and self.extra is not None:
            known.add(self.extra_key)
            extras = self.extra.decode(w.get(self.extra_key, []))
            if isinstance(extras, dict):
                for key, value in extras.items():
                    out.setdefault(key, value)
        for key, value in w.items():  # keys the wire did not define: leave them for validation to judge
            if key not in known:
                out.setdefault(key, value)
        return out

    def encode(self, v: Any) -> Any:
        if not isinstance(v, dict):
            raise Unrepresentable("expected an object")
        out: dict[str, Any] = {}
        names = set()
        for f in self.fields:
            names.add(f.name)
            if f.name not in v:
                if f.mode == "plain":
                    raise Unrepresentable(f"required property {f.name!r} is missing")
                out[f.wire_name] = None
                continue
            value = f.codec.encode(v[f.name])
            if f.mode == "drop_null" and value is None:
                raise Unrepresentable(f"{f.name!r}: null is not a value of this optional property")
            out[f.wire_name] = {"value": value} if f.mode == "wrapped" else value
        rest = {k: x for k, x in v.items() if k not in names}
        if self.extra_key is not None and self.extra is not None:
            out[self.extra_key] = self.extra.encode(rest)
        elif rest:
            raise Unrepresentable(f"properties {sorted(rest)} have no place on the wire")
        return out


@dataclass(eq=False)
class Arr(Codec):
    items: Codec = IDENTITY
    prefix: list[Codec] = field(default_factory=list)
    identity = False

    def _codec(self, i: int) -> Codec:
        return self.prefix[i] if i < len(self.prefix) else self.items

    def decode(self, w: Any) -> Any:
        if not isinstance(w, list):
            return w
        return [self._codec(i).decode(x) for i, x in enumerate(w)]

    def encode(self, v: Any) -> Any:
        if not isinstance(v, list):
            raise Unrepresentable("expected an array")
        return [self._codec(i).encode(x) for i, x in enumerate(v)]


@dataclass(eq=False)
class TupleObj(Codec):
    """A fixed-length array carried as an object {"item_0": ..., "item_1": ...} (no prefixItems)."""

    items: list[Codec]
    identity = False

    def decode(self, w: Any) -> Any:
        if not isinstance(w, dict):
            return w
        out = []
        for i, codec in enumerate(self.items):
            key = f"item_{i}"
            if key not in w:
                break
            out.append(codec.decode(w[key]))
        return out

    def encode(self, v: Any) -> Any:
        if not isinstance(v, list) or len(v) != len(self.items):
            raise Unrepresentable(f"expected an array of exactly {len(self.items)} items")
        return {f"item_{i}": c.encode(x) for i, (c, x) in enumerate(zip(self.items, v, strict=True))}


@dataclass(eq=False)
class MapEntries(Codec):
    """A map carried as a list of {"key": k, "value": v} entries (strict mode has no open-ended objects)."""

    value: Codec = IDENTITY
    identity = False

    def decode(self, w: Any) -> Any:
        if isinstance(w, dict):
            return w  # already a map: the model ignored the wire shape
        if not isinstance(w, list):
            return w
        out: dict[str, Any] = {}
        for entry in w:
            if not (isinstance(entry, dict) and isinstance(entry.get("key"), str) and "value" in entry):
                return w  # not entries after all; validation will say what is wrong
            out[entry["key"]] = self.value.decode(entry["value"])
        return out

    def encode(self, v: Any) -> Any:
        if not isinstance(v, dict):
            raise Unrepresentable("expected an object")
        return [{"key": k, "value": self.value.encode(x)} for k, x in v.items()]


@dataclass(eq=False)
class Wrap(Codec):
    """A value inside a one-property object (the wire root must be an object)."""

    key: str
    inner: Codec = IDENTITY
    identity = False

    def decode(self, w: Any) -> Any:
        if isinstance(w, dict) and set(w) == {self.key}:
            return self.inner.decode(w[self.key])
        return w

    def encode(self, v: Any) -> Any:
        return {self.key: self.inner.encode(v)}


@dataclass(eq=False)
class Union(Codec):
    """anyOf whose branches change shape differently: the wire value tells which branch it is."""

    branches: list[tuple[dict[str, Any], Codec]]
    defs: dict[str, Any]
    identity = False

    def decode(self, w: Any) -> Any:
        for wire, codec in self.branches:
            if wire_match(wire, w, self.defs):
                return codec.decode(w)
        return w

    def encode(self, v: Any) -> Any:
        for wire, codec in self.branches:
            try:
                e = codec.encode(v)
            except Unrepresentable:
                continue
            # judged by this union's own decode: a value two branches accept must come back the same way
            if wire_match(wire, e, self.defs) and same_json(self.decode(e), v):
                return e
        raise Unrepresentable("no branch of the anyOf carries this value")


@dataclass(eq=False)
class Ref(Codec):
    """A recursive definition's codec, looked up when used (the table is filled after the cycle closes)."""

    name: str
    table: dict[str, Codec]
    identity = False

    def decode(self, w: Any) -> Any:
        return self.table[self.name].decode(w)

    def encode(self, v: Any) -> Any:
        return self.table[self.name].encode(v)


def same_json(a: Any, b: Any) -> bool:
    """JSON equality that keeps booleans apart from numbers (Python says True == 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_json(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return (
            isinstance(b, list)
            and len(a) == len(b)
            and all(same_json(x, y) for x, y in zip(a, b, strict=True))
        )
    return bool(a == b) and isinstance(a, (int, float)) == isinstance(b, (int, float))


def _is_type(value: Any, t: str) -> bool:
    if t == "null":
        return value is None
    if t == "boolean":
        return isinstance(value, bool)
    if t == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t == "string":
        return isinstance(value, str)
    if t == "array":
        return isinstance(value, list)
    if t == "object":
        return isinstance(value, dict)
    return False


def wire_match(s: Any, value: Any, defs: dict[str, Any]) -> bool:
    """Does `value` fit wire schema `s`? Structure only: the wire subset's keywords, constraints ignored."""
    if s is True or s == {}:
        return True
    if not isinstance(s, dict):
        return False
    ref = s.get("$ref")
    if isinstance(ref, str):
        target = defs.get(ref.rsplit("/", 1)[-1])
        return target is not None and wire_match(target, value, defs)
    if "anyOf" in s and not any(wire_match(b, value, defs) for b in s["anyOf"]):
        return False
    if "enum" in s and not any(same_json(value, e) for e in s["enum"]):
        return False
    t = s.get("type")
    if t is None:
        return True
    types = t if isinstance(t, list) else [t]
    if not any(_is_type(value, one) for one in types):
        return False
    if isinstance(value, dict):
        props = s.get("properties", {})
        if any(k not in value for k in s.get("required", [])):
            return False
        if s.get("additionalProperties") is False and any(k not in props for k in value):
            return False
        return all(wire_match(props[k], x, defs) for k, x in value.items() if k in props)
    if isinstance(value, list):
        prefix = s.get("prefixItems")
        if isinstance(prefix, list):
            if len(value) > len(prefix) and s.get("items") is False:
                return False
            return all(wire_match(p, x, defs) for p, x in zip(prefix, value, strict=False))
        items = s.get("items")
        return items is None or all(wire_match(items, x, defs) for x in value)
    return True
