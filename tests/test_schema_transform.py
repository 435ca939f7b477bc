"""Each transform of the strict compiler: the wire shape, the decode back, and the client-side checks."""

from __future__ import annotations

from typing import Any

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.errors import SchemaError, ValidationFailed
from extract.schema import CompiledSchema, Unrepresentable, compile_schema, strict_violations
from extract.schema._codec import same_json


def compiled(schema: dict[str, Any], provider: str = "cerebras") -> CompiledSchema:
    c = compile_schema(schema, provider)
    if c.strict and provider == "cerebras":
        assert strict_violations(c.wire_schema) == []
    return c


def roundtrip(c: CompiledSchema, value: Any) -> Any:
    """encode -> valid on the wire -> decode gives the value back -> the client accepts it."""
    wire = c.encode(value)
    jsonschema.Draft202012Validator(c.wire_schema).validate(wire)
    assert same_json(c.decode(wire), value)
    c.validate(value)
    return wire


def keys_anywhere(node: Any) -> set[str]:
    out: set[str] = set()
    if isinstance(node, dict):
        for k, v in node.items():
            out.add(k)
            if k != "enum":
                out |= keys_anywhere(v)
    elif isinstance(node, list):
        for v in node:
            out |= keys_anywhere(v)
    return out


def prop(c: CompiledSchema, name: str) -> Any:
    return c.wire_schema["properties"][name]


def test_annotations_and_unknown_keys_are_stripped() -> None:
    c = compiled(
        {
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://example.com/p.json",
            "$comment": "internal",
            "title": "Person",
            "type": "object",
            "x-order": 3,
            "properties": {
                "title": {
                    "type": "string",
                    "title": "T",
                    "examples": ["Dr"],
                    "default": "Mr",
                    "readOnly": True,
                },
                "age": {"type": "integer", "deprecated": True, "x-unit": "years", "whatever": 1},
            },
            "required": ["title", "age"],
        }
    )
    assert c.strict
    assert prop(c, "title") == {"type": "string"}  # a property *named* title survives
    assert prop(c, "age") == {"type": "integer"}
    assert (
        keys_anywhere(c.wire_schema) & {"$schema", "$id", "$comment", "x-order", "examples", "default"}
        == set()
    )
    assert c.name == "Person"


def test_definitions_become_defs_and_pointer_refs_are_hoisted() -> None:
    schema = {
        "type": "object",
        "definitions": {
            "Addr": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
        },
        "properties": {
            "home": {"$ref": "#/definitions/Addr"},
            "work": {"$ref": "#/properties/home"},
            "deep": {"$ref": "#/definitions/Addr/properties/city"},
        },
        "required": ["home", "work", "deep"],
    }
    c = compiled(schema)
    assert "definitions" not in c.user_schema
    assert set(c.user_schema["$defs"]) >= {"Addr", "home", "city"}
    assert c.user_schema["properties"]["work"] == {"$ref": "#/$defs/home"}
    assert prop(c, "deep") == {"type": "string"}
    value = {"home": {"city": "Oslo"}, "work": {"city": "Bergen"}, "deep": "x"}
    roundtrip(c, value)


def test_dangling_ref_is_a_schema_error_naming_the_path() -> None:
    with pytest.raises(SchemaError) as err:
        compile_schema({"type": "object", "properties": {"a": {"$ref": "#/definitions/Nope"}}})
    assert err.value.path == "#/properties/a"
    assert "dangling" in str(err.value)
    with pytest.raises(SchemaError, match="cannot be resolved"):
        compile_schema({"type": "object", "properties": {"a": {"$ref": "https://elsewhere/x.json"}}})


def test_ref_with_siblings_is_merged() -> None:
    schema = {
        "type": "object",
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]}},
        "properties": {
            "item": {
                "$ref": "#/$defs/Base",
                "properties": {"name": {"type": "string"}},
                "required": ["name"],
                "description": "an item",
            }
        },
        "required": ["item"],
    }
    c = compiled(schema)
    item = prop(c, "item")
    assert item["properties"] == {"id": {"type": "integer"}, "name": {"type": "string"}}
    assert item["required"] == ["id", "name"]
    assert item["description"] == "an item"


def test_type_lists_and_nullable_become_anyof_with_null() -> None:
    c = compiled(
        {
            "type": "object",
            "properties": {"a": {"type": ["string", "null"]}, "b": {"type": "integer", "nullable": True}},
            "required": ["a", "b"],
        }
    )
    assert prop(c, "a") == {"anyOf": [{"type": "string"}, {"type": "null"}]}
    assert prop(c, "b") == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    roundtrip(c, {"a": None, "b": 3})


