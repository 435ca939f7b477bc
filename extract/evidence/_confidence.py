"""Per-value confidence from the reply's token logprobs.

How tokens map to a value: every token gets the interval of reply characters it wrote, and a value owns
every token that overlaps its characters in the reply: a string's characters between its quotes (its
quotes when it is empty), a number's or literal's characters. A token shared with the JSON around the
value (`"Bob` or `true}`) counts for the value. The intervals come from, in this order:

- the tokens' texts, when they concatenate to the content;
- their UTF-8 `bytes` (OpenAI, Cerebras), laid end to end, when every token carries them: a token that
  holds only some bytes of a character shares that character with its neighbours, exactly;
- their texts found in the content, when the content is a part of them (a server that trims leading
  whitespace, or leaves reasoning tokens out of the content but not out of the logprobs);
- their texts aligned over the content in order, when tokens lost characters (llama.cpp's server sends
  `bytes: null` and token texts decoded with undecodable bytes dropped, so a token holding part of a
  multi-byte character shows none of it): characters no token shows belong to the tokens that showed
  nothing in between (each of them gets all such characters, as their bytes are not known), or, when
  there are none, to the token before and the token after, which must split the character's bytes.
  Alignment stops at the first token that is not where the content says; characters past that point
  have no tokens, and their values no confidence.

How the score is formed: the joint probability of the value's tokens, exp(sum of their logprobs): the
probability the model gave to writing exactly this value once it had started it. For booleans and enum
members, where `top_logprobs` list alternatives beside the sampled token, the first token's probability
is renormalised over the alternatives that start one of the other allowed values, because it is the
choice between members that matters, not the tokenisation: p(first) / (p(first) + sum of p(alternative starting another member)),
times the probabilities of the value's remaining tokens. A value whose characters are not all covered
by tokens has no confidence (None). Pure.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from functools import reduce
from itertools import accumulate
from operator import add, attrgetter
from typing import Any

from extract._logprobs import Token, column

__all__ = ["TokenMap"]

_FLOAT = {float}
_TOKEN = {Token}
_TOKEN_TEXT = attrgetter("token")
_LOGPROB = attrgetter("logprob")

_MAX_GAP = 16  # characters no token shows, between two that do (each is a multi-byte character)
_REPLACEMENT = "\ufffd"  # what some servers write for a token's undecodable bytes


def _token_bytes(entry: Mapping[str, Any]) -> bytes | None:
    raw = entry.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in raw):
        return bytes(raw)
    return None


def _number(value: Any) -> float | None:
    if type(value) is float:  # what a decoded reply holds: one type check, then finiteness
        return value if -math.inf < value < math.inf else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class TokenMap:
    """The reply's tokens laid over its characters: token i wrote characters [starts[i], ends[i]); both
    lists are non-decreasing, and neighbours overlap by the characters whose bytes they share. Only the
    characters in [low, high) are covered; None from `build` when no token could be placed."""

    def __init__(
        self,
        starts: list[int],
        ends: list[int],
        entries: Sequence[Mapping[str, Any]],
        low: int,
        high: int,
    ) -> None:
        self._starts = starts
        self._ends = ends
        self._entries = entries
        self._low = low
        self._high = high
        self._logprobs: list[Any] | None = None  # each entry's "logprob", read on first use
        self._floats = False  # every one of them a float (so each value's sum needs no type check)
        self._records: bool | None = None  # entries a list of `Token` records (None: not known)

    @classmethod
    def build(cls, content: str, entries: Sequence[Mapping[str, Any]]) -> TokenMap | None:
        records = type(entries) is list and set(map(type, entries)) == _TOKEN
        # records: their texts read at C speed (a missing one reads UNSET, which is not a str either)
        texts = list(map(_TOKEN_TEXT, entries)) if records else column(entries, "token")
        made = cls._build(content, entries, texts)
        if made is not None:
            made._records = records
        return made

    @classmethod
    def _build(cls, content: str, entries: Sequence[Mapping[str, Any]], texts: list[Any]) -> TokenMap | None:
        try:
            joined = "".join(texts)  # every text is a str (TypeError otherwise)
            strings: list[str] = texts
        except TypeError:
            strings = [t if isinstance(t, str) else "" for t in texts]
            joined = "".join(strings)
        else:
            if joined == content:  # the tokens spell the content: laid end to end, nothing to clip
                summed = list(accumulate(map(len, strings)))
                return cls([0, *summed[:-1]], summed, entries, 0, len(content)) if entries else None
        by_bytes = cls._from_bytes(content, entries)
        if by_bytes is not None:
            return by_bytes
        shift = joined.rfind(content) if content else -1
        if shift >= 0:  # the content is a part of what the tokens wrote
            return cls._laid(strings, entries, -shift, len(content))
        return cls._aligned(content, strings, entries)

    @classmethod
    def _laid(
        cls, texts: Sequence[str], entries: Sequence[Mapping[str, Any]], origin: int, size: int
    ) -> TokenMap | None:
        """Tokens end to end from character `origin` (negative: the first tokens wrote text before the
        content), clipped to the content's `size` characters."""
        if origin == 0 and sum(map(len, texts)) == size:  # the tokens spell the content: nothing to clip
            summed = list(accumulate(map(len, texts)))
            return cls([0, *summed[:-1]], summed, entries, 0, size) if entries else None
        starts: list[int] = []
        ends: list[int] = []
        total = origin
        for text in texts:
            end = total + len(text)
            starts.append(min(max(total, 0), size))
            ends.append(min(max(end, 0), size))
            total = end
        return cls(starts, ends, entries, 0, size) if entries else None

    @classmethod
    def _from_bytes(cls, content: str, entries: Sequence[Mapping[str, Any]]) -> TokenMap | None:
        """Every token's bytes laid end to end; a token covers each character it holds a byte of."""
        pieces = [_token_bytes(e) for e in entries]
        if not pieces or any(p is None for p in pieces):
            return None
        encoded = content.encode("utf-8")
        joined = b"".join(pieces)  # type: ignore[arg-type]
        shift = 0 if joined == encoded else joined.rfind(encoded)
        if shift < 0 or not encoded:
            return None
        # the character each byte of the content belongs to
        owner: list[int] = []
        for index, char in enumerate(content):
            owner.extend([index] * len(char.encode("utf-8")))
        size = len(encoded)
        starts: list[int] = []
        ends: list[int] = []
        at = -shift
        for piece in pieces:
            first, last = max(at, 0), min(at + len(piece), size)  # type: ignore[arg-type]
            if first < last:
                starts.append(owner[first])
                ends.append(owner[last - 1] + 1)
            else:  # outside the content, or empty: a point (inside a character: that character)
                point = len(content) if first >= size else owner[first]
                starts.append(point)
                ends.append(max(point, ends[-1]) if ends else point)
            at += len(piece)  # type: ignore[arg-type]
        return cls(starts, ends, entries, 0, len(content))

    @classmethod
    def _aligned(
        cls, content: str, texts: Sequence[str], entries: Sequence[Mapping[str, Any]]
    ) -> TokenMap | None:
        """Token texts that lost the bytes of split characters, placed in order over the content."""
        starts: list[int] = []
        ends: list[int] = []
        pos = 0
        previous = -1  # the last token that showed text
        pending: list[int] = []  # tokens that showed nothing since then
        for index, text in enumerate(texts):
            visible = text.replace(_REPLACEMENT, "")
            starts.append(pos)
            ends.append(pos)
            if previous < 0 and pos == 0 and not content.startswith(visible):
                visible = visible.lstrip()  # whitespace the server trimmed from the content's start
            if not visible:
                pending.append(index)
                continue
            found = (
                pos
                if content.startswith(visible, pos)
                else content.find(visible, pos, pos + len(visible) + _MAX_GAP)
            )
            if found < 0 or not _unseen(content, pos, found):
                starts.pop()
                ends.pop()
                break
            starts[index], ends[index] = found, found + len(visible)
            _share(starts, ends, pos, found, previous, pending, index)
            pos, previous, pending = ends[index], index, []
        else:
            if pending and _unseen(content, pos, len(content)) and len(content) - pos <= _MAX_GAP:
                _share(starts, ends, pos, len(content), previous, pending, -1)
                pos = len(content)
        if not starts:
            return None
        return cls(starts, ends, entries[: len(starts)], 0, pos)

    def _logprob_column(self) -> list[Any]:
        """Each entry's logprob (at C speed for token records), and whether every one is a float."""
        entries = self._entries
        records = self._records
        if records is None:
            records = type(entries) is list and set(map(type, entries)) == _TOKEN
        if records:
            logprobs = list(map(_LOGPROB, entries))  # UNSET where missing: not a float
            self._floats = set(map(type, logprobs)) == _FLOAT
            if self._floats:
                return logprobs
        return column(entries, "logprob")

    def tokens(self, start: int, end: int) -> list[Mapping[str, Any]]:
        """The tokens overlapping characters [start, end) of the content."""
        first = bisect.bisect_right(self._ends, start)
        last = bisect.bisect_left(self._starts, end)
        return list(self._entries[first:last])

    def confidence(self, start: int, end: int, others: Sequence[str] = ()) -> float | None:
        """The joint probability of the tokens over [start, end); `others`: the JSON texts of the values
        the model could have chosen instead (booleans, enum members) for the first token's renormalising.
        None when tokens do not cover all of [start, end)."""
        if start < self._low or end > self._high or start >= end:
            return None
        first = bisect.bisect_right(self._ends, start)
        last = bisect.bisect_left(self._starts, end)  # `tokens`, inlined for the common case
        if first >= last:
            return None
        if not others:  # the common case: a sum of plain finite floats, added in order at C speed
            logprobs = self._logprobs
            if logprobs is None:
                logprobs = self._logprobs = self._logprob_column()
            picked = logprobs[first:last]
            if len(picked) == last - first and (self._floats or set(map(type, picked)) == _FLOAT):
                total = reduce(add, picked, 0.0)
                if math.isfinite(total):
                    return 1.0 if total >= 0.0 else math.exp(total)
        chosen = list(self._entries[first:last])
        total = 0.0
        for index, entry in enumerate(chosen):
            logprob = _number(entry.get("logprob"))
            if logprob is None:
                if (
                    entry.get("logprob") == -math.inf
                ):  # a token the model gave no chance (some servers say so)
                    return 0.0
                return None
            if index == 0 and others:
                total += _choice(entry, logprob, others)
            else:
                total += logprob
        return min(1.0, max(0.0, math.exp(total)))


