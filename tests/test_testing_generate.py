"""The instance generator behind the test server's answers: valid, deterministic, plausible."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.schema import strict_violations
from extract.testing import generate
from extract.testing._content import break_value
from extract.testing._generate import words_of

_CORPUS_PATH = Path("shared", "corpus", "jsonschemabench", "schemas")
# The shared corpus sits next to the checkout (or next to the worktrees folder holding it).
CORPUS = next(
    (d / _CORPUS_PATH for d in Path(__file__).resolve().parents if (d / _CORPUS_PATH).is_dir()),
    Path(__file__).resolve().parents[2] / _CORPUS_PATH,
)


def _valid(value: Any, schema: dict[str, Any]) -> list[str]:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator = cls(schema, format_checker=cls.FORMAT_CHECKER)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(value)]


# ---- strict-subset schemas, built the way compile_schema emits them -------------------------------------
_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
_scalars = st.sampled_from(
    [{"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]
)
_enums = st.lists(st.text(max_size=6), min_size=1, max_size=4, unique=True).map(
    lambda vs: {"type": "string", "enum": vs}
)


def _extend(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.dictionaries(_names, children, min_size=1, max_size=4).map(
        lambda props: {
            "type": "object",
            "properties": props,
            "required": sorted(props),
            "additionalProperties": False,
        }
    )
    arrays = children.map(lambda item: {"type": "array", "items": item})
    optional = children.map(lambda item: {"anyOf": [item, {"type": "null"}]})
    return objects | arrays | optional


_strict_nodes = st.recursive(_scalars | _enums, _extend, max_leaves=12)
strict_schemas = st.dictionaries(_names, _strict_nodes, min_size=1, max_size=5).map(
    lambda props: {
        "type": "object",
        "properties": props,
        "required": sorted(props),
        "additionalProperties": False,
    }
)


@settings(max_examples=150, deadline=None)
@given(schema=strict_schemas, seed=st.integers(0, 2**64 - 1), text=st.text(max_size=40))
def test_strict_schemas_always_get_a_valid_instance(schema: dict[str, Any], seed: int, text: str) -> None:
    assert strict_violations(schema) == []  # the strategy stays inside the subset the server accepts
    value = generate(schema, words=words_of(text), seed=seed)
    assert _valid(value, schema) == []


@settings(max_examples=50, deadline=None)
@given(schema=strict_schemas, seed=st.integers(0, 2**64 - 1))
def test_same_inputs_give_the_same_value(schema: dict[str, Any], seed: int) -> None:
    words = ("Ada", "Lovelace")
    assert generate(schema, words=words, seed=seed) == generate(schema, words=words, seed=seed)


def test_defs_refs_and_recursion_terminate() -> None:
    schema = {
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/node"}},
        "required": ["root"],
        "additionalProperties": False,
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "label": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
                    "parent": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
                },
                "required": ["label", "children", "parent"],
                "additionalProperties": False,
            }
        },
    }
    value = generate(schema, words=("Ada",), seed=3)
    assert _valid(value, schema) == []
    assert value["root"]["label"] == "Ada"


def test_strings_come_from_the_user_text() -> None:
    schema = {"type": "object", "properties": {"first": {"type": "string"}, "second": {"type": "string"}}}
    value = generate(schema, words=words_of("Grace Hopper wrote a compiler"), seed=0)
    assert value == {"first": "Grace", "second": "Hopper"}


def test_no_words_falls_back_to_example() -> None:
    assert generate({"type": "string"}, words=words_of("12 34 !!"), seed=0) == "example"


def test_prefix_items_enum_and_anyof_first_branch() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pair": {
                "type": "array",
                "prefixItems": [{"type": "integer"}, {"enum": ["x", "y"]}],
                "items": False,
            },
            "either": {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
        },
        "required": ["pair", "either"],
        "additionalProperties": False,
    }
    value = generate(schema, seed=11)
    assert _valid(value, schema) == []
    assert isinstance(value["either"], bool)
    assert len(value["pair"]) == 2


@pytest.mark.parametrize(
    ("fmt", "checker"),
    [
        ("email", lambda v: "@" in v),
        ("date", lambda v: len(v) == 10),
        ("date-time", lambda v: "T" in v),
        ("uri", lambda v: v.startswith("https://")),
        ("uuid", lambda v: len(v) == 36),
    ],
)
def test_formats_are_honoured(fmt: str, checker: Any) -> None:
    schema = {"type": "string", "format": fmt}
    value = generate(schema, words=("Ada",), seed=5)
    assert checker(value)
    assert _valid(value, schema) == []


@settings(max_examples=100, deadline=None)
@given(
    low=st.integers(-1000, 1000),
    span=st.integers(0, 1000),
    min_len=st.integers(0, 30),
    min_items=st.integers(0, 5),
    seed=st.integers(0, 2**32),
)
def test_common_constraints_are_met(low: int, span: int, min_len: int, min_items: int, seed: int) -> None:
    schema = {
        "type": "object",
        "properties": {
            "count": {"type": "integer", "minimum": low, "maximum": low + span},
            "ratio": {"type": "number", "exclusiveMinimum": low, "maximum": low + span + 1},
            "code": {"type": "string", "minLength": min_len, "maxLength": min_len + 3},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": min_items},
        },
        "required": ["count", "ratio", "code", "tags"],
    }
    value = generate(schema, words=("Ada",), seed=seed)
    assert _valid(value, schema) == []


def test_draft4_exclusive_bounds_and_definitions() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "properties": {"n": {"$ref": "#/definitions/n"}},
        "required": ["n"],
        "definitions": {"n": {"type": "integer", "minimum": 0, "maximum": 2, "exclusiveMaximum": True}},
    }
    value = generate(schema, seed=1)
    assert value["n"] in (0, 1)
    assert _valid(value, schema) == []


def _corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*/*.json"))[::5]


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"JSONSchemaBench corpus not found at {CORPUS}")
def test_real_world_schemas_mostly_get_valid_instances() -> None:
    """Best effort on arbitrary schemas: most instances validate, and none crash the generator."""
    checked = valid = 0
    for path in _corpus_files():
        schema = json.loads(path.read_text())
        if not isinstance(schema, dict):
            continue
        value = generate(schema, words=("Ada", "Lovelace"), seed=1)
        json.dumps(value)  # always serialisable
        try:
            errors = _valid(value, schema)
        except (jsonschema.exceptions.SchemaError, jsonschema.exceptions._WrappedReferencingError):
            continue  # the schema itself is broken; nothing to judge
        checked += 1
        valid += not errors
    assert checked > 100
    assert valid / checked >= 0.9, f"only {valid}/{checked} generated instances were valid"


@pytest.mark.parametrize(
    "pattern",
    [
        r"^[a-z_]$",
        r"^GET$",
        r"^\d{4}-\d{2}-\d{2}$",
        r"^[0-9a-fA-F]{24}$",
        r"^[a-f0-9]{8}-[a-f0-9]{4}-[1-5][a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$",
        r"^#([A-Fa-f0-9]{6}|[A-Fa-f0-9]{3})$",
        r"^\+44[\d]{10}$",
        r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$",
        r"^(LATEX|MATHML)$",
        r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)$",
        r"^([a-z]+)-\1$",
    ],
)
def test_patterns_get_matching_strings(pattern: str) -> None:
    value = generate({"type": "string", "pattern": pattern}, words=("Ada",), seed=0)
    assert re.search(pattern, value), value


def test_impossible_pattern_falls_back_to_a_word() -> None:
    assert generate({"type": "string", "pattern": "(?=a)b"}, words=("Ada",), seed=0) == "Ada"


def test_markup_around_the_text_is_not_taken_for_words() -> None:
    assert words_of("<document>\nAda Lovelace\n</document>") == ("Ada", "Lovelace")


def test_emails_and_urls_in_the_text_fill_matching_fields() -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "emails": {"type": "array", "items": {"type": "string", "description": "format: email"}},
            "website": {"type": "string"},
        },
    }
    words = words_of("<document>Ada Lovelace, ada@analytical.org, https://ada.example.org/about.</document>")
    value = generate(schema, words=words, seed=0)
    assert value == {
        "name": "Ada",
        "emails": ["ada@analytical.org"],
        "website": "https://ada.example.org/about",
    }


_KEYWORDS = st.sampled_from(
    [
        "type", "properties", "required", "items", "prefixItems", "anyOf", "oneOf", "allOf", "enum", "const",
        "$ref", "minimum", "maximum", "exclusiveMinimum", "minLength", "maxLength", "pattern", "format",
        "minItems", "maxItems", "uniqueItems", "additionalProperties", "minProperties", "multipleOf", "$defs",
    ]
)  # fmt: skip
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(-5, 5) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
_odd_schemas = st.recursive(
    st.dictionaries(_KEYWORDS, _json_values, max_size=4),
    lambda inner: st.dictionaries(_KEYWORDS, inner | _json_values | st.lists(inner, max_size=3), max_size=4),
    max_leaves=10,
)


@settings(max_examples=150, deadline=None)
@given(schema=_odd_schemas, seed=st.integers(0, 2**32))
def test_any_schema_shaped_input_gives_json_without_crashing(schema: dict[str, Any], seed: int) -> None:
    json.dumps(generate(schema, words=("Ada",), seed=seed))


@settings(max_examples=100, deadline=None)
@given(schema=strict_schemas, seed=st.integers(0, 2**32))
def test_broken_values_really_break_the_schema(schema: dict[str, Any], seed: int) -> None:
    broken = break_value(generate(schema, words=("Ada",), seed=seed), schema)
    assert _valid(broken, schema) != []


@settings(max_examples=100, deadline=None)
@given(schema=_odd_schemas)
def test_breaking_values_of_malformed_schemas_does_not_crash(schema: dict[str, Any]) -> None:
    json.dumps(break_value(generate(schema, seed=1), schema))


# ---- constraints moved into descriptions are read back and honoured --------------------------------------
ROOT = Path(__file__).resolve().parents[1]
BUNDLED = sorted((ROOT / "schemas").glob("*.json"))


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_schemas_extract_on_the_first_attempt(path: Path) -> None:
    """The issue's case: contact.json failed three times on constraints the wire only carries as hints."""
    from extract import Extractor
    from extract.testing import TestServer

    schema = json.loads(path.read_text(encoding="utf-8"))
    text = (ROOT / "tests" / "samples" / f"{path.stem}.txt").read_text(encoding="utf-8")
    with (
        TestServer(api_key="sk-test") as server,
        Extractor(
            base_url=server.base_url, api_key="sk-test", model="llama3.1-8b", provider="cerebras"
        ) as ex,
    ):
        result = ex.extract(schema, text, max_attempts=1, full=True)
        assert server.request_count == 1
    assert _valid(result.value, schema) == []