def test_oneof_becomes_anyof_and_exactly_one_is_checked_after() -> None:
    c = compiled(
        {
            "type": "object",
            "properties": {"v": {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]}},
            "required": ["v"],
        }
    )
    assert prop(c, "v") == {"anyOf": [{"type": "integer"}, {"type": "number", "description": ">= 0"}]}
    assert any(r.keyword == "oneOf" for r in c.relaxations)
    with pytest.raises(ValidationFailed):
        c.parse({"v": 3})  # matches both branches: not exactly one
    assert c.parse({"v": -3}) == {"v": -3}


def test_allof_is_merged_and_conflicts_keep_the_strictest_branch() -> None:
    c = compiled(
        {
            "type": "object",
            "properties": {
                "m": {
                    "allOf": [
                        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                        {"properties": {"b": {"type": "integer", "maximum": 5}}, "required": ["b"]},
                        {"properties": {"b": {"minimum": 1}}},
                    ]
                },
                "clash": {"allOf": [{"type": "string"}, {"type": "integer"}]},
            },
            "required": ["m", "clash"],
        }
    )
    m = prop(c, "m")
    assert set(m["properties"]) == {"a", "b"}
    assert m["required"] == ["a", "b"]
    assert m["properties"]["b"]["type"] == "integer"
    assert ">= 1" in m["properties"]["b"]["description"] and "<= 5" in m["properties"]["b"]["description"]
    assert any(r.keyword == "allOf" and "cannot be merged" in r.reason for r in c.relaxations)


def test_const_becomes_a_one_value_enum() -> None:
    c = compiled({"type": "object", "properties": {"k": {"const": "fixed"}}, "required": ["k"]})
    assert prop(c, "k") == {"type": "string", "enum": ["fixed"]}


def test_optional_properties_become_required_and_nullable_and_decode_drops_the_null() -> None:
    c = compiled(
        {
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
            "required": ["a"],
        }
    )
    assert c.wire_schema["required"] == ["a", "b"]
    assert prop(c, "b") == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert c.decode({"a": "x", "b": None}) == {"a": "x"}
    assert c.parse({"a": "x", "b": None}) == {"a": "x"}
    roundtrip(c, {"a": "x"})
    roundtrip(c, {"a": "x", "b": 2})


def test_optional_nullable_property_has_an_unambiguous_encoding() -> None:
    schema = {"type": "object", "properties": {"n": {"type": ["integer", "null"]}}}
    c = compiled(schema)
    absent, null, three = roundtrip(c, {}), roundtrip(c, {"n": None}), roundtrip(c, {"n": 3})
    assert absent == {"n": None}
    assert null == {"n": {"value": None}}
    assert three == {"n": {"value": 3}}
    assert c.decode({"n": {"value": None}}) == {"n": None}
    assert c.decode({"n": None}) == {}


def test_optional_nullable_with_null_default_keeps_the_null() -> None:
    c = compiled({"type": "object", "properties": {"n": {"type": ["integer", "null"], "default": None}}})
    assert prop(c, "n") == {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert c.decode({"n": None}) == {"n": None}  # absent means null here, so null is the value
    roundtrip(c, {"n": None})
    roundtrip(c, {"n": 4})


def test_constraints_move_into_description_hints_and_are_enforced() -> None:
    c = compiled(
        {
            "type": "object",
            "properties": {
                "email": {"type": "string", "format": "email", "description": "Work email."},
                "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3, "uniqueItems": True},
                "n": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.5},
                "code": {"type": "string", "pattern": "^[A-Z]{3}$", "minLength": 3},
            },
            "required": ["email", "tags", "n", "code"],
        }
    )
    assert prop(c, "email") == {"type": "string", "description": "Work email. (format: email)"}
    assert prop(c, "tags")["description"] == "at most 3 items; items unique"
    assert prop(c, "n")["description"] == "> 0; a multiple of 0.5"
    assert prop(c, "code")["description"] == "pattern: ^[A-Z]{3}$; at least 3 characters"
    kept = {(r.path, r.keyword) for r in c.relaxations}
    assert ("#/properties/email", "format") in kept and ("#/properties/tags", "uniqueItems") in kept
    good = {"email": "a@b.co", "tags": ["x"], "n": 1.5, "code": "ABC"}
    assert c.parse(good) == good
    for bad in ({"email": "nope"}, {"tags": ["x", "x"]}, {"n": 0}, {"n": 0.3}, {"code": "abc"}):
        with pytest.raises(ValidationFailed):
            c.parse({**good, **bad})


