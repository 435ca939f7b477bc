"""The fast path of JSON Schema validation: common keywords compiled once into plain closures.

python-jsonschema creates a validator object for every subschema it descends into, which costs ~10 us per node:
~0.5 ms for an invoice. Most extraction schemas use a small set of keywords, so those are compiled once into
plain closures with jsonschema's own type checker, format checker and equality; anything else (embedded $id,
anchors, remote refs, draft 3) keeps jsonschema. The closures only answer valid/invalid; messages always come
from jsonschema itself (see _validate.py).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import jsonschema
from jsonschema._utils import equal as _js_equal  # the equality jsonschema itself uses for enum/const
from jsonschema.protocols import Validator as _JSValidator

from extract._ecma_regex import RegexError, compile_ecma

__all__ = ["Check", "compile_fast"]


Check = Callable[[Any], bool]


class _Unsupported(Exception):
    """The schema uses something the fast path does not model; jsonschema alone is used."""


_FAST_KEYWORDS = frozenset(
    {
        "type", "properties", "required", "additionalProperties", "items", "enum", "const", "minimum",
        "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "format",
        "minItems", "maxItems", "minProperties", "maxProperties", "anyOf", "oneOf", "allOf", "not", "$ref",
    }
)  # fmt: skip


def _is_number(v: Any) -> bool:
    return isinstance(v, numbers.Number) and not isinstance(v, bool)


def _is_int4(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_int6(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())


# jsonschema's type checkers as plain predicates (draft 6 let 1.0 count as an integer)
_TYPES: dict[str, Callable[[Any], bool]] = {
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "object": lambda v: isinstance(v, dict),
    "string": lambda v: isinstance(v, str),
}
_is_object, _is_array, _is_string = _TYPES["object"], _TYPES["array"], _TYPES["string"]
_LEGACY_REF = (jsonschema.Draft4Validator, jsonschema.Draft6Validator, jsonschema.Draft7Validator)


def compile_fast(
    schema: Any, cls: type[_JSValidator], formats: jsonschema.FormatChecker | None = None
) -> Check | None:
    """A closure equivalent to ``cls(schema, format_checker=formats).is_valid`` (the draft's own format
    checker by default), or None when unsupported. Patterns run on _regex's linear-time engine."""
    try:
        return _FastCompiler(schema, cls, formats).compile(schema, root=True)
    except (_Unsupported, RecursionError, RegexError):  # RegexError: leave the complaint to jsonschema
        return None