def _compiled(schema: dict[str, Any]) -> Any:
    """What the test server sees is `.wire_schema`: compiled for Cerebras (constraints moved into descriptions)."""
    from extract.schema import compile_schema

    return compile_schema(schema, provider="cerebras")


def test_hints_are_read_back_exactly() -> None:
    from extract.testing._generate_hints import UNREADABLE, hinted_keywords

    assert hinted_keywords("Bare DOI (pattern: ^10\\.[0-9]{4,9}/\\S+$; at least 3 characters)") == {
        "pattern": "^10\\.[0-9]{4,9}/\\S+$",
        "minLength": 3,
    }
    assert hinted_keywords("pattern: ^(a; b)$; at most 1 character") == {
        "pattern": "^(a; b)$",
        "maxLength": 1,
    }
    assert hinted_keywords(">= 1900; <= 2100") == {"minimum": 1900, "maximum": 2100}
    assert hinted_keywords("x (> 0.5; < 1e-05; a multiple of 0.25)") == {
        "exclusiveMinimum": 0.5,
        "exclusiveMaximum": 1e-05,
        "multipleOf": 0.25,
    }
    assert hinted_keywords("at least 2 items; items unique") == {"minItems": 2, "uniqueItems": True}
    assert hinted_keywords("Tags (at most 2 entrys)") == {"maxProperties": 2}
    assert hinted_keywords("pattern: " + "a" * 120 + "...")["pattern"] is UNREADABLE
    assert hinted_keywords("A plain description (not a hint)") == {}
    assert hinted_keywords("format: email") == {"format": "email"}