def test_draft4_exclusive_bounds_become_hints() -> None:
    c = compiled(
        {
            "$schema": "http://json-schema.org/draft-04/schema#",
            "type": "object",
            "properties": {"p": {"type": "number", "minimum": 0, "exclusiveMinimum": True}},
            "required": ["p"],
        }
    )
    assert prop(c, "p")["description"] == "> 0"
    with pytest.raises(ValidationFailed):
        c.parse({"p": 0})


def test_maps_become_key_value_entries() -> None:
    c = compiled({"type": "object", "additionalProperties": {"type": "integer"}})
    assert c.wire_schema["properties"]["value"]["items"]["properties"] == {
        "key": {"type": "string"},
        "value": {"type": "integer"},
    }
    wire = roundtrip(c, {"a": 1, "b": 2})
    assert wire == {"value": [{"key": "a", "value": 1}, {"key": "b", "value": 2}]}
    assert c.parse({"value": [{"key": "a", "value": 1}]}) == {"a": 1}


def test_open_object_and_pattern_properties_become_entries() -> None:
    open_obj = compiled({"type": "object"})
    roundtrip(open_obj, {"x": [1, {"y": None}], "z": "s"})
    patterned = compiled(
        {"type": "object", "patternProperties": {"^s_": {"type": "string"}}, "additionalProperties": False}
    )
    roundtrip(patterned, {"s_a": "x"})
    assert any(r.keyword == "patternProperties" for r in patterned.relaxations)
    with pytest.raises(ValidationFailed):
        patterned.parse(patterned.encode({"s_a": "x"}) | {"value": [{"key": "bad", "value": "x"}]})


def test_fixed_and_extra_properties_use_a_non_colliding_extras_property() -> None:
    c = compiled(
        {
            "type": "object",
            "properties": {"id": {"type": "string"}, "additional_properties": {"type": "integer"}},
            "required": ["id", "additional_properties"],
            "additionalProperties": {"type": "number"},
        }
    )
    assert set(c.wire_schema["properties"]) == {"id", "additional_properties", "additional_properties_2"}
    value = {"id": "a", "additional_properties": 1, "extra": 2.5}
    wire = roundtrip(c, value)
    assert wire["additional_properties_2"] == [{"key": "extra", "value": 2.5}]


def test_dict_str_x_from_pydantic() -> None:
    c = compile_schema(dict[str, int])
    assert c.strict
    assert c.parse({"value": [{"key": "a", "value": 1}]}) == {"a": 1}


def test_non_object_root_is_wrapped_and_unwrapped() -> None:
    c = compiled({"type": "array", "items": {"type": "string"}})
    assert c.wire_schema["properties"]["value"] == {"type": "array", "items": {"type": "string"}}
    assert roundtrip(c, ["a", "b"]) == {"value": ["a", "b"]}
    assert c.parse({"value": ["a"]}) == ["a"]
    assert c.parse(["a"]) == ["a"]  # already user-shaped


@pytest.mark.parametrize("any_schema", [{}, True, {"description": "anything"}])
def test_any_is_json_text(any_schema: Any) -> None:
    c = compiled({"type": "object", "properties": {"x": any_schema}, "required": ["x"]})
    assert prop(c, "x")["type"] == "string"
    assert "JSON text" in prop(c, "x")["description"]
    for value in (None, 1, "s", [1, {"a": True}], {"k": []}):
        assert roundtrip(c, {"x": value}) == {"x": orjson.dumps(value).decode()}
    assert c.decode({"x": "not json"}) == {"x": "not json"}  # lenient: a plain string is a JSON value


def test_enums_of_mixed_types_null_and_objects() -> None:
    c = compiled(
        {
            "type": "object",
            "properties": {"e": {"enum": ["a", 1, 2.5, True, None, {"k": 1}]}},
            "required": ["e"],
        }
    )
    branches = prop(c, "e")["anyOf"]
    assert {"type": "string", "enum": ["a", '{"k":1}']} not in branches  # objects are a separate enum
    assert {"type": "null"} in branches and {"type": "boolean", "enum": [True]} in branches
    for value in ("a", 1, 2.5, True, None, {"k": 1}):
        roundtrip(c, {"e": value})
    assert c.decode({"e": '{"k":1}'}) == {"e": {"k": 1}}