def _unseen(content: str, start: int, end: int) -> bool:
    """Characters [start, end) could have been dropped from token texts: each is multi-byte in UTF-8."""
    return all(ord(c) > 0x7F for c in content[start:end])


def _share(
    starts: list[int],
    ends: list[int],
    start: int,
    end: int,
    previous: int,
    pending: list[int],
    following: int,
) -> None:
    """Characters [start, end) that no token showed: the empty tokens since the last token that showed text
    hold their bytes; without any, the tokens on either side split them (the one before ends later, the
    one after starts earlier)."""
    if end <= start:
        return
    if pending:
        for index in pending:
            starts[index], ends[index] = start, end
        return
    if previous >= 0:
        ends[previous] = end
    if following >= 0:
        starts[following] = start


def _choice(entry: Mapping[str, Any], logprob: float, others: Sequence[str]) -> float:
    """log of the first token's probability among the tokens that start an allowed value."""
    token = entry.get("token")
    top = entry.get("top_logprobs")
    if not isinstance(top, list) or not top:
        return logprob
    chosen = math.exp(logprob)
    rival = 0.0
    shown = False  # alternatives beside the sampled token: without any, nothing to renormalise over
    for alternative in top:
        if not isinstance(alternative, Mapping):
            continue
        text = alternative.get("token")
        alt_logprob = _number(alternative.get("logprob"))
        if not isinstance(text, str) or text == token or alt_logprob is None:
            continue
        shown = True
        stem = text.lstrip(' \t\n:"')
        if stem and any(o.startswith(stem) or stem.startswith(o) for o in others):
            rival += math.exp(alt_logprob)
    if chosen <= 0.0 or not shown:
        return logprob
    return math.log(chosen / (chosen + rival))
