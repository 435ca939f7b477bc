"""extract.evidence, pure parts: JSONPaths, the span scanner, grounding (spans and alignment), the token map."""

from __future__ import annotations

import math
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from extract.evidence import FieldEvidence, Grounder, format_path, leaves
from extract.evidence._confidence import TokenMap
from extract.evidence._ground import _fold_value
from extract.evidence._scan import locate


def test_paths_quote_odd_keys_and_index_lists() -> None:
    assert format_path(()) == "$"
    assert format_path(("items", 0, "description")) == "$.items[0].description"
    assert format_path(("unit price", "a.b", 'q"x', "ok_1")) == '$["unit price"]["a.b"]["q\\"x"].ok_1'
    assert format_path(("名前",)) == '$["名前"]'


def test_leaves_in_document_order_without_nulls() -> None:
    value = {"a": 1, "b": [{"c": "x"}, None, True], "d": None, "e": {}}
    assert list(leaves(value)) == [(("a",), 1), (("b", 0, "c"), "x"), (("b", 2), True)]


def test_scan_spans_of_nested_values_after_prose() -> None:
    content = 'Here it is: {"a": {"b": [1, "xy", true]}, "c": "q\\"z"}'
    found = locate(content)
    assert found is not None
    value, spans = found
    assert value == {"a": {"b": [1, "xy", True]}, "c": 'q"z'}
    assert content[slice(*spans[("a", "b", 1)])] == '"xy"'
    assert content[slice(*spans[("a", "b", 2)])] == "true"
    assert content[slice(*spans[("c",)])] == '"q\\"z"'


def test_scan_after_think_block() -> None:
    content = '<think>{"a": "wrong"}</think>{"a": "right"}'
    found = locate(content)
    assert found is not None and found[0] == {"a": "right"}


def test_exact_returns_every_occurrence() -> None:
    text = "Bob met Alice. Later Bob left; bob returned."
    alignment, spans, score = Grounder(text).match("Bob")
    assert alignment == "exact" and score == 1.0
    assert spans == [(0, 3), (21, 24)]


def test_normalised_case_whitespace_punctuation() -> None:
    text = "Vendor:  ACME\n corp. (main office)"
    alignment, spans, _ = Grounder(text).match("Acme Corp")
    assert alignment == "normalised"
    assert [text[s:e] for s, e in spans] == ["ACME\n corp"]


def test_normalised_numbers_in_any_format() -> None:
    text = "Total due: $1,250.50 (EU: 1.250,50 EUR); qty 12."
    alignment, spans, _ = Grounder(text).match(1250.5)
    assert alignment == "normalised"
    assert [text[s:e] for s, e in spans] == ["1,250.50", "1.250,50"]
    assert Grounder(text).match(12)[0] == "exact"
    assert Grounder(text).match(125)[0] == "none"  # digits inside another number are not the number
    assert Grounder(text).match("1250.50")[0] == "normalised"
    assert Grounder("code 1425, then 42.").match("42") == ("exact", [(16, 18)], 1.0)  # the number itself
    assert Grounder("code 1425").match("42") == ("exact", [(6, 8)], 1.0)  # else the characters


def test_normalised_dates_written_out() -> None:
    for written in ("March 5, 2024", "5 March 2024", "Mar. 5th, 2024", "2024/03/05", "03/05/2024"):
        text = f"Due on {written}, please."
        alignment, spans, _ = Grounder(text).match("2024-03-05")
        assert alignment == "normalised", written
        assert [text[s:e] for s, e in spans] == [written], written
    assert Grounder("Due on March 6, 2024").match("2024-03-05")[0] == "none"


def test_unicode_combining_cjk_emoji() -> None:
    text = "Cafe\u0301 in 東京都 🎉 party, cafe\u0301 again"
    alignment, spans, _ = Grounder(text).match("Café")  # precomposed é against e + U+0301
    assert alignment == "normalised"
    assert [text[s:e] for s, e in spans] == ["Cafe\u0301", "cafe\u0301"]  # the combining mark is inside
    assert Grounder(text).match("東京都") == ("exact", [(9, 12)], 1.0)
    assert Grounder(text).match("🎉")[1] == [(13, 14)]


def test_fuzzy_with_score_and_none() -> None:
    text = "Shipping to Jonathan Smithers, 42 Elm Street."
    alignment, spans, score = Grounder(text).match("Jonathon Smithers")
    assert alignment == "fuzzy"
    assert FUZZY_LOW <= score < 1.0
    assert len(spans) == 1 and "Smithers" in text[slice(*spans[0])]
    assert Grounder(text).match("Maria Gonzalez") == ("none", [], 0.0)
    assert Grounder(text).match(True) == ("none", [], 0.0)


FUZZY_LOW = 0.85


@settings(max_examples=150, deadline=None)
@given(st.text(min_size=1, max_size=60), st.data())
def test_property_exact_spans_are_the_value(text: str, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    value = text[start:end]
    alignment, spans, _ = Grounder(text).match(value)
    if not value.strip():
        assert alignment == "none"
        return
    assert alignment == "exact"
    assert spans[0][0] <= start  # the earliest occurrence comes first
    for s, e in spans:
        assert text[s:e] == value


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.sampled_from(["Ünïcode", "déjà", "NAÏVE", "東京", "x", "🎉", "Zoë", "  ", ",", "\n"]), max_size=8
    ),
    st.sampled_from(["Déjà Vu", "naïve", "ZOË", "tokyo"]),
)
def test_property_normalised_spans_fold_to_the_value(words: list[str], value: str) -> None:
    case_changed = value.swapcase()
    text = " ".join([*words, case_changed, *words])
    alignment, spans, _ = Grounder(text).match(value)
    if value == "tokyo":
        return
    assert alignment in ("exact", "normalised")
    assert spans
    for s, e in spans:
        assert _fold_value(text[s:e]) == _fold_value(value)
        assert e == len(text) or unicodedata.category(text[e])[0] != "M"  # never cuts a mark off