def test_enum_with_null_and_type() -> None:
    c = compiled(
        {
            "type": "object",
            "properties": {"e": {"type": ["string", "null"], "enum": ["x", None]}},
            "required": ["e"],
        }
    )
    assert prop(c, "e") == {"anyOf": [{"type": "string", "enum": ["x"]}, {"type": "null"}]}


def test_not_if_then_else_and_dependencies_are_enforced_client_side() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string", "not": {"enum": ["bad"]}}, "b": {"type": "integer"}},
        "if": {"properties": {"a": {"const": "x"}}},
        "then": {"required": ["b"]},
        "dependentRequired": {"b": ["a"]},
    }
    c = compiled(schema)
    assert c.strict
    assert {"not", "if", "then", "dependentRequired"} <= {r.keyword for r in c.relaxations}
    assert keys_anywhere(c.wire_schema) & {"not", "if", "then", "dependentRequired"} == set()
    with pytest.raises(ValidationFailed):
        c.parse({"a": "bad", "b": None})
    with pytest.raises(ValidationFailed):
        c.parse({"a": "x", "b": None})  # if a == x then b is required
    with pytest.raises(ValidationFailed):
        c.parse({"a": None, "b": 1})  # b needs a
    assert c.parse({"a": "x", "b": 1}) == {"a": "x", "b": 1}


TREE = {
    "type": "object",
    "$defs": {
        "Node": {
            "type": "object",
            "properties": {
                "v": {"type": "integer"},
                "kids": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
            },
            "required": ["v", "kids"],
        }
    },
    "properties": {"root": {"$ref": "#/$defs/Node"}},
    "required": ["root"],
}


def tree(depth: int) -> dict[str, Any]:
    return {"v": depth, "kids": [tree(depth - 1)] if depth else []}


def test_recursion_is_unrolled_and_deeper_data_travels_as_json_text() -> None:
    c = compiled(TREE)
    assert c.strict
    assert any(r.keyword == "$ref" and "recursion deeper" in r.reason for r in c.relaxations)
    shallow = {"root": tree(2)}
    assert roundtrip(c, shallow) == shallow
    deep = {"root": tree(6)}
    wire = roundtrip(c, deep)
    assert "JSON" not in str(shallow) and isinstance(wire["root"]["kids"][0]["kids"][0]["kids"][0], str)


def test_recursion_through_the_root() -> None:
    c = compiled({"type": "object", "properties": {"name": {"type": "string"}, "next": {"$ref": "#"}}})
    assert c.strict
    roundtrip(c, {"name": "a", "next": {"name": "b", "next": {"name": "c"}}})


def test_openai_keeps_recursion_as_refs_and_its_constraints() -> None:
    c = compile_schema(
        {
            **TREE,
            "properties": {**TREE["properties"], "mail": {"type": "string", "format": "email"}},
            "required": ["root", "mail"],
        },
        "openai",
    )
    assert c.strict and strict_violations(c.wire_schema, "openai") == []
    assert "$defs" in c.wire_schema
    assert prop(c, "mail") == {"type": "string", "format": "email"}
    roundtrip(c, {"root": tree(7), "mail": "a@b.c"})


def test_wide_anyof_is_reduced_to_five_branches() -> None:
    variants = [
        {
            "type": "object",
            "properties": {"kind": {"const": f"k{i}"}, f"f{i}": {"type": "integer"}},
            "required": ["kind"],
        }
        for i in range(4)
    ]
    scalars = [
        {"type": "string", "enum": ["a"]},
        {"type": "string", "enum": ["b"]},
        {"type": "integer"},
        {"type": "boolean"},
    ]
    arrays = [{"type": "array", "items": {"type": "string"}}, {"type": "array", "items": {"type": "integer"}}]
    c = compiled(
        {"type": "object", "properties": {"v": {"anyOf": variants + scalars + arrays}}, "required": ["v"]}
    )
    assert c.strict
    branches = prop(c, "v")["anyOf"]
    assert len(branches) <= 5
    assert any(r.keyword == "anyOf" for r in c.relaxations)
    for value in ({"kind": "k2", "f2": 5}, "a", "b", 3, True, ["x"], [1]):
        roundtrip(c, {"v": value})
    assert c.parse({"v": {"kind": "k1", "f0": None, "f1": 2, "f2": None, "f3": None}}) == {
        "v": {"kind": "k1", "f1": 2}
    }


