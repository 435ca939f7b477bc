"""Validate a value against the user's full schema and explain failures in a form a model can act on.

Two back ends share one result format: python-jsonschema (format checking on) for JSON Schema input, and a
pydantic ``TypeAdapter`` for types. Both are built once per schema and cached, because building them costs
milliseconds while checking a small value costs microseconds (for JSON Schema, the common keywords are
compiled into plain closures; python-jsonschema stays the authority and writes every message). Failures become
:class:`~extract.errors.Violation` lists: one per failing location, deepest first, with short messages
("must be >= 0, got -3") that can be sent back to a model as a correction.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import jsonschema
import orjson
import pydantic
import referencing
import referencing.exceptions
import referencing.jsonschema
from jsonschema.exceptions import ValidationError as _JSError
from jsonschema.protocols import Validator as _JSValidator

from extract._ecma_regex import RegexError, compile_ecma, is_ecma_regex
from extract._json import loads
from extract.errors import SchemaError, ValidationFailed, Violation
from extract.schema._fastcheck import Check, compile_fast
from extract.schema._guard import (
    MAX_INSTANCE_DEPTH,
    check_document,
    check_ref_cycles,
    has_ref_cycle,
    too_deep,
)
from extract.schema._json import json_type

__all__ = ["Validator", "choose_draft", "format_path", "show_value"]

_MAX_SHOWN = 60

# -- small formatting helpers -------------------------------------------------------------------------

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(parts: Iterable[str | int]) -> str:
    """JSONPath-style location (``$.items[0].price``); odd keys are quoted (``$['a b']``)."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT.match(part):
            out.append(f".{part}")
        else:
            out.append("[" + _quote(part) + "]")
    return "".join(out)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _clip(text: str, limit: int = _MAX_SHOWN) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def show_value(value: Any, limit: int = _MAX_SHOWN) -> str:
    """A value as a model would read it in a correction: JSON-like, strings single-quoted, clipped."""
    if isinstance(value, str):
        if len(value) > limit:
            return _quote(value[: limit - 1]) + f"… ({len(value)} chars)"
        return _quote(value)
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # not JSON, or nested deeper than orjson goes
        try:
            text = repr(value)
        except RecursionError:
            text = f"<deeply nested {json_type(value)}>"
    return _clip(text, limit)


