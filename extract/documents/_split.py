"""Split a document into overlapping chunks sized in tokens, at paragraph, sentence or word boundaries. Pure.

Each chunk is a (start, end) range of character offsets into the original text, so anything found in a
chunk maps back exactly. The chunks cover the text in order; each begins where the previous one's
overlap begins (a word boundary at most `overlap_tokens` before the previous end), so a passage that
straddles a cut appears whole in at least one chunk when it is no longer than the overlap.

Where a chunk ends, in order of preference: the last paragraph break (a blank line), the last line or
sentence end, the last whitespace, within the budget and past half of it; a word longer than a whole
chunk is cut where the budget ends (the only cut inside a word).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from extract.documents._tokens import estimate_tokens, max_chars
from extract.errors import ConfigurationError

__all__ = ["Chunk", "split_text"]

_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_SENTENCE = re.compile(r"[.!?;:\u3002\uff01\uff1f][\"')\]]*\s+|\n\s*")
_SPACE = re.compile(r"\s+")
_WORD_START = re.compile(r"\s+(?=\S)")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Characters [start, end) of the document."""

    start: int
    end: int

    def text(self, document: str) -> str:
        return document[self.start : self.end]


def _fit(text: str, start: int, limit: int, budget: int, estimate: Callable[[str], int]) -> int:
    """The largest end <= limit with estimate(text[start:end]) <= budget (binary search on characters)."""
    if estimate(text[start:limit]) <= budget:
        return limit
    low, high = start + 1, limit  # estimate(one character) <= budget: budget >= 2 tokens is checked
    while low < high:
        mid = (low + high + 1) // 2
        if estimate(text[start:mid]) <= budget:
            low = mid
        else:
            high = mid - 1
    return low


def _last_break(pattern: re.Pattern[str], text: str, low: int, high: int) -> int | None:
    """The end of the last match of `pattern` inside text[low:high] (a cut after the separator).

    Searched from the end in growing windows, so the cost is the distance to the break, not the window's
    size. Exact for these patterns: each ends where a whitespace run ends, so a match straddling a
    window's start ends no later than one found inside it."""
    step = 256
    while True:
        start = max(low, high - step)
        best = None
        for match in pattern.finditer(text, start, high):
            best = match.end()
        if best is not None or start == low:
            return best
        step *= 4


def _cut(text: str, start: int, limit: int) -> int:
    """Where to end a chunk that may not pass `limit`: the best boundary past the window's middle."""
    floor = start + max((limit - start) // 2, 1)
    for pattern in (_PARAGRAPH, _SENTENCE, _SPACE):
        if pattern is _PARAGRAPH and text.find("\n", floor, limit) < 0:
            continue  # no line break at all: skip the regex scan
        found = _last_break(pattern, text, floor, limit)
        if found is not None and found > start:
            return found
    return limit


def _overlap_start(text: str, start: int, end: int, overlap: int, estimate: Callable[[str], int]) -> int:
    """Where the next chunk begins: the first word start in the last `overlap` tokens of [start, end)."""
    if overlap <= 0:
        return end
    low = _fit_back(text, max(start + 1, end - max_chars(overlap)), end, overlap, estimate)
    if low >= end:
        return end
    if text[low - 1].isspace() and not text[low].isspace():
        return low
    match = _WORD_START.search(text, low, end)
    return match.end() if match is not None else end


def _fit_back(text: str, low: int, end: int, budget: int, estimate: Callable[[str], int]) -> int:
    """The smallest begin >= low with estimate(text[begin:end]) <= budget."""
    if estimate(text[low:end]) <= budget:
        return low
    lo, hi = low, end
    while lo < hi:
        mid = (lo + hi) // 2
        if estimate(text[mid:end]) <= budget:
            hi = mid
        else:
            lo = mid + 1
    return lo


def split_text(
    text: str,
    chunk_tokens: int,
    overlap_tokens: int = 0,
    *,
    estimate: Callable[[str], int] = estimate_tokens,
) -> list[Chunk]:
    """Chunks of at most `chunk_tokens` (by `estimate`) covering `text`, consecutive ones sharing at most
    `overlap_tokens`. An empty text is one empty chunk."""
    if chunk_tokens < 2:
        raise ConfigurationError(f"chunk_tokens must be at least 2, got {chunk_tokens}")
    if not 0 <= overlap_tokens <= chunk_tokens // 2:
        raise ConfigurationError(
            f"overlap_tokens must be between 0 and half of chunk_tokens ({chunk_tokens // 2}), got {overlap_tokens}"
        )
    n = len(text)
    chunks: list[Chunk] = []
    start = 0
    while True:
        limit = _fit(text, start, min(n, start + max_chars(chunk_tokens)), chunk_tokens, estimate)
        end = n if limit >= n else _cut(text, start, limit)
        chunks.append(Chunk(start, end))
        if end >= n:
            return chunks
        following = _overlap_start(text, start, end, overlap_tokens, estimate)
        start = following if following > start else end
