"""The compiled fast path of Validator.is_valid agrees with python-jsonschema on random schemas and values."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract.schema._fastcheck import compile_fast
from extract.schema._validate import Validator

DRAFTS = {
    "http://json-schema.org/draft-04/schema#": jsonschema.Draft4Validator,
    "http://json-schema.org/draft-07/schema#": jsonschema.Draft7Validator,
    "https://json-schema.org/draft/2020-12/schema": jsonschema.Draft202012Validator,
}
KEYS = ["a", "b", "c", "n"]
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.sampled_from([0.0, 1.0, 2.5, -1.5, 1e300])
    | st.sampled_from(["", "a", "ab", "abc", "x@y", "2024-01-31", "2024-13-01", "ABC-1", "1.2.3.4"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    max_leaves=8,
)
TYPES = st.sampled_from(["string", "integer", "number", "boolean", "null", "object", "array"])


def leaf_schemas() -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(
        st.builds(lambda t: {"type": t}, TYPES),
        st.builds(lambda ts: {"type": ts}, st.lists(TYPES, min_size=1, max_size=3, unique=True)),
        st.builds(lambda v: {"enum": v}, st.lists(SCALARS, min_size=1, max_size=3)),
        st.builds(lambda v: {"const": v}, SCALARS),
        st.builds(lambda n: {"minimum": n}, st.integers(-2, 2)),
        st.builds(lambda n: {"maximum": n}, st.sampled_from([0, 1, 2.5])),
        st.builds(lambda n: {"exclusiveMinimum": n}, st.integers(-1, 1)),
        st.builds(lambda n: {"exclusiveMaximum": n}, st.integers(-1, 1)),
        st.builds(lambda n: {"minLength": n}, st.integers(0, 3)),
        st.builds(lambda n: {"maxLength": n}, st.integers(0, 3)),
        st.builds(lambda p: {"pattern": p}, st.sampled_from(["^a", "b$", "^[A-Z]+-[0-9]$", "."])),
        st.builds(
            lambda f: {"format": f}, st.sampled_from(["email", "date", "ipv4", "uuid", "unknown-format"])
        ),
        st.builds(lambda n: {"minItems": n}, st.integers(0, 2)),
        st.builds(lambda n: {"maxItems": n}, st.integers(0, 2)),
        st.builds(lambda n: {"minProperties": n}, st.integers(0, 2)),
        st.builds(lambda n: {"maxProperties": n}, st.integers(0, 2)),
        st.builds(lambda r: {"required": r}, st.lists(st.sampled_from(KEYS), max_size=2, unique=True)),
        st.just({}),
    )


def combine(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(
            lambda props, extra: {"type": "object", "properties": props, "additionalProperties": extra},
            st.dictionaries(st.sampled_from(KEYS), children, max_size=3),
            st.one_of(st.booleans(), children),
        ),
        st.builds(
            lambda props: {"properties": props}, st.dictionaries(st.sampled_from(KEYS), children, max_size=2)
        ),
        st.builds(lambda item: {"type": "array", "items": item}, children),
        st.builds(lambda bs: {"anyOf": bs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda bs: {"oneOf": bs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda bs: {"allOf": bs}, st.lists(children, min_size=1, max_size=3)),
        st.builds(lambda b: {"not": b}, children),
        st.builds(lambda a, b: {**a, **b}, children, children),
    )


SCHEMAS = st.recursive(leaf_schemas(), combine, max_leaves=6)


def as_draft(schema: dict[str, Any], uri: str) -> dict[str, Any]:
    """The same schema under another draft: draft-04 then ignores `const` and rejects numeric exclusive bounds."""
    return {"$schema": uri, **schema}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SCHEMAS, st.lists(VALUES, min_size=1, max_size=6), st.sampled_from(sorted(DRAFTS)))
def test_fast_path_agrees_with_jsonschema(schema: dict[str, Any], values: list[Any], uri: str) -> None:
    full = as_draft(schema, uri)
    cls = DRAFTS[uri]
    try:
        cls.check_schema(full)
    except jsonschema.SchemaError:
        return
    fast = compile_fast(full, cls)
    assert fast is not None, full  # everything generated here is inside the fast subset
    reference = cls(full, format_checker=cls.FORMAT_CHECKER)
    validator = Validator.for_json_schema(full)
    for value in values:
        expected = reference.is_valid(value)
        assert fast(value) is expected, (full, value)
        given_value = (
            orjson.dumps(value) if isinstance(value, str) else value
        )  # a str would be read as JSON text
        assert validator.is_valid(given_value) is expected
        assert (validator.errors(given_value) == []) is expected


def test_draft4_boolean_exclusive_bounds() -> None:
    schema = {"$schema": "http://json-schema.org/draft-04/schema#", "maximum": 5, "exclusiveMaximum": True}
    fast = compile_fast(schema, jsonschema.Draft4Validator)
    assert fast is not None
    assert fast(4.9) and not fast(5) and fast("not a number")


def test_integer_semantics_follow_the_draft() -> None:
    draft4 = Validator.for_json_schema(
        {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"}
    )
    draft7 = Validator.for_json_schema(
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "integer"}
    )
    assert not draft4.is_valid(1.0)
    assert draft7.is_valid(1.0)
    assert not draft7.is_valid(True)


def test_recursive_refs_use_the_fast_path() -> None:
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "$ref": "#/$defs/node",
    }
    fast = compile_fast(schema, jsonschema.Draft202012Validator)
    assert fast is not None
    assert fast({"kids": [{"kids": []}]})
    assert not fast({"kids": [{"kids": 3}]})


def test_ref_siblings_are_ignored_before_2019_and_applied_after() -> None:
    defs = {"definitions": {"s": {"type": "string"}}}
    old = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        **defs,
        "$ref": "#/definitions/s",
        "minLength": 3,
    }
    new = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **defs,
        "$ref": "#/definitions/s",
        "minLength": 3,
    }
    assert Validator.for_json_schema(old).is_valid(b'"ab"')
    assert not Validator.for_json_schema(new).is_valid(b'"ab"')


def test_unsupported_keywords_fall_back_to_jsonschema() -> None:
    for schema in (
        {"type": "array", "uniqueItems": True},
        {"patternProperties": {"^x": {"type": "integer"}}},
        {"if": {"type": "string"}, "then": {"minLength": 2}},
        {"properties": {"a": {"$ref": "#missing-anchor"}}},
        {"$defs": {"x": {"$id": "http://127.0.0.1:9/x", "type": "string"}}, "$ref": "#/$defs/x"},
    ):
        assert compile_fast(schema, jsonschema.Draft202012Validator) is None, schema
    unique = Validator.for_json_schema({"type": "array", "uniqueItems": True})
    assert unique.is_valid([1, 2]) and not unique.is_valid([1, 1])