def _show_choices(values: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(show_value(v, 30) for v in values[:limit])
    if len(values) > limit:
        shown += f", ... ({len(values)} in all)"
    return shown


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {plural or word + 's'}"


def _parse_json(data: str | bytes | bytearray) -> Any:
    """Parse reply text; a failure is a violation at the root, located so the model can see where."""
    try:
        return loads(data)  # exact numbers: integers of any size stay int
    except json.JSONDecodeError as exc:
        where = f" at line {exc.lineno} column {exc.colno}" if exc.lineno else ""
        raise ValidationFailed(
            [Violation("$", f"the reply is not valid JSON: {exc.msg.lower()}{where}")]
        ) from None


def _dedupe_sorted(found: Iterable[tuple[int, int, Violation]]) -> list[Violation]:
    """Deepest first, weak (combinator) reports last, first occurrence wins among duplicates."""
    ranked = sorted(enumerate(found), key=lambda item: (-item[1][0], item[1][1], item[0]))
    seen: set[Violation] = set()
    out: list[Violation] = []
    for _, (_, _, violation) in ranked:
        if violation not in seen:
            seen.add(violation)
            out.append(violation)
    return out


# -- JSON Schema back end -----------------------------------------------------------------------------

_DRAFTS_NEWEST_FIRST: tuple[type[_JSValidator], ...] = (
    jsonschema.Draft202012Validator,
    jsonschema.Draft201909Validator,
    jsonschema.Draft7Validator,
    jsonschema.Draft6Validator,
    jsonschema.Draft4Validator,
)


def _meta_key(uri: str) -> str:
    return uri.strip().rstrip("#").split("://", 1)[-1].rstrip("/")


_BY_META: dict[str, type[_JSValidator]] = {
    _meta_key("http://json-schema.org/draft-03/schema#"): jsonschema.Draft3Validator,
    _meta_key("http://json-schema.org/draft-04/schema#"): jsonschema.Draft4Validator,
    _meta_key("http://json-schema.org/draft-06/schema#"): jsonschema.Draft6Validator,
    _meta_key("http://json-schema.org/draft-07/schema#"): jsonschema.Draft7Validator,
    _meta_key("https://json-schema.org/draft/2019-09/schema"): jsonschema.Draft201909Validator,
    _meta_key("https://json-schema.org/draft/2020-12/schema"): jsonschema.Draft202012Validator,
}


def choose_draft(schema: Mapping[str, Any] | bool) -> type[_JSValidator]:
    """The draft to validate with: the one `$schema` names, else the newest draft whose metaschema accepts it.

    Trying newest first lets draft-04 schemas without `$schema` (``exclusiveMinimum: true``, array-form
    ``items``) fall back to the draft they were written for. Raises SchemaError when no draft accepts it.
    """
    if isinstance(schema, bool):
        return jsonschema.Draft202012Validator
    if not isinstance(schema, Mapping):
        raise SchemaError(f"a JSON Schema must be an object or a boolean, got {json_type(schema)}")
    try:
        key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # beyond orjson (64-bit integers): check uncached
        return _choose_draft(schema)
    # compile checks the user's schema before its walkers run and the validator checks the normalised
    # one, usually the same document: the metaschema check (the costliest step of a compile) runs once
    return _choose_draft_cached(key)


@functools.lru_cache(maxsize=512)
def _choose_draft_cached(key: bytes) -> type[_JSValidator]:
    return _choose_draft(orjson.loads(key))


def _choose_draft(schema: Mapping[str, Any]) -> type[_JSValidator]:
    declared = schema.get("$schema")
    if isinstance(declared, str):
        named = _BY_META.get(_meta_key(declared))
        if named is not None:
            _check_schema(named, schema)
            return named
    first_error: SchemaError | None = None
    for cls in _DRAFTS_NEWEST_FIRST:
        try:
            _check_schema(cls, schema)
        except SchemaError as exc:
            first_error = first_error or exc
            continue
        return cls
    raise first_error or SchemaError("the schema is not valid under any supported JSON Schema draft")


# -- regular expressions: every `pattern`, `patternProperties` key and `regex` format value goes through
# _regex (RE2, linear time; ECMA-262 syntax) instead of jsonschema's Python `re` --------------------------


def _search(pattern: str, text: str) -> bool:
    try:
        return compile_ecma(pattern).search(text)
    except RegexError:
        # only reachable for schemas that skipped the metaschema check; jsonschema's `re` would raise too
        raise SchemaError(f"invalid regular expression {pattern!r}") from None


def _pattern(validator: _JSValidator, spec: Any, instance: Any, schema: Any) -> Iterator[_JSError]:
    if validator.is_type(instance, "string") and not _search(spec, instance):
        yield _JSError(f"{instance!r} does not match {spec!r}")


def _pattern_properties(validator: Any, spec: Any, instance: Any, schema: Any) -> Iterator[_JSError]:
    # `validator` is jsonschema's concrete class: `descend` is not on its protocol
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in spec.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    declared = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [k for k in instance if k not in declared and not any(_search(p, k) for p in patterns)]


def _additional_properties(validator: Any, spec: Any, instance: Any, schema: Any) -> Iterator[_JSError]:
    # mirrors jsonschema's own keyword, with patternProperties matched by _regex
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(spec, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], spec, path=extra)
    elif not spec and extras:
        if "patternProperties" in schema:
            verb = "does" if len(extras) == 1 else "do"
            joined = ", ".join(repr(each) for each in sorted(extras))
            patterns = ", ".join(repr(each) for each in sorted(schema["patternProperties"]))
            yield _JSError(f"{joined} {verb} not match any of the regexes: {patterns}")
        else:
            shown = ", ".join(repr(each) for each in sorted(extras, key=str))
            verb = "was" if len(extras) == 1 else "were"
            yield _JSError(f"Additional properties are not allowed ({shown} {verb} unexpected)")


