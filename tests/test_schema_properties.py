"""Property tests of the compiler over real-world schemas (JSONSchemaBench) and generated pydantic models.

Soundness: a wire instance that decodes and validates is valid under the user's *original* schema.
Representability: a valid user value that `encode` accepts is valid on the wire and decodes back unchanged.
Strictness: every strict compile for cerebras lies inside the strict subset.
"""

from __future__ import annotations

import random
from functools import cache
from pathlib import Path
from typing import Annotated, Any, Literal

import jsonschema
import orjson
import pydantic
import pytest
import referencing.exceptions
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import HypothesisException
from hypothesis_jsonschema import from_schema

from extract.errors import SchemaError, ValidationFailed
from extract.schema import CompiledSchema, Unrepresentable, compile_schema, strict_violations
from extract.schema._codec import same_json
from extract.schema._graph import cyclic_defs

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "jsonschemabench"
needs_corpus = pytest.mark.skipif(
    not (CORPUS / "schemas").is_dir(), reason=f"JSONSchemaBench corpus not found at {CORPUS}"
)
PER_SPLIT = 120
SEED = 20261122
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

MODEL_SETTINGS = settings(SETTINGS, max_examples=60)


def oracle(schema: Any) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@cache
def corpus_sample() -> list[tuple[str, Any, CompiledSchema]]:
    """A seeded sample per split: (file, original schema, compiled); schemas that raise SchemaError left out."""
    rng = random.Random(SEED)
    out: list[tuple[str, Any, CompiledSchema]] = []
    for split in sorted(p for p in (CORPUS / "schemas").iterdir() if p.is_dir()):
        files = sorted(split.glob("*.json"))
        for path in rng.sample(files, min(PER_SPLIT, len(files))):
            schema = orjson.loads(path.read_bytes())
            try:
                compiled = compile_schema(schema)
            except SchemaError:
                continue
            out.append((f"{split.name}/{path.name}", schema, compiled))
    return out


@cache
def wire_strategy(wire: bytes) -> st.SearchStrategy[Any]:
    return from_schema(orjson.loads(wire))


@needs_corpus
def test_corpus_strict_compiles_are_inside_the_subset() -> None:
    sample = corpus_sample()
    assert len(sample) > PER_SPLIT  # the sample is real
    strict = [(name, c) for name, _, c in sample if c.strict]
    assert len(strict) >= 0.95 * len(sample)
    for name, c in strict:
        assert strict_violations(c.wire_schema) == [], name


@needs_corpus
@SETTINGS
@given(data=st.data())
def test_corpus_soundness(data: st.DataObject) -> None:
    sample = [item for item in corpus_sample() if item[2].strict]
    name, original, compiled = data.draw(st.sampled_from(sample), label="schema")
    try:
        strategy = wire_strategy(orjson.dumps(compiled.wire_schema))
        wire_value = data.draw(strategy, label="wire value")
    except HypothesisException:
        return  # hypothesis-jsonschema cannot generate for this wire schema
    try:
        decoded = compiled.decode(wire_value)
        compiled.validate(decoded)
    except ValidationFailed:
        return
    errors = [e.message for e in oracle(original).iter_errors(decoded)]
    assert errors == [], f"{name}: accepted {decoded!r} but the original schema says {errors}"


def labelled_instances() -> list[tuple[str, CompiledSchema, Any]]:
    out = []
    for name, _, compiled in corpus_sample():
        path = CORPUS / "maskbench" / (name.replace("/", "---"))
        if path.exists():
            for test in orjson.loads(path.read_bytes()).get("tests", []):
                if test.get("valid"):
                    out.append((name, compiled, test["data"]))
    return out


def check_representable(compiled: CompiledSchema, value: Any) -> bool:
    """False when encode declines; when it accepts, the claim must hold (wire-valid, decodes back)."""
    try:
        wire = compiled.encode(value)
    except Unrepresentable:
        return False
    errors = [e.message for e in oracle(compiled.wire_schema).iter_errors(wire)]
    assert errors == [], f"encode claimed {value!r} fits the wire, but: {errors}"
    back = compiled.decode(wire)
    assert same_json(without_added_nulls(back, value), value), f"{value!r} -> {wire!r} -> {back!r}"
    return True


