"""Hostile replies: the parser's work stays linear, re-asks quote a bounded excerpt, numbers stay exact.

Work is counted (characters handed to the JSON parser, tokens the span scanner reads), never timed; the
pytest timeout only turns a hang into a failure. The end-to-end tests talk HTTP to a loopback TestServer
scripted with exact reply content.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import extract._reply as reply_module
from extract._engine.judge import MAX_ERROR_CHARS, REASK_EXCERPT_CHARS, Verdict, correction, quoted_reply
from extract._json import InexactNumber, loads
from extract._json import dumps as exact_dumps
from extract._reply import MAX_RECOVERY_CHARS, ReplyKind, parse_reply
from extract.core import Extractor
from extract.errors import ExtractionFailed
from extract.testing import Fault, TestServer

MODEL = "llama3.1-8b"

# any JSON value, integers of any size included (orjson cannot write those: the json module does)
EXACT_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5),
    max_leaves=20,
)
EXACT_CONTAINERS = st.one_of(
    st.lists(EXACT_VALUES, max_size=5), st.dictionaries(st.text(max_size=10), EXACT_VALUES, max_size=5)
)
PROSE = st.text(
    alphabet=st.characters(blacklist_characters='{}[]"`', blacklist_categories=("Cs",)), max_size=40
)


def dumps(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


def same(a: Any, b: Any) -> bool:
    """Equal as JSON text: an int that turned into a float (or back) is a difference."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


# ---- exact values ------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(EXACT_VALUES, st.sampled_from([None, 2]))
def test_loads_of_dumps_is_the_value(value: Any, indent: int | None) -> None:
    assert same(loads(dumps(value, indent)), value)
    result = parse_reply(dumps(value, indent))
    assert result.kind in (ReplyKind.OK, ReplyKind.SCHEMA_ECHO)
    assert same(result.value, value)


@settings(max_examples=300, deadline=None)
@given(EXACT_VALUES, st.sampled_from(["json", "", "JSON"]), PROSE, PROSE)
def test_any_value_in_a_fence_is_recovered(value: Any, tag: str, before: str, after: str) -> None:
    content = f"{before}\n```{tag}\n{dumps(value, 2)}\n```\n{after}"
    result = parse_reply(content)
    assert result.kind in (ReplyKind.OK, ReplyKind.SCHEMA_ECHO), content
    assert same(result.value, value)


@settings(max_examples=300, deadline=None)
@given(EXACT_CONTAINERS, PROSE, PROSE, st.sampled_from([None, 2]))
def test_any_container_in_prose_is_recovered(value: Any, before: str, after: str, indent: int | None) -> None:
    content = f"{before} {dumps(value, indent)} {after}"
    result = parse_reply(content)
    assert result.kind in (ReplyKind.OK, ReplyKind.SCHEMA_ECHO), content
    assert same(result.value, value)


@pytest.mark.parametrize(
    "text",
    [
        '{"n": 12345678901234567890123}',
        "[18446744073709551616, -9223372036854775809, 99999999999999999999999999999999999999]",
        '{"deep": [[[{"n": -123456789012345678901234567890}]]]}',
    ],
)
def test_big_integers_stay_int(text: str) -> None:
    expected = json.loads(text)
    for content in (text, f"Here it is: {text} done", f"```json\n{text}\n```"):
        result = parse_reply(content)
        assert result.ok and same(result.value, expected), content


@pytest.mark.parametrize("literal", ["1e400", "-1.5E+999", "1e-400", "0.000001e-330", "1" + "0" * 400 + ".5"])
def test_numbers_beyond_a_double_are_refused_not_rounded(literal: str) -> None:
    with pytest.raises(InexactNumber):
        loads(f'{{"x": {literal}}}')
    for content in (
        f'{{"x": {literal}}}',
        f'Sure: {{"x": {literal}}}',
        f'```json\n{{"x": [{literal}]}}\n```',
    ):
        result = parse_reply(content)
        assert result.kind is ReplyKind.NOT_JSON and result.value is None, content
        assert "outside the range of a 64-bit float" in result.message