@functools.cache
def format_checker(cls: type[_JSValidator]) -> jsonschema.FormatChecker:
    """The draft's format checker with `regex` read as ECMA-262 (``\\p{L}`` is valid there)."""
    checker = jsonschema.FormatChecker(())
    checker.checkers = dict(cls.FORMAT_CHECKER.checkers)
    checker.checkers["regex"] = (is_ecma_regex, ())
    return checker


@functools.cache
def _safe(cls: type[_JSValidator]) -> type[_JSValidator]:
    """`cls` with the regex keywords on _regex's engine (same draft, same name).

    One place still uses Python's `re`: jsonschema's `unevaluatedProperties` matches `patternProperties`
    keys itself (a schema needs both keywords, and a catastrophic property-name pattern, to be exposed).
    """
    keywords = {"pattern": _pattern, "additionalProperties": _additional_properties}
    if "patternProperties" in cls.VALIDATORS:
        keywords["patternProperties"] = _pattern_properties
    extend = jsonschema.validators.extend
    safe: type[_JSValidator] = extend(cls, keywords, format_checker=format_checker(cls))  # type: ignore[no-untyped-call]
    return safe


@functools.cache
def _meta_checker(cls: type[_JSValidator]) -> _JSValidator:
    return _safe(cls)(cls.META_SCHEMA, format_checker=format_checker(cls))


def _check_schema(cls: type[_JSValidator], schema: Mapping[str, Any]) -> None:
    checker = _meta_checker(cls)
    error = jsonschema.exceptions.best_match(checker.iter_errors(schema))
    if error is not None:
        pointer = "#/" + "/".join(str(p) for p in error.absolute_path) if error.absolute_path else ""
        raise SchemaError(f"invalid JSON Schema ({cls.__name__}): {_meta_message(error)}", pointer)


_TYPE_NAMES = "array, boolean, integer, null, number, object, string"


def _meta_message(error: _JSError) -> str:
    """The metaschema's complaint, in schema author's words for the two commonest mistakes."""
    path = list(error.absolute_path)
    keyword_type = path[-1:] == ["type"] and path[-2:-1] not in (["properties"], ["$defs"], ["definitions"])
    if keyword_type and error.validator in ("anyOf", "enum", "type"):
        return f"type {show_value(error.instance)} names no JSON type (use {_TYPE_NAMES})"
    if error.validator == "type" and error.validator_value in (["object", "boolean"], "object"):
        return f"expected a schema (an object), got {json_type(error.instance)} {show_value(error.instance)}"
    return _clip(error.message, 200)


# referencing's default `retrieve` raises NoSuchResource: remote `$ref`s are never fetched, so validating
# a value never touches the network (jsonschema's own default would fetch them with urllib).
_OFFLINE: referencing.Registry[Any] = referencing.Registry()


def build_jsonschema_validator(schema: Mapping[str, Any] | bool) -> _JSValidator:
    """A python-jsonschema validator with the same draft choice, format checking and offline `$ref`s
    (its regular expressions run on RE2: see _regex)."""
    cls = choose_draft(schema)
    return _safe(cls)(schema, format_checker=format_checker(cls), registry=_OFFLINE)


_WEAK = frozenset({"anyOf", "oneOf", "not", "if", "then", "else", "allOf", "contains"})


def _violations_from_js(errors: Iterable[_JSError]) -> list[Violation]:
    found: list[tuple[int, int, Violation]] = []
    for error in errors:
        for path, message in _explain(error):
            depth = len(error.absolute_path)
            found.append((depth, 1 if error.validator in _WEAK else 0, Violation(path, message)))
    return _dedupe_sorted(found)


def _bound(value: Any) -> str:
    return show_value(value, 30)


