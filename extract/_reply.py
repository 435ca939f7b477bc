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

Numbers are exact (see :mod:`extract._json`): integers of any size stay ``int``; a float literal beyond the
double range makes the reply NOT_JSON with a message naming the number.

Bounds. Every step runs in time linear in the reply: fences are found with one forward walk, balanced
spans with one tokenising pass (a few more when an unclosed bracket turns out to be prose), and the
parse attempts on candidate spans read at most ``_SCAN_WORK`` times the reply's length in all. A reply
longer than :data:`MAX_RECOVERY_CHARS` gets the strict parse only (C speed, any size): recovery from
prose, fences or repairs is not tried, and the message says so. Containers nested deeper than orjson's
limit (1,024 levels) are not JSON this parser recovers.
"""

from __future__ import annotations

import enum
import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from extract._json import InexactNumber, loads

__all__ = [
    "MAX_RECOVERY_CHARS",
    "ReplyKind",
    "ReplyParse",
    "looks_like_schema",
    "parse_reply",
    "unwrap_candidates",
]

MAX_RECOVERY_CHARS = 1 << 20
"""Replies longer than this (in characters, 1 MiB) are read as strict JSON only: no fence, prose or repair
recovery. It covers the largest output limit in the capability table (65,536 tokens) at 16 characters a
token, and caps the pure-Python recovery scan's worst case at about one CPU second per attempt (measured
by benchmarks/bench_hostile.py on a shared 2-core machine: at most ~1 s per MB of adversarial reply)."""

_SCAN_WORK = 4  # parse attempts on prose-wrapped spans read at most this many times the reply's length
_SCAN_SLACK = 1 << 16  # ... plus this many characters, so short replies are never starved
_ATTEMPT_COST = 64  # ... where each parse attempt also costs this many characters' worth of fixed overhead
_MAX_PASSES = 3  # tokenising passes over a reply whose unclosed brackets are prose ("{ see below")


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
_OVERSIZE_MESSAGE = (
    "the reply ({size:,} characters) is not one valid JSON value, and a reply over {limit:,} characters is "
    "read only as strict JSON (no code fences, prose or repairs); answer with one compact JSON value only"
)

_THINK = re.compile(r"<think>.*?(?:</think>|\Z)", re.DOTALL)
_REFUSAL = re.compile(
    r"\W*(?:i(?:'|’)?m sorry|i am sorry|sorry,|i (?:can(?:'|’)?t|cannot|can not|won(?:'|’)?t|will not|am (?:not )?(?:able|unable)"
    r"|(?:'|’)m (?:not )?(?:able|unable))|as an ai|unfortunately,? i)",
    re.IGNORECASE,
)


def parse_reply(content: str | None, *, max_recovery: int = MAX_RECOVERY_CHARS) -> ReplyParse:
    """Reply content -> JSON value, classified; never raises for any string or None.

    Time is linear in ``len(content)``; beyond `max_recovery` characters only the strict parse runs.
    """
    if content is None or not content.strip():
        return ReplyParse(ReplyKind.EMPTY, message=_EMPTY_MESSAGE)
    try:
        return _classify(_loads(content), None)
    except InexactNumber as exc:
        return _number_refused(exc)
    except ValueError as exc:
        strict_error = exc
    if len(content) > max_recovery:
        return _oversize(content, strict_error, max_recovery)
    try:
        return _recover(content)
    except InexactNumber as exc:
        return _number_refused(exc)


def _recover(content: str) -> ReplyParse:
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
    tried: set[str] = set()
    for body, note in _fenced(text):
        if body in tried or _VALUE_START.match(body) is None:
            continue  # many fences repeat a body or hold no JSON at all: each costs nothing twice
        tried.add(body)
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
    if _REFUSAL.match(text):
        return ReplyParse(ReplyKind.REFUSAL, message=_REFUSAL_MESSAGE)
    return ReplyParse(ReplyKind.NOT_JSON, message=_NOT_JSON_MESSAGE)


def _loads(text: str) -> Any:
    """The one parse call of this module (tests count the characters it reads)."""
    return loads(text)


def _classify(value: Any, recovered: str | None) -> ReplyParse:
    if looks_like_schema(value):
        return ReplyParse(ReplyKind.SCHEMA_ECHO, value, recovered, _ECHO_MESSAGE)
    return ReplyParse(ReplyKind.OK, value, recovered)


def _number_refused(exc: InexactNumber) -> ReplyParse:
    return ReplyParse(
        ReplyKind.NOT_JSON,
        message=f"{exc.msg}; write numbers a 64-bit float can hold (or integers as plain digits)",
    )


def _oversize(content: str, error: ValueError, limit: int) -> ReplyParse:
    """The verdict for a long reply that failed the strict parse: cut off if the parser ran out of text."""
    pos = getattr(error, "pos", None)
    ran_out = (isinstance(pos, int) and pos >= len(content.rstrip())) or str(error).startswith(
        "Unterminated string"  # the json module (used for big numbers) names the string's start instead
    )
    if ran_out and content.lstrip()[:1] in ("{", "["):
        return ReplyParse(ReplyKind.TRUNCATED, message=_TRUNCATED_MESSAGE)
    return ReplyParse(ReplyKind.NOT_JSON, message=_OVERSIZE_MESSAGE.format(size=len(content), limit=limit))


def _join(notes: list[str]) -> str | None:
    return "; ".join(dict.fromkeys(notes)) or None


# -- code fences: one forward walk ------------------------------------------------------------------

_VALUE_START = re.compile(r'\s*+[\[{"\-\dtfnTFN]')  # what a JSON value (or a repairable literal) starts with
_FENCE_TAG = re.compile(r"[ \t]*([A-Za-z0-9_+.-]*)")
_JSON_TAGS = frozenset({"json", "json5", "javascript", "js"})


def _fenced(text: str) -> Iterator[tuple[str, str]]:
    """Candidate bodies of code fences: the whole reply as one fence first, then each fence, json-tagged first."""
    if text.startswith("```") and "\n" in text:
        body = text.split("\n", 1)[1].rstrip()
        yield body.removesuffix("```"), "removed a code fence"
    blocks = list(_fence_blocks(text))
    tagged = [body for tag, body, _ in blocks if tag in _JSON_TAGS]
    others = [body for tag, body, _ in blocks if tag not in _JSON_TAGS]
    for body in (*tagged, *others):
        yield body, "took the JSON from a code fence"
    if blocks:
        first, last = blocks[0][2], text.rfind("```")
        if last > first:  # a fence whose JSON itself contains ```
            yield text[first:last], "took the JSON from a code fence"


def _fence_blocks(text: str) -> Iterator[tuple[str, str, int]]:
    """(tag, body, body start) of each fenced block, in order: an opening ``` line, then the body up to the
    next ``` (or the end). Each search starts where the previous one stopped, so the walk is linear."""
    position = 0
    while True:
        opening = text.find("```", position)
        if opening == -1:
            return
        newline = text.find("\n", opening + 3)
        if newline == -1:  # no line break after it: no later fence can open either
            return
        tag_match = _FENCE_TAG.match(text, opening + 3)
        tag = tag_match.group(1).lower() if tag_match is not None else ""
        closing = text.find("```", newline + 1)
        end = len(text) if closing == -1 else closing
        yield tag, text[newline + 1 : end], newline + 1
        if closing == -1:
            return
        position = closing + 3


# -- parsing one candidate span, with the safe repairs ----------------------------------------------


def _parse_span(span: str) -> tuple[Any, list[str]] | None:
    """Parse strictly, then after the safe repairs; None when neither works."""
    try:
        return _loads(span), []
    except InexactNumber:
        raise
    except ValueError:
        pass
    repaired, fixes = _repair(span)
    if not fixes:
        return None
    try:
        return _loads(repaired), fixes
    except InexactNumber:
        raise
    except ValueError:
        return None


_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}
_MAYBE_REPAIR = re.compile(r"[,TFN](?:(?<=,)\s*+[}\]]|(?<=T)rue|(?<=F)alse|(?<=N)one)")
# a string (kept as it is, closed or not), a trailing comma, or a Python literal standing alone
_REPAIRABLE = re.compile(
    r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)|,(?=\s*+[}\]])|(?<!\w)(?:True|False|None)(?!\w)', re.DOTALL
)
_COMMA_FIX = "removed a trailing comma"
_LITERAL_FIX = "read Python True/False/None as JSON"


def _repair(span: str) -> tuple[str, list[str]]:
    """Drop trailing commas and map Python literals to JSON, touching nothing inside strings."""
    if _MAYBE_REPAIR.search(span) is None:
        return span, []
    fixes: dict[str, None] = {}

    def fix(match: re.Match[str]) -> str:
        found = match.group()
        if found[0] == '"':
            return found
        if found == ",":
            fixes[_COMMA_FIX] = None
            return ""
        fixes[_LITERAL_FIX] = None
        return _PY_LITERALS[found]

    repaired = _REPAIRABLE.sub(fix, span)
    return repaired, list(fixes)


# -- prose around JSON: one tokenising pass finds every balanced span -------------------------------

_OPENER = re.compile(r"[\[{]")
# inside a container: a whole string (closed or running to the end), or a bracket
_IN_JSON = re.compile(
    r'[\[{][^\[\]{}"]*+[\]}]'  # a flat container (no brackets or strings inside): one token
    r'|"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)'  # a string, closed or running to the end
    r"|[\[{]++|[\]}]++",  # a run of openers, a run of closers
    re.DOTALL,
)
_CLOSER_OF = str.maketrans("[{", "]}")
_OUTSIDE_NOISE = re.compile(r'["\]}]')  # between containers, what the inside token stream would misread
# what JSON (or a repairable Python literal) can put right after an opening bracket
_JSON_START = re.compile(r'\{\s*+[",}]|\[\s*+[\[{",\]\d\-tfnTFN]')  # "," for "{,}": a repair gives {}
_MAY_FOLLOW = frozenset(' \t\r\n",{}[]-0123456789tfnTFN')  # characters _JSON_START allows after a bracket
_JSON_AFTER_BRACE = re.compile(r'\{\s*+(?:"|\}|\Z)')
_JSON_AFTER_BRACKET = re.compile(r'\[\s*+(?:[\[{"\]\d\-tfn]|\Z)')


def _balanced_spans(text: str, position: int, ends: dict[int, int]) -> int | None:
    """Record every balanced object/array span from `position` on (`ends[start]` is just past its
    closer); return the outermost opener that never closes (None when all close).

    Outside containers only openers matter (quotes there are prose); inside, strings are skipped whole
    and runs of brackets are handled a run at a time (C-level list and string operations), so deep
    nesting costs no Python step per bracket. A closer that does not match the innermost opener ends
    every open container: none of them is JSON.
    """
    find_opener, tokens, not_prose = _OPENER.search, _IN_JSON.finditer, _OUTSIDE_NOISE.search
    while True:
        first = find_opener(text, position)
        if first is None:
            return None
        stack: list[int] = []  # positions of the open brackets
        kinds: list[str] = []  # the same brackets' characters
        for token in tokens(text, first.start()):
            i, j = token.span()
            ch = text[i]
            if ch == '"':
                continue
            last = text[j - 1]
            if (ch == "[" or ch == "{") and (last == "]" or last == "}"):  # flat: "[1, 2]", "{x}"
                if (ch == "{") != (last == "}"):  # "[1}": the closer does not match
                    position = j
                    break
                ends[i] = j
                if stack:
                    continue
                after = find_opener(text, j)
                if after is None:
                    return None
                if not_prose(text, j, after.start()) is None:
                    continue
                position = j
                break
            if j == i + 1:  # a single bracket: the common case, kept cheap
                if ch == "{" or ch == "[":
                    stack.append(i)
                    kinds.append(ch)
                    continue
                opener = stack.pop()
                if (kinds.pop() == "{") == (ch == "}"):
                    ends[opener] = j
                    if stack:
                        continue
                    # back outside: when only blanks and prose without quotes or closers come before
                    # the next opener, the same token stream goes on (no restart per sibling container)
                    after = find_opener(text, j)
                    if after is None:
                        return None
                    if not_prose(text, j, after.start()) is None:
                        continue
                position = j
                break
            if ch == "{" or ch == "[":
                stack.extend(range(i, j))
                kinds.extend(text[i:j])
                continue
            m = min(j - i, len(stack))
            expected = "".join(kinds[-m:])[::-1].translate(_CLOSER_OF)
            matched = m if expected == text[i : i + m] else _common_prefix(expected, text[i : i + m])
            if matched:
                ends.update(zip(reversed(stack[-matched:]), range(i + 1, i + matched + 1), strict=True))
                del stack[-matched:], kinds[-matched:]
            if matched == m and stack:
                continue
            position = i + matched + (matched < m)  # past the run's last match (or its mismatch)
            break
        else:
            return stack[0]


def _common_prefix(a: str, b: str) -> int:
    return next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _scan(text: str) -> tuple[tuple[Any, list[str], list[str]] | None, bool]:
    """The longest balanced object/array in `text` that parses (after safe repairs), with notes.

    The second item is True when JSON starts but never closes: whatever lies inside an unclosed container
    is part of a cut-off value, so the scan stops there instead of returning a fragment of it. An unclosed
    opener that does not look like JSON ("{ see below") is prose: the scan goes on just after it.
    """
    whole = _whole_span(text)
    if whole is not None:
        return whole, False
    ends: dict[int, int] = {}
    position, truncated = 0, False
    for attempt in range(_MAX_PASSES):
        unclosed = _balanced_spans(text, position, ends)
        if unclosed is None:
            break
        truncated = _opens_json(text, unclosed)
        if truncated or attempt < _MAX_PASSES - 1:  # (the last pass keeps what it found inside)
            for inside in [start for start in ends if start > unclosed]:  # part of the unclosed container
                del ends[inside]
        if truncated:
            break
        position = unclosed + 1
    best = _longest_parsing(text, ends)
    if best is None:
        return None, truncated
    start, end, value, fixes = best
    return (value, _where(text, start, end), fixes), truncated


def _whole_span(text: str) -> tuple[Any, list[str], list[str]] | None:
    """From the first opener to the last closer, when that parses: no span can be longer, and prose
    around one big answer is the usual case, so this C-speed try spares the tokenising pass."""
    first = _OPENER.search(text)
    if first is None:
        return None
    start, end = first.start(), max(text.rfind("}"), text.rfind("]")) + 1
    if end <= start or _JSON_START.match(text, start) is None:
        return None
    parsed = _parse_span(text[start:end])
    if parsed is None:
        return None
    value, fixes = parsed
    return value, _where(text, start, end), fixes


def _where(text: str, start: int, end: int) -> list[str]:
    where: list[str] = []
    if text[:start].strip():
        where.append("ignored text before the JSON")
    if text[end:].strip():
        where.append("ignored text after the JSON")
    return where


def _longest_parsing(text: str, ends: dict[int, int]) -> tuple[int, int, Any, list[str]] | None:
    """The longest span that parses (the leftmost among equals), trying the longest first: a real answer
    is found at once, before any fragment inside it or beside it.

    Spans that cannot start JSON are skipped unparsed; the attempts stop once they have cost `_SCAN_WORK`
    times the text (each attempt counts its length twice, strict and repaired, plus a fixed overhead).
    """
    # a cheap look at the character after each opener drops most non-JSON spans before the heap
    candidates = [(start - end, start) for start, end in ends.items() if text[start + 1] in _MAY_FOLLOW]
    heapq.heapify(candidates)
    json_start = _JSON_START.match
    budget = _SCAN_WORK * len(text) + _SCAN_SLACK
    while candidates:
        negative_length, start = heapq.heappop(candidates)
        if json_start(text, start) is None:
            continue
        end = start - negative_length
        budget -= 2 * (end - start) + _ATTEMPT_COST
        if budget < 0:
            return None
        parsed = _parse_span(text[start:end])
        if parsed is not None:
            value, fixes = parsed
            return start, end, value, fixes
    return None


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
                yield loads(text)
            except ValueError:
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
