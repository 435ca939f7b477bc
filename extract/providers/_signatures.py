"""Error responses as data: which ones refuse an output mode, which ones say "context too long". Pure.

Providers word the same refusal differently and change the wording; a signature is a small table entry
(statuses, codes, message words, raw-body markers), so a new wording is a new entry, not a new branch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from extract.errors import error_fields

__all__ = ["ContextOverflow", "ErrorSignature", "error_fields", "parse_context_overflow"]


@dataclass(frozen=True, slots=True)
class ErrorSignature:
    """One kind of error response.

    It matches when the status is one of `statuses`, the error's `param` (when it names one) contains
    one of `params` (empty: any param), and at least one of: the `code` is in `codes`, the lower-cased
    message contains one of `message_words`, the raw body contains one of `raw_markers`.
    """

    statuses: frozenset[int]
    codes: frozenset[str] = frozenset()
    message_words: tuple[str, ...] = ()
    raw_markers: tuple[bytes, ...] = ()
    params: tuple[str, ...] = ()

    def matches(self, status_code: int, fields: dict[str, str | None], raw: bytes) -> bool:
        if status_code not in self.statuses:
            return False
        param = fields.get("param") or ""
        if self.params and param and not any(p in param for p in self.params):
            return False
        if fields.get("code") in self.codes:
            return True
        message = (fields.get("message") or "").lower()
        if any(word in message for word in self.message_words):
            return True
        return any(marker in raw for marker in self.raw_markers)


@dataclass(frozen=True, slots=True)
class ContextOverflow:
    """A request longer than the model's context: the limit and the request's length, in tokens, when
    the server said them (None when it did not)."""

    limit: int | None
    length: int | None

    @property
    def excess(self) -> int | None:
        """How many tokens too many, when both numbers are known."""
        if self.limit is None or self.length is None:
            return None
        return max(0, self.length - self.limit)


# (pattern, group of the length, group of the limit); the first that matches wins.
_NUMBERS: Final[tuple[tuple[re.Pattern[str], int, int], ...]] = (
    # Cerebras: "Current length is 42328 while limit is 40000"
    (re.compile(r"current length is (\d+)\D{1,40}?limit is (\d+)", re.IGNORECASE), 1, 2),
    # OpenAI: "maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens"
    (
        re.compile(r"maximum context length is (\d+)\D{1,80}?(?:resulted in|requested) (\d+)", re.IGNORECASE),
        2,
        1,
    ),
    # llama.cpp: "Requested tokens (5000) exceed context window of 4096"
    (re.compile(r"requested tokens \((\d+)\)\D{1,40}?context window of (\d+)", re.IGNORECASE), 1, 2),
)


def parse_context_overflow(message: str) -> ContextOverflow:
    """The numbers in a "context too long" message; both None when the wording is not one we know."""
    head = message[:2000]  # a server's message is short; never scan an echoed document
    for pattern, length_group, limit_group in _NUMBERS:
        found = pattern.search(head)
        if found is not None:
            return ContextOverflow(limit=int(found[limit_group]), length=int(found[length_group]))
    return ContextOverflow(limit=None, length=None)