def _explain(error: _JSError) -> Iterator[tuple[str, str]]:
    """One or more (path, message) pairs for one jsonschema error, in words a model can act on."""
    path = format_path(error.absolute_path)
    keyword = error.validator
    spec: Any = error.validator_value
    value = error.instance
    got = show_value(value)
    parent = error.schema if isinstance(error.schema, Mapping) else {}
    if keyword == "required":
        missing = [name for name in spec if isinstance(value, Mapping) and name not in value]
        for name in missing or [_between_quotes(error.message)]:
            yield path, f"missing required property {_quote(str(name))}"
    elif keyword in ("additionalProperties", "unevaluatedProperties") and isinstance(value, Mapping):
        extras = _extras(error, value)
        if spec is False or not extras:
            for name in extras or [_between_quotes(error.message)]:
                yield path, f"unexpected property {_quote(name)}"
        else:
            for name in extras:
                yield format_path([*error.absolute_path, name]), "property not allowed here"
    elif keyword == "type":
        wanted = spec if isinstance(spec, list) else [spec]
        yield path, f"must be {' or '.join(map(str, wanted))}, got {json_type(value)} {got}"
    elif keyword in ("minimum", "maximum"):
        exclusive = parent.get("exclusive" + keyword.capitalize()) is True
        op = (">" if keyword == "minimum" else "<") + ("" if exclusive else "=")
        yield path, f"must be {op} {_bound(spec)}, got {got}"
    elif keyword in ("exclusiveMinimum", "exclusiveMaximum"):
        yield path, f"must be {'>' if keyword == 'exclusiveMinimum' else '<'} {_bound(spec)}, got {got}"
    elif keyword == "multipleOf":
        yield path, f"must be a multiple of {_bound(spec)}, got {got}"
    elif keyword in ("minLength", "maxLength"):
        side = "at least" if keyword == "minLength" else "at most"
        size = len(value) if isinstance(value, str) else "?"
        yield path, f"must have {side} {_plural(spec, 'character')}, got {size}: {got}"
    elif keyword in ("minItems", "maxItems"):
        side = "at least" if keyword == "minItems" else "at most"
        size = len(value) if isinstance(value, list) else "?"
        yield path, f"must have {side} {_plural(spec, 'item')}, got {size}"
    elif keyword in ("minProperties", "maxProperties"):
        side = "at least" if keyword == "minProperties" else "at most"
        size = len(value) if isinstance(value, Mapping) else "?"
        yield path, f"must have {side} {_plural(spec, 'property', 'properties')}, got {size}"
    elif keyword == "pattern":
        yield path, f"must match the pattern {show_value(spec, 80)}, got {got}"
    elif keyword == "format":
        yield path, f"{got} is not a valid {spec}"
    elif keyword == "enum":
        choices = list(spec) if isinstance(spec, list) else [spec]
        yield path, f"must be one of {_show_choices(choices)}; got {got}"
    elif keyword == "const":
        yield path, f"must be {show_value(spec)}, got {got}"
    elif keyword == "uniqueItems":
        yield path, "items must be unique (remove the duplicates)"
    elif keyword in ("dependentRequired", "dependencies"):
        yield from _explain_dependencies(error, path)
    elif keyword in ("additionalItems", "unevaluatedItems", "items", "prefixItems") and spec is False:
        yield path, "has more items than allowed"
    elif keyword == "contains":
        yield path, "must contain at least one item that matches the item schema"
    elif keyword in ("minContains", "maxContains"):
        yield path, _clip(error.message, 160)
    elif keyword == "not":
        yield path, f"must not match {show_value(spec)}, got {got}"
    elif keyword is None or keyword == "false":  # a `false` schema
        yield path, "no value is allowed here"
    elif keyword in ("anyOf", "oneOf"):
        yield from _explain_alternatives(error, path, got)
    elif keyword == "propertyNames":
        yield path, f"property name {got} is not allowed"
    else:
        yield path, _clip(error.message, 160)


def _explain_dependencies(error: _JSError, path: str) -> Iterator[tuple[str, str]]:
    value, spec = error.instance, error.validator_value
    found: list[str] = []
    if isinstance(value, Mapping) and isinstance(spec, Mapping):
        for trigger, needed in spec.items():
            if trigger in value and isinstance(needed, list):
                found += [
                    f"property {_quote(str(trigger))} requires property {_quote(str(name))}"
                    for name in needed
                    if name not in value
                ]
    for message in found or [_clip(error.message, 160)]:
        yield path, message


def _between_quotes(message: str) -> str:
    match = re.search(r"'([^']*)'", message)
    return match.group(1) if match else message