def without_added_nulls(back: Any, value: Any) -> Any:
    """`back` minus null properties that `value` lacks.

    An optional property whose default is null travels as plain `null` (absent and null are the same
    value under that default), so it decodes as an explicit null; everything else must match exactly.
    """
    if isinstance(back, dict) and isinstance(value, dict):
        return {
            k: without_added_nulls(v, value.get(k))
            for k, v in back.items()
            if not (v is None and k not in value)
        }
    if isinstance(back, list) and isinstance(value, list) and len(back) == len(value):
        return [without_added_nulls(b, v) for b, v in zip(back, value, strict=True)]
    return back


@needs_corpus
def test_corpus_labelled_values_are_representable() -> None:
    instances = labelled_instances()
    assert instances
    ok = sum(check_representable(compiled, value) for _, compiled, value in instances)
    rate = ok / len(instances)
    print(f"representable: {ok}/{len(instances)} = {rate:.1%}")
    assert rate >= 0.9


def generatable() -> list[tuple[str, Any, CompiledSchema]]:
    """hypothesis-jsonschema cannot generate values of recursive schemas: leave those out."""
    return [item for item in corpus_sample() if not cyclic_defs(item[2].user_schema.get("$defs", {}))]


@needs_corpus
@SETTINGS
@given(data=st.data())
def test_corpus_generated_values_roundtrip(data: st.DataObject) -> None:
    _, original, compiled = data.draw(st.sampled_from(generatable()), label="schema")
    try:
        value = data.draw(wire_strategy(orjson.dumps(original)), label="user value")
    except (HypothesisException, jsonschema.exceptions.SchemaError, referencing.exceptions.Unresolvable):
        return
    if not oracle(original).is_valid(value):
        return  # the generator does not know every keyword (formats, drafts): only valid values count
    check_representable(compiled, value)


# ---- generated pydantic models ------------------------------------------------------------------------

_counter = iter(range(10**9))

scalars: st.SearchStrategy[Any] = st.sampled_from(
    [
        int,
        str,
        float,
        bool,
        Any,
        Literal["red", "green"],
        Literal[1, "one", None],
        Annotated[int, pydantic.Field(ge=0, le=100)],
        Annotated[str, pydantic.Field(max_length=8)],
        Annotated[list[int], pydantic.Field(max_length=3)],
    ]
)


def _model(fields: list[tuple[Any, bool]]) -> Any:
    spec: dict[str, Any] = {}
    for i, (tp, required) in enumerate(fields):
        spec[f"f{i}"] = (tp, ...) if required else (tp | None, None)
    return pydantic.create_model(f"M{next(_counter)}", **spec)


def _extend(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(
        inner.map(lambda t: list[t]),  # type: ignore[valid-type]
        inner.map(lambda t: dict[str, t]),  # type: ignore[valid-type]
        inner.map(lambda t: t | None),
        st.lists(st.tuples(inner, st.booleans()), min_size=1, max_size=4).map(_model),
    )


types = st.recursive(scalars, _extend, max_leaves=8)
models = st.lists(st.tuples(types, st.booleans()), min_size=1, max_size=5).map(_model)


@MODEL_SETTINGS
@given(model=models, data=st.data())
def test_pydantic_models_compile_strict_and_sound(model: Any, data: st.DataObject) -> None:
    compiled = compile_schema(model)
    assert compiled.strict, compiled.relaxations
    assert strict_violations(compiled.wire_schema) == []
    try:
        wire_value = data.draw(wire_strategy(orjson.dumps(compiled.wire_schema)), label="wire value")
    except HypothesisException:
        return
    decoded = compiled.decode(wire_value)
    try:
        instance = compiled.validate(decoded)
    except ValidationFailed:
        return
    assert isinstance(instance, model)
    errors = [e.message for e in oracle(compiled.user_schema).iter_errors(decoded)]
    assert errors == [], f"pydantic accepted {decoded!r}, the JSON Schema says {errors}"


@MODEL_SETTINGS
@given(model=models, data=st.data())
def test_pydantic_values_roundtrip(model: Any, data: st.DataObject) -> None:
    compiled = compile_schema(model)
    try:
        value = data.draw(from_schema(compiled.user_schema), label="user value")
    except HypothesisException:
        return
    try:
        model.model_validate(value, strict=False)
    except pydantic.ValidationError:
        return
    check_representable(compiled, value)
