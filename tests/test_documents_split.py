"""Splitting a document into token-sized chunks: coverage, overlap, boundaries, exact offsets (properties)."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.documents import Chunk, estimate_tokens, split_text
from extract.errors import ConfigurationError

_WORD = st.text(alphabet="abcxyz0123é中.,!?", min_size=1, max_size=8)
_SEP = st.sampled_from([" ", "  ", "\n", "\n\n", ". ", "! ", "\t", "\n \n"])
_DOCS = st.lists(st.tuples(_WORD, _SEP), max_size=300).map(lambda pairs: "".join(w + s for w, s in pairs))
_WORD_START = re.compile(r"(?<!\S)\S")


def _word_starts(text: str, low: int, high: int) -> list[int]:
    return [m.start() for m in _WORD_START.finditer(text, low, high)]


@settings(max_examples=300, deadline=None)
@given(_DOCS, st.integers(min_value=30, max_value=300), st.data())
def test_chunks_cover_fit_overlap_and_cut_at_boundaries(text: str, tokens: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(min_value=0, max_value=tokens // 2))
    chunks = split_text(text, tokens, overlap)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for chunk in chunks:
        assert chunk.text(text) == text[chunk.start : chunk.end]
        assert estimate_tokens(chunk.text(text)) <= tokens
    # offsets map back exactly: the new part of each chunk, in order, is the document
    rebuilt = chunks[0].text(text) + "".join(text[a.end : b.end] for a, b in itertools.pairwise(chunks))
    assert rebuilt == text
    for prev, nxt in itertools.pairwise(chunks):
        assert prev.start < nxt.start <= prev.end < nxt.end
        # a cut is at whitespace (every word here is far shorter than a chunk)
        assert text[prev.end - 1].isspace() or text[prev.end].isspace()
        shared = text[nxt.start : prev.end]
        assert estimate_tokens(shared) <= overlap
        if nxt.start < prev.end:
            assert nxt.start in _word_starts(text, nxt.start, nxt.start + 1)
        # the overlap is as large as configured: no earlier word start would still fit
        earlier = [p for p in _word_starts(text, prev.start + 1, nxt.start) if p < prev.end]
        if earlier and overlap > 0:
            assert estimate_tokens(text[earlier[-1] : prev.end]) > overlap


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abc .\n", min_size=1, max_size=60), min_size=2, max_size=40))
def test_paragraph_breaks_are_preferred(paragraphs: list[str]) -> None:
    text = "\n\n".join(paragraphs)
    tokens = 40
    for chunk in split_text(text, tokens, 0)[:-1]:
        limit = min(len(text), chunk.start + 3 * tokens)  # ASCII: exactly 3 characters a token
        floor = chunk.start + max((limit - chunk.start) // 2, 1)
        breaks = [m.end() for m in re.finditer(r"\n[ \t]*\n\s*", text[:limit]) if m.start() >= floor]
        if breaks:
            assert chunk.end == breaks[-1]


def test_short_and_empty_texts_are_one_chunk() -> None:
    assert split_text("", 10) == [Chunk(0, 0)]
    assert split_text("hello world", 10, 2) == [Chunk(0, 11)]


def test_a_word_longer_than_a_chunk_is_cut_inside() -> None:
    text = "x" * 100
    chunks = split_text(text, 10, 0)
    assert [c.end - c.start for c in chunks] == [30, 30, 30, 10]


def test_estimate_is_conservative() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 2  # a tokenizer spends ~1 token on 4 ASCII characters
    assert estimate_tokens("中文") == 2  # ~1 token per CJK character


@pytest.mark.parametrize(("tokens", "overlap"), [(1, 0), (10, 6), (10, -1)])
def test_bad_sizes_are_configuration_errors(tokens: int, overlap: int) -> None:
    with pytest.raises(ConfigurationError, match="tokens"):
        split_text("some text", tokens, overlap)
