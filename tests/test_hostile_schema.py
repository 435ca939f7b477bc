"""Hostile schemas and values: catastrophic regexes, deep and cyclic schemas, deep values, bad schema inputs.

Invariants: a regular expression is checked in time linear in the input (or is a stated relaxation), no
walker raises RecursionError, and compile_schema either succeeds or raises SchemaError.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract._ecma_regex import RegexError, compile_ecma, is_ecma_regex
from extract.errors import SchemaError, ValidationFailed
from extract.schema import clear_cache, compile_schema, strict_violations
from extract.schema._guard import MAX_INSTANCE_DEPTH, MAX_SCHEMA_DEPTH
from extract.schema._validate import Validator

EVIL = "^(a+)+$"
EVIL_TEXT = "a" * 50 + "!"

# -- regular expressions --------------------------------------------------------------------------------


@pytest.mark.timeout(20)
@pytest.mark.parametrize("provider", ["cerebras", "generic"])
def test_catastrophic_pattern_returns_on_every_path(provider: str) -> None:
    schema = {
        "type": "object",
        "properties": {"s": {"type": "string", "pattern": EVIL}},
        "required": ["s"],
        "additionalProperties": False,
    }
    compiled = compile_schema(schema, provider)
    with pytest.raises(ValidationFailed) as info:
        compiled.validate({"s": EVIL_TEXT})
    assert "pattern" in str(info.value)
    assert not compiled.validator.is_valid({"s": "a" * 1_000_000 + "!"})
    assert compiled.validate({"s": "a" * 1_000_000}) == {"s": "a" * 1_000_000}


@pytest.mark.timeout(20)
def test_catastrophic_pattern_on_the_jsonschema_path() -> None:
    # `if` is not on the fast path: jsonschema itself runs the `pattern` keyword
    validator = Validator.for_json_schema({"type": "string", "pattern": EVIL, "if": {"type": "string"}})
    assert validator._fast is None
    assert not validator.is_valid(json.dumps(EVIL_TEXT))
    with pytest.raises(ValidationFailed):
        validator.validate(json.dumps(EVIL_TEXT))


@pytest.mark.timeout(20)
def test_catastrophic_pattern_properties_and_additional_properties() -> None:
    schema = {
        "type": "object",
        "patternProperties": {EVIL: {"type": "integer"}},
        "additionalProperties": False,
    }
    validator = Validator.for_json_schema(schema)
    assert not validator.is_valid({EVIL_TEXT: 1})
    with pytest.raises(ValidationFailed) as info:
        validator.validate({EVIL_TEXT: 1})
    assert "unexpected property" in str(info.value)
    assert validator.is_valid({"aaaa": 1})
    assert not validator.is_valid({"aaaa": "x"})


@pytest.mark.timeout(20)
def test_catastrophic_regex_format_value_is_linear() -> None:
    validator = Validator.for_json_schema({"type": "string", "format": "regex"})
    assert validator.is_valid(json.dumps(EVIL))
    assert not validator.is_valid(json.dumps("(a+"))
    assert validator.is_valid(json.dumps("(a+)+" * 2000))


@pytest.mark.timeout(20)
def test_event_loop_is_not_blocked_by_a_pattern() -> None:
    compiled = compile_schema({"type": "object", "properties": {"s": {"type": "string", "pattern": EVIL}}})

    async def main() -> float:
        ticks: list[float] = []

        async def ticker() -> None:
            for _ in range(5):
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        for _ in range(20):
            compiled.validator.is_valid({"s": "a" * 10_000 + "!"})
            await asyncio.sleep(0)
        await task
        return max(b - a for a, b in itertools.pairwise(ticks))

    assert asyncio.run(main()) < 2.0  # a generous bound; Python's re would need years


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        (r"^\p{L}+$", "Ünïcødé", True),
        (r"^\p{L}+$", "abc1", False),
        (r"^\p{Lu}", "Émile", True),
        (r"^\p{Script=Greek}+$", "αβγ", True),
        (r"^\P{L}+$", "123", True),
        (r"^\d+$", "١٢٣", False),  # ECMA \d is ASCII only
        (r"^\d+$", "123", True),
        (r"^\w+$", "é", False),
        (r"^\s$", "\u3000", True),  # ECMA \s includes Unicode spaces
        (r"^\S$", "\u3000", False),
        (r"^a\/b$", "a/b", True),
        (r"^\u00e9$", "é", True),
        (r"^\u{1F600}$", "\U0001f600", True),
        (r"^\uD83D\uDE00$", "\U0001f600", True),
        (r"^\x41$", "A", True),
        (r"^\cJ$", "\n", True),
        (r"^.$", "\n", False),  # . stops at line terminators
        (r"^.$", "\u2028", False),
        (r"^a$", "a\n", False),  # $ is the end of the input, not before a final newline
        (r"[]", "a", False),
        (r"^[^]$", "\n", True),
        (r"^[\d-]+$", "1-2", True),
        (r"^x{$", "x{", True),
        (r"^(?<year>\d{4})-\k<year>$", "2024-2024", True),
        (r"^(?<year>\d{4})-\k<year>$", "2024-2025", False),
        (r"^(a)\1$", "aa", True),
        (r"^(?=.*\d)(?=.*[a-z]).{4,}$", "ab12", True),
        (r"^(?=.*\d)(?=.*[a-z]).{4,}$", "abcd", False),
        (r"(?<!x)y", "zy", True),
        (r"^[\w.+-]+@[\w-]+\.[a-z]{2,}$", "ada@example.org", True),
    ],
)
def test_ecma_translation(pattern: str, text: str, expected: bool) -> None:
    assert compile_ecma(pattern).search(text) is expected
    schema = {"type": "string", "pattern": pattern}
    assert Validator.for_json_schema(schema).is_valid(json.dumps(text)) is expected


def test_unicode_property_is_a_valid_regex_format() -> None:
    """`\\p{L}+` is valid ECMA-262 (u flag); it was refused as "not a 'regex'"."""
    compiled = compile_schema(
        {"type": "object", "properties": {"name": {"type": "string", "pattern": r"\p{L}+"}}}
    )
    assert compiled.validate({"name": "Zoë"}) == {"name": "Zoë"}
    with pytest.raises(ValidationFailed):
        compiled.validate({"name": "123"})
    assert is_ecma_regex(r"\p{L}+")
    assert not is_ecma_regex("(unclosed")
    assert not is_ecma_regex("a**")


@pytest.mark.parametrize("pattern", ["(", "a)", "[a", "*a", "a{2,1}", "\\", r"\p{Nope=L}", "(?<1a>x)"])
def test_invalid_patterns_are_schema_errors(pattern: str) -> None:
    with pytest.raises(RegexError):
        compile_ecma(pattern)
    with pytest.raises(SchemaError):
        compile_schema({"type": "string", "pattern": pattern})


def test_backtracking_pattern_is_a_stated_bounded_relaxation(caplog: pytest.LogCaptureFixture) -> None:
    pattern = r"^(\w+)-\1$"
    compile_ecma.cache_clear()
    clear_cache()
    with caplog.at_level(logging.WARNING, logger="extract"):
        compiled = compile_schema(
            {"type": "object", "properties": {"s": {"type": "string", "pattern": pattern}}}
        )
    found = [r for r in compiled.relaxations if r.keyword == "pattern" and "backtracking" in r.reason]
    assert len(found) == 1 and found[0].path == "#/properties/s"
    assert "at most 1000 characters" in found[0].reason
    assert any("at most 1000 characters" in r.getMessage() for r in caplog.records)
    assert compiled.validator.is_valid({"s": "ab-ab"})
    assert not compiled.validator.is_valid({"s": "ab-ac"})
    long = "a" * 600
    assert compiled.validator.is_valid({"s": long + "-" + long[:-1] + "b"})  # over the bound: unchecked


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "pattern", [r"^(a+)+\1$", r"^(a+){40}\1$", r"^(a|ab){30}(?=c)", r"(?=(a*)*b)", r"(?<=a+)b", r"(?=\p{L})"]
)
def test_nested_backtracking_pattern_is_not_checked_and_says_so(pattern: str) -> None:
    regex = compile_ecma(pattern)
    assert regex.relaxation is not None and "not checked" in regex.relaxation
    assert regex.search("a" * 50 + "!")  # accepted unchecked, never an unbounded check
    compiled = compile_schema({"type": "string", "pattern": pattern})
    assert any("not checked" in r.reason for r in compiled.relaxations)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "pattern",
    [r"^(\w+)-\1$", r"^(.*)(.*)\2\1!x$", r"^(?=.*b)(a*)(a*)(a*)c\3$", r"(?<=a)a*a*a*a*x", r"^(a*)b*a*\1$"],
)
def test_bounded_fallback_stays_bounded_at_its_limit(pattern: str) -> None:
    regex = compile_ecma(pattern)
    assert regex.limit is not None and 0 < regex.limit <= 10_000
    for text in ("a" * regex.limit, "a" * (regex.limit - 1) + "!", "ab" * (regex.limit // 2)):
        assert isinstance(regex.search(text), bool)


def test_linear_patterns_are_not_relaxations() -> None:
    compiled = compile_schema({"type": "object", "properties": {"s": {"type": "string", "pattern": EVIL}}})
    assert not [r for r in compiled.relaxations if "backtracking" in r.reason or "not checked" in r.reason]


ATOMS = st.sampled_from(
    ["a", "b", "1", ".", "[ab]", "[^a]", "[a-c1]", r"\d", r"\D", r"\w", r"\W", r"\s", r"\.", r"\-", "-", " "]
)
QUANTIFIERS = st.sampled_from(["", "", "*", "+", "?", "{2}", "{1,2}", "{0,}", "*?", "+?"])


@st.composite
def simple_patterns(draw: st.DrawFn, depth: int = 2) -> str:
    """Patterns where ECMA-262 and Python agree on ASCII text without newlines (optionally with a
    backreference, which runs on the bounded fallback instead of RE2)."""
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        if depth and draw(st.integers(0, 4)) == 0:
            inner = draw(simple_patterns(depth - 1))
            alt = draw(simple_patterns(depth - 1))
            parts.append(f"({inner}|{alt})")
        else:
            parts.append(draw(ATOMS))
        parts.append(draw(QUANTIFIERS))
    body = "".join(parts)
    if depth == 2 and "(" in body and draw(st.booleans()):
        body += r"\1"
    return ("^" if draw(st.booleans()) else "") + body + ("$" if draw(st.booleans()) else "")


@given(simple_patterns(), st.text(alphabet="ab1 .-x", max_size=30))
@settings(max_examples=int(os.environ.get("EXTRACT_FUZZ", "400")), deadline=None)
def test_translation_agrees_with_python_re_where_dialects_agree(pattern: str, text: str) -> None:
    import re

    expected = re.search(pattern, text, re.ASCII) is not None
    regex = compile_ecma(pattern)
    if regex.limit is not None and (regex.limit == 0 or len(text) > regex.limit):
        assert regex.search(text)  # beyond what can be checked safely: accepted, and said so
        assert regex.relaxation is not None
    else:
        assert regex.search(text) is expected


@given(st.text(max_size=20), st.text(max_size=20))
@settings(max_examples=int(os.environ.get("EXTRACT_FUZZ", "400")), deadline=None)
def test_any_pattern_compiles_or_is_a_regex_error(pattern: str, text: str) -> None:
    """Arbitrary text (lone surrogates included) as a pattern and as the value never crashes."""
    try:
        regex = compile_ecma(pattern)
    except RegexError:
        assert not is_ecma_regex(pattern)
        return
    assert is_ecma_regex(pattern)
    assert isinstance(regex.search(text), bool)


# -- deep and cyclic schemas ----------------------------------------------------------------------------


def nested_objects(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


def nested_value(levels: int) -> Any:
    value: Any = "x"
    for _ in range(levels):
        value = {"a": value}
    return value


def nested_items(levels: int) -> tuple[dict[str, Any], Any]:
    schema: dict[str, Any] = {"type": "string"}
    value: Any = "x"
    for _ in range(levels):
        schema, value = {"type": "array", "items": schema}, [value]
    return schema, value


@pytest.mark.parametrize("provider", ["cerebras", "openai", "generic"])
def test_schema_at_the_depth_bound_compiles_and_validates(provider: str) -> None:
    levels = MAX_SCHEMA_DEPTH // 2 - 1  # properties + schema: two containers per level
    compiled = compile_schema(nested_objects(levels), provider)
    assert compiled.validate(nested_value(levels)) == nested_value(levels)
    with pytest.raises(ValidationFailed):
        compiled.validate(nested_value(levels - 1))
    schema, value = nested_items(MAX_SCHEMA_DEPTH - 1)
    compiled = compile_schema(schema, provider)
    on_a_deep_stack(150, lambda: compiled.validate(value))
    if compiled.strict:
        on_a_deep_stack(150, lambda: compiled.encode(value))
    with pytest.raises(SchemaError):
        compile_schema(nested_items(MAX_SCHEMA_DEPTH + 1)[0], provider)


def test_strict_violations_on_deep_and_cyclic_schemas() -> None:
    found = strict_violations(nested_objects(600))
    assert len(found) == 1 and f"more than {MAX_SCHEMA_DEPTH} objects and arrays" in found[0]
    assert found[0].startswith("#/properties/a/properties/a")
    assert strict_violations({"$ref": "#"})


def test_schema_over_the_depth_bound_is_a_schema_error_with_the_path() -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(nested_objects(98))
    assert f"more than {MAX_SCHEMA_DEPTH} objects and arrays" in str(info.value)
    assert info.value.path.startswith("#/properties/a/properties/a")
    with pytest.raises(SchemaError):
        Validator.for_json_schema(nested_objects(98))


@pytest.mark.parametrize(
    "schema",
    [
        {"$ref": "#"},
        {"anyOf": [{"type": "string"}, {"$ref": "#"}]},
        {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"},
        {
            "definitions": {"a": {"not": {"$ref": "#/definitions/a"}}},
            "properties": {"x": {"$ref": "#/definitions/a"}},
        },
        {"if": {"$ref": "#"}, "then": {"type": "string"}},
        {"oneOf": [{"$ref": "#/oneOf/1"}, {"$ref": "#/oneOf/0"}]},
        {"$id": "http://example.com/s", "$ref": "http://example.com/s"},
        {"$dynamicAnchor": "n", "anyOf": [{"$dynamicRef": "#n"}]},
        {"$ref": "#/$defs/a~1b", "$defs": {"a/b": {"$ref": "#/$defs/a~1b"}}},
    ],
)
def test_in_place_reference_cycles_are_schema_errors(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(schema)  # at compile time, before any request is sent
    assert "refers to itself" in str(info.value)
    with pytest.raises(SchemaError):
        Validator.for_json_schema(schema).validate_value(1)
    with pytest.raises(SchemaError):
        Validator.for_json_schema(schema).is_valid(1)


TREE = {
    "type": "object",
    "properties": {"children": {"type": "array", "items": {"$ref": "#"}}, "name": {"type": "string"}},
    "required": ["children"],
}


def deep_list(levels: int) -> Any:
    value: Any = []
    for _ in range(levels):
        value = [value]
    return value


def deep_tree(levels: int) -> Any:
    value: Any = {"children": []}
    for _ in range(levels):
        value = {"children": [value]}
    return value


@pytest.mark.timeout(60)
@pytest.mark.parametrize("provider", ["cerebras", "generic"])
def test_deep_values_against_recursive_schemas_fail_cleanly(provider: str) -> None:
    compiled = compile_schema(TREE, provider)
    assert compiled.validate(deep_tree(5)) == deep_tree(5)
    assert compiled.validate(deep_tree(MAX_INSTANCE_DEPTH // 2 - 1))
    for value in (deep_tree(10_000), {"children": [deep_list(10_000)]}):
        with pytest.raises(ValidationFailed) as info:
            compiled.validate(value)
        assert "nested too deeply" in str(info.value)
        assert not compiled.validator.is_valid(value)
        with pytest.raises(ValidationFailed):
            compiled.parse(value)
        compiled.decode(value)  # lenient: passes through
    lists = Validator.for_json_schema({"type": "array", "items": {"$ref": "#"}})
    with pytest.raises(ValidationFailed):
        lists.validate_value(deep_list(10_000))
    assert lists.is_valid(deep_list(20))


@pytest.mark.timeout(60)
def test_deep_json_text_against_a_recursive_schema() -> None:
    lists = Validator.for_json_schema({"type": "array", "items": {"$ref": "#"}})
    with pytest.raises(ValidationFailed):
        lists.validate("[" * 1000 + "]" * 1000)


def test_deep_value_of_the_wrong_type_is_reported_where_it_is() -> None:
    with pytest.raises(ValidationFailed) as info:
        Validator.for_json_schema({"type": "object", "properties": {"a": {"type": "string"}}}).validate_value(
            {"a": deep_list(10_000)}
        )
    # jsonschema's own messages repr() the value, so the depth bound speaks for it
    (violation,) = info.value.violations
    assert violation.path.startswith("$.a") and "nested too deeply" in violation.message
    with pytest.raises(ValidationFailed) as info:
        Validator.for_pydantic(list[str]).validate_value([deep_list(10_000)])
    assert all(v.path.startswith("$[0]") for v in info.value.violations)


@pytest.mark.timeout(60)
def test_deep_value_against_a_non_recursive_schema() -> None:
    validator = Validator.for_json_schema({"type": "array", "uniqueItems": True})
    value = [deep_list(5_000), deep_list(5_000)]
    with pytest.raises(ValidationFailed):
        validator.validate_value(value)
    assert validator.is_valid([1, deep_list(5_000)])


# hypothesis: random deep or cyclic schemas never crash a walker


def _chain(draw: st.DrawFn) -> dict[str, Any]:
    levels = draw(st.integers(1, 140))
    node: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        kind = draw(st.sampled_from(["properties", "items", "anyOf", "allOf", "not", "additionalProperties"]))
        if kind == "properties":
            node = {"type": "object", "properties": {"k": node}}
        elif kind == "items":
            node = {"type": "array", "items": node}
        elif kind in ("anyOf", "allOf"):
            node = {kind: [node, {"type": "null"}]}
        elif kind == "not":
            node = {"not": node}
        else:
            node = {"type": "object", "additionalProperties": node}
    return node


@st.composite
def hostile_schemas(draw: st.DrawFn) -> dict[str, Any]:
    node = _chain(draw)
    if draw(st.booleans()):
        # plant a reference somewhere: to the root or to a $defs entry, in place or under a property
        target = draw(st.sampled_from(["#", "#/$defs/d"]))
        where = draw(st.sampled_from(["in_place", "property", "items"]))
        ref = {"$ref": target}
        planted: dict[str, Any] = (
            {"anyOf": [ref, {"type": "integer"}]}
            if where == "in_place"
            else {"type": "object", "properties": {"r": ref}}
            if where == "property"
            else {"type": "array", "items": ref}
        )
        node = {"allOf": [node, planted]} if draw(st.booleans()) else planted
        node["$defs"] = {"d": draw(st.sampled_from([{"$ref": "#"}, {"type": "string"}, planted]))}
    return node


@given(hostile_schemas(), st.integers(0, 3000))
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@pytest.mark.timeout(300)
def test_no_walker_raises_recursion_error(schema: dict[str, Any], value_depth: int) -> None:
    on_a_deep_stack(150, lambda: _every_walker(schema, value_depth))


def on_a_deep_stack(frames: int, call: Any) -> None:
    """Run `call` below `frames` frames of the caller's own: the bounds must leave room for them."""
    if frames:
        on_a_deep_stack(frames - 1, call)
    else:
        call()