def _extras(error: _JSError, value: Mapping[str, Any]) -> list[str]:
    """The properties `additionalProperties` rejected: not declared and not matched by a pattern."""
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    return [str(key) for key in _additional(value, schema)]


def _explain_alternatives(error: _JSError, path: str, got: str) -> Iterator[tuple[str, str]]:
    """Report the branch that came closest, instead of every branch's complaints."""
    if not error.context:
        # oneOf with more than one matching branch
        yield path, f"must match exactly one alternative, but {got} matches several; make it unambiguous"
        return
    by_branch: dict[int, list[_JSError]] = {}
    for sub in error.context:
        branch = sub.relative_schema_path[0] if sub.relative_schema_path else 0
        by_branch.setdefault(int(branch), []).append(sub)
    root_depth = len(error.absolute_path)

    def shallow_mismatch(sub: _JSError) -> bool:
        return len(sub.absolute_path) == root_depth and sub.validator in ("type", "const", "enum", "false")

    candidates = {b: errs for b, errs in by_branch.items() if not all(map(shallow_mismatch, errs))}
    if not candidates:
        wanted = _describe_branches(error.validator_value)
        yield path, f"must be {wanted}; got {got}"
        return

    def closeness(item: tuple[int, list[_JSError]]) -> tuple[int, int, int]:
        branch, errs = item
        deepest = max(len(e.absolute_path) for e in errs)
        return (len(errs), -deepest, branch)

    _, best = min(candidates.items(), key=closeness)
    for sub in best:
        yield from _explain(sub)


def _describe_branches(branches: Any) -> str:
    if not isinstance(branches, list):
        return "one of the allowed alternatives"
    parts: list[str] = []
    for branch in branches:
        if not isinstance(branch, Mapping):
            parts.append("anything" if branch is True else "nothing")
        elif "const" in branch:
            parts.append(show_value(branch["const"], 30))
        elif isinstance(branch.get("enum"), list):
            parts.append(_show_choices(branch["enum"], 4))
        elif "type" in branch:
            kind = branch["type"]
            parts.append(" or ".join(kind) if isinstance(kind, list) else str(kind))
        elif "$ref" in branch:
            parts.append(f"an object like {branch['$ref'].rsplit('/', 1)[-1]}")
        else:
            parts.append("another shape")
    unique = list(dict.fromkeys(parts))
    return "one of: " + ", ".join(unique) if len(unique) > 1 else unique[0] if unique else "valid"


# -- pydantic back end --------------------------------------------------------------------------------

_PYDANTIC_OPS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}


def _violations_from_pydantic(errors: list[Any], root: Any) -> list[Violation]:
    located = [_locate(err, root) for err in errors]
    kept = _best_union_branches(located, 0)
    found: list[tuple[int, int, Violation]] = []
    for parts, _, err in kept:
        for violation in _explain_pydantic(err, parts):
            found.append((len(parts), 0, violation))
    return _dedupe_sorted(found)


_Located = tuple[list[str | int], list[tuple[int, str]], Any]


def _locate(err: Any, root: Any) -> _Located:
    """Split a pydantic `loc` into the real path in the value and the union-branch tags pydantic inserts."""
    loc = list(err.get("loc", ()))
    if err.get("type") == "missing" and loc:
        loc = loc[:-1]  # the last element names the missing field, which the value does not have
    parts: list[str | int] = []
    tags: list[tuple[int, str]] = []
    current = root
    for item in loc:
        in_object = isinstance(current, Mapping) and item in current
        in_array = (
            isinstance(current, (list, tuple))
            and isinstance(item, int)
            and -len(current) <= item < len(current)
        )
        if in_object or in_array:
            parts.append(item)
            current = current[item]
        elif err.get("type") == "extra_forbidden" and item is loc[-1]:
            parts.append(item)
        else:
            tags.append((len(parts), str(item)))
    return parts, tags, err


