"""Per-value confidence from the reply's token logprobs.

How tokens map to a value: the tokens' UTF-8 bytes are laid end to end over the reply content (the
`bytes` each entry carries, else the token text encoded), and a value owns every token that overlaps its
characters in the reply: a string's characters between its quotes (its quotes when it is empty), a
number's or literal's characters. A token shared with the JSON around the value (`"Bob` or `true}`)
counts for the value.

How the score is formed: the joint probability of the value's tokens, exp(sum of their logprobs): the
probability the model gave to writing exactly this value once it had started it. For booleans and enum
members, where `top_logprobs` were returned, the first token's probability is renormalised over the
alternatives that start one of the other allowed values, because it is the choice between members that
matters, not the tokenisation: p(first) / (p(first) + sum of p(alternative starting another member)),
times the probabilities of the value's remaining tokens. Pure.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from functools import reduce
from itertools import accumulate
from operator import add, itemgetter
from typing import Any

__all__ = ["TokenMap"]

_TOKEN = itemgetter("token")
_LOGPROB = itemgetter("logprob")
_FLOAT = {float}


def _token_bytes(entry: Mapping[str, Any]) -> bytes:
    raw = entry.get("bytes")
    if isinstance(raw, list) and all(isinstance(b, int) and 0 <= b <= 255 for b in raw):
        return bytes(raw)
    token = entry.get("token")
    return token.encode("utf-8") if isinstance(token, str) else b""


def _number(value: Any) -> float | None:
    if type(value) is float:  # what a decoded reply holds: one type check, then finiteness
        return value if -math.inf < value < math.inf else None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class TokenMap:
    """The reply's tokens laid over its characters; None from `build` when they do not cover the reply."""

    def __init__(
        self, starts: list[int], entries: Sequence[Mapping[str, Any]], mid: list[bool] | None = None
    ) -> None:
        self._starts = starts  # character offset where each token starts
        self._entries = entries
        self._mid = mid  # byte-level tokens: which start inside a character
        self._logprobs: list[Any] | None = None  # each entry's "logprob", read on first use

    @classmethod
    def build(cls, content: str, entries: Sequence[Mapping[str, Any]]) -> TokenMap | None:
        try:  # read at C speed where every entry has a token (a decoded reply's dicts)
            texts: list[Any] = list(map(_TOKEN, entries))
        except (KeyError, TypeError):
            texts = [e.get("token") for e in entries]
        try:
            joined = "".join(texts)
        except TypeError:  # an entry without a token string
            joined = None
        if joined == content:
            starts = [0, *accumulate(map(len, texts))]
            starts.pop()
            return cls(starts, entries)
        return cls._from_bytes(content, entries)

    @classmethod
    def _from_bytes(cls, content: str, entries: Sequence[Mapping[str, Any]]) -> TokenMap | None:
        """Tokens that split a character between them (byte-level tokens): laid out by their bytes."""
        encoded = content.encode("utf-8")
        joined = bytearray()
        byte_starts: list[int] = []
        for entry in entries:
            byte_starts.append(len(joined))
            joined += _token_bytes(entry)
        shift = 0
        if bytes(joined) != encoded:
            shift = bytes(joined).find(encoded)  # content the server trimmed or prefixed
            if shift < 0 or not encoded:
                return None
        char_bytes = [0]
        total = 0
        for char in content:
            total += len(char.encode("utf-8"))
            char_bytes.append(total)
        # the character each token starts in; a token starting inside a character shares it with the one before
        starts: list[int] = []
        mid: list[bool] = []
        for b in byte_starts:
            at = b - shift
            index = max(bisect.bisect_right(char_bytes, at) - 1, -1) if at >= 0 else -1
            starts.append(index)
            mid.append(at >= 0 and char_bytes[index] != at)
        return cls(starts, entries, mid)

    def _range(self, start: int, end: int) -> tuple[int, int]:
        """The indices [first, last) of the tokens overlapping characters [start, end) of the content."""
        first = max(bisect.bisect_right(self._starts, start) - 1, 0)
        if self._mid is not None:
            while first > 0 and self._mid[first] and self._starts[first] >= start:
                first -= 1  # the token before holds the first bytes of this character
        return first, bisect.bisect_left(self._starts, end)

    def tokens(self, start: int, end: int) -> list[Mapping[str, Any]]:
        """The tokens overlapping characters [start, end) of the content."""
        first, last = self._range(start, end)
        return list(self._entries[first:last])

    def confidence(self, start: int, end: int, others: Sequence[str] = ()) -> float | None:
        """The joint probability of the tokens over [start, end); `others`: the JSON texts of the values
        the model could have chosen instead (booleans, enum members) for the first token's renormalising."""
        starts = self._starts
        first = max(bisect.bisect_right(starts, start) - 1, 0)
        if self._mid is not None:
            first = self._range(start, end)[0]
        last = bisect.bisect_left(starts, end)  # `_range`, inlined for the common case
        if first >= last:
            return None
        if not others:  # the common case: a sum of plain floats, added in order at C speed
            logprobs = self._logprobs
            if logprobs is None:
                try:
                    logprobs = self._logprobs = list(map(_LOGPROB, self._entries))
                except (KeyError, TypeError):
                    logprobs = self._logprobs = []
            chosen = logprobs[first:last]
            if len(chosen) == last - first and set(map(type, chosen)) == _FLOAT:
                total = reduce(add, chosen, 0.0)
                if math.isfinite(total):
                    return 1.0 if total >= 0.0 else math.exp(total)
        return self._confidence(list(self._entries[first:last]), others)

    def _confidence(self, chosen: list[Mapping[str, Any]], others: Sequence[str]) -> float | None:
        total = 0.0
        for index, entry in enumerate(chosen):
            logprob = _number(entry.get("logprob"))
            if logprob is None:
                return None
            if index == 0 and others:
                total += _choice(entry, logprob, others)
            else:
                total += logprob
        return min(1.0, max(0.0, math.exp(total)))


def _choice(entry: Mapping[str, Any], logprob: float, others: Sequence[str]) -> float:
    """log of the first token's probability among the tokens that start an allowed value."""
    token = entry.get("token")
    top = entry.get("top_logprobs")
    if not isinstance(top, list) or not top:
        return logprob
    chosen = math.exp(logprob)
    rival = 0.0
    for alternative in top:
        if not isinstance(alternative, Mapping):
            continue
        text = alternative.get("token")
        alt_logprob = _number(alternative.get("logprob"))
        if not isinstance(text, str) or text == token or alt_logprob is None:
            continue
        stem = text.lstrip(' \t\n:"')
        if stem and any(o.startswith(stem) or stem.startswith(o) for o in others):
            rival += math.exp(alt_logprob)
    if chosen <= 0.0:
        return logprob
    return math.log(chosen / (chosen + rival))