def _every_walker(schema: dict[str, Any], value_depth: int) -> None:
    for value in (deep_list(value_depth), "x"):
        with contextlib.suppress(SchemaError):
            Validator.for_json_schema(schema).is_valid(value)
    for provider in ("cerebras", "openai", "generic"):
        assert isinstance(strict_violations(schema, provider), list)
        try:
            compiled = compile_schema(schema, provider)
        except SchemaError:
            continue
        compiled.wire_schema  # noqa: B018
        for value in (deep_list(value_depth), deep_tree(value_depth), nested_value(value_depth), "x", None):
            with contextlib.suppress(ValidationFailed):
                compiled.parse(value)
            compiled.validator.is_valid(value)
            compiled.decode(value)
            with contextlib.suppress(ValueError):
                compiled.encode(value)


# -- bad schema inputs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ([1, 2], "a value, not a schema"),
        (5, "a value, not a schema"),
        (None, "a value, not a schema"),
        ({"type": "object", "properties": {1: {"type": "string"}}}, "keys are strings"),
        ({"type": "object", "properties": {"a": 5}}, "invalid JSON Schema"),
        ({"type": "strnig"}, "invalid JSON Schema"),
        ({"type": "object", "required": "a"}, "invalid JSON Schema"),
        ({"items": [1]}, "invalid JSON Schema"),
        ({"anyOf": {"type": "string"}}, "invalid JSON Schema"),
        ({"minimum": float("nan")}, "not a JSON number"),
        ({"enum": [object()]}, "only JSON values"),
        ({"properties": {"a": {"pattern": 5}}}, "invalid JSON Schema"),
        ({"properties": {"type": 5}}, "expected a schema (an object), got integer 5"),
        ({"type": "wat"}, "names no JSON type"),
        ({"$ref": None}, "$ref must be a string"),
    ],
)
def test_bad_schema_inputs_are_clear_schema_errors(schema: Any, words: str) -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(schema)
    assert words in str(info.value)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(
        st.sampled_from(
            ["type", "properties", "items", "required", "anyOf", "allOf", "oneOf", "not", "$ref", "$defs",
             "enum", "const", "pattern", "patternProperties", "additionalProperties", "minimum", "format",
             "prefixItems", "definitions", "if", "then", "else", "x", "a"]
        )
        | st.integers(0, 3),
        inner,
        max_size=4,
    ),
    max_leaves=20,
)  # fmt: skip


@given(JSONISH)
@settings(
    max_examples=int(os.environ.get("EXTRACT_FUZZ", "400")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@pytest.mark.timeout(300)
def test_compile_succeeds_or_raises_schema_error(schema: Any) -> None:
    for provider in ("cerebras", "generic"):
        try:
            compiled = compile_schema(schema, provider)
        except SchemaError:
            continue
        for value in (None, "x", 1, [1], {"a": 1}):
            with contextlib.suppress(ValidationFailed, SchemaError):
                compiled.parse(value)


@st.composite
def typed_schemas(draw: st.DrawFn) -> Any:
    """Schema-shaped dicts with wrong-typed keyword values (the realistic mistakes)."""
    keyword = draw(
        st.sampled_from(
            ["type", "properties", "items", "required", "anyOf", "enum", "pattern", "$ref", "minimum"]
        )
    )
    value = draw(JSONISH)
    return {"type": "object", "properties": {"a": {keyword: value}}}


@given(typed_schemas())
@settings(
    max_examples=int(os.environ.get("EXTRACT_FUZZ", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@pytest.mark.timeout(300)
def test_wrong_keyword_values_are_schema_errors(schema: Any) -> None:
    with contextlib.suppress(SchemaError):
        compile_schema(schema)
