"""The token-to-value mapping of extract.evidence._confidence, as a property: any JSON value, rendered and
cut into random tokens, gives every leaf exp(sum of the logprobs of the tokens overlapping it), whether
the tokens carry their UTF-8 bytes (OpenAI, Cerebras), only text cut at character boundaries, or text
with the bytes of split characters dropped (llama.cpp's server: `bytes: null`)."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract.evidence._confidence import TokenMap
from extract.evidence._paths import leaves
from extract.evidence._scan import locate, scan

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**9), 10**9)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)
SEPARATORS = st.sampled_from([(",", ":"), (", ", ": ")])


def _value_chars(content: str, span: tuple[int, int]) -> tuple[int, int]:
    """What collect scores: a string's characters between its quotes (its quotes when it is empty)."""
    start, end = span
    if content[start] == '"' and end - start > 2:
        return start + 1, end - 1
    return start, end


def _byte_range(content: str, start: int, end: int) -> tuple[int, int]:
    return len(content[:start].encode()), len(content[:end].encode())


def _pieces(data: st.DataObject, raw: bytes, boundaries: list[int]) -> list[bytes]:
    cuts = sorted(
        set(data.draw(st.lists(st.sampled_from(boundaries), max_size=len(raw)))) if boundaries else []
    )
    edges = [0, *cuts, len(raw)]
    return [raw[a:b] for a, b in itertools.pairwise(edges) if b > a]


def _expected(pieces: list[bytes], logprobs: list[float], lo: int, hi: int, shift: int) -> float:
    total, at = 0.0, -shift
    for piece, logprob in zip(pieces, logprobs, strict=True):
        if at < hi and lo < at + len(piece):
            total += logprob
        at += len(piece)
    return math.exp(total)


def _leaf_spans(content: str) -> list[tuple[Any, tuple[int, int]]]:
    found = scan(content)
    assert found is not None
    value, spans = found
    return [(leaf, _value_chars(content, spans[path])) for path, leaf in leaves(value)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=JSON,
    separators=SEPARATORS,
    prefix=st.sampled_from(["", "\n  ", "<think>so</think>"]),
    data=st.data(),
)
def test_tokens_with_bytes_give_every_leaf_its_overlapping_tokens(
    value: Any, separators: tuple[str, str], prefix: str, data: st.DataObject
) -> None:
    content = json.dumps(value, ensure_ascii=False, separators=separators)
    raw = (prefix + content).encode()
    pieces = _pieces(data, raw, list(range(1, len(raw))))  # anywhere, inside characters too
    logprobs = data.draw(st.lists(st.floats(-3.0, 0.0), min_size=len(pieces), max_size=len(pieces)))
    entries = [
        {"token": p.decode("utf-8", "replace"), "bytes": list(p), "logprob": lp}
        for p, lp in zip(pieces, logprobs, strict=True)
    ]
    mapped = TokenMap.build(content, entries)  # the server left the prefix out of the content
    assert mapped is not None
    shift = len(prefix.encode())
    for _, (start, end) in _leaf_spans(content):
        lo, hi = _byte_range(content, start, end)
        assert mapped.confidence(start, end) == pytest.approx(_expected(pieces, logprobs, lo, hi, shift))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    value=JSON, separators=SEPARATORS, prefix=st.sampled_from(["", "\n", "<think>so</think>"]), data=st.data()
)
def test_tokens_as_text_give_every_leaf_its_overlapping_tokens(
    value: Any, separators: tuple[str, str], prefix: str, data: st.DataObject
) -> None:
    content = json.dumps(value, ensure_ascii=False, separators=separators)
    written = prefix + content
    boundaries = [len(written[:i].encode()) for i in range(1, len(written))]  # between characters only
    pieces = _pieces(data, written.encode(), boundaries)
    logprobs = data.draw(st.lists(st.floats(-3.0, 0.0), min_size=len(pieces), max_size=len(pieces)))
    entries = [{"token": p.decode(), "logprob": lp} for p, lp in zip(pieces, logprobs, strict=True)]
    mapped = TokenMap.build(content, entries)
    assert mapped is not None
    shift = len(prefix.encode())
    for _, (start, end) in _leaf_spans(content):
        lo, hi = _byte_range(content, start, end)
        assert mapped.confidence(start, end) == pytest.approx(_expected(pieces, logprobs, lo, hi, shift))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=JSON, separators=SEPARATORS, data=st.data())
