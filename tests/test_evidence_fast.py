"""extract.evidence's fast paths give what the general ones give: the span scanner, the leaf walk, the
digit prefilter of number grounding, the FieldEvidence constructor and the reply's logprobs."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract import modes
from extract.evidence import FieldEvidence, Grounder, collect, leaves
from extract.evidence._collect import _NOT_JSON, _evidence, _whole_json
from extract.evidence._paths import _FAST_DEPTH, leaf_list
from extract.evidence._scan import _fast, _slow, locate, scan

_LEAF = (
    st.none()
    | st.booleans()
    | st.integers(-(10**25), 10**25)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
_JSON = st.recursive(
    _LEAF,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same types (1 and 1.0, 0.0 and -0.0 differ)."""
    return repr(a) == repr(b)


@settings(max_examples=400, deadline=None)
@given(
    _JSON,
    st.sampled_from([None, 0, 2]),
    st.booleans(),
    st.text(" \t\n\rx{[]}\"':,0-", max_size=3),
    st.text(' \t\n\r,]}x"0e.', max_size=3),
)
def test_property_fast_scan_is_the_general_scan(
    value: Any, indent: int | None, ascii_only: bool, before: str, after: str
) -> None:
    text = before + json.dumps(value, indent=indent, ensure_ascii=ascii_only) + after
    for start in range(len(before) + 1):
        fast, slow = _fast(text, start), _slow(text, start)
        if fast is not None:  # the fast reader answers only where the general one agrees exactly
            assert slow is not None
            assert _same(fast[0], slow[0]) and fast[1] == slow[1]
        found = scan(text, start)
        assert (found is None) == (slow is None)
        if found is not None and slow is not None:
            assert _same(found[0], slow[0]) and found[1] == slow[1]
    whole = _whole_json(text)  # the spanless read: orjson on a reply that is one JSON value and nothing else
    if whole is not _NOT_JSON:
        located = locate(text)
        assert located is not None and _same(whole, located[0])


@pytest.mark.parametrize(
    "text",
    [
        '{"n": 123456789012345678901234567890}',  # past 64 bits: orjson would give a float
        '{"f": 1e400}',  # past the double range
        '{"s": "\\ud800"}',  # an escaped lone surrogate orjson refuses
        '{"s": "x\udcffy"}',  # a lone surrogate in the text itself (bytes decoded with surrogateescape)
        '{"k\\"ey": [1, {"x": "\\u00e9"}], "a": {}}',  # an escaped key, an empty object
        '{"a":1,"a":{"b":2}}',  # a repeated key: the last value wins
        '[1 ,2 , "x" ,{ } ,[ ]]',
    ],
)
def test_scan_of_what_the_fast_reader_leaves_to_the_general_one(text: str) -> None:
    found = scan(text)
    slow = _slow(text, 0)
    assert found is not None and slow is not None
    assert _same(found[0], slow[0]) and found[1] == slow[1]
    assert isinstance(found[0], (dict, list))


def test_scan_refuses_broken_json_both_ways() -> None:
    for text in ('{"a" 1}', "[1, 2", '{"a": 012}', '{"a": "x\ny"}', "nul", '{"a": tru}'):
        assert scan(text) is None and _slow(text, 0) is None
    for text in ('{"a": 1,}', "[True, None,]"):  # what the reply parser repairs: read by the general reader
        found = scan(text)
        assert _fast(text, 0) is None and found is not None and found == _slow(text, 0)


def test_scan_too_deep_is_refused_by_both() -> None:
    text = "[" * 300 + "]" * 300
    assert scan(text) is None and locate(text) is None
    for depth in range(254, 260):  # the fast reader stops where the general one does
        for inner in ("", "1", '{"a": 1}', "{}"):
            for opener, closer in (("[", "]"), ('{"k":', "}")):
                text = opener * depth + (inner or ("[]" if opener == "[" else "{}")) + closer * depth
                fast, slow = _fast(text, 0), _slow(text, 0)
                assert (fast is None) == (slow is None) and (fast is None or fast[1] == slow[1])  # type: ignore[index]


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_property_leaf_list_is_leaves(value: Any) -> None:
    assert leaf_list(value) == list(leaves(value))


