"""Constraints the schema compiler moved into a `description`, read back as JSON Schema keywords.

The test server sees only the wire schema. For providers whose strict mode takes no `pattern`, `minLength`,
`maximum`, ... the compiler (extract.schema._hints) writes them as a trailing hint, "Bare DOI (pattern:
^10\\.[0-9]+/\\S+$; at least 3 characters)", or as the whole description when there is no user text. The
generator honours them only if it can read them back, so this inverts `constraint_hints` exactly: the
same phrases, the same order. A hint that was cut (a pattern over 120 characters) is reported as
unreadable rather than guessed.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["UNREADABLE", "hinted_keywords"]

# Keyword value for a hint that was present but cannot be used (a truncated pattern).
UNREADABLE: Any = object()

_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# (regex, keyword); a regex's group 1 is the value. Order does not matter: each hint has its own wording.
_SIMPLE: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(regex), keyword)
    for regex, keyword in (
        (r"format: ([\w.-]+)", "format"),
        (rf"at least ({_NUMBER}) characters?", "minLength"),
        (rf"at most ({_NUMBER}) characters?", "maxLength"),
        (r"encoding: ([\w.-]+)", "contentEncoding"),
        (rf">= ({_NUMBER})", "minimum"),
        (rf"> ({_NUMBER})", "exclusiveMinimum"),
        (rf"<= ({_NUMBER})", "maximum"),
        (rf"< ({_NUMBER})", "exclusiveMaximum"),
        (rf"a multiple of ({_NUMBER})", "multipleOf"),
        (rf"at least ({_NUMBER}) items?", "minItems"),
        (rf"at most ({_NUMBER}) items?", "maxItems"),
        (r"(items unique)", "uniqueItems"),
        (r"(must contain a matching item)", "contains"),
        (rf"at least ({_NUMBER}) entr(?:ies|ys|y)", "minProperties"),
        (rf"at most ({_NUMBER}) entr(?:ies|ys|y)", "maxProperties"),
    )
)
_PREFIXES: tuple[str, ...] = (
    "format: ",
    "pattern: ",
    "at least ",
    "at most ",
    "encoding: ",
    ">",
    "<",
    "a multiple of ",
    "items unique",
    "must contain a matching item",
    "keys match ",
)
_PATTERN_CUT = 120  # extract.schema._hints cuts longer patterns and appends "..."
_NAMES_CUT = 80


def hinted_keywords(description: Any) -> dict[str, Any]:
    """Keywords the description's hint names; {} when it holds none (or none this parser can read)."""
    if not isinstance(description, str) or not description:
        return {}
    if description.startswith(_PREFIXES):
        parsed = _hint_list(description)
        if parsed is not None:
            return parsed
    if description.endswith(")"):
        start = description.find(" (")
        while start != -1:
            segment = description[start + 2 : -1]
            if segment.startswith(_PREFIXES):
                parsed = _hint_list(segment)
                if parsed is not None:
                    return parsed
            start = description.find(" (", start + 1)
    return {}


def _hint_list(text: str) -> dict[str, Any] | None:
    """`hint; hint; ...` in full, or None when any part is not a hint."""
    out: dict[str, Any] = {}
    rest = text
    while rest:
        if rest.startswith("pattern: ") or rest.startswith("keys match "):
            is_pattern = rest.startswith("pattern: ")
            body = rest[len("pattern: ") if is_pattern else len("keys match ") :]
            split = _split_free_text(body)
            if split is None:
                return None
            value, rest = split
            if is_pattern:
                cut = len(value) == _PATTERN_CUT + 3 and value.endswith("...")
                out["pattern"] = UNREADABLE if cut else value
            else:
                out["propertyNames"] = UNREADABLE if len(value) >= _NAMES_CUT else {"pattern": value}
        else:
            for regex, keyword in _SIMPLE:
                match = regex.match(rest)
                if match and (match.end() == len(rest) or rest.startswith("; ", match.end())):
                    out[keyword] = _value(keyword, match.group(1))
                    rest = rest[match.end() :]
                    break
            else:
                return None
        if rest:
            if not rest.startswith("; "):
                return None
            rest = rest[2:]
    return out


def _split_free_text(body: str) -> tuple[str, str] | None:
    """A pattern runs to the first "; " after which only ordinary hints follow (or to the end)."""
    index = body.find("; ")
    while index != -1:
        tail = body[index + 2 :]
        if tail.startswith(_PREFIXES) and _hint_list(tail) is not None:
            return body[:index], body[index:]
        index = body.find("; ", index + 1)
    return body, ""


def _value(keyword: str, raw: str) -> Any:
    if keyword in ("format", "contentEncoding"):
        return raw
    if keyword == "uniqueItems":
        return True
    if keyword == "contains":
        return UNREADABLE
    return int(raw) if re.fullmatch(r"-?\d+", raw) else float(raw)
