"""The ready-made schemas in schemas/: valid, strict-compilable for Cerebras, with a matching sample."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from extract.schema._validate import Validator

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
SAMPLES = Path(__file__).resolve().parent / "samples"
NAMES = sorted(p.stem for p in SCHEMAS.glob("*.json"))
EXPECTED_NAMES = [
    "calendar_event",
    "contact",
    "invoice",
    "job_posting",
    "paper_metadata",
    "product_listing",
    "receipt",
]


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def compiler() -> Any:
    """extract.schema.compile_schema, or a skip while the compiler is not in the tree yet."""
    import extract.schema as schema_pkg

    compile_schema = getattr(schema_pkg, "compile_schema", None)
    if compile_schema is None:
        pytest.skip(
            "extract.schema.compile_schema does not exist yet; strict compilation is checked once it does"
        )
    return compile_schema


def walk(node: Any) -> list[dict[str, Any]]:
    """Every subschema (dict) in a schema, depth first."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        found.append(node)
        for value in node.values():
            found.extend(walk(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(walk(value))
    return found


def test_the_promised_schemas_are_all_there() -> None:
    assert NAMES == EXPECTED_NAMES


@pytest.mark.parametrize("name", NAMES)
def test_schema_is_valid_draft_2020_12(name: str) -> None:
    schema = load(SCHEMAS / f"{name}.json")
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    assert Validator.for_json_schema(schema).draft == "Draft202012Validator"
    assert schema["type"] == "object"
    assert schema.get("description"), "a top-level description helps the model"


@pytest.mark.parametrize("name", NAMES)
def test_schema_exercises_the_compiler(name: str) -> None:
    """Realistic constraints: something the strict subset must drop, and optional fields it must encode."""
    schema = load(SCHEMAS / f"{name}.json")
    nodes = walk(schema)
    constraints = {"format", "pattern", "minimum", "maximum", "exclusiveMinimum", "minLength", "minItems"}
    assert any(constraints & set(node) for node in nodes)
    assert set(schema["properties"]) - set(schema["required"]), "some top-level fields should be optional"
    for node in nodes:
        if node.get("type") == "object":
            assert node.get("additionalProperties") is False, node


@pytest.mark.parametrize("name", NAMES)
def test_expected_instance_is_valid(name: str) -> None:
    schema = load(SCHEMAS / f"{name}.json")
    expected = load(SAMPLES / f"{name}.expected.json")
    assert Validator.for_json_schema(schema).validate(expected) == expected
    reference = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    assert list(reference.iter_errors(expected)) == []


@pytest.mark.parametrize("name", NAMES)
def test_sample_text_mentions_the_expected_values(name: str) -> None:
    """The expected instance was written from the sample: its key scalar values appear in the text."""
    text = (SAMPLES / f"{name}.txt").read_text(encoding="utf-8")
    expected = load(SAMPLES / f"{name}.expected.json")
    first_required = load(SCHEMAS / f"{name}.json")["required"][0]
    anchor = expected[first_required]
    anchor = anchor.get("name") if isinstance(anchor, dict) else anchor
    assert isinstance(anchor, str)
    assert anchor in text


@pytest.mark.parametrize("name", NAMES)
def test_compiles_strict_for_cerebras(name: str) -> None:
    compile_schema = compiler()
    from extract.schema import strict_violations

    compiled = compile_schema(str(SCHEMAS / f"{name}.json"), "cerebras")
    assert compiled.strict is True
    assert strict_violations(compiled.wire_schema, "cerebras") == []
    assert len(json.dumps(compiled.wire_schema, separators=(",", ":"))) <= 5000


@pytest.mark.parametrize("name", NAMES)
def test_expected_instance_round_trips_through_the_codec(name: str) -> None:
    compile_schema = compiler()
    compiled = compile_schema(str(SCHEMAS / f"{name}.json"), "cerebras")
    expected = load(SAMPLES / f"{name}.expected.json")
    wire = compiled.encode(expected)
    wire_validator = jsonschema.Draft202012Validator(compiled.wire_schema)
    assert list(wire_validator.iter_errors(wire)) == [], "the encoded value must fit the wire schema"
    assert compiled.decode(wire) == expected
    assert compiled.parse(wire) == expected
    assert compiled.validate(expected) == expected