def test_tokens_that_dropped_split_bytes_still_cover_every_leaf(
    value: Any, separators: tuple[str, str], data: st.DataObject
) -> None:
    """llama.cpp's server: `bytes: null`, token texts decoded with undecodable bytes dropped. Every leaf
    gets a confidence, at most that of the tokens that surely overlap it (those showing its characters)."""
    content = json.dumps(value, ensure_ascii=False, separators=separators)
    raw = content.encode()
    pieces = _pieces(data, raw, list(range(1, len(raw))))
    logprobs = data.draw(st.lists(st.floats(-3.0, -0.01), min_size=len(pieces), max_size=len(pieces)))
    entries = [
        {"token": p.decode("utf-8", "ignore"), "bytes": None, "logprob": lp}
        for p, lp in zip(pieces, logprobs, strict=True)
    ]
    mapped = TokenMap.build(content, entries)
    assert mapped is not None
    for _, (start, end) in _leaf_spans(content):
        score = mapped.confidence(start, end)
        assert score is not None and 0.0 < score <= 1.0
        around = content[max(start - 1, 0) : end + 1]
        if around.isascii():  # characters every token shows whole: exactly the overlapping tokens
            lo, hi = _byte_range(content, start, end)
            assert score == pytest.approx(_expected(pieces, logprobs, lo, hi, 0))


def test_llamacpp_tokens_with_a_split_emoji_and_a_split_accent() -> None:
    # as llama-cpp-python's server sends them: an emoji in two tokens that show nothing, an accent
    # whose bytes two tokens share (each shows the rest of its text), `bytes` null
    content = '{"name":"Café 🎉","city":"東京"}'
    pieces = [
        b'{"', b"name", b'":"', b"Caf\xc3", b"\xa9 ", b"\xf0\x9f", b"\x8e\x89", b'","', b"city", b'":"',
        b"\xe6\x9d", b"\xb1\xe4\xba\xac", b'"}',
    ]  # fmt: skip
    assert b"".join(pieces) == content.encode()
    entries = [
        {"token": p.decode("utf-8", "ignore"), "bytes": None, "logprob": -0.1 * (i + 1)}
        for i, p in enumerate(pieces)
    ]
    mapped = TokenMap.build(content, entries)
    assert mapped is not None
    start = content.index("Café")
    # "Caf\xc3", "\xa9 ", and the two halves of the emoji
    assert mapped.confidence(start, start + len("Café 🎉")) == pytest.approx(math.exp(-0.1 * (4 + 5 + 6 + 7)))
    assert mapped.confidence(start + 3, start + 4) == pytest.approx(math.exp(-0.1 * (4 + 5)))  # é
    start = content.index("東")
    assert mapped.confidence(start, start + 2) == pytest.approx(math.exp(-0.1 * (11 + 12)))


def test_tokens_that_stop_matching_leave_the_rest_without_confidence() -> None:
    content = '{"a":"x","b":"y"}'
    entries = [{"token": t, "logprob": -0.5} for t in ['{"', "a", '":"', "x", '","', "Q", '":"', "y", '"}']]
    mapped = TokenMap.build(content, entries)
    assert mapped is not None
    assert mapped.confidence(content.index("x"), content.index("x") + 1) == pytest.approx(math.exp(-0.5))
    assert mapped.confidence(content.index("y"), content.index("y") + 1) is None


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('Sure {here} it is:\n```json\n{"a": [1, 2]}\n```\nThanks', {"a": [1, 2]}),
        ('[note] then {"a": "b"} done', {"a": "b"}),
        ('<think>{"draft": 1}</think>\n{"a": 2}', {"a": 2}),
        ('{"a": 1, }', None),  # repaired by the reply parser: not there as written, so no spans
    ],
)
def test_locate_finds_the_value_the_reply_parser_read(content: str, expected: Any) -> None:
    found = locate(content)
    if expected is None:
        assert found is None
        return
    assert found is not None
    value, spans = found
    assert value == expected
    start, end = spans[()]
    assert json.loads(content[start:end]) == expected


def test_a_token_given_no_chance_scores_zero_and_a_missing_logprob_none() -> None:
    content = '{"a":"x","b":"y"}'
    entries: list[dict[str, Any]] = [
        {"token": t, "logprob": -0.5} for t in ['{"', "a", '":"', "x", '","', "b", '":"']
    ]
    entries += [{"token": "y", "logprob": -math.inf}, {"token": '"}', "logprob": None}]
    mapped = TokenMap.build(content, entries)
    assert mapped is not None
    assert mapped.confidence(content.index("x"), content.index("x") + 1) == pytest.approx(math.exp(-0.5))
    assert mapped.confidence(content.index("y"), content.index("y") + 1) == 0.0
    assert mapped.confidence(len(content) - 1, len(content)) is None