def test_big_descriptions_are_trimmed_before_giving_up_strictness() -> None:
    props = {f"f{i}": {"type": "string", "description": "word " * 60} for i in range(30)}
    c = compiled({"type": "object", "properties": props, "required": list(props)})
    assert c.strict
    assert all(len(p.get("description", "")) <= 60 for p in c.wire_schema["properties"].values())


def test_repeated_submodels_are_shared_through_defs_when_too_big() -> None:
    addr = {
        "type": "object",
        "properties": {
            f"line{i}": {"type": "string", "enum": [f"v{i}_{j}" for j in range(12)]} for i in range(6)
        },
        "required": [f"line{i}" for i in range(6)],
    }
    c = compiled(
        {
            "type": "object",
            "$defs": {"A": addr},
            "properties": {f"a{i}": {"$ref": "#/$defs/A"} for i in range(6)},
            "required": [f"a{i}" for i in range(6)],
        }
    )
    assert c.strict
    assert "$defs" in c.wire_schema
    assert all(p == {"$ref": "#/$defs/Shared1"} for p in c.wire_schema["properties"].values())


def test_when_nothing_strict_fits_it_falls_back_to_the_full_schema() -> None:
    props = {f"f{i}": {"type": "integer", "title": "t"} for i in range(600)}
    c = compile_schema({"type": "object", "properties": props})
    assert not c.strict
    assert c.wire_schema["properties"]["f0"] == {"type": "integer"}
    assert c.relaxations[0].keyword == "strict" and "no strict form fits" in c.relaxations[0].reason
    assert c.response_format()["json_schema"]["strict"] is False
    assert c.parse({"f1": 2}) == {"f1": 2}


def test_non_strict_profiles_send_the_normalised_schema() -> None:
    schema = {
        "type": "object",
        "definitions": {"X": {"type": "string", "format": "email"}},
        "properties": {"x": {"$ref": "#/definitions/X"}},
    }
    for provider in ("llamacpp", "generic"):
        c = compile_schema(schema, provider)
        assert not c.strict
        assert c.wire_schema["properties"]["x"] == {"$ref": "#/$defs/X"}
        assert c.wire_schema["$defs"]["X"] == {"type": "string", "format": "email"}
        assert c.decode({"x": "a@b.c"}) == {"x": "a@b.c"}
    wrapped = compile_schema({"type": "array", "items": {"type": "integer"}}, "llamacpp")
    assert wrapped.wire_schema["properties"]["value"] == {"type": "array", "items": {"type": "integer"}}
    assert wrapped.parse({"value": [1]}) == [1]


def test_encode_refuses_values_the_wire_cannot_carry() -> None:
    c = compiled({"type": "object", "properties": {"a": {"type": "string"}}})  # open, but the wire closes it
    with pytest.raises(Unrepresentable):
        c.encode({"a": "x", "extra": 1})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(value=st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_open_objects_carry_any_json_exactly(value: dict[str, Any]) -> None:
    c = compile_schema({"type": "object"})
    roundtrip(c, value)
    assert c.parse(c.encode(value)) == value


@settings(max_examples=100, deadline=None, derandomize=True)
@given(value=st.one_of(st.none(), st.integers(), st.text(max_size=5)), present=st.booleans())
def test_optional_nullable_roundtrip_is_exact(value: Any, present: bool) -> None:
    c = compile_schema({"type": "object", "properties": {"n": {"type": ["integer", "string", "null"]}}})
    v = {"n": value} if present else {}
    roundtrip(c, v)


def test_tuples_use_prefix_items_or_objects_per_profile() -> None:
    schema = {
        "type": "object",
        "properties": {
            "p": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False}
        },
        "required": ["p"],
    }
    c = compiled(schema)
    assert prop(c, "p") == {
        "type": "array",
        "prefixItems": [{"type": "string"}, {"type": "integer"}],
        "items": False,
    }
    roundtrip(c, {"p": ["a", 1]})
    o = compile_schema(schema, "openai")
    assert strict_violations(o.wire_schema, "openai") == []
    assert prop(o, "p")["properties"] == {"item_0": {"type": "string"}, "item_1": {"type": "integer"}}
    assert roundtrip(o, {"p": ["a", 1]}) == {"p": {"item_0": "a", "item_1": 1}}
    with pytest.raises(Unrepresentable):
        o.encode({"p": ["a"]})


