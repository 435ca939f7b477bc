"""Turn a model's reply content into a JSON value: strictly first, then with careful, reported recovery.

Recovery only removes packaging a model put around valid data, it never invents data:

- Markdown code fences (```` ``` ```` / ```` ```json ````) and ``<think>...</think>`` blocks.
- Prose before or after the JSON: the longest balanced object or array that parses is taken (the scan
  knows about strings and escapes, so braces inside strings do not confuse it).
- Trailing commas before ``}`` / ``]``.
- Python literals ``True`` / ``False`` / ``None`` outside strings, read as ``true`` / ``false`` / ``null``.
  Small local models write them often, and the mapping is unambiguous; nothing else Python-like (single
  quotes, tuples) is accepted, because guessing there could change the data.

A JSON value that was cut off (``finish_reason: length``, a lost connection) is reported as TRUNCATED,
never completed. One-key wrappers (``{"data": {...}}``) are not removed here, because only the caller knows
whether the wrapper is what the schema wants: :func:`unwrap_candidates` lists what to try next.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = ["ReplyKind", "ReplyParse", "looks_like_schema", "parse_reply", "unwrap_candidates"]


class ReplyKind(str, enum.Enum):
    """What a reply turned out to be."""

    OK = "ok"  # a JSON value (possibly after recovery; see ReplyParse.recovered)
    EMPTY = "empty"  # no content at all (or only whitespace / reasoning)
    REFUSAL = "refusal"  # the model declined ("I can't help with that")
    SCHEMA_ECHO = "schema_echo"  # the model answered with a JSON Schema instead of data (value is set)
    TRUNCATED = "truncated"  # JSON starts but never ends
    NOT_JSON = "not_json"  # prose or broken JSON with nothing recoverable


@dataclass(frozen=True, slots=True)
class ReplyParse:
    """The outcome of :func:`parse_reply`.

    `value` is set for OK and for SCHEMA_ECHO (the caller may still validate it: a schema about schemas
    legitimately produces schema-shaped data). `recovered` says what recovery did ("removed a ```json
    fence"), None when the content was clean JSON. `message` is a one-line correction for the model when
    the reply is not usable.
    """

    kind: ReplyKind
    value: Any = None
    recovered: str | None = None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.kind is ReplyKind.OK


_EMPTY_MESSAGE = "the reply was empty; answer with the JSON value only"
_NOT_JSON_MESSAGE = "the reply contains no JSON value; answer with one JSON object and nothing else"
_ECHO_MESSAGE = "the reply is a JSON Schema, not data; answer with a JSON value that follows the schema, filled in from the text"
_TRUNCATED_MESSAGE = (
    "the reply was cut off before the JSON ended; answer again with a complete, shorter JSON value "
    "(no commentary, keep long strings brief)"
)
_REFUSAL_MESSAGE = (
    "the reply declined the task; the text is ordinary data to be extracted, answer with the JSON value only"
)

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_REFUSAL = re.compile(
    r"^\W*(?:i(?:'|’)?m sorry|i am sorry|sorry,|i (?:can(?:'|’)?t|cannot|can not|won(?:'|’)?t|will not|am (?:not )?(?:able|unable)"
    r"|(?:'|’)m (?:not )?(?:able|unable))|as an ai|unfortunately,? i)",
    re.IGNORECASE,
)
_MAX_STARTS = 200  # bracket positions tried before giving up on prose-wrapped JSON


def parse_reply(content: str | None) -> ReplyParse:
    """Reply content -> JSON value, classified; never raises for any string or None."""
    if content is None or not content.strip():
        return ReplyParse(ReplyKind.EMPTY, message=_EMPTY_MESSAGE)
    try:
        return _classify(orjson.loads(content), None)
    except orjson.JSONDecodeError:
        pass
    notes: list[str] = []
    text = content.strip().lstrip("\ufeff")
    if "<think>" in text or "</think>" in text:
        unclosed = text.rfind("<think>") > text.rfind("</think>")
        # some chat templates put the opening tag in the prompt: then only "</think>" reaches the content
        after_close = text[text.rfind("</think>") + len("</think>") :]
        text = _THINK.sub("", text) if "<think>" in text else after_close
        text = text.strip()
        notes.append("removed a <think> block")
        if not text:
            kind, message = (
                (ReplyKind.TRUNCATED, _TRUNCATED_MESSAGE) if unclosed else (ReplyKind.EMPTY, _EMPTY_MESSAGE)
            )
            return ReplyParse(kind, message=message)
    for body, note in _fenced(text):
        parsed = _parse_span(body)
        if parsed is not None:
            value, fixes = parsed
            return _classify(value, _join([*notes, note, *fixes]))
    found, truncated = _scan(text)
    if found is not None:
        value, where, fixes = found
        return _classify(value, _join([*notes, *where, *fixes]))
    if truncated:
        return ReplyParse(ReplyKind.TRUNCATED, message=_TRUNCATED_MESSAGE)
    if _REFUSAL.search(text):
        return ReplyParse(ReplyKind.REFUSAL, message=_REFUSAL_MESSAGE)
    return ReplyParse(ReplyKind.NOT_JSON, message=_NOT_JSON_MESSAGE)


def _classify(value: Any, recovered: str | None) -> ReplyParse:
    if looks_like_schema(value):
        return ReplyParse(ReplyKind.SCHEMA_ECHO, value, recovered, _ECHO_MESSAGE)
    return ReplyParse(ReplyKind.OK, value, recovered)


def _join(notes: list[str]) -> str | None:
    return "; ".join(dict.fromkeys(notes)) or None


def _fenced(text: str) -> Iterator[tuple[str, str]]:
    """Candidate bodies of code fences: the whole reply as one fence first, then each fence, json-tagged first."""
    if text.startswith("```") and "\n" in text:
        body = text.split("\n", 1)[1].rstrip()
        yield body.removesuffix("```"), "removed a code fence"
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    blocks.sort(key=lambda block: block[0] not in ("json", "json5", "javascript", "js"))
    for _, body in blocks:
        yield body, "took the JSON from a code fence"
    first, last = _FENCE.search(text), text.rfind("```")
    if first is not None and last > first.start(2):  # a fence whose JSON itself contains ```
        yield text[first.start(2) : last], "took the JSON from a code fence"


def _parse_span(span: str) -> tuple[Any, list[str]] | None:
    """Parse strictly, then after the safe repairs; None when neither works."""
    try:
        return orjson.loads(span), []
    except orjson.JSONDecodeError:
        pass
    repaired, fixes = _repair(span)
    if not fixes:
        return None
    try:
        return orjson.loads(repaired), fixes
    except orjson.JSONDecodeError:
        return None


_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}


def _repair(span: str) -> tuple[str, list[str]]:
    """Drop trailing commas and map Python literals to JSON, touching nothing inside strings."""
    out: list[str] = []
    fixes: list[str] = []
    i, n = 0, len(span)
    while i < n:
        ch = span[i]
        if ch == '"':
            end = _string_end(span, i)
            out.append(span[i:end])
            i = end
            continue
        if ch == ",":
            j = i + 1
            while j < n and span[j] in " \t\r\n":
                j += 1
            if j < n and span[j] in "}]":
                fixes.append("removed a trailing comma")
                i += 1
                continue
        if ch in "TFN" and (i == 0 or not (span[i - 1].isalnum() or span[i - 1] == "_")):
            for word, replacement in _PY_LITERALS.items():
                after = i + len(word)
                if span.startswith(word, i) and (
                    after >= n or not (span[after].isalnum() or span[after] == "_")
                ):
                    out.append(replacement)
                    fixes.append("read Python True/False/None as JSON")
                    i = after
                    break
            else:
                out.append(ch)
                i += 1
            continue
        out.append(ch)
        i += 1
    return "".join(out), list(dict.fromkeys(fixes))


def _string_end(text: str, start: int) -> int:
    """Index just past the string that opens at `start` (len(text) when it never closes)."""
    i, n = start + 1, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
        elif ch == '"':
            return i + 1
        else:
            i += 1
    return n


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the object/array opening at `start`, or None when it never closes (or mismatches)."""
    stack: list[str] = []
    i, n = start, len(text)
    closer = {"{": "}", "[": "]"}
    while i < n:
        ch = text[i]
        if ch == '"':
            i = _string_end(text, i)
            continue
        if ch in closer:
            stack.append(closer[ch])
        elif ch in "}]":
            if not stack or stack.pop() != ch:
                return -1  # mismatched: not JSON starting here
            if not stack:
                return i + 1
        i += 1
    return None


def _scan(text: str) -> tuple[tuple[Any, list[str], list[str]] | None, bool]:
    """The longest balanced object/array in `text` that parses (after safe repairs), with notes.

    The second item is True when JSON starts but never closes: whatever lies inside an unclosed container
    is part of a cut-off value, so the scan stops there instead of returning a fragment of it.
    """
    best: tuple[int, int, Any, list[str]] | None = None
    position, tries, truncated = 0, 0, False
    while tries < _MAX_STARTS:
        start = _next_opener(text, position)
        if start is None:
            break
        tries += 1
        end = _balanced_end(text, start)
        if end is None and _opens_json(text, start):
            truncated = True
            break
        if end is None or end == -1:
            position = start + 1
            continue
        parsed = _parse_span(text[start:end])
        if parsed is None:
            position = start + 1
            continue
        value, fixes = parsed
        if best is None or end - start > best[1] - best[0]:
            best = (start, end, value, fixes)
        position = end
    if best is None:
        return None, truncated
    start, end, value, fixes = best
    where: list[str] = []
    if text[:start].strip():
        where.append("ignored text before the JSON")
    if text[end:].strip():
        where.append("ignored text after the JSON")
    return (value, where, fixes), truncated


def _next_opener(text: str, position: int) -> int | None:
    brace, bracket = text.find("{", position), text.find("[", position)
    found = [i for i in (brace, bracket) if i != -1]
    return min(found) if found else None


_JSON_AFTER_BRACE = re.compile(r'\{\s*(?:"|\}|\Z)')
_JSON_AFTER_BRACKET = re.compile(r'\[\s*(?:[\[{"\]\d\-tfn]|\Z)')


def _opens_json(text: str, start: int) -> bool:
    """The bracket at `start` is followed by what JSON would put there (not prose like "{ see below")."""
    pattern = _JSON_AFTER_BRACE if text[start] == "{" else _JSON_AFTER_BRACKET
    return pattern.match(text, start) is not None


# -- schema echoes and wrappers -----------------------------------------------------------------------

_JSON_TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
_SCHEMA_KEYWORDS = frozenset(
    {
        "$schema", "$id", "$defs", "definitions", "$ref", "$comment", "title", "description", "type",
        "properties", "required", "additionalProperties", "items", "prefixItems", "enum", "const",
        "anyOf", "oneOf", "allOf", "not", "format", "pattern", "minimum", "maximum", "minLength",
        "maxLength", "minItems", "maxItems", "default", "examples", "patternProperties",
    }
)  # fmt: skip
_WRAPPER_KEYS = (
    "json", "data", "response", "result", "output", "answer", "value", "object", "extraction", "extracted",
    "content", "record", "instance", "properties",
)  # fmt: skip


def looks_like_schema(value: Any) -> bool:
    """True for a JSON Schema (or a response_format envelope) where data was expected.

    The test is deliberately narrow: every key must be a schema keyword and `type` must name a JSON type
    (or a `$schema` URI is present), so ordinary records with a `type` field are not mistaken for echoes.
    """
    if not isinstance(value, dict) or not value:
        return False
    schema_uri = value.get("$schema")
    if isinstance(schema_uri, str) and "json-schema" in schema_uri:
        return True
    if isinstance(value.get("schema"), dict) and looks_like_schema(value["schema"]):
        return set(value) <= {"schema", "name", "strict", "description", "type", "json_schema"}
    kind = value.get("type")
    kinds = kind if isinstance(kind, list) else [kind]
    if not kinds or not all(isinstance(k, str) and k in _JSON_TYPES for k in kinds):
        return False
    if not set(value) <= _SCHEMA_KEYWORDS:
        return False
    properties = value.get("properties")
    if properties is not None:
        return isinstance(properties, dict) and all(isinstance(p, dict) for p in properties.values())
    return True


def unwrap_candidates(value: Any) -> list[Any]:
    """Values to try, in order, when `value` fails validation and may be data inside a wrapper.

    Covers one-key wrappers (``{"data": {...}}``, ``{"Invoice": {...}}``), a schema echo that carries the
    data next to it (``{"type": "object", "json": {...}}``), data placed under ``properties``, and JSON
    encoded twice (a string holding an object). Two levels deep at most; never includes `value` itself.
    """
    out: list[Any] = []
    seen: set[int] = {id(value)}
    for candidate in _unwrap_once(value):
        if id(candidate) not in seen:
            seen.add(id(candidate))
            out.append(candidate)
    for first in list(out):
        for candidate in _unwrap_once(first):
            if id(candidate) not in seen:
                seen.add(id(candidate))
                out.append(candidate)
    return out


def _unwrap_once(value: Any) -> Iterator[Any]:
    if isinstance(value, str):
        text = value.strip()
        if text[:1] in ("{", "["):
            try:
                yield orjson.loads(text)
            except orjson.JSONDecodeError:
                return
        return
    if not isinstance(value, dict):
        return
    if len(value) == 1:
        (inner,) = value.values()
        if isinstance(inner, (dict, list)):
            yield inner
        elif isinstance(inner, str):
            yield from _unwrap_once(inner)
        return
    for key in _WRAPPER_KEYS:
        inner = value.get(key)
        if not isinstance(inner, (dict, list)) or looks_like_schema(inner):
            continue
        if not set(value) - {key} <= _SCHEMA_KEYWORDS:
            continue  # an ordinary record that happens to have such a field
        if (
            key == "properties"
            and isinstance(inner, dict)
            and any(looks_like_schema(p) for p in inner.values())
        ):
            continue
        yield inner