# (pattern, the largest minLength it can meet)
_HINT_PATTERNS = st.sampled_from(
    [
        (r"^[A-Z]{3}$", 3),
        (r"^10\.[0-9]{4,9}/\S+$", 99),
        (r"^[0-9]{4}-[0-9]{4}-[0-9]{4}-[0-9]{3}[0-9X]$", 19),
        (r"^([01][0-9]|2[0-3]):[0-5][0-9]$", 5),
        (r"^\+?[0-9 ]{7,15}$", 16),
        (r"[a-z]+", 99),
        (r"^(EUR|USD|GBP)$", 3),
        (r"^\w+(-\w+)*$", 99),
        (r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", 99),
    ]
)
# The shortest value each format the generator knows can take (a longer minLength has no valid value).
_FORMATS = {"email": 9, "date": 10, "date-time": 9, "uri": 9, "uuid": 9, "ipv4": 9}


@st.composite
def _constrained_strings(draw: st.DrawFn) -> dict[str, Any]:
    """Satisfiable string constraints: a pattern or a format, with lengths they can meet."""
    node: dict[str, Any] = {"type": "string"}
    cap = 99
    if draw(st.booleans()):
        node["pattern"], cap = draw(_HINT_PATTERNS)
    elif draw(st.booleans()):
        node["format"] = draw(st.sampled_from(sorted(_FORMATS)))
        cap = _FORMATS[node["format"]]
    low = min(draw(st.integers(0, 12)), cap)
    if draw(st.booleans()):
        node["minLength"] = low
    if draw(st.booleans()) and "format" not in node:
        node["maxLength"] = low + draw(st.integers(0, 30)) if "pattern" not in node else 60
    return node


@st.composite
def _constrained_numbers(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["integer", "number"]))
    low = draw(st.integers(-1000, 1000))
    node: dict[str, Any] = {"type": kind}
    if draw(st.booleans()):
        node["minimum"] = low
    else:
        node["exclusiveMinimum"] = low
    span = draw(st.integers(12, 500))  # room for a multiple strictly inside both bounds
    node["maximum" if draw(st.booleans()) else "exclusiveMaximum"] = low + span
    if draw(st.booleans()):
        steps = [1, 2, 5] if kind == "integer" else [2, 0.5, 0.25, 0.1, 0.01, 0.3]
        node["multipleOf"] = draw(st.sampled_from(steps))
    return node