def test_optional_union_at_the_branch_limit_keeps_a_null_for_absent() -> None:
    everything = {"type": ["array", "object", "boolean", "integer", "number", "string"]}
    c = compiled({"type": "object", "properties": {"d": everything}})
    assert len(prop(c, "d")["anyOf"]) <= 5 and {"type": "null"} in prop(c, "d")["anyOf"]
    for value in ({}, {"d": [1, {"a": 2}]}, {"d": {"k": None}}, {"d": True}, {"d": 3}, {"d": "s"}):
        roundtrip(c, value)
    five = {
        "anyOf": [{"type": t} for t in ("string", "integer", "boolean")]
        + [
            {"type": "array", "items": {"type": "string"}},
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        ]
    }
    c5 = compiled({"type": "object", "properties": {"f": five}})
    assert len(prop(c5, "f")["anyOf"]) <= 5
    for value in ({}, {"f": "x"}, {"f": 1}, {"f": False}, {"f": ["a"]}, {"f": {"a": "b"}}):
        roundtrip(c5, value)


def test_wide_shared_definitions_do_not_expand_exponentially() -> None:
    """Eight levels of twelve references each: 12**8 leaves when expanded; the compiler works on the DAG."""
    defs: dict[str, Any] = {
        f"D{i}": {"type": "object", "properties": {f"p{k}": {"$ref": f"#/$defs/D{i + 1}"} for k in range(12)}}
        for i in range(8)
    }
    defs["D8"] = {"type": "string"}
    c = compile_schema({"type": "object", "$defs": defs, "properties": {"root": {"$ref": "#/$defs/D0"}}})
    if c.strict:
        assert strict_violations(c.wire_schema) == []
    else:
        assert c.relaxations[0].keyword == "strict"
    small = {
        f"D{i}": {**d, "properties": dict(list(d["properties"].items())[:3])}
        for i, d in enumerate(defs.values())
        if i < 4
    }
    small["D4"] = {"type": "string"}
    shared = compiled(
        {
            "type": "object",
            "$defs": small,
            "properties": {"root": {"$ref": "#/$defs/D0"}},
            "required": ["root"],
        }
    )
    assert shared.strict and "$defs" in shared.wire_schema


def test_json_text_keeps_big_integers_exact() -> None:
    c = compiled({"type": "object", "properties": {"x": {}}, "required": ["x"]})
    big = -(2**70)
    assert roundtrip(c, {"x": big}) == {"x": str(big)}
    assert roundtrip(c, {"x": [big, 1.5]}) == {"x": f"[{big},1.5]"}


def test_values_two_branches_accept_decode_the_way_they_were_encoded() -> None:
    """An empty array fits both a map's entry list and a plain array: encode must not claim it blindly."""
    c = compiled(
        {
            "type": "object",
            "properties": {
                "r": {"anyOf": [{"type": "object"}, {"type": "array", "items": {"type": "string"}}]}
            },
            "required": ["r"],
        }
    )
    roundtrip(c, {"r": {"a": 1}})
    roundtrip(c, {"r": ["x"]})
    with pytest.raises(Unrepresentable, match=r"ambiguous|no branch"):
        c.encode({"r": []})
    assert c.parse({"r": []}) == {
        "r": {}
    }  # the reply is read by the first branch that fits, as encode assumes


def test_refs_by_id_anchor_and_absolute_uri_are_normalised() -> None:
    schema = {
        "$id": "http://x/root.json",
        "type": "object",
        "definitions": {
            "item": {
                "$id": "item.json",
                "type": "object",
                "properties": {"n": {"$ref": "#/definitions/num"}},
            },
            "num": {"type": "integer"},
            "a/b": {"type": "integer"},
            "anc": {"id": "#anchor", "type": "boolean"},
        },
        "properties": {
            "a": {"$ref": "item.json"},
            "b": {"$ref": "#/definitions/a~1b"},
            "c": {"$ref": "http://x/root.json#/definitions/num"},
            "d": {"$ref": "#anchor"},
            "e": {"type": "array", "items": {"type": "number"}},
            "f": {"$ref": "#/properties/e/items"},
        },
        "required": list("abcdef"),
    }
    c = compiled(schema)
    assert c.user_schema["properties"]["a"] == {"$ref": "#/$defs/item"}
    assert "$id" not in c.user_schema["$defs"]["item"]
    value = {"a": {"n": 1}, "b": 1, "c": 2, "d": True, "e": [1.5], "f": 2}
    assert c.parse(value) == value
    with pytest.raises(ValidationFailed):
        c.parse({**value, "a": {"n": "x"}})