class _FastCompiler:
    def __init__(self, root: Any, cls: type[_JSValidator], formats: jsonschema.FormatChecker | None) -> None:
        self.root = root
        self.cls = cls
        self.known = frozenset(cls.VALIDATORS)
        integer = _is_int4 if cls is jsonschema.Draft4Validator else _is_int6
        self.types = {**_TYPES, "integer": integer}
        self.formats = formats if formats is not None else cls.FORMAT_CHECKER
        self.done: dict[int, Check] = {}
        self.pending: dict[int, list[Check]] = {}

    def compile(self, node: Any, root: bool = False) -> Check:
        if node is True:
            return lambda _: True
        if node is False:
            return lambda _: False
        if not isinstance(node, dict):
            raise _Unsupported
        key = id(node)
        if key in self.done:
            return self.done[key]
        if key in self.pending:  # a recursive $ref: bind late, once the node is compiled
            slot = self.pending[key]
            return lambda value: slot[0](value)
        self.pending[key] = slot = []
        if not root and any(k in node for k in ("$id", "$anchor", "$dynamicAnchor", "$recursiveAnchor")):
            raise _Unsupported
        if not root and self.cls is jsonschema.Draft4Validator and isinstance(node.get("id"), str):
            raise _Unsupported
        if (self.known & set(node)) - _FAST_KEYWORDS:
            raise _Unsupported
        if "$ref" in node and self.cls in _LEGACY_REF:
            checks = [self.ref(node["$ref"])]  # drafts 4-7 ignore the siblings of $ref
        else:
            # keywords the draft does not define are ignored, as jsonschema does (`const` under draft-04)
            found = [
                self.keyword(name, node) for name in node if name in _FAST_KEYWORDS and name in self.known
            ]
            checks = [c for c in found if c is not None]
        check = _all_of(checks)
        slot.append(check)
        self.done[key] = check
        del self.pending[key]
        return check

    def ref(self, ref: Any) -> Check:
        if not isinstance(ref, str) or not ref.startswith("#") or (len(ref) > 1 and ref[1] != "/"):
            raise _Unsupported
        node: Any = self.root
        for raw in ref[2:].split("/") if len(ref) > 1 else []:
            part = unquote(raw).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise _Unsupported  # dangling: jsonschema raises the proper error at validation time
        return self.compile(node)

    def keyword(self, name: str, node: dict[str, Any]) -> Check | None:
        spec = node[name]
        if name == "type":
            names = spec if isinstance(spec, list) else [spec]
            if not all(isinstance(n, str) and n in self.types for n in names):
                raise _Unsupported
            predicates = [self.types[n] for n in names]
            if len(predicates) == 1:
                return predicates[0]
            return lambda v: any(p(v) for p in predicates)
        if name == "$ref":
            return self.ref(spec)
        if name == "properties":
            subs = [(prop, self.compile(sub)) for prop, sub in spec.items()]
            return lambda v: not _is_object(v) or all(c(v[p]) for p, c in subs if p in v)
        if name == "required":
            if not isinstance(spec, list):
                raise _Unsupported
            return lambda v: not _is_object(v) or all(p in v for p in spec)
        if name == "additionalProperties":
            if "patternProperties" in node:
                raise _Unsupported
            declared = node.get("properties", {})
            if spec is False:
                return lambda v: not _is_object(v) or all(k in declared for k in v)
            extra = self.compile(spec)
            return lambda v: not _is_object(v) or all(extra(x) for k, x in v.items() if k not in declared)
        if name == "items":
            if isinstance(spec, list) or "prefixItems" in node:
                raise _Unsupported
            item = self.compile(spec)
            return lambda v: not _is_array(v) or all(item(x) for x in v)
        if name in ("enum", "const"):
            choices = list(spec) if name == "enum" else [spec]
            if name == "enum" and not isinstance(spec, list):
                raise _Unsupported
            return lambda v: any(_js_equal(c, v) for c in choices)
        if name in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            return self.bound(name, spec, node)
        if name in ("minLength", "maxLength"):
            low = name == "minLength"
            return lambda v: not _is_string(v) or (len(v) >= spec if low else len(v) <= spec)
        if name in ("minItems", "maxItems"):
            low = name == "minItems"
            return lambda v: not _is_array(v) or (len(v) >= spec if low else len(v) <= spec)
        if name in ("minProperties", "maxProperties"):
            low = name == "minProperties"
            return lambda v: not _is_object(v) or (len(v) >= spec if low else len(v) <= spec)
        if name == "pattern":
            search = compile_ecma(spec).search
            return lambda v: not _is_string(v) or search(v)
        if name == "format":
            formats = self.formats
            return lambda v: formats.conforms(v, spec)
        if name in ("anyOf", "oneOf", "allOf"):
            branches = [self.compile(sub) for sub in spec]
            if name == "anyOf":
                return lambda v: any(b(v) for b in branches)
            if name == "allOf":
                return lambda v: all(b(v) for b in branches)
            return lambda v: sum(1 for b in branches if b(v)) == 1
        if name == "not":
            inner = self.compile(spec)
            return lambda v: not inner(v)
        return None

    def bound(self, name: str, spec: Any, node: dict[str, Any]) -> Check | None:
        legacy = self.cls is jsonschema.Draft4Validator
        if name.startswith("exclusive"):
            if legacy:
                return None  # a draft-04 flag, read by minimum / maximum below
            if name == "exclusiveMinimum":
                return lambda v: not _is_number(v) or v > spec
            return lambda v: not _is_number(v) or v < spec
        strict = legacy and bool(node.get("exclusive" + name[0].upper() + name[1:], False))
        if name == "minimum":
            if strict:
                return lambda v: not _is_number(v) or v > spec
            return lambda v: not _is_number(v) or v >= spec
        if strict:
            return lambda v: not _is_number(v) or v < spec
        return lambda v: not _is_number(v) or v <= spec


def _all_of(checks: list[Check]) -> Check:
    if not checks:
        return lambda _: True
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)
