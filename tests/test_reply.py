"""parse_reply: strict JSON first, then reported recovery; classification of unusable replies."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract._reply import ReplyKind, looks_like_schema, parse_reply, unwrap_candidates

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
CONTAINERS = st.one_of(
    st.lists(JSON_VALUES, max_size=5), st.dictionaries(st.text(max_size=10), JSON_VALUES, max_size=5)
)
# prose a model might write around its answer: no brackets, braces, quotes or backticks
PROSE = st.text(
    alphabet=st.characters(blacklist_characters='{}[]"`', blacklist_categories=("Cs",)),
    max_size=40,
)
DUMP_OPTIONS = st.sampled_from([0, orjson.OPT_INDENT_2])


def same(a: Any, b: Any) -> bool:
    """Equal as JSON (so 1 == 1.0 does not hide a type change, and -0.0 keeps its sign)."""
    return orjson.dumps(a) == orjson.dumps(b)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, DUMP_OPTIONS)
def test_clean_json_parses_strictly(value: Any, option: int) -> None:
    result = parse_reply(orjson.dumps(value, option=option).decode())
    assert result.kind in (ReplyKind.OK, ReplyKind.SCHEMA_ECHO)
    assert result.recovered is None
    assert same(result.value, value)


@settings(max_examples=300, deadline=None)
@given(JSON_VALUES, DUMP_OPTIONS, st.sampled_from(["json", "JSON", "", "javascript"]), PROSE, PROSE)
def test_fenced_json_parses_back(value: Any, option: int, tag: str, before: str, after: str) -> None:
    dumped = orjson.dumps(value, option=option).decode()
    fenced = f"```{tag}\n{dumped}\n```"
    for content in (fenced, f"{before}\n{fenced}\n{after}"):
        result = parse_reply(content)
        assert result.kind in (ReplyKind.OK, ReplyKind.SCHEMA_ECHO), content
        assert same(result.value, value)


@settings(max_examples=300, deadline=None)
@given(CONTAINERS, DUMP_OPTIONS, PROSE, PROSE)
def test_prose_wrapped_objects_and_arrays_parse_back(
    value: Any, option: int, before: str, after: str
) -> None:
    content = f"{before} {orjson.dumps(value, option=option).decode()} {after}"
    result = parse_reply(content)
    assert result.kind in (ReplyKind.OK, ReplyKind.SCHEMA_ECHO), content
    assert same(result.value, value)


@settings(max_examples=200, deadline=None)
@given(CONTAINERS, st.data())
def test_every_cut_off_container_is_reported_truncated(value: Any, data: st.DataObject) -> None:
    dumped = orjson.dumps(value).decode()
    cut = data.draw(st.integers(1, len(dumped) - 1))
    result = parse_reply(dumped[:cut])
    assert result.kind is ReplyKind.TRUNCATED, dumped[:cut]
    assert result.value is None


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_never_raises_and_ok_means_a_value(content: str) -> None:
    result = parse_reply(content)
    assert isinstance(result.kind, ReplyKind)
    assert result.ok == (result.kind is ReplyKind.OK)
    if not result.ok and result.kind is not ReplyKind.SCHEMA_ECHO:
        assert result.value is None
        assert result.message


@pytest.mark.parametrize(
    ("content", "value", "recovered"),
    [
        ('```json\n{"a": 1}\n```', {"a": 1}, "removed a code fence"),
        ('Here you go:\n```json\n{"a": 1}\n```\nAnything else?', {"a": 1}, "took the JSON from a code fence"),
        ('```python\nx = 1\n```\n```json\n{"a": 1}\n```', {"a": 1}, "took the JSON from a code fence"),
        (
            'Sure! {"a": {"b": "}{"}} Hope that helps.',
            {"a": {"b": "}{"}},
            "ignored text before the JSON; ignored text after the JSON",
        ),
        ('{"a": [1, 2,], }', {"a": [1, 2]}, "removed a trailing comma"),
        (
            '{"ok": True, "none": None, "s": "True"}',
            {"ok": True, "none": None, "s": "True"},
            "read Python True/False/None as JSON",
        ),
        ('<think>maybe {"a": 0}</think>\n{"a": 1}', {"a": 1}, "removed a <think> block"),
        ('see [1]; answer: {"x": [1, 2, 3]}', {"x": [1, 2, 3]}, "ignored text before the JSON"),
        ("\ufeff[1, 2]", [1, 2], None),
        ('the user wants {"a": 0}?</think>\n{"a": 1}', {"a": 1}, "removed a <think> block"),
        (
            'Result:\n```json\n{"md": "```x```"}\n```\nbye',
            {"md": "```x```"},
            "took the JSON from a code fence",
        ),
    ],
)
def test_recovery_cases(content: str, value: Any, recovered: str | None) -> None:
    result = parse_reply(content)
    assert result.ok, result
    assert result.value == value
    if recovered is None:
        assert result.recovered is None
    else:
        assert result.recovered is not None and recovered in result.recovered


def test_clean_reply_reports_no_recovery() -> None:
    assert parse_reply('{"a": 1}').recovered is None


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (None, ReplyKind.EMPTY),
        ("", ReplyKind.EMPTY),
        (" \n\t", ReplyKind.EMPTY),
        ("I'm sorry, but I can't help with that.", ReplyKind.REFUSAL),
        ("I cannot extract personal data from this text.", ReplyKind.REFUSAL),
        ("As an AI language model, I won't do that.", ReplyKind.REFUSAL),
        ("The invoice total is 42 euros.", ReplyKind.NOT_JSON),
        ("{not json at all}", ReplyKind.NOT_JSON),
        ("Use { carefully", ReplyKind.NOT_JSON),
        ('{"name": "Ann", "items": [{"sku": "A', ReplyKind.TRUNCATED),
        ('```json\n{"name": "Ann", "tags": ["x", ', ReplyKind.TRUNCATED),
        ("[[1, 2], [3", ReplyKind.TRUNCATED),
        ("<think>the user wants", ReplyKind.TRUNCATED),
        ("<think>nothing to say</think>\n", ReplyKind.EMPTY),
        (
            '{"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}',
            ReplyKind.SCHEMA_ECHO,
        ),
        ('{"type": "object"}', ReplyKind.SCHEMA_ECHO),
    ],
)
def test_classification(content: str | None, kind: ReplyKind) -> None:
    result = parse_reply(content)
    assert result.kind is kind, result
    assert not result.ok
    assert result.message and len(result.message) < 200


def test_truncated_value_is_not_completed_or_fragmented() -> None:
    result = parse_reply('{"lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-')
    assert result.kind is ReplyKind.TRUNCATED
    assert result.value is None
    assert "cut off" in result.message


def test_schema_echo_keeps_the_value_for_the_caller() -> None:
    result = parse_reply('{"type": "object", "properties": {"a": {"type": "integer"}}}')
    assert result.kind is ReplyKind.SCHEMA_ECHO
    assert result.value == {"type": "object", "properties": {"a": {"type": "integer"}}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"type": "object", "properties": {"a": {"type": "string"}}}, True),
        ({"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "x"}, True),
        ({"type": ["string", "null"], "description": "a name"}, True),
        ({"name": "invoice", "strict": True, "schema": {"type": "object", "properties": {}}}, True),
        ({"type": "deposit", "amount": 3}, False),  # a record with a `type` field
        ({"type": "string"} | {"value": "x"}, False),
        ({"type": "object", "properties": {"name": "Ann"}}, False),  # data under `properties`
        ({"type": "object", "json": {"a": 1}}, False),
        ([{"type": "object"}], False),
        ({}, False),
        ("object", False),
    ],
)
def test_looks_like_schema(value: Any, expected: bool) -> None:
    assert looks_like_schema(value) is expected


@pytest.mark.parametrize(
    ("value", "candidates"),
    [
        ({"json": {"a": 1}}, [{"a": 1}]),
        ({"data": [1, 2]}, [[1, 2]]),
        ({"response": {"data": {"a": 1}}}, [{"data": {"a": 1}}, {"a": 1}]),
        ({"Invoice": {"number": "7"}}, [{"number": "7"}]),
        ({"type": "object", "json": {"a": 1}}, [{"a": 1}]),
        ({"type": "object", "properties": {"name": "Ann"}}, [{"name": "Ann"}]),
        ({"result": '{"a": 1}'}, [{"a": 1}]),
        ('{"a": 1}', [{"a": 1}]),
        ({"name": "x", "data": {"a": 1}}, []),  # an ordinary record, not a wrapper
        ({"type": "object", "properties": {"a": {"type": "string"}}}, []),
        ({"a": 1}, []),
        ([1, 2], []),
        (3, []),
    ],
)
def test_unwrap_candidates(value: Any, candidates: list[Any]) -> None:
    assert unwrap_candidates(value) == candidates


def test_large_reply_with_prose_is_parsed() -> None:
    value = {"rows": [{"id": i, "text": "x{y}" * 5} for i in range(2000)]}
    result = parse_reply("Here are all rows:\n" + orjson.dumps(value).decode() + "\nDone.")
    assert result.ok
    assert result.value == value