@st.composite
def _constrained_objects(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(_names, min_size=1, max_size=5, unique=True))
    props: dict[str, Any] = {}
    for name in names:
        leaf = draw(_constrained_strings() | _constrained_numbers())
        if draw(st.booleans()):
            low = draw(st.integers(0, 3))
            leaf = {
                "type": "array",
                "items": leaf,
                "minItems": low,
                "maxItems": low + draw(st.integers(0, 3)),
            }
        props[name] = leaf
    required = draw(st.lists(st.sampled_from(sorted(props)), unique=True))  # optional fields go nullable
    return {
        "type": "object",
        "properties": props,
        "required": sorted(required),
        "additionalProperties": False,
    }


@settings(max_examples=120, deadline=None)
@given(schema=_constrained_objects(), seed=st.integers(0, 2**32), text=st.text(max_size=40))
def test_values_meet_the_full_schema_although_the_wire_only_hints(
    schema: dict[str, Any], seed: int, text: str
) -> None:
    compiled = _compiled(schema)
    value = compiled.decode(generate(compiled.wire_schema, words=words_of(text), seed=seed))
    assert _valid(value, schema) == [], json.dumps(compiled.wire_schema)


def test_unmeetable_pattern_is_best_effort_not_a_crash() -> None:
    wire = _compiled(
        {"type": "object", "properties": {"a": {"type": "string", "pattern": "(?=x)y"}}}
    ).wire_schema
    value = generate(wire, words=("Ada",), seed=0)["a"]
    assert value is None or isinstance(value, str)


_STRING_HINTS = st.fixed_dictionaries(
    {},
    optional={
        "format": st.sampled_from(["email", "date", "uri", "date-time"]),
        "pattern": st.text(alphabet="ab;() ^$[]{}\\.,-=<>", min_size=1, max_size=120),
        "minLength": st.integers(0, 50),
        "maxLength": st.integers(0, 50),
    },
)
_NUMBER_HINTS = st.fixed_dictionaries(
    {},
    optional={
        "minimum": st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6, allow_nan=False),
        "exclusiveMaximum": st.integers(-100, 100) | st.floats(1e-6, 1e3),
        "multipleOf": st.integers(1, 9) | st.sampled_from([0.5, 0.01, 1e-05]),
    },
)
_ARRAY_HINTS = st.fixed_dictionaries(
    {}, optional={"minItems": st.integers(0, 9), "maxItems": st.integers(0, 9), "uniqueItems": st.just(True)}
)
_OBJECT_HINTS = st.fixed_dictionaries(
    {}, optional={"minProperties": st.integers(0, 9), "maxProperties": st.integers(0, 9)}
)


@settings(max_examples=300, deadline=None)
@given(
    case=st.one_of(
        st.tuples(st.just("string"), _STRING_HINTS),
        st.tuples(st.just("number"), _NUMBER_HINTS),
        st.tuples(st.just("array"), _ARRAY_HINTS),
        st.tuples(st.just("object"), _OBJECT_HINTS),
    ),
    description=st.none() | st.text(alphabet="Abc xyz.()", max_size=40),
    level=st.sampled_from(["full", "short", "hints"]),
)
def test_hints_read_back_what_the_compiler_wrote(
    case: tuple[str, dict[str, Any]], description: str | None, level: str
) -> None:
    """hinted_keywords inverts extract.schema._hints exactly, whatever user text comes before the hint."""
    from extract.schema._hints import compose, constraint_hints
    from extract.testing._generate_hints import hinted_keywords

    kind, keywords = case
    hints = [hint for _keyword, hint in constraint_hints(keywords, kind)]
    written = compose(description, hints, level)
    assert hinted_keywords(written) == (keywords if hints else {})