def test_leaf_list_past_the_recursion_limit_of_its_fast_walk() -> None:
    deep: Any = "x"
    for _ in range(_FAST_DEPTH + 50):
        deep = {"k": [deep]}
    found = leaf_list(deep)
    assert found == list(leaves(deep)) and len(found) == 1 and found[0][1] == "x"


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("0123456789 ,.a٣é\udcff𝟘"), max_size=40), st.decimals(0, 10**6, places=2)
)
def test_property_digit_prefilter_keeps_every_ascii_digit(text: str, number: Any) -> None:
    grounder = Grounder(text)
    grounder._number_spans(number.normalize())
    assert grounder._digits == "".join(re.findall(r"[0-9]+", text))


def test_fast_evidence_constructor_is_the_dataclass() -> None:
    made = _evidence("$.a", "x", [(1, 2)], "exact", 0.5, 1.0, True)
    assert made == FieldEvidence("$.a", "x", [(1, 2)], "exact", 0.5, 1.0, True)
    assert repr(made) == repr(FieldEvidence("$.a", "x", [(1, 2)], "exact", 0.5, 1.0, True))
    with pytest.raises(AttributeError):
        made.value = "y"  # type: ignore[misc]


def test_reply_logprobs_are_the_decoded_entries_or_copies_of_mappings() -> None:
    entries = [{"token": "{}", "logprob": -0.5}]
    data = {"choices": [{"message": {"content": "{}"}, "logprobs": {"content": entries}}]}
    reply = modes.read_reply(data)
    assert reply.logprobs == entries
    mixed = {"choices": [{"message": {"content": "{}"}, "logprobs": {"content": [*entries, 3, None]}}]}
    assert modes.read_reply(mixed).logprobs == entries


def test_collect_the_same_through_fast_and_general_readers() -> None:
    """A reply the fast reader refuses (a 20-digit integer) gets the same evidence as one it reads."""
    from pydantic import BaseModel

    from extract import Extractor

    class Row(BaseModel):
        name: str
        count: int

    text = "Ada Lovelace counted 12345678901234567890 and 7 things."
    with Extractor(base_url="http://127.0.0.1:9/v1", api_key="sk-x", model="llama3.1-8b") as ex:
        compiled = ex._compile(Row, ex.profile)
    for count in (7, 12345678901234567890):
        content = json.dumps({"name": "Ada Lovelace", "count": count})
        tokens = [{"token": c, "logprob": -0.01} for c in content]
        found = collect(compiled, text, content, Row(name="Ada Lovelace", count=count), tokens)
        assert found["$.name"].alignment == "exact" and found["$.name"].spans == [(0, 12)]
        assert found["$.count"].alignment == "exact" and found["$.count"].value == count
        assert found["$.count"].confidence == pytest.approx(math.exp(-0.01 * len(str(count))))


def test_collect_without_logprobs_reads_the_reply_as_the_spanned_path_does() -> None:
    from pydantic import BaseModel

    from extract import Extractor

    class Row(BaseModel):
        name: str
        tags: list[str]

    text = "Ada Lovelace, tags: math, poetry"
    with Extractor(base_url="http://127.0.0.1:9/v1", api_key="sk-x", model="llama3.1-8b") as ex:
        compiled = ex._compile(Row, ex.profile)
    value = Row(name="Ada Lovelace", tags=["math", "poetry"])
    body = '{"name": "Ada Lovelace", "tags": ["math", "poetry"]}'
    for content in (body, "<think>x</think>" + body, "Here: " + body + " done"):
        bare = collect(compiled, text, content, value, None)
        spanned = collect(compiled, text, content, value, [{"token": c, "logprob": 0.0} for c in content])
        assert list(bare) == list(spanned) == ["$.name", "$.tags[0]", "$.tags[1]"]
        for path, ev in bare.items():
            assert (ev.spans, ev.alignment, ev.confidence) == (
                spanned[path].spans,
                spanned[path].alignment,
                None,
            )
        assert all(spanned[path].confidence == 1.0 for path in spanned)


def _reference_confidence(chosen: list[dict[str, Any]]) -> float | None:
    """The joint probability as the per-token loop forms it (no choices to renormalise)."""
    if not chosen:
        return None
    total = 0.0
    for entry in chosen:
        logprob = entry.get("logprob")
        if not isinstance(logprob, (int, float)) or isinstance(logprob, bool) or not math.isfinite(logprob):
            return 0.0 if logprob == -math.inf else None
        total += float(logprob)
    return min(1.0, max(0.0, math.exp(total)))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text('ab{}":, é', min_size=1, max_size=3),
            st.floats(max_value=0.0) | st.sampled_from([-math.inf, math.nan, 0, True, "x", None]),
        ),
        min_size=1,
        max_size=12,
    ),
    st.data(),
)
def test_property_fast_token_sums_are_the_per_token_loop(tokens: list[tuple[str, Any]], data: Any) -> None:
    from extract.evidence._confidence import TokenMap

    entries = [{"token": text, "logprob": logprob} for text, logprob in tokens]
    content = "".join(text for text, _ in tokens)
    token_map = TokenMap.build(content, entries)
    assert token_map is not None
    start = data.draw(st.integers(0, len(content) - 1))
    end = data.draw(st.integers(start + 1, len(content)))
    found = token_map.confidence(start, end)
    expected = _reference_confidence(token_map.tokens(start, end))
    assert found == expected  # the same additions in the same order: equal to the last bit