def _best_union_branches(items: list[_Located], level: int) -> list[_Located]:
    """Where pydantic reports every branch of a union, keep the closest branch only.

    When every branch fails right at the union's location (a plain type mismatch), one combined
    report ("must be a valid integer or an object") replaces them.
    """
    kept = [it for it in items if len(it[1]) <= level]
    groups: dict[int, dict[str, list[_Located]]] = {}
    for it in items:
        if len(it[1]) > level:
            depth, tag = it[1][level]
            groups.setdefault(depth, {}).setdefault(tag, []).append(it)
    for depth, branches in groups.items():

        def at_union(entry: list[_Located], depth: int = depth) -> bool:
            return all(len(parts) == depth and len(tags) == level + 1 for parts, tags, _ in entry)

        near = {tag: errs for tag, errs in branches.items() if not at_union(errs)}
        if not near:
            first = next(iter(branches.values()))[0]
            wanted = [
                re.sub(r"^Input should be ", "", str(errs[0][2].get("msg", tag))).split(",")[0]
                for tag, errs in branches.items()
            ]
            merged = {
                "type": "union_mismatch",
                "msg": " or ".join(dict.fromkeys(wanted)),
                "input": first[2].get("input"),
            }
            kept.append((first[0], first[1][:level], merged))
            continue
        _, best = min(
            near.items(),
            key=lambda entry: (len(entry[1]), -max(len(parts) for parts, _, _ in entry[1])),
        )
        kept.extend(_best_union_branches(best, level + 1))
    return kept


def _explain_pydantic(err: Any, parts: list[str | int]) -> Iterator[Violation]:
    kind = str(err.get("type", ""))
    ctx = err.get("ctx") or {}
    value = err.get("input")
    path = format_path(parts)
    got = show_value(value)
    if kind == "missing":
        name = err["loc"][-1] if err.get("loc") else "?"
        yield Violation(path, f"missing required property {_quote(str(name))}")
    elif kind == "extra_forbidden":
        yield Violation(format_path(parts[:-1]), f"unexpected property {_quote(str(parts[-1]))}")
    elif kind in _PYDANTIC_OPS:
        bound = next(iter(ctx.values()), "?")
        yield Violation(path, f"must be {_PYDANTIC_OPS[kind]} {_bound(bound)}, got {got}")
    elif kind == "multiple_of":
        yield Violation(path, f"must be a multiple of {_bound(ctx.get('multiple_of'))}, got {got}")
    elif kind in ("string_too_short", "string_too_long", "too_short", "too_long"):
        side = "at least" if kind.endswith("short") else "at most"
        limit = ctx.get("min_length", ctx.get("max_length", "?"))
        unit = "character" if kind.startswith("string") else "item"
        size = ctx.get("actual_length", len(value) if isinstance(value, (str, list, dict)) else "?")
        yield Violation(
            path, f"must have {side} {_plural(limit, unit) if isinstance(limit, int) else limit}, got {size}"
        )
    elif kind in ("literal_error", "enum"):
        yield Violation(path, f"must be {ctx.get('expected', 'one of the allowed values')}; got {got}")
    elif kind == "union_mismatch":
        yield Violation(path, _clip(f"must be {err['msg']}; got {got}", 200))
    elif kind == "string_pattern_mismatch":
        yield Violation(path, f"must match the pattern {show_value(ctx.get('pattern', ''), 80)}, got {got}")
    else:
        message = str(err.get("msg", "is not valid"))
        message = re.sub(r"^Input should be", "must be", message)
        message = re.sub(r"^Value error, ", "", message)
        message = message[:1].lower() + message[1:]
        yield Violation(path, _clip(f"{message}, got {got}", 200))


# -- the public face ----------------------------------------------------------------------------------


