"""strict_violations: the rule book for each provider's strict json_schema mode."""

from __future__ import annotations

from typing import Any

import pytest

from extract.schema import PROFILES, strict_violations


def obj(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


S = {"type": "string"}


def one(schema: dict[str, Any], needle: str, profile: str = "cerebras") -> str:
    found = strict_violations(schema, profile)
    matching = [v for v in found if needle in v]
    assert matching, f"expected a violation mentioning {needle!r}, got {found}"
    return matching[0]


def test_accepts_the_conservative_subset() -> None:
    schema = {
        **obj(
            name={"type": "string", "description": "who"},
            tags={"type": "array", "items": S},
            pair={"type": "array", "prefixItems": [S, {"type": "integer"}], "items": False},
            kind={"type": "string", "enum": ["a", "b"]},
            maybe={"anyOf": [S, {"type": "null"}], "description": "optional"},
            ref={"$ref": "#/$defs/Inner"},
        ),
        "$defs": {"Inner": obj(x={"type": "number"})},
    }
    assert strict_violations(schema) == []


@pytest.mark.parametrize(
    ("schema", "needle"),
    [
        ({"type": "array", "items": S}, "#: type: the root must be an object"),
        ({"type": "object", "properties": {"a": S}, "required": ["a"]}, "additionalProperties"),
        ({**obj(a=S), "required": []}, "required: every property must be required"),
        (obj(a={"type": ["string", "null"]}), "#/properties/a: type: a list of types"),
        (obj(a={"type": "string", "format": "email"}), "#/properties/a: format: keyword not accepted"),
        (obj(a={"type": "string", "pattern": "x"}), "pattern: keyword not accepted"),
        (obj(a={"type": "integer", "minimum": 1}), "minimum: keyword not accepted"),
        (obj(a={"type": "string", "title": "A"}), "title: keyword not accepted"),
        (obj(a={"enum": ["x"], "const": "x"}), "const: keyword not accepted"),
        (obj(a={"oneOf": [S]}), "oneOf: keyword not accepted"),
        (obj(a={}), "#/properties/a: empty schema"),
        (obj(a=True), "#/properties/a: a schema must be an object"),
        (obj(a={"type": "array"}), "#/properties/a: items: an array needs an items schema"),
        (obj(a={"type": "array", "items": True}), "#/properties/a/items: a schema must be an object"),
        (obj(a={"type": "array", "prefixItems": [S]}), "items: must be false next to prefixItems"),
        (obj(a={"anyOf": [S] * 6}), "#/properties/a/anyOf: anyOf: 6 branches"),
        (obj(a={"$ref": "#/definitions/X"}), "only local '#/$defs/<name>'"),
        (obj(a={"$ref": "#/$defs/Missing"}), "points to no entry"),
        (
            {**obj(a={"$ref": "#/$defs/X"}), "$defs": {"X": S}}
            | {"properties": {"a": {"$ref": "#/$defs/X", "description": "d"}}},
            "$ref: must stand alone",
        ),
        (obj(a={"type": "string", "enum": ["a", 1]}), "enum: values of mixed types"),
        (obj(a={"type": "integer", "enum": ["a"]}), "do not match type"),
        (obj(a={"type": "mystery"}), "unknown type"),
        (
            obj(
                a={
                    "type": "object",
                    "properties": {},
                    "required": [],
                    "additionalProperties": False,
                    "$defs": {},
                }
            ),
            "$defs: only allowed at the root",
        ),
    ],
)
def test_rejects_with_path_and_keyword(schema: dict[str, Any], needle: str) -> None:
    one(schema, needle)


def test_recursion_is_rejected_by_cerebras_and_accepted_by_openai() -> None:
    node = {
        "type": "object",
        "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}}},
        "required": ["kids"],
        "additionalProperties": False,
    }
    schema = {**obj(root={"$ref": "#/$defs/Node"}), "$defs": {"Node": node}}
    one(schema, "recursive schemas are not accepted")
    assert strict_violations(schema, "openai") == []


def test_size_limits() -> None:
    big = obj(**{f"field_{i}": {"type": "string", "description": "x" * 40} for i in range(120)})
    one(big, "characters as compact JSON, the limit is 5000")
    many = obj(**{f"f{i}": S for i in range(501)})
    one(many, "501 object properties in total")
    enum = obj(a={"type": "string", "enum": [f"v{i}" for i in range(501)]})
    one(enum, "501 enum values in total")
    long_strings = obj(a={"type": "string", "enum": [f"{i:04d}" + "y" * 30 for i in range(260)]})
    one(long_strings, "260 strings totalling more than 7500")


def nested(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = S
    for _ in range(levels):
        schema = obj(x=schema)
    return schema


def test_nesting_depth_counts_data_levels_through_refs() -> None:
    assert strict_violations(nested(10)) == []
    assert any("nesting depth 11 exceeds the limit of 10" in v for v in strict_violations(nested(11)))
    via_ref = {**obj(x={"$ref": "#/$defs/D"}), "$defs": {"D": nested(10)}}
    assert any("nesting depth 11" in v for v in strict_violations(via_ref))
    arrays = obj(x={"type": "array", "items": nested(9)})
    assert any("nesting depth 11" in v for v in strict_violations(arrays))


def test_openai_allows_its_documented_constraints_but_not_unknown_formats() -> None:
    schema = obj(
        email={"type": "string", "format": "email", "pattern": "@"},
        n={"type": "integer", "minimum": 0, "maximum": 9},
        xs={"type": "array", "items": S, "minItems": 1},
    )
    assert strict_violations(schema, "openai") == []
    one(obj(a={"type": "string", "format": "color"}), "format: 'color' is not one of", "openai")
    one(obj(a={"type": "string", "minLength": 2}), "minLength: keyword not accepted", "openai")


def test_profiles_without_strict_mode_say_so() -> None:
    for name in ("llamacpp", "generic"):
        assert not PROFILES[name].strict_json_schema
        assert strict_violations(obj(a=S), name) == [f"#: provider {name!r} has no strict json_schema mode"]


def test_not_a_dict() -> None:
    assert strict_violations([], "cerebras") == ["#: the schema must be a JSON object"]  # type: ignore[arg-type]
