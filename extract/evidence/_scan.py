"""Read a reply's JSON text with the character span of every value, keyed by its wire path.

The reply parser (`extract._reply`) says what the value is; this says where each part of it was written, so
token logprobs can be laid over the values. Pure; bounded depth (a deeper reply gets no spans).
"""

from __future__ import annotations

import json
import re
from typing import Any

from extract.evidence._paths import Path

__all__ = ["locate", "scan"]

_MAX_DEPTH = 256
_MAX_STARTS = 64  # places a value may start at in a reply with text around its JSON
_OPENER = re.compile(r"[{\[]")
_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_LITERALS = {"true": True, "false": False, "null": None}
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]


class _Bad(ValueError):
    pass


def _value(text: str, i: int, path: Path, spans: dict[Path, tuple[int, int]], depth: int) -> tuple[Any, int]:
    if depth > _MAX_DEPTH:
        raise _Bad("too deep")
    i = _WS.match(text, i).end()  # type: ignore[union-attr]
    if i >= len(text):
        raise _Bad("end of text")
    start = i
    char = text[i]
    value: Any
    if char == '"':
        value, i = _scanstring(text, i + 1, True)
    elif char == "{":
        value = {}
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
        if text.startswith("}", i):
            i += 1
        else:
            while True:
                i = _WS.match(text, i).end()  # type: ignore[union-attr]
                if not text.startswith('"', i):
                    raise _Bad("key expected")
                key, i = _scanstring(text, i + 1, True)
                i = _WS.match(text, i).end()  # type: ignore[union-attr]
                if not text.startswith(":", i):
                    raise _Bad("colon expected")
                value[key], i = _value(text, i + 1, (*path, key), spans, depth + 1)
                i = _WS.match(text, i).end()  # type: ignore[union-attr]
                if text.startswith(",", i):
                    i += 1
                    continue
                if text.startswith("}", i):
                    i += 1
                    break
                raise _Bad("comma or brace expected")
    elif char == "[":
        value = []
        i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
        if text.startswith("]", i):
            i += 1
        else:
            while True:
                item, i = _value(text, i, (*path, len(value)), spans, depth + 1)
                value.append(item)
                i = _WS.match(text, i).end()  # type: ignore[union-attr]
                if text.startswith(",", i):
                    i += 1
                    continue
                if text.startswith("]", i):
                    i += 1
                    break
                raise _Bad("comma or bracket expected")
    else:
        number = _NUMBER.match(text, i)
        if number is not None and number.end() > i:
            literal = number.group()
            value = float(literal) if any(c in literal for c in ".eE") else int(literal)
            i = number.end()
        else:
            for word, literal_value in _LITERALS.items():
                if text.startswith(word, i):
                    value, i = literal_value, i + len(word)
                    break
            else:
                raise _Bad("value expected")
    spans[path] = (start, i)
    return value, i


def scan(text: str, start: int = 0) -> tuple[Any, dict[Path, tuple[int, int]]] | None:
    """The JSON value starting at `start` (after whitespace) and each part's span, or None if none is there."""
    spans: dict[Path, tuple[int, int]] = {}
    try:
        value, _ = _value(text, start, (), spans, 0)
    except (_Bad, ValueError, RecursionError):
        return None
    return value, spans


def locate(content: str) -> tuple[Any, dict[Path, tuple[int, int]]] | None:
    """The reply's JSON value with its spans. A reply that is one JSON value is read at once; otherwise the
    value the reply parser (`extract._reply`) recovers is looked for after a `</think>` block, then at
    each `{` or `[` in order (a fence, a sentence before the data, braces in that sentence), so the spans
    are those of the value the result was validated from. None when it is not there as written (the
    parser repaired it)."""
    found = scan(content, 0)
    if found is not None and _ends(content, found[1].get((), (0, 0))[1]):
        return found
    from extract._reply import parse_reply

    parsed = parse_reply(content)
    starts = [0]
    think = content.rfind("</think>")
    if think >= 0:
        starts.append(think + len("</think>"))
    opener = _OPENER.search(content)
    while opener is not None and len(starts) < _MAX_STARTS:
        starts.append(opener.start())
        opener = _OPENER.search(content, opener.start() + 1)
    for start in dict.fromkeys(starts):
        candidate = found if start == 0 else scan(content, start)
        if candidate is not None and (not parsed.ok or candidate[0] == parsed.value):
            return candidate  # (a reply the parser could not read: the first value there)
    return None


def _ends(content: str, end: int) -> bool:
    return not content[end:].strip()
