"""Build one string matching a regular expression, for `pattern` in schemas the test server answers.

Walks the parse tree of Python's own regex parser and takes a simple path (first branch, few repeats),
stretching repeats or padding an unanchored end when a length is asked for. Good for the identifiers,
dates and codes schemas usually pin down. Every result is verified (`re.search` and the length bounds) before
it is returned; None means no verified example (lookarounds, back-references to odd groups, ...).
"""

from __future__ import annotations

import re
from typing import Any

from extract._ecma_regex import RegexError, compile_ecma
from extract._sre import sre_parser

__all__ = ["example_for"]

_parser = sre_parser

_MAX_LENGTH = 2000
_CATEGORY_CHAR = {
    "CATEGORY_DIGIT": "1",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": "-",
}
_NEGATED_CANDIDATES = "aZ0x_-. "


_STRETCHES = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144)


def example_for(pattern: str, *, min_length: int = 0, max_length: int | None = None) -> str | None:
    """A string `re.search(pattern, s)` accepts, with min_length <= len(s) <= max_length; None if none found."""
    try:
        search = compile_ecma(pattern).search  # linear time: a catastrophic pattern must not stall the server
        tree = _parser.parse(pattern)
    except (re.error, RegexError, RecursionError, OverflowError):
        return None
    high = _MAX_LENGTH if max_length is None else min(max_length, _MAX_LENGTH)
    if min_length > high:
        return None
    seen: set[str] = set()
    for stretch in _STRETCHES:
        try:
            base = _emit(list(tree), {}, stretch)
        except (_Unsupported, RecursionError):
            return None
        if base in seen:
            continue
        seen.add(base)
        need = max(min_length - len(base), 0)
        for text in (base, base + "x" * need, "x" * need + base, base + " " * need):
            if min_length <= len(text) <= high and search(text):
                return text
    return None


class _Unsupported(Exception):
    pass


def _emit(items: list[tuple[Any, Any]], groups: dict[int, str], stretch: int = 0) -> str:
    out: list[str] = []
    for op, av in items:
        name = op.name
        if name == "LITERAL":
            out.append(chr(av))
        elif name == "NOT_LITERAL":
            out.append("a" if av != ord("a") else "b")
        elif name == "ANY":
            out.append("x")
        elif name == "IN":
            out.append(_from_set(av))
        elif name == "CATEGORY":
            out.append(_CATEGORY_CHAR.get(av.name, "a"))
        elif name == "BRANCH":
            out.append(_emit(list(av[1][0]), groups, stretch))
        elif name == "SUBPATTERN":
            group, body = av[0], av[-1]
            text = _emit(list(body), groups, stretch)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = av
            count = low if low > 0 else (1 if high != 0 else 0)
            if stretch:
                count = max(low, min(high, stretch))
            if count > _MAX_LENGTH:
                raise _Unsupported("repeat too long")
            out.append(_emit(list(body), groups, stretch) * count)
        elif name == "GROUPREF":
            out.append(groups.get(av, ""))
        elif name in ("AT", "ASSERT", "ASSERT_NOT"):
            continue
        else:
            raise _Unsupported(name)
        if sum(map(len, out)) > _MAX_LENGTH:
            raise _Unsupported("too long")
    return "".join(out)


def _from_set(members: list[tuple[Any, Any]]) -> str:
    if members and members[0][0].name == "NEGATE":
        return _outside(members[1:])
    for op, av in members:
        name = op.name
        if name == "LITERAL":
            return chr(av)
        if name == "RANGE":
            return chr(av[0])
        if name == "CATEGORY":
            return _CATEGORY_CHAR.get(av.name, "a")
    raise _Unsupported("empty set")


def _outside(members: list[tuple[Any, Any]]) -> str:
    for char in _NEGATED_CANDIDATES:
        if not any(_in_member(char, op.name, av) for op, av in members):
            return char
    raise _Unsupported("negated set covers every candidate")


def _in_member(char: str, name: str, av: Any) -> bool:
    code = ord(char)
    if name == "LITERAL":
        return bool(code == av)
    if name == "RANGE":
        return bool(av[0] <= code <= av[1])
    if name == "CATEGORY":
        probe = {"CATEGORY_DIGIT": r"\d", "CATEGORY_NOT_DIGIT": r"\D", "CATEGORY_SPACE": r"\s"}.get(av.name)
        probe = probe or {
            "CATEGORY_NOT_SPACE": r"\S",
            "CATEGORY_WORD": r"\w",
            "CATEGORY_NOT_WORD": r"\W",
        }.get(av.name, r"\w")
        return re.fullmatch(probe, char) is not None
    return False