def test_token_map_joint_probability_and_choice() -> None:
    content = '{"ok":true,"name":"Ada Lovelace"}'
    tokens = [
        {"token": '{"', "logprob": -0.1},
        {"token": "ok", "logprob": -0.1},
        {"token": '":', "logprob": -0.1},
        {"token": "true", "logprob": math.log(0.6), "top_logprobs": [
            {"token": "true", "logprob": math.log(0.6)},
            {"token": "false", "logprob": math.log(0.2)},
            {"token": "null", "logprob": math.log(0.2)},
        ]},
        {"token": ',"', "logprob": -0.1},
        {"token": "name", "logprob": -0.1},
        {"token": '":"', "logprob": -0.1},
        {"token": "Ada", "logprob": math.log(0.5)},
        {"token": " Lovelace", "logprob": math.log(0.8)},
        {"token": '"}', "logprob": -0.1},
    ]  # fmt: skip
    mapped = TokenMap.build(content, tokens)
    assert mapped is not None
    start = content.index("true")
    # renormalised among the allowed values: 0.6 / (0.6 + 0.2); null is not a boolean
    assert mapped.confidence(start, start + 4, ("false",)) == pytest_approx(0.75)
    start = content.index("Ada")
    assert mapped.confidence(start, start + len("Ada Lovelace")) == pytest_approx(0.4)
    # tokens that cover only part of the reply: values there are scored, characters past them are not
    partial = TokenMap.build(content + "x", tokens)
    assert partial is not None
    assert partial.confidence(start, start + len("Ada Lovelace")) == pytest_approx(0.4)
    assert partial.confidence(len(content), len(content) + 1) is None


def test_token_map_multibyte_tokens_split_inside_a_character() -> None:
    content = '{"a":"é東"}'
    raw = content.encode()
    split = raw.index("東".encode()) + 1
    tokens = [
        {"token": "x", "bytes": list(raw[:split]), "logprob": -0.5},
        {"token": "y", "bytes": list(raw[split:]), "logprob": -0.25},
    ]
    mapped = TokenMap.build(content, tokens)
    assert mapped is not None
    start = content.index("東")
    assert mapped.confidence(start, start + 1) == pytest_approx(math.exp(-0.75))  # both hold part of 東
    start = content.index("é")
    assert mapped.confidence(start, start + 1) == pytest_approx(math.exp(-0.5))


def test_field_evidence_is_public() -> None:
    import extract

    assert extract.FieldEvidence is FieldEvidence
    ev = FieldEvidence("$.a", "x", [(0, 1)], "exact", 0.5, 1.0)
    assert (ev.value, ev.spans, ev.alignment, ev.confidence) == ("x", [(0, 1)], "exact", 0.5)


def pytest_approx(value: float) -> object:
    import pytest

    return pytest.approx(value, rel=1e-9)


def test_import_extract_loads_no_evidence_code() -> None:
    import subprocess
    import sys

    code = (
        "import sys, extract, extract.core, extract.results; "
        "print(sorted(m for m in ('extract.evidence', 'rapidfuzz') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December")  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    st.integers(0, 10**9),
    st.integers(0, 99),
    st.sampled_from(["{:,}.{:02d}", "${:,}.{:02d}", "{}.{:02d}"]),
    st.text(alphabet="abc xyz:;", max_size=20),
)
def test_property_numbers_in_any_format_span_the_written_number(
    whole: int, cents: int, form: str, filler: str
) -> None:
    written = form.format(whole, cents)
    text = f"{filler} {written} {filler}"
    value = float(f"{whole}.{cents:02d}")
    alignment, spans, _ = Grounder(text).match(value)
    assert alignment in ("exact", "normalised")
    assert spans
    for s, e in spans:
        shown = text[s:e].lstrip("$").replace(",", "")
        assert float(shown) == value


@settings(max_examples=100, deadline=None)
@given(st.dates(), st.sampled_from(["{m} {d}, {y}", "{d} {m} {y}", "{y}-{mm:02d}-{d:02d}"]))
def test_property_dates_written_out_span_the_written_date(day: object, form: str) -> None:
    import datetime as dt

    assert isinstance(day, dt.date)
    if day.year < 1000:
        return
    written = form.format(m=_MONTH_NAMES[day.month - 1], d=day.day, y=day.year, mm=day.month)
    text = f"Signed on {written}."
    alignment, spans, _ = Grounder(text).match(day.isoformat())
    assert alignment in ("exact", "normalised")
    assert [text[s:e] for s, e in spans] == [written]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=80))
def test_property_ascii_fast_fold_is_the_general_fold(text: str) -> None:
    fast = Grounder(text)
    fast._fold_text()
    slow = Grounder(text + "é")  # not ASCII: the per-character path
    slow._fold_text()
    folded_slow = slow._folded or ""
    cut = len(folded_slow) - 1 if folded_slow.endswith("e") else len(folded_slow)
    assert fast._folded == folded_slow[:cut]
    assert fast._starts == slow._starts[:cut]