class Validator:
    """Checks values against one schema; build it once (``for_pydantic`` / ``for_json_schema``), reuse it.

    `schema` is what it was built from (the JSON Schema dict or the type); `draft` names the jsonschema
    validator class chosen for a JSON Schema (None for pydantic types).
    """

    __slots__ = ("_adapter", "_fast", "_js", "_recursive", "draft", "schema")

    def __init__(
        self,
        schema: Any,
        *,
        js: _JSValidator | None = None,
        fast: Check | None = None,
        adapter: pydantic.TypeAdapter[Any] | None = None,
        draft: str | None = None,
        recursive: bool = False,
    ) -> None:
        self.schema = schema
        self._js = js
        self._fast = fast
        self._adapter = adapter
        self._recursive = recursive  # walkers recurse per level of the value: bound its depth first
        self.draft = draft if draft is not None or js is None else type(js).__name__

    def __repr__(self) -> str:
        target = self.draft or getattr(self.schema, "__name__", None) or repr(self.schema)
        return f"Validator({_clip(str(target), 80)})"

    # construction ---------------------------------------------------------------------------------

    @classmethod
    def for_json_schema(cls, schema: Mapping[str, Any] | bool) -> Validator:
        """A validator for a JSON Schema (draft-04 to 2020-12); SchemaError if jsonschema rejects the schema."""
        if not isinstance(schema, (Mapping, bool)):
            raise SchemaError(f"a JSON Schema must be an object or a boolean, got {json_type(schema)}")
        check_document(schema)
        try:
            key = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            # orjson stops at 64-bit integers, which real schemas do hold (bounds like 2**70): build it
            # uncached rather than refuse a valid schema
            try:
                json.dumps(schema)
            except (TypeError, ValueError) as exc:
                raise SchemaError(f"the schema is not JSON-serialisable: {exc}") from None
            return _build_json_schema(schema)
        return _json_schema_validator(key)

    @classmethod
    def for_pydantic(cls, tp: Any) -> Validator:
        """A validator for a pydantic model class or anything `pydantic.TypeAdapter` accepts."""
        try:
            return _pydantic_validator(tp)
        except TypeError as exc:  # unhashable type expressions cannot be cached
            if "unhashable" not in str(exc):
                raise
        return _build_pydantic(tp)

    # checking -------------------------------------------------------------------------------------

    def validate(self, obj: Any) -> Any:
        """The validated value (a model instance for pydantic types).

        A str/bytes argument is JSON text (a reply), parsed with orjson first; to check a bare string
        value against a string schema, pass its JSON (``'"abc"'``).

        JSON-shaped values are validated as JSON would be (pydantic's JSON mode), so a strict model accepts
        an ISO date string in a dict just as it would in the reply text. Raises ValidationFailed listing
        every violation, deepest first; SchemaError when the schema has a `$ref` that cannot be resolved.
        """
        if isinstance(obj, (str, bytes, bytearray)):
            obj = _parse_json(obj)
        return self.validate_value(obj)

    def validate_value(self, obj: Any) -> Any:
        """Like `validate`, but a str is a string value, never JSON text (for already-parsed replies)."""
        self._check_depth(obj)
        try:
            return self._validate_value(obj)
        except RecursionError:
            raise _recursion_error(obj) from None

    def _check_depth(self, obj: Any) -> None:
        if self._recursive:
            where = too_deep(obj)
            if where is not None:
                raise ValidationFailed([_nested_too_deep(where)])

    def _validate_value(self, obj: Any) -> Any:
        if self._js is not None:
            if self._js_ok(obj):
                return obj
            violations = self._js_violations(obj)
            if not violations:  # jsonschema is the authority should the fast path ever disagree
                return obj
            raise ValidationFailed(violations)
        if self._adapter is None:  # pragma: no cover - constructors always set one back end
            raise RuntimeError("Validator built without a back end")
        try:
            return self._validate_pydantic(self._adapter, obj)
        except pydantic.ValidationError as exc:
            raise ValidationFailed(_violations_from_pydantic(exc.errors(include_url=False), obj)) from None

    def is_valid(self, obj: Any) -> bool:
        """True when `obj` passes; no messages are built, so it is cheap enough for filtering."""
        if isinstance(obj, (str, bytes, bytearray)):
            try:
                obj = _parse_json(obj)
            except ValidationFailed:
                return False
        if self._recursive and too_deep(obj) is not None:
            return False
        try:
            if self._js is not None:
                return self._js_ok(obj)
            if self._adapter is None:  # pragma: no cover
                raise RuntimeError("Validator built without a back end")
            self._validate_pydantic(self._adapter, obj)
        except pydantic.ValidationError:
            return False
        except RecursionError:
            error = _recursion_error(obj)
            if isinstance(error, SchemaError):
                raise error from None
            return False
        return True

    def errors(self, obj: Any) -> list[Violation]:
        """Every violation for `obj` ([] when it is valid), for callers that report rather than raise."""
        try:
            self.validate(obj)
        except ValidationFailed as exc:
            return list(exc.violations)
        return []

    # back ends ------------------------------------------------------------------------------------

    def _js_ok(self, obj: Any) -> bool:
        js = self._js
        if js is None:  # pragma: no cover
            raise RuntimeError("not a JSON Schema validator")
        if self._fast is not None:
            return self._fast(obj)
        try:
            return bool(js.is_valid(obj))
        except referencing.exceptions.Unresolvable as exc:
            raise _unresolvable(exc) from None

    def _js_violations(self, obj: Any) -> list[Violation]:
        js = self._js
        if js is None:  # pragma: no cover
            raise RuntimeError("not a JSON Schema validator")
        try:
            return _violations_from_js(js.iter_errors(obj))
        except referencing.exceptions.Unresolvable as exc:
            raise _unresolvable(exc) from None

    @staticmethod
    def _validate_pydantic(adapter: pydantic.TypeAdapter[Any], obj: Any) -> Any:
        if type(obj) in _JSON_SHAPES:
            try:
                raw = orjson.dumps(obj)
            except TypeError:  # integers beyond 64 bits (exact in the json module), or non-JSON objects
                try:
                    raw = json.dumps(obj, ensure_ascii=False, allow_nan=False).encode()
                except (TypeError, ValueError):  # non-JSON Python objects: validate them as they are
                    return adapter.validate_python(obj)
            return adapter.validate_json(raw)
        return adapter.validate_python(obj)


