"""compile_schema's public surface: inputs, names, response formats, parse, caching and errors."""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any, Literal

import orjson
import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from extract.errors import ConfigurationError, SchemaError, ValidationFailed
from extract.schema import PROFILES, Relaxation, clear_cache, compile_schema, strict_violations

NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Contact(BaseModel):
    name: str = Field(description="full name")
    email: str | None = None
    age: int = Field(ge=0)


class Movie(TypedDict):
    title: str
    year: int


@dataclasses.dataclass
class Point:
    x: float
    y: float


@pytest.mark.parametrize(
    "tp", [Contact, list[Contact], Literal["a", "b"], Movie, Point, dict[str, int], int | None]
)
def test_typeadapter_types_compile_strict_with_a_valid_name(tp: Any) -> None:
    c = compile_schema(tp)
    assert c.strict
    assert NAME.match(c.name)
    assert strict_violations(c.wire_schema) == []
    assert c.user_schema == c.user_schema | {}  # a plain dict


def test_pydantic_parse_returns_the_model_instance() -> None:
    c = compile_schema(Contact)
    assert c.name == "Contact"
    got = c.parse({"name": "Ada", "email": None, "age": 36})
    assert isinstance(got, Contact) and got.age == 36 and got.email is None
    with pytest.raises(ValidationFailed) as err:
        c.parse({"name": "Ada", "email": None, "age": -1})
    assert "age" in str(err.value)


def test_parse_accepts_json_text_and_user_shaped_replies() -> None:
    c = compile_schema({"type": "object", "additionalProperties": {"type": "integer"}})
    assert c.parse(b'{"value": [{"key": "a", "value": 1}]}') == {"a": 1}
    assert c.parse('{"a": 1}') == {"a": 1}  # the model ignored the entries form
    with pytest.raises(ValidationFailed) as err:
        c.parse({"value": [{"key": "a", "value": "x"}]})
    assert "$.a" in str(err.value)  # the first error: about the decoded value, not the raw one
    with pytest.raises(ValidationFailed, match="not valid JSON"):
        c.parse("{oops")


def test_response_formats_are_built_once() -> None:
    c = compile_schema(Contact)
    first = c.response_format()
    assert first == {
        "type": "json_schema",
        "json_schema": {"name": "Contact", "strict": True, "schema": c.wire_schema},
    }
    assert c.response_format("json_schema") is first
    assert c.response_format("json_object") == {"type": "json_object"}
    assert c.response_format("json_object_schema") == {"type": "json_object", "schema": c.wire_schema}
    with pytest.raises(ConfigurationError, match="json_object_schema"):
        c.response_format("tools")


def test_cache_by_type_dict_and_file(tmp_path: Path) -> None:
    clear_cache()
    assert compile_schema(Contact) is compile_schema(Contact)
    assert compile_schema(Contact) is not compile_schema(Contact, "openai")
    a = {"type": "object", "properties": {"x": {"type": "string"}, "y": {"type": "integer"}}}
    b = {"properties": {"y": {"type": "integer"}, "x": {"type": "string"}}, "type": "object"}
    assert compile_schema(a) is compile_schema(b)  # canonical key: order does not matter
    path = tmp_path / "s.json"
    path.write_bytes(
        orjson.dumps({"title": "Thing", "type": "object", "properties": {"a": {"type": "string"}}})
    )
    first = compile_schema(path)
    assert first.name == "Thing"
    assert compile_schema(str(path)) is first
    path.write_bytes(orjson.dumps({"type": "object", "properties": {"b": {"type": "integer"}}}))
    os.utime(path, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    second = compile_schema(path)
    assert second is not first and "b" in second.wire_schema["properties"]
    assert second.name == "s"  # no title: the file's stem


def test_compiled_schema_passes_through() -> None:
    c = compile_schema(Contact)
    assert compile_schema(c) is c
    assert compile_schema(c, "openai").provider == "openai"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (42, "a value, not a schema"),
        ("not a path", "a string schema must be a path"),
        (False, "accepts no value"),
        ({"type": "object", "properties": {"a": 3}}, "expected a schema"),
        ({"type": "wat"}, "names no JSON type"),
    ],
)
def test_schema_errors_say_what_and_where(bad: Any, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        compile_schema(bad)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="cannot read schema file"):
        compile_schema(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(SchemaError, match="not valid JSON"):
        compile_schema(broken)


def test_unknown_provider_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cerebras"):
        compile_schema(Contact, "nonesuch")


def test_relaxations_are_frozen_and_named() -> None:
    c = compile_schema(Contact)
    assert Relaxation("#/$defs/x", "minimum", "why") in (
        *c.relaxations,
        Relaxation("#/$defs/x", "minimum", "why"),
    )
    rel = next(r for r in c.relaxations if r.keyword == "minimum")
    assert rel.path == "#/properties/age"
    with pytest.raises(dataclasses.FrozenInstanceError):
        rel.path = "#"  # type: ignore[misc]


def test_profiles_are_data() -> None:
    assert PROFILES["cerebras"].max_any_of == 5
    assert PROFILES["openai"].allow_recursion and not PROFILES["cerebras"].allow_recursion
    assert not PROFILES["llamacpp"].strict_json_schema
    assert dataclasses.is_dataclass(PROFILES["generic"])


def test_names_are_sanitised() -> None:
    assert compile_schema({"title": "Mein Schéma: v2!", "type": "object"}).name == "Mein_Sch_ma_v2"
    assert compile_schema({"type": "object"}).name == "response"
    assert NAME.match(compile_schema({"title": "x" * 200, "type": "object"}).name)


# -- regressions found while integrating ------------------------------------------------------------


def test_string_rooted_schema_parses_a_string_answer_as_a_value_not_as_json_text() -> None:
    compiled = compile_schema({"anyOf": [{"type": "string"}, {"type": "number"}]})
    assert compiled.parse({"value": "document"}) == "document"
    assert compiled.parse(b'{"value": 3}') == 3
    with pytest.raises(ValidationFailed):
        compiled.parse({"value": True})


def test_strict_violations_reports_malformed_type_values_instead_of_crashing() -> None:
    problems = strict_violations({"type": "object", "properties": {"a": {"type": {}}}})
    assert any("#/properties/a" in p and "unknown type" in p for p in problems)


def test_integer_bounds_beyond_64_bits_compile_and_are_enforced() -> None:
    compiled = compile_schema({"type": "object", "properties": {"n": {"type": "integer", "maximum": 2**70}}})
    assert compiled.validate({"n": 5}) == {"n": 5}
    with pytest.raises(ValidationFailed):
        compiled.validator.validate_value({"n": 2**71})
