"""Validator: draft choice, format checking, violation messages, and the pydantic back end."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any, Literal

import jsonschema
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema
from pydantic import BaseModel, ConfigDict, Field

from extract.errors import SchemaError, ValidationFailed, Violation
from extract.schema._validate import Validator, choose_draft, format_path, show_value

ORDER = {
    "type": "object",
    "properties": {
        "customer": {"type": "string", "minLength": 2},
        "email": {"type": "string", "format": "email"},
        "placed": {"type": "string", "format": "date"},
        "status": {"enum": ["open", "paid", "void"]},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
                    "price": {"type": "number", "minimum": 0},
                    "qty": {"type": "integer", "exclusiveMinimum": 0},
                },
                "required": ["sku", "price"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["customer", "items"],
    "additionalProperties": False,
}


def violations(validator: Validator, value: Any) -> list[Violation]:
    """Every violation; a bare Python str is sent as JSON text, since str input means "JSON to parse"."""
    with pytest.raises(ValidationFailed) as info:
        validator.validate(orjson.dumps(value) if isinstance(value, str) else value)
    return list(info.value.violations)


# -- JSON Schema messages ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "value", "path", "message"),
    [
        ({"type": "integer", "minimum": 0}, -3, "$", "must be >= 0, got -3"),
        ({"type": "integer", "maximum": 10}, 11, "$", "must be <= 10, got 11"),
        ({"type": "number", "exclusiveMinimum": 0}, 0, "$", "must be > 0, got 0"),
        ({"type": "number", "exclusiveMaximum": 1}, 1, "$", "must be < 1, got 1"),
        ({"type": "number", "multipleOf": 5}, 7, "$", "must be a multiple of 5, got 7"),
        ({"type": "string", "format": "email"}, "abc", "$", "'abc' is not a valid email"),
        ({"type": "string", "format": "date"}, "2024-13-01", "$", "'2024-13-01' is not a valid date"),
        ({"type": "string", "format": "ipv4"}, "1.2.3", "$", "'1.2.3' is not a valid ipv4"),
        ({"type": "string", "format": "uuid"}, "nope", "$", "'nope' is not a valid uuid"),
        ({"type": "string", "minLength": 3}, "ab", "$", "must have at least 3 characters, got 2: 'ab'"),
        ({"type": "string", "maxLength": 1}, "ab", "$", "must have at most 1 character, got 2: 'ab'"),
        ({"type": "string", "pattern": "^a+$"}, "b", "$", "must match the pattern '^a+$', got 'b'"),
        ({"enum": ["a", "b"]}, "c", "$", "must be one of 'a', 'b'; got 'c'"),
        ({"const": "x"}, "y", "$", "must be 'x', got 'y'"),
        ({"type": "integer"}, "3", "$", "must be integer, got string '3'"),
        ({"type": ["string", "null"]}, 3, "$", "must be string or null, got integer 3"),
        ({"type": "array", "minItems": 2}, [1], "$", "must have at least 2 items, got 1"),
        ({"type": "array", "uniqueItems": True}, [1, 1], "$", "items must be unique (remove the duplicates)"),
        ({"type": "object", "required": ["name"]}, {}, "$", "missing required property 'name'"),
        (
            {"type": "object", "properties": {"a": {}}, "additionalProperties": False},
            {"a": 1, "foo": 2},
            "$",
            "unexpected property 'foo'",
        ),
        (
            {"type": "object", "maxProperties": 1},
            {"a": 1, "b": 2},
            "$",
            "must have at most 1 property, got 2",
        ),
        ({"not": {"type": "string"}}, "s", "$", 'must not match {"type":"string"}, got \'s\''),
        (False, 1, "$", "no value is allowed here"),
        (
            {"dependentRequired": {"card": ["expiry"]}},
            {"card": "x"},
            "$",
            "property 'card' requires property 'expiry'",
        ),
        (
            {"$schema": "http://json-schema.org/draft-07/schema#", "dependencies": {"card": ["expiry"]}},
            {"card": "x"},
            "$",
            "property 'card' requires property 'expiry'",
        ),
    ],
)
def test_json_schema_messages(schema: Any, value: Any, path: str, message: str) -> None:
    found = violations(Validator.for_json_schema(schema), value)
    assert Violation(path, message) in found, found


def test_order_errors_are_one_per_location_and_deepest_first() -> None:
    validator = Validator.for_json_schema(ORDER)
    bad = {
        "customer": "A",
        "email": "not-an-email",
        "status": "lost",
        "items": [{"sku": "abc", "price": -3, "qty": 0, "colour": "red"}, {}],
        "note": "x",
    }
    found = violations(validator, bad)
    assert len(found) == len(set(found))
    assert set(found) == {
        Violation("$.items[0].sku", "must match the pattern '^[A-Z]{3}-[0-9]+$', got 'abc'"),
        Violation("$.items[0].price", "must be >= 0, got -3"),
        Violation("$.items[0].qty", "must be > 0, got 0"),
        Violation("$.items[0]", "unexpected property 'colour'"),
        Violation("$.items[1]", "missing required property 'sku'"),
        Violation("$.items[1]", "missing required property 'price'"),
        Violation("$.customer", "must have at least 2 characters, got 1: 'A'"),
        Violation("$.email", "'not-an-email' is not a valid email"),
        Violation("$.status", "must be one of 'open', 'paid', 'void'; got 'lost'"),
        Violation("$", "unexpected property 'note'"),
    }
    depths = [v.path.count(".") + v.path.count("[") for v in found]
    assert depths == sorted(depths, reverse=True)


def test_valid_value_is_returned_unchanged() -> None:
    value = {"customer": "Ann", "items": [{"sku": "ABC-1", "price": 2.5}]}
    validator = Validator.for_json_schema(ORDER)
    assert validator.validate(value) == value
    assert validator.is_valid(value)
    assert validator.errors(value) == []


def test_text_and_bytes_are_parsed_as_json() -> None:
    validator = Validator.for_json_schema(ORDER)
    text = '{"customer": "Ann", "items": [{"sku": "ABC-1", "price": 2.5}]}'
    assert validator.validate(text)["customer"] == "Ann"
    assert validator.validate(text.encode())["items"][0]["price"] == 2.5
    assert validator.is_valid(text)
    assert not validator.is_valid(text[:-1])


def test_invalid_json_text_is_one_root_violation_saying_where() -> None:
    with pytest.raises(ValidationFailed) as info:
        Validator.for_json_schema(ORDER).validate('{"customer": "Ann",\n "items": [1,]}')
    found = info.value.violations
    assert len(found) == 1
    assert found[0].path == "$"
    assert found[0].message.startswith("the reply is not valid JSON")
    assert "line 2" in found[0].message


def test_any_of_reports_the_closest_branch_only() -> None:
    schema = {
        "anyOf": [
            {"type": "string"},
            {
                "type": "object",
                "properties": {"amount": {"type": "number", "minimum": 0}, "currency": {"type": "string"}},
                "required": ["amount", "currency"],
            },
            {"type": "null"},
        ]
    }
    found = violations(Validator.for_json_schema(schema), {"amount": -1, "currency": "EUR"})
    assert found == [Violation("$.amount", "must be >= 0, got -1")]


def test_any_of_with_only_type_mismatches_lists_the_alternatives() -> None:
    schema = {"oneOf": [{"type": "string"}, {"type": "null"}, {"const": 7}]}
    found = violations(Validator.for_json_schema(schema), 3)
    assert found == [Violation("$", "must be one of: string, null, 7; got 3")]


def test_one_of_matching_several_branches_says_so() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    (only,) = violations(Validator.for_json_schema(schema), 3)
    assert "exactly one" in only.message


def test_long_values_are_clipped_in_messages() -> None:
    long = "x" * 500
    (only,) = violations(Validator.for_json_schema({"type": "string", "format": "email"}), long)
    assert len(only.message) < 100
    assert "(500 chars)" in only.message


def test_paths_quote_keys_that_are_not_identifiers() -> None:
    assert format_path(["items", 0, "unit price", "it's"]) == "$.items[0]['unit price']['it\\'s']"
    schema = {"type": "object", "properties": {"a b": {"type": "integer"}}}
    assert violations(Validator.for_json_schema(schema), {"a b": "x"})[0].path == "$['a b']"


def test_show_value_is_json_like() -> None:
    assert show_value(None) == "null"
    assert show_value(True) == "true"
    assert show_value({"a": [1, 2]}) == '{"a":[1,2]}'
    assert show_value("it") == "'it'"


# -- draft choice and schema errors ---------------------------------------------------------------


def test_draft4_exclusive_minimum_boolean_works_without_schema_keyword() -> None:
    validator = Validator.for_json_schema({"type": "number", "minimum": 0, "exclusiveMinimum": True})
    assert validator.draft == "Draft4Validator"
    assert validator.is_valid(0.5)
    assert violations(validator, 0) == [Violation("$", "must be > 0, got 0")]


@pytest.mark.parametrize(
    ("uri", "draft"),
    [
        ("http://json-schema.org/draft-04/schema#", "Draft4Validator"),
        ("http://json-schema.org/draft-04/schema", "Draft4Validator"),
        ("https://json-schema.org/draft-07/schema#", "Draft7Validator"),
        ("http://json-schema.org/draft-06/schema#", "Draft6Validator"),
        ("https://json-schema.org/draft/2019-09/schema", "Draft201909Validator"),
        ("https://json-schema.org/draft/2020-12/schema#", "Draft202012Validator"),
        ("http://example.invalid/my-meta-schema", "Draft202012Validator"),
    ],
)
def test_draft_follows_schema_keyword(uri: str, draft: str) -> None:
    assert Validator.for_json_schema({"$schema": uri, "type": "integer"}).draft == draft


def test_array_form_items_falls_back_to_an_older_draft() -> None:
    schema = {"type": "array", "items": [{"type": "integer"}, {"type": "string"}]}
    validator = Validator.for_json_schema(schema)
    assert validator.draft == "Draft201909Validator"
    assert validator.is_valid([1, "a"])
    assert not validator.is_valid(["a", 1])


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "strnig"},
        {"type": "string", "pattern": "(unclosed"},
        {"properties": []},
        {"$schema": "http://json-schema.org/draft-07/schema#", "minimum": "zero"},
    ],
)
def test_invalid_schemas_raise_schema_error(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaError, match="invalid JSON Schema"):
        Validator.for_json_schema(schema)


def test_non_schema_input_raises_schema_error() -> None:
    with pytest.raises(SchemaError):
        Validator.for_json_schema([{"type": "string"}])  # type: ignore[arg-type]


def test_remote_refs_are_never_fetched() -> None:
    # port 9 (discard) on loopback: if anything tried to fetch it, it would fail loudly, not hang
    schema = {"type": "object", "properties": {"a": {"$ref": "http://127.0.0.1:9/other.json"}}}
    validator = Validator.for_json_schema(schema)
    with pytest.raises(SchemaError, match="cannot resolve"):
        validator.validate({"a": 1})
    with pytest.raises(SchemaError, match="cannot resolve"):
        validator.is_valid({"a": 1})


def test_local_refs_and_recursion_work() -> None:
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    "n": {"type": "integer"},
                },
            }
        },
        "$ref": "#/$defs/node",
    }
    validator = Validator.for_json_schema(schema)
    assert validator.is_valid({"n": 1, "kids": [{"n": 2, "kids": []}]})
    assert violations(validator, {"kids": [{"kids": [{"n": "x"}]}]}) == [
        Violation("$.kids[0].kids[0].n", "must be integer, got string 'x'")
    ]


def test_validators_are_cached_per_schema_content() -> None:
    first = Validator.for_json_schema(ORDER)
    assert Validator.for_json_schema(copy.deepcopy(ORDER)) is first
    assert Validator.for_json_schema({**ORDER, "title": "other"}) is not first


def test_mutating_the_schema_afterwards_does_not_change_the_validator() -> None:
    schema: dict[str, Any] = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 5}}}
    validator = Validator.for_json_schema(schema)
    schema["properties"]["n"]["maximum"] = 0
    assert validator.is_valid({"n": 3})


def test_choose_draft_matches_validator() -> None:
    schema = {"type": "integer", "minimum": 1, "exclusiveMinimum": True}
    assert choose_draft(schema) is jsonschema.Draft4Validator


# -- properties -------------------------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["sku", "price", "qty", "x"]), inner, max_size=4)
    ),
    max_leaves=12,
)
ITEM = ORDER["properties"]["items"]["items"]  # type: ignore[index]


def _resolves(path: str, value: Any) -> bool:
    """A violation path points at a location that exists in the value."""
    import re

    current = value
    for key, index, quoted in re.findall(
        r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]", path[1:]
    ):
        if index:
            if not isinstance(current, list) or int(index) >= len(current):
                return False
            current = current[int(index)]
        else:
            name = key or quoted.replace("\\'", "'").replace("\\\\", "\\")
            if not isinstance(current, dict) or name not in current:
                return False
            current = current[name]
    return True


@settings(max_examples=150, deadline=None)
@given(JSON)
def test_is_valid_agrees_with_jsonschema_and_failures_are_located(value: Any) -> None:
    validator = Validator.for_json_schema(ITEM)
    reference = jsonschema.Draft202012Validator(
        ITEM, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert validator.is_valid(orjson.dumps(value)) == reference.is_valid(value)
    if not reference.is_valid(value):
        found = violations(validator, value)
        assert found, "an invalid value must produce at least one violation"
        assert len(set(found)) == len(found)
        assert all(_resolves(v.path, value) for v in found), found


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(from_schema(ORDER))
def test_generated_instances_are_valid(value: Any) -> None:
    assert Validator.for_json_schema(ORDER).validate(value) == value


# -- pydantic back end ------------------------------------------------------------------------------


class Line(BaseModel):
    sku: str
    price: float = Field(ge=0)


class Invoice(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(min_length=2)
    issued: dt.date
    lines: list[Line]
    status: Literal["open", "paid"] = "open"
    discount: int | Line | None = None


def test_pydantic_returns_a_model_instance() -> None:
    validator = Validator.for_pydantic(Invoice)
    invoice = validator.validate(
        {"number": "A1", "issued": "2024-05-01", "lines": [{"sku": "x", "price": 1}]}
    )
    assert isinstance(invoice, Invoice)
    assert invoice.issued == dt.date(2024, 5, 1)
    assert validator.validate(b'{"number": "A1", "issued": "2024-05-01", "lines": []}').lines == []


def test_pydantic_errors_use_the_same_format() -> None:
    validator = Validator.for_pydantic(Invoice)
    bad = {
        "number": "A",
        "issued": "2024-05-01",
        "lines": [{"sku": "x", "price": -3}, {"price": 1}],
        "status": "late",
        "foo": 1,
    }
    found = violations(validator, bad)
    assert found == [
        Violation("$.lines[0].price", "must be >= 0.0, got -3"),
        Violation("$.lines[1]", "missing required property 'sku'"),
        Violation("$.number", "must have at least 2 characters, got 1"),
        Violation("$.status", "must be 'open' or 'paid'; got 'late'"),
        Violation("$", "unexpected property 'foo'"),
    ]


def test_pydantic_union_reports_the_closest_branch() -> None:
    validator = Validator.for_pydantic(Invoice)
    base = {"number": "A1", "issued": "2024-05-01", "lines": []}
    assert violations(validator, {**base, "discount": {"sku": "x", "price": -1}}) == [
        Violation("$.discount.price", "must be >= 0.0, got -1")
    ]
    (only,) = violations(validator, {**base, "discount": "ten"})
    assert only.path == "$.discount"
    assert only.message == "must be a valid integer or an object; got 'ten'"


def test_pydantic_strict_model_accepts_json_shaped_values() -> None:
    class Strict(BaseModel):
        model_config = ConfigDict(strict=True)
        day: dt.date

    assert Validator.for_pydantic(Strict).validate({"day": "2024-01-02"}).day == dt.date(2024, 1, 2)


def test_pydantic_plain_types_and_caching() -> None:
    validator = Validator.for_pydantic(list[int])
    assert validator.validate("[1, 2]") == [1, 2]
    assert not validator.is_valid([1, "x"])
    assert violations(validator, [1, "x"]) == [
        Violation("$[1]", "must be a valid integer, unable to parse string as an integer, got 'x'")
    ]
    assert Validator.for_pydantic(list[int]) is validator
    assert Validator.for_pydantic(Invoice) is Validator.for_pydantic(Invoice)


def test_pydantic_invalid_json_text() -> None:
    with pytest.raises(ValidationFailed) as info:
        Validator.for_pydantic(Invoice).validate("{not json")
    found = info.value.violations
    assert found[0].path == "$"
    assert "not valid JSON" in found[0].message


def test_unusable_type_is_a_schema_error() -> None:
    class Opaque:
        pass

    with pytest.raises(SchemaError, match="pydantic cannot build"):
        Validator.for_pydantic(Opaque)