_JSON_SHAPES = frozenset({dict, list, int, float, bool, type(None)})


def _recursion_error(obj: Any) -> ValidationFailed | SchemaError:
    """What a RecursionError while validating means: a value too deep to walk, or, when the value is
    shallow, a schema that loops (a cycle the compile-time check cannot see, e.g. through `$dynamicRef`)."""
    where = too_deep(obj)
    if where is not None:
        return ValidationFailed([_nested_too_deep(where)])
    return SchemaError(
        "validating never ends: the schema refers to itself without descending into the value "
        "(through $ref, $dynamicRef or $recursiveRef); make each recursive reference go through "
        "`properties` or `items`"
    )


def _nested_too_deep(where: list[str | int]) -> Violation:
    return Violation(
        format_path(where),
        f"the value is nested too deeply to check (more than {MAX_INSTANCE_DEPTH} levels); "
        "return a flatter structure",
    )


def _unresolvable(exc: referencing.exceptions.Unresolvable) -> SchemaError:
    ref = getattr(exc, "ref", None) or getattr(getattr(exc, "_wrapped", None), "ref", "?")
    return SchemaError(
        f"cannot resolve $ref {ref!r}: only references inside the schema work (nothing is fetched); "
        "inline the referenced schema or move it under $defs"
    )


@functools.lru_cache(maxsize=512)
def _json_schema_validator(key: bytes) -> Validator:
    return _build_json_schema(orjson.loads(key))


def _build_json_schema(schema: Any) -> Validator:
    cls = choose_draft(schema)
    check_ref_cycles(schema)
    js = _safe(cls)(schema, format_checker=format_checker(cls), registry=_OFFLINE)
    fast = compile_fast(schema, cls, format_checker(cls)) if cls in _DRAFTS_NEWEST_FIRST else None
    return Validator(schema, js=js, fast=fast, draft=cls.__name__, recursive=has_ref_cycle(schema))


@functools.lru_cache(maxsize=512)
def _pydantic_validator(tp: Any) -> Validator:
    return _build_pydantic(tp)


def _build_pydantic(tp: Any) -> Validator:
    try:
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(tp)
    except (pydantic.PydanticUserError, pydantic.errors.PydanticSchemaGenerationError) as exc:
        raise SchemaError(f"pydantic cannot build a validator for {tp!r}: {exc}") from None
    return Validator(tp, adapter=adapter)