@settings(max_examples=200, deadline=None)
@given(
    EXACT_VALUES, st.sampled_from([0, orjson.OPT_INDENT_2, orjson.OPT_APPEND_NEWLINE | orjson.OPT_SORT_KEYS])
)
def test_exact_dumps_writes_back_what_loads_read(value: Any, option: int) -> None:
    written = exact_dumps(value, option)
    assert same(loads(written), value)
    assert written.endswith(b"\n") == bool(option & orjson.OPT_APPEND_NEWLINE)
    with contextlib.suppress(TypeError):  # an integer beyond 64 bits: only the fallback can write it
        assert written == orjson.dumps(value, option=option)  # else orjson's own bytes


def test_zero_with_a_big_exponent_is_zero() -> None:
    assert parse_reply('{"x": 0e-999, "y": 0.0E+500}').value == {"x": 0.0, "y": 0.0}


@pytest.mark.parametrize("text", ["[NaN]", '{"x": Infinity}', "[-Infinity, 1e999]", "[1" + "1" * 5000 + "]"])
def test_non_json_numbers_are_errors(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        loads(text)
    assert not parse_reply(text).ok


def test_long_digit_runs_inside_strings_keep_everything_else_exact() -> None:
    text = '{"id": "12345678901234567890123456789", "x": 0.1, "e": "1e999", "n": 7}'
    assert parse_reply(text).value == {"id": "12345678901234567890123456789", "x": 0.1, "e": "1e999", "n": 7}


# ---- linear work on adversarial replies -----------------------------------------------------------


def adversarial(n: int) -> Iterator[tuple[str, str]]:
    yield "open brackets", "[" * n
    yield "nested balanced", "[" * (n // 2) + "]" * (n // 2)
    yield "nested objects", '{"a":' * (n // 5)
    yield "nested objects closed", '{"a":' * (n // 10) + "1" + "}" * (n // 10)
    yield "fences", "```" * (n // 3)
    yield "fences with lines", "```\n" * (n // 4)
    yield "tagged fences", "```json\n{" * (n // 9)
    yield "small broken objects", "x{x}" * (n // 4)
    yield "small arrays", "[1]" * (n // 3)
    yield "small bad arrays", "[-]" * (n // 3)
    yield "prose braces", "{ a " * (n // 4)
    yield "escaped quotes", '"\\"' * (n // 3)
    yield "quotes and brackets", '"[' * (n // 2)
    yield "trailing commas", "[1," * (n // 3) + "]" * (n // 3)
    yield "python literals", "[True, " * (n // 7)
    yield "think tags", "<think>" * (n // 7)
    yield "mismatched", "[}" * (n // 2)
    yield "distinct broken fences", "".join(f"```\n[-{i}x]\n```\n" for i in range(n // 16))


class Counting:
    """Wraps a compiled pattern and counts what its scans hand back to Python."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = pattern
        self.items = 0

    def search(self, text: str, pos: int = 0) -> re.Match[str] | None:
        self.items += 1
        return self.pattern.search(text, pos)

    def match(self, text: str, pos: int = 0) -> re.Match[str] | None:
        self.items += 1
        return self.pattern.match(text, pos)

    def finditer(self, text: str, pos: int = 0) -> Iterator[re.Match[str]]:
        self.items += 1
        for found in self.pattern.finditer(text, pos):
            self.items += 1
            yield found


@pytest.mark.timeout(120)
@pytest.mark.parametrize("size", [20_000, 200_000])
def test_adversarial_replies_cost_linear_work(monkeypatch: pytest.MonkeyPatch, size: int) -> None:
    parsed_chars = [0]
    real_loads = reply_module._loads

    def counting_loads(text: str) -> Any:
        parsed_chars[0] += len(text) + 64
        return real_loads(text)

    monkeypatch.setattr(reply_module, "_loads", counting_loads)
    in_json, opener = reply_module._IN_JSON, reply_module._OPENER
    for name, content in adversarial(size):
        tokens, openers = Counting(in_json), Counting(opener)
        monkeypatch.setattr(reply_module, "_IN_JSON", tokens)
        monkeypatch.setattr(reply_module, "_OPENER", openers)
        parsed_chars[0] = 0
        result = parse_reply(content)
        assert isinstance(result.kind, ReplyKind)
        n = len(content)
        # fences: the whole reply, each body once, first-to-last: 3 reads, each maybe repaired (x2);
        # spans: _SCAN_WORK times the text plus slack
        assert parsed_chars[0] <= 12 * n + reply_module._SCAN_SLACK + 64 * 16, name
        # each pass reads each character's token at most once (plus one search per top-level container)
        assert tokens.items + openers.items <= 2 * reply_module._MAX_PASSES * (n + 1), name


@pytest.mark.timeout(120)
def test_adversarial_verdicts() -> None:
    n = 100_000
    assert parse_reply("[" * n).kind is ReplyKind.TRUNCATED
    assert parse_reply('{"a":' * n).kind is ReplyKind.TRUNCATED
    assert parse_reply("```" * n).kind is ReplyKind.NOT_JSON
    assert parse_reply("[" * n + "]" * n).kind is ReplyKind.NOT_JSON  # deeper than any JSON parser goes
    found = parse_reply("x{x}" * n + ' and {"a": [1, 2]} ' + "[-]" * n)
    assert found.ok and found.value == {"a": [1, 2]}


def test_longest_span_wins_over_many_small_ones() -> None:
    content = "[1] " * 10_000 + 'answer: {"rows": [1, 2, 3]} and [2]'
    result = parse_reply(content)
    assert result.ok and result.value == {"rows": [1, 2, 3]}


@pytest.mark.parametrize(
    ("content", "kind", "value"),
    [
        ('{ a { b {"k": [1', ReplyKind.TRUNCATED, None),  # two prose braces, then a cut-off value
        ("I'm sorry. [,]", ReplyKind.OK, []),  # a repair that leaves an empty container
        ('x {,} y {"a": 1,}', ReplyKind.OK, {"a": 1}),
    ],
)
def test_scan_edge_cases(content: str, kind: ReplyKind, value: Any) -> None:
    result = parse_reply(content)
    assert result.kind is kind and result.value == value


def test_unclosed_prose_bracket_before_the_json_is_skipped() -> None:
    result = parse_reply('{ see below, it is 5" wide } {"a": 1}')
    assert result.ok and result.value == {"a": 1}


# ---- the recovery bound -------------------------------------------------------------------------------


def test_over_the_bound_only_the_strict_parse_runs() -> None:
    big = {"rows": ["x" * 100] * (MAX_RECOVERY_CHARS // 100)}
    text = json.dumps(big)
    assert len(text) > MAX_RECOVERY_CHARS
    assert parse_reply(text).value == big  # strict JSON of any size is fine
    wrapped = parse_reply(f"Here you go:\n```json\n{text}\n```")
    assert wrapped.kind is ReplyKind.NOT_JSON
    assert f"{MAX_RECOVERY_CHARS:,}" in wrapped.message and "strict JSON" in wrapped.message
    cut = parse_reply(text[: len(text) - 10])
    assert cut.kind is ReplyKind.TRUNCATED
    with_big_number = f'{{"n": {BIG}, ' + text[1:]
    assert parse_reply(with_big_number).value == {"n": BIG, **big}
    assert parse_reply(with_big_number[:-10]).kind is ReplyKind.TRUNCATED  # cut inside a string


def test_the_bound_is_a_parameter() -> None:
    content = 'Sure: {"a": 1}'
    assert parse_reply(content).value == {"a": 1}
    limited = parse_reply(content, max_recovery=5)
    assert limited.kind is ReplyKind.NOT_JSON and "over 5 characters" in limited.message


# ---- re-ask excerpts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 10, REASK_EXCERPT_CHARS, REASK_EXCERPT_CHARS + 1, 10**6])
def test_quoted_reply_is_bounded_and_keeps_head_and_tail(size: int) -> None:
    content = "H" + "m" * max(size - 2, 0) + "T" if size >= 2 else "x" * size
    quoted = quoted_reply(content)
    if size <= REASK_EXCERPT_CHARS:
        assert quoted == content
    else:
        assert len(quoted) <= REASK_EXCERPT_CHARS + 80
        assert quoted.startswith("H") and quoted.endswith("T")
        assert f"{size - REASK_EXCERPT_CHARS:,} characters of this reply left out" in quoted


def test_correction_is_bounded_whatever_the_errors() -> None:
    verdict = Verdict("invalid", errors=tuple(f"$.x[{i}]: bad value '{'v' * 10_000}'" for i in range(500)))
    text = correction(verdict)
    assert len(text) <= 21 * (MAX_ERROR_CHARS + 10) + 100
    assert "480 more" in text


class Person(pydantic.BaseModel):
    name: str
    age: int


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer(api_key="sk-test") as srv:
        yield srv


def make(server: TestServer, **options: Any) -> Extractor:
    return Extractor(base_url=server.base_url, api_key="sk-test", model=MODEL, provider="cerebras", **options)


TEXT = "Ada Lovelace was 36 years old."


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "bad",
    [
        "x" * 3_000_000,  # beyond the recovery bound: strict parse only
        "[" * 500_000,  # inside it: scanned, cut off
        '{"name": "' + "y" * 400_000 + '", "age": "old"}',  # valid JSON, a violation quoting a long value
    ],
    ids=["3MB-prose", "500KB-brackets", "400KB-string"],
)
def test_reask_after_a_huge_bad_reply_stays_small(server: TestServer, bad: str) -> None:
    server.script(Fault.content(bad))
    with make(server) as ex:
        result = ex.extract(Person, TEXT, full=True)
    assert isinstance(result.value, Person)
    assert server.request_count == 2
    first, second = server.requests
    assert len(second.raw) - len(first.raw) < 4 * REASK_EXCERPT_CHARS + 21 * MAX_ERROR_CHARS + 2000
    assistant = second["messages"][-2]
    assert assistant["role"] == "assistant" and len(assistant["content"]) <= REASK_EXCERPT_CHARS + 80
    assert assistant["content"].startswith(bad[:100])
    assert all(len(e) <= MAX_ERROR_CHARS for e in result.attempts[0].errors)
    assert result.attempts[0].content == bad  # the Attempt keeps the raw reply for the caller


@pytest.mark.timeout(120)
async def test_async_reask_after_a_huge_bad_reply_stays_small(server: TestServer) -> None:
    bad = "z" * 3_000_000
    server.script(Fault.content(bad))
    async with make(server) as ex:
        value = await ex.aextract(Person, TEXT)
    assert isinstance(value, Person)
    first, second = server.requests
    assert len(second.raw) - len(first.raw) < 4 * REASK_EXCERPT_CHARS + 2000
    assert len(second["messages"][-2]["content"]) <= REASK_EXCERPT_CHARS + 80


# ---- exact numbers end to end -----------------------------------------------------------------------

INT_SCHEMA = {
    "type": "object",
    "properties": {"n": {"type": "integer"}},
    "required": ["n"],
    "additionalProperties": False,
}
NUMBER_SCHEMA = {
    "type": "object",
    "properties": {"x": {"type": "number"}},
    "required": ["x"],
    "additionalProperties": False,
}


class Count(pydantic.BaseModel):
    n: int


class StrictRecord(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(strict=True)
    n: int
    when: pydantic.AwareDatetime | None = None


class Measure(pydantic.BaseModel):
    x: float


BIG = 12345678901234567890123


@pytest.mark.parametrize(
    ("schema", "content", "expected"),
    [
        (INT_SCHEMA, f'{{"n": {BIG}}}', {"n": BIG}),
        (INT_SCHEMA, f'Sure!\n```json\n{{"n": -{BIG}{BIG}}}\n```', {"n": -int(f"{BIG}{BIG}")}),
        (Count, f'{{"n": {BIG}}}', Count(n=BIG)),
        (StrictRecord, f'{{"n": {BIG}, "when": "2024-01-02T03:04:05Z"}}', None),
        (NUMBER_SCHEMA, '{"x": 0.1000000000000000055511151231257827021181583404541015625}', {"x": 0.1}),
        (NUMBER_SCHEMA, f'{{"x": {BIG}}}', {"x": BIG}),
        (Measure, '{"x": 1.00000000000000000000000000001}', Measure(x=1.0)),
    ],
)
def test_numbers_come_back_exact_through_extract(
    server: TestServer, schema: Any, content: str, expected: Any
) -> None:
    server.script(Fault.content(content))
    with make(server, max_attempts=1) as ex:
        value = ex.extract(schema, TEXT)
    if expected is None:
        assert isinstance(value, StrictRecord) and value.n == BIG and value.when is not None
    else:
        assert value == expected and same(_plain(value), _plain(expected))
    assert server.request_count == 1


def _plain(value: Any) -> Any:
    return value.model_dump() if isinstance(value, pydantic.BaseModel) else value


@pytest.mark.parametrize(
    ("schema", "content", "why"),
    [
        (Count, '{"n": 1.5}', "fractional part"),
        (INT_SCHEMA, '{"n": 1.5}', "integer"),
        (NUMBER_SCHEMA, '{"x": 1e400}', "outside the range of a 64-bit float"),
        (Measure, '{"x": -2.5e-999}', "outside the range of a 64-bit float"),
        (Count, '{"n": 1e400}', "outside the range of a 64-bit float"),
    ],
)
def test_inexact_numbers_are_failures_not_rounded(
    server: TestServer, schema: Any, content: str, why: str
) -> None:
    server.script(Fault.content(content))
    with make(server, max_attempts=1) as ex, pytest.raises(ExtractionFailed) as failed:
        ex.extract(schema, TEXT)
    errors = failed.value.attempts[0].errors
    assert any(why in e for e in errors), errors


def test_schema_entry_points_read_json_text_exactly() -> None:
    from extract.errors import ValidationFailed
    from extract.schema import compile_schema
    from extract.schema._validate import Validator

    text = f'{{"n": {BIG}}}'
    assert compile_schema(INT_SCHEMA).parse(text) == {"n": BIG}
    assert Validator.for_json_schema(INT_SCHEMA).validate(text) == {"n": BIG}
    assert Validator.for_pydantic(Count).validate(text) == Count(n=BIG)
    any_json = {"type": "object", "properties": {"v": {}}, "required": ["v"], "additionalProperties": False}
    assert compile_schema(any_json).parse({"v": text}) == {"v": {"n": BIG}}  # carried as JSON text
    with pytest.raises(ValidationFailed, match="outside the range of a 64-bit float"):
        Validator.for_json_schema(INT_SCHEMA).validate('{"n": 1e400}')


# ---- the benchmark runs ------------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_bench_hostile_quick_prints_every_section(
    capsys: pytest.CaptureFixture[str], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks import bench_hostile

    titles = [title for title, _ in bench_hostile.SECTIONS]
    assert any(t.startswith("Transport") for t in titles) and any(t.startswith("Schemas") for t in titles)
    # the reply sections here; the transport and schema sections run in their own smoke test
    monkeypatch.setattr(bench_hostile, "SECTIONS", bench_hostile.SECTIONS[:2])
    assert bench_hostile.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "### Reply parser" in out and "### Re-ask request size" in out
    assert out.count("ok after a re-ask") == 2
