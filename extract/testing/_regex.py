"""Build one string matching a regular expression, for `pattern` in schemas the test server answers.

Walks the parse tree of Python's own regex parser and takes the shortest sensible path (first branch,
minimum repeats). Good for the identifiers, dates and codes schemas usually pin down; the caller verifies the
result and falls back when a pattern is beyond it (lookarounds, back-references to odd groups).
"""

from __future__ import annotations

import importlib
import re
import warnings
from typing import Any

__all__ = ["example_for"]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        _parser: Any = importlib.import_module("re._parser")  # Python 3.11+
    except ImportError:  # Python 3.10
        _parser = importlib.import_module("sre_parse")

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


def example_for(pattern: str) -> str | None:
    """A string that `re.search(pattern, s)` accepts, or None when one cannot be built."""
    try:
        compiled = re.compile(pattern)
        tree = _parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None
    groups: dict[int, str] = {}
    try:
        text = _emit(list(tree), groups)
    except (_Unsupported, RecursionError):
        return None
    return text if len(text) <= _MAX_LENGTH and compiled.search(text) else None


class _Unsupported(Exception):
    pass


def _emit(items: list[tuple[Any, Any]], groups: dict[int, str]) -> str:
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
            out.append(_emit(list(av[1][0]), groups))
        elif name == "SUBPATTERN":
            group, body = av[0], av[-1]
            text = _emit(list(body), groups)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, body = av
            count = low if low > 0 else (1 if high != 0 else 0)
            if count > _MAX_LENGTH:
                raise _Unsupported("repeat too long")
            out.append(_emit(list(body), groups) * count)
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