@settings(max_examples=400, deadline=None)
@given(
    st.text(alphabet=st.sampled_from("0123456789 ,.-e٣\u00a0"), max_size=30),
    st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([0, -0.0, 1.5, 100, 0.05, 1e16, 1e-7, 12.5]),
    st.data(),
)
def test_property_number_digit_check_first_is_the_full_search(text: str, number: Any, data: Any) -> None:
    """A number whose significant digits are not in the text is `none` at once; the full search (its
    literal, then every written form) finds nothing for it either, and finds the same for the others."""
    from extract.evidence import _ground

    forms = [
        "",
        str(number),
        repr(number),
        f"{number:,}",
        f"{number:,.2f}",
        f"{number:.3f}".replace(".", ","),
    ]
    cut = data.draw(st.integers(0, len(text)))
    text = text[:cut] + data.draw(st.sampled_from(forms)) + text[cut:]
    fast = Grounder(text).match(number)
    plain = _ground._PLAIN_LITERAL
    _ground._PLAIN_LITERAL = re.compile(r"(?!)")  # the check off: every number searched in full
    try:
        full = Grounder(text).match(number)
    finally:
        _ground._PLAIN_LITERAL = plain
    assert fast == full


_JSON_NUMBER = st.from_regex(r"\A-?(0|[1-9][0-9]{0,24})(\.[0-9]{1,24})?([eE][-+]?[0-9]{1,4})?\Z")


@settings(max_examples=400, deadline=None)
@given(_JSON_NUMBER, st.text(max_size=6))
def test_property_risky_number_check_flags_every_number_the_general_one_does(literal: str, word: str) -> None:
    from extract._json import _RISKY
    from extract.evidence._scan import RISKY_NUMBER

    body = json.dumps({"w": word, "n": 0}).replace("0}", literal + "}")
    assert (RISKY_NUMBER.search(literal) is None) == (_RISKY.search(literal) is None)
    if _RISKY.search(literal) is not None:
        assert RISKY_NUMBER.search(body) is not None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text('ab{}":, é', min_size=1, max_size=3) | st.none() | st.just(3),
            st.floats(max_value=0.0) | st.sampled_from([-math.inf, math.nan, 0, None, "missing"]),
        ),
        min_size=1,
        max_size=12,
    ),
    st.text('ab{}":, é', max_size=4),
    st.data(),
)
def test_property_token_records_give_what_dict_entries_give(
    tokens: list[tuple[Any, Any]], extra: str, data: Any
) -> None:
    """The token map's C-speed reads of `Token` records (texts, logprobs, the all-floats flag) place and
    score the same tokens as the `get` per entry of plain dicts."""
    from extract._logprobs import Token
    from extract.evidence._confidence import TokenMap

    dicts: list[dict[str, Any]] = []
    records: list[Token] = []
    for text, logprob in tokens:
        entry: dict[str, Any] = {"token": text} if isinstance(text, str) or text is None else {}
        if logprob != "missing":
            entry["logprob"] = logprob
        dicts.append(entry)
        records.append(Token(**entry))
    content = "".join(t for t, _ in tokens if isinstance(t, str))
    content = data.draw(st.sampled_from([content, content + extra, content[1:], extra]))
    by_dicts, by_records = TokenMap.build(content, dicts), TokenMap.build(content, records)
    assert (by_dicts is None) == (by_records is None)
    if by_dicts is None or by_records is None or not content:
        return
    for _ in range(3):
        start = data.draw(st.integers(0, len(content) - 1))
        end = data.draw(st.integers(start + 1, len(content)))
        fast, slow = by_records.confidence(start, end), by_dicts.confidence(start, end)
        assert fast == slow or (
            fast is not None and slow is not None and math.isnan(fast) and math.isnan(slow)
        )
