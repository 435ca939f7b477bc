"""Read a reply's JSON text with the character span of every value, keyed by its wire path.

The reply parser (`extract._reply`) says what the value is; this says where each part of it was written, so
token logprobs can be laid over the values. Pure; bounded depth (a deeper reply gets no spans).

Two readers give the same answer: a fast one (one regular-expression match per object member or array
item, the value itself decoded by orjson) and the general one (a JSON parser in Python, for what the fast
one refuses: integers past 64 bits, lone surrogates, anything orjson rejects).
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

from extract.evidence._paths import Path

__all__ = ["RISKY_NUMBER", "locate", "scan"]

_MAX_DEPTH = 256
_MAX_STARTS = 64  # places a value may start at in a reply with text around its JSON
_OPENER = re.compile(r"[{\[]")
_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
# JSON's literals, and Python's, which the reply parser reads as JSON (as it drops trailing commas)
_LITERALS = {"true": True, "false": False, "null": None, "True": True, "False": False, "None": None}
_scanstring = json.decoder.scanstring  # type: ignore[attr-defined]

# the fast reader's pieces: a scalar (its own group), and a member or item with its separator after it
_W = r"[ \t\n\r]*"
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_SCALAR = rf"{_STRING}|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?|true|false|null"
_MEMBER = re.compile(rf'{_W}"([^"\\]*(?:\\.[^"\\]*)*)"{_W}:{_W}(?:({_SCALAR}){_W}([,}}]))?')
_ITEM = re.compile(rf"{_W}(?:({_SCALAR}){_W}([,\]]))?")
_ROOT = re.compile(rf"{_W}({_SCALAR})?")
_AFTER_OBJECT = re.compile(rf"{_W}([,}}])")
_AFTER_ARRAY = re.compile(rf"{_W}([,\]])")
_CLOSE_OBJECT = re.compile(rf"{_W}}}")
_CLOSE_ARRAY = re.compile(rf"{_W}\]")
# A number orjson cannot carry exactly: 19+ digits in a row, or an exponent of 3+ digits. What
# `extract._json._RISKY` finds, but only where a number can be (after an ASCII digit: an `e` in a word
# does not start one), so it reads the text about three times faster.
RISKY_NUMBER = re.compile(r"[0-9](?:[0-9]{18}|[eE][+-]?[0-9]{3})")


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
                    i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
                    if text.startswith("}", i):  # a trailing comma
                        i += 1
                        break
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
                    i = _WS.match(text, i + 1).end()  # type: ignore[union-attr]
                    if text.startswith("]", i):  # a trailing comma
                        i += 1
                        break
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


def _fast_object(text: str, i: int, path: Path, spans: dict[Path, tuple[int, int]], depth: int) -> int:
    """Spans inside the object opening at `i`; the index after it closes."""
    close = _CLOSE_OBJECT.match(text, i + 1)
    if close is not None:
        return close.end()
    if depth >= _MAX_DEPTH:  # its members would be deeper than the general reader goes
        raise _Bad("too deep")
    i += 1
    while True:
        m = _MEMBER.match(text, i)
        if m is None:
            raise _Bad("member expected")
        key = m.group(1)
        if "\\" in key:
            key = _scanstring(text, m.start(1), True)[0]
        i = m.end()
        sep = m.group(3)
        at: Path = (*path, key)
        if sep is not None:  # a scalar and the separator after it
            spans[at] = m.span(2)
            if sep == "}":
                return i
            continue
        end = _fast_value(text, i, at, spans, depth)
        m = _AFTER_OBJECT.match(text, end)
        if m is None:
            raise _Bad("comma or brace expected")
        i = m.end()
        if m.group(1) == "}":
            return i


def _fast_array(text: str, i: int, path: Path, spans: dict[Path, tuple[int, int]], depth: int) -> int:
    """Spans inside the array opening at `i`; the index after it closes."""
    close = _CLOSE_ARRAY.match(text, i + 1)
    if close is not None:
        return close.end()
    if depth >= _MAX_DEPTH:  # its members would be deeper than the general reader goes
        raise _Bad("too deep")
    i += 1
    index = 0
    while True:
        m = _ITEM.match(text, i)
        if m is None:  # pragma: no cover - the pattern matches the empty string
            raise _Bad("item expected")
        i = m.end()
        sep = m.group(2)
        at: Path = (*path, index)
        index += 1
        if sep is not None:
            spans[at] = m.span(1)
            if sep == "]":
                return i
            continue
        end = _fast_value(text, i, at, spans, depth)
        m = _AFTER_ARRAY.match(text, end)
        if m is None:
            raise _Bad("comma or bracket expected")
        i = m.end()
        if m.group(1) == "]":
            return i


def _fast_value(text: str, i: int, at: Path, spans: dict[Path, tuple[int, int]], depth: int) -> int:
    """An object or array at `i` (a scalar was read with its member or item): its span, its end."""
    if text.startswith("{", i):
        end = _fast_object(text, i, at, spans, depth + 1)
    elif text.startswith("[", i):
        end = _fast_array(text, i, at, spans, depth + 1)
    else:
        raise _Bad("value expected")
    spans[at] = (i, end)
    return end


def _fast(text: str, start: int) -> tuple[Any, dict[Path, tuple[int, int]]] | None:
    spans: dict[Path, tuple[int, int]] = {}
    root = _ROOT.match(text, start)
    if root is None:  # pragma: no cover - the pattern matches the empty string
        return None
    if root.start(1) >= 0:
        begin, end = root.span(1)
    else:
        begin = root.end()
        try:
            end = _fast_value(text, begin, (), spans, -1)
        except (ValueError, RecursionError):  # _Bad, or a key scanstring refuses
            return None
    spans[()] = (begin, end)
    literal = text[begin:end]
    if RISKY_NUMBER.search(literal):  # a number orjson cannot carry exactly (an integer past 64 bits, 1e400)
        return None
    try:
        return orjson.loads(literal), spans
    except orjson.JSONDecodeError:
        return None


def scan(text: str, start: int = 0) -> tuple[Any, dict[Path, tuple[int, int]]] | None:
    """The JSON value starting at `start` (after whitespace) and each part's span, or None if none is there."""
    found = _fast(text, start)
    if found is not None:
        return found
    return _slow(text, start)


def _slow(text: str, start: int) -> tuple[Any, dict[Path, tuple[int, int]]] | None:
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
