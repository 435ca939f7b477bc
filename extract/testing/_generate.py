"""Build a plausible instance of a JSON Schema, deterministically.

The test server answers every structured request with a value made here. It must be valid for the strict
subset (so happy-path tests pass without a model) and, where it can, for the user's full schema: the server
only sees the wire schema, so constraints the compiler moved into descriptions are read back
(_generate_hints) and honoured like keywords. Strings are checked against their pattern (the library's linear-time ECMA-262 engine),
length and format before they are used; numbers, arrays and objects are built inside their bounds. Where a
constraint cannot be met (a pattern beyond _regex, a truncated hint) the value is best effort. The same
(schema, words, seed) always gives the same value.
"""

from __future__ import annotations

import decimal
import math
import random
import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from extract._ecma_regex import RegexError, compile_ecma
from extract.testing._generate_hints import UNREADABLE, hinted_keywords
from extract.testing._regex import example_for

__all__ = ["generate", "words_of"]

_MAX_DEPTH = 12
_SOFT_DEPTH = 6  # past this, prefer the shortest value a schema allows (ends recursion)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_URL = re.compile(r"https?://[^\s<>\"')]+")
_TOKEN = re.compile(rf"{_EMAIL.pattern}|{_URL.pattern}|[A-Za-z][A-Za-z0-9'-]*")
_FORMAT_HINT = re.compile(r"\bformat: ([\w-]+)")
_URL_KEYS = ("url", "uri", "website", "homepage", "link")
MARKUP = re.compile(r"</?[A-Za-z][^>]{0,64}>")  # <document> wrappers clients put around the text
_FALLBACK_WORDS = ("example",)


def words_of(text: str, limit: int = 64) -> tuple[str, ...]:
    """Words (and whole e-mail addresses and URLs) of a user message, to fill string fields with input text."""
    tokens = (t.rstrip(".,;:") for t in _TOKEN.findall(MARKUP.sub(" ", text[:4000])))
    found = tuple(t for t in tokens if t)[:limit]
    return found or _FALLBACK_WORDS


def generate(schema: Any, *, words: Sequence[str] = _FALLBACK_WORDS, seed: int = 0) -> Any:
    """Return a JSON value for `schema` (a dict or a boolean schema)."""
    return _Generator(schema, words or _FALLBACK_WORDS, seed).value(schema, 0)


class _Generator:
    def __init__(self, root: Any, words: Sequence[str], seed: int) -> None:
        self.root = root
        self.emails = [w for w in words if _EMAIL.fullmatch(w)]
        self.urls = [w for w in words if _URL.fullmatch(w)]
        self.words = [w for w in words if w not in self.emails and w not in self.urls] or list(
            _FALLBACK_WORDS
        )
        self.rng = random.Random(seed)
        self.word_index = 0
        self.ref_stack: list[str] = []

    # ---- dispatch -------------------------------------------------------------------------------
    def value(self, schema: Any, depth: int, key: str = "") -> Any:
        if schema is True or schema is None:
            return self.word()
        if schema is False or not isinstance(schema, Mapping):
            return None
        if depth > _MAX_DEPTH:
            return None
        schema = _with_hints(schema)
        if "$ref" in schema and isinstance(schema["$ref"], str):
            return self.ref(schema, depth, key)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema and isinstance(schema["enum"], list) and schema["enum"]:
            return self.enum(schema)
        if "allOf" in schema and isinstance(schema["allOf"], list):
            return self.value(_merge_all_of(schema), depth + 1, key)
        for combinator in ("anyOf", "oneOf"):
            branches = schema.get(combinator)
            if isinstance(branches, list) and branches:
                return self.value(self.branch(schema, combinator, branches, depth), depth + 1, key)
        kind = self.type_of(schema, depth)
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, depth, key)
        if kind == "string":
            return self.string(schema, key)
        if kind == "integer":
            return self.integer(schema)
        if kind == "number":
            return self.number(schema)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema, key)

    def type_of(self, schema: Mapping[str, Any], depth: int) -> str:
        declared = schema.get("type")
        if isinstance(declared, str):
            return declared
        if isinstance(declared, list) and declared:
            kinds = [t for t in declared if isinstance(t, str)]
            if depth >= _SOFT_DEPTH and "null" in kinds:
                return "null"
            non_null = [t for t in kinds if t != "null"]
            return (non_null or kinds or ["string"])[0]
        if any(k in schema for k in ("properties", "required", "additionalProperties", "minProperties")):
            return "object"
        if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems", "contains")):
            return "array"
        if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")):
            return "integer" if isinstance(schema.get("multipleOf", 1), int) else "number"
        return "string"

    # ---- combinators and references ---------------------------------------------------------------
    @property
    def recursing(self) -> bool:
        """Inside a $ref that is already being expanded: take the shortest way out."""
        return len(set(self.ref_stack)) < len(self.ref_stack)

    def ref(self, schema: Mapping[str, Any], depth: int, key: str) -> Any:
        ref = schema["$ref"]
        if self.ref_stack.count(ref) >= 2 or depth > _MAX_DEPTH:
            target = _resolve(self.root, ref)
            return self.shortest(target if isinstance(target, Mapping) else {})
        target = _resolve(self.root, ref)
        if target is None:
            return self.word()
        siblings = {k: v for k, v in schema.items() if k != "$ref"}
        if siblings and isinstance(target, Mapping):
            target = _merge_all_of({"allOf": [target, siblings]})
        self.ref_stack.append(ref)
        try:
            return self.value(target, depth + 1, key)
        finally:
            self.ref_stack.pop()

    def branch(self, schema: Mapping[str, Any], combinator: str, branches: list[Any], depth: int) -> Any:
        """First branch, as a model following the schema most often does; a null branch when deep."""
        if depth >= _SOFT_DEPTH or self.recursing:
            for candidate in branches:
                if isinstance(candidate, Mapping) and candidate.get("type") == "null":
                    return candidate
        chosen = branches[0]
        rest = {k: v for k, v in schema.items() if k != combinator}
        if rest and isinstance(chosen, Mapping):
            return _merge_all_of({"allOf": [rest, chosen]})
        return chosen

    def shortest(self, schema: Mapping[str, Any]) -> Any:
        """A value that stops recursion: null where allowed, else an empty container or a scalar."""
        for combinator in ("anyOf", "oneOf"):
            branches = schema.get(combinator)
            if isinstance(branches, list):
                for candidate in branches:
                    if isinstance(candidate, Mapping) and candidate.get("type") == "null":
                        return None
        declared = schema.get("type")
        kinds = declared if isinstance(declared, list) else [declared]
        if "null" in kinds:
            return None
        if "array" in kinds or "items" in schema:
            return []
        if "object" in kinds or "properties" in schema:
            return {}
        if "string" in kinds:
            return self.word()
        if "integer" in kinds or "number" in kinds:
            return 0
        return None

    def enum(self, schema: Mapping[str, Any]) -> Any:
        options: list[Any] = schema["enum"]
        declared = schema.get("type")
        if isinstance(declared, str):
            typed = [v for v in options if _json_type_matches(v, declared)]
            options = typed or options
        return options[self.rng.randrange(len(options))]

    # ---- containers ---------------------------------------------------------------------------------
    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties")
        props = props if isinstance(props, Mapping) else {}
        listed = schema.get("required")
        required = [r for r in listed if isinstance(r, str)] if isinstance(listed, list) else []
        out: dict[str, Any] = {}
        shallow = depth >= _SOFT_DEPTH or self.recursing
        for name, sub in props.items():
            if shallow and name not in required:
                continue
            out[name] = self.value(sub, depth + 1, name)
        extra = schema.get("additionalProperties", True)
        for name in required:
            if name not in out:
                out[name] = self.value(extra if isinstance(extra, Mapping) else True, depth + 1, name)
        max_props = schema.get("maxProperties")
        if isinstance(max_props, int) and len(out) > max_props:
            for name in [n for n in out if n not in required][::-1]:
                if len(out) <= max_props:
                    break
                del out[name]
        min_props = schema.get("minProperties")
        if isinstance(min_props, int) and extra is not False:
            index = 1
            while len(out) < min_props:
                name = f"field_{index}"
                index += 1
                if name not in out:
                    out[name] = self.value(extra if isinstance(extra, Mapping) else True, depth + 1, name)
        return out

    def array(self, schema: Mapping[str, Any], depth: int, key: str = "") -> list[Any]:
        prefix = schema.get("prefixItems")
        items = schema.get("items", True)
        if isinstance(items, list):  # draft-04 tuple form
            prefix, items = items, schema.get("additionalItems", True)
        out = [self.value(sub, depth + 1) for sub in prefix] if isinstance(prefix, list) else []
        low = _int(schema.get("minItems"), 0)
        high = _int(schema.get("maxItems"), max(low, len(out) + 1, 1))
        wanted = 0 if depth >= _SOFT_DEPTH or self.recursing else 1
        target = max(low, len(out) if prefix else wanted)
        target = min(target, max(high, len(out)))
        contains = schema.get("contains")
        if isinstance(contains, Mapping) and len(out) < target + 1 and target < high + 1:
            out.append(self.value(contains, depth + 1))
        while len(out) < target and items is not False:
            value = self.value(items, depth + 1, key)
            if schema.get("uniqueItems") and value in out:
                value = self.distinct(items, out, depth)
                if value is _MISSING:
                    break
            out.append(value)
        return out

    def distinct(self, items: Any, taken: list[Any], depth: int) -> Any:
        for _ in range(8):
            candidate = self.value(items, depth + 1)
            if candidate not in taken:
                return candidate
        return _MISSING

    # ---- scalars --------------------------------------------------------------------------------------
    def word(self) -> str:
        word = self.words[self.word_index % len(self.words)]
        self.word_index += 1
        return word

    def string(self, schema: Mapping[str, Any], key: str) -> str:
        fmt = _format_of(schema, key)
        raw_pattern = schema.get("pattern")
        pattern = _compiled(raw_pattern) if isinstance(raw_pattern, str) else None
        low = _int(schema.get("minLength"), 0)
        limit = schema.get("maxLength")
        high = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= low else None
        candidates: list[str] = []
        if fmt in ("email", "idn-email") and self.emails:
            candidates.append(self.emails[self.word_index % len(self.emails)])
        elif fmt in ("uri", "url", "iri") and self.urls:
            candidates.append(self.urls[self.word_index % len(self.urls)])
        first = self.word()
        formatted = _formatted(fmt, first, self.rng) if fmt else None
        if formatted is not None:
            candidates.append(formatted)
        if not fmt or formatted is None:
            candidates.extend([first, *self.words[:8]])
        for candidate in candidates:
            fitted = _fit(candidate, low, high, fmt, pattern)
            if fitted is not None:
                return fitted
        if pattern is not None and isinstance(raw_pattern, str):
            example = example_for(raw_pattern, min_length=low, max_length=high)
            if example is not None:
                return example
        # Best effort: the constraints could not all be met (or not verified); keep the first candidate
        # and at least its length right when nothing else pins it.
        text = candidates[0] if candidates else first
        if pattern is None and fmt is None:
            text = _pad(text, low)
            text = text if high is None else text[:high]
        return text

    def integer(self, schema: Mapping[str, Any]) -> int:
        low, high = _bounds(schema, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            start = math.ceil(low / step) * step
            span = max(int((high - start) // step), 0)
            return int(start + step * self.rng.randint(0, min(span, 20)))
        return self.rng.randint(int(low), int(max(low, high)))

    def number(self, schema: Mapping[str, Any]) -> float | int:
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
            multiple = self.multiple(step, *_bounds(schema, integer=False))
            if multiple is not None:
                return multiple
        low, high = _bounds(schema, integer=False)
        value = round(self.rng.uniform(low, max(low, high)), 2)
        return min(max(value, low), high)

    def multiple(self, step: float, low: float, high: float) -> float | int | None:
        """A multiple of `step` in [low, high] that survives float division (what validators check)."""
        first, last = math.ceil(low / step), math.floor(high / step)
        if first > last:
            return None
        pick = first + self.rng.randint(0, min(last - first, 20))
        places = _decimals(step)
        for k in (pick, first, *range(first + 1, min(last, first + 50) + 1)):
            value: float | int = k * step if isinstance(step, int) else round(k * step, places)
            if low <= value <= high and (isinstance(step, int) or (value / step).is_integer()):
                return value
        return None


_MISSING: Any = object()


def _decimals(step: float) -> int:
    """Decimal places of a step as written (0.01 -> 2, 1e-05 -> 5), to round multiples back onto it."""
    exponent = decimal.Decimal(repr(step)).as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[float, float]:
    """Inclusive [low, high] from minimum/maximum and both exclusive forms (draft-04 booleans too)."""
    nudge = 1 if integer else 0.01
    low: float | None = _num(schema.get("minimum"))
    high: float | None = _num(schema.get("maximum"))
    ex_min, ex_max = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    ex_min_value, ex_max_value = _num(ex_min), _num(ex_max)
    if ex_min is True and low is not None:
        low += nudge
    elif ex_min_value is not None:
        low = ex_min_value + nudge if low is None else max(low, ex_min_value + nudge)
    if ex_max is True and high is not None:
        high -= nudge
    elif ex_max_value is not None:
        high = ex_max_value - nudge if high is None else min(high, ex_max_value - nudge)
    if integer:
        low = None if low is None else math.ceil(low)
        high = None if high is None else math.floor(high)
    if low is None and high is None:
        return (1, 100)
    if low is None and high is not None:
        return (min(1, high), high)
    if high is None and low is not None:
        return (low, low + 100)
    return (low or 0, high or 0)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _json_type_matches(value: Any, kind: str) -> bool:
    checks: dict[str, Any] = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "null": lambda v: v is None,
        "object": lambda v: isinstance(v, dict),
        "array": lambda v: isinstance(v, list),
    }
    check = checks.get(kind)
    return bool(check(value)) if check else True


def _format_of(schema: Mapping[str, Any], key: str) -> str | None:
    """The declared format, else one hinted by the description ("format: email") or the field name."""
    fmt = schema.get("format")
    if isinstance(fmt, str):
        return fmt
    if "pattern" in schema:
        return None
    description = schema.get("description")
    hint = _FORMAT_HINT.search(description) if isinstance(description, str) else None
    if hint:
        return hint.group(1)
    lowered = key.lower()
    if "email" in lowered:
        return "email"
    if lowered.endswith(_URL_KEYS):
        return "uri"
    return None


def _formatted(fmt: str, word: str, rng: random.Random) -> str | None:
    day = rng.randint(1, 28)
    if fmt in ("email", "idn-email"):
        return f"{word.lower()}@example.com"
    if fmt == "date":
        return f"2024-03-{day:02d}"
    if fmt == "date-time":
        return f"2024-03-{day:02d}T10:30:00Z"
    if fmt == "time":
        return "10:30:00Z"
    if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
        return f"https://example.com/{word.lower()}"
    if fmt == "uuid":
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))
    if fmt in ("hostname", "idn-hostname"):
        return "example.com"
    if fmt == "ipv4":
        return f"192.0.2.{day}"
    if fmt == "ipv6":
        return f"2001:db8::{day}"
    if fmt == "duration":
        return f"P{day}D"
    return None


def _compiled(pattern: str) -> Callable[[str], bool] | None:
    """The pattern's search, in time linear in the text (the library's ECMA-262 engine): a catastrophic
    pattern must not stall the server."""
    try:
        return compile_ecma(pattern).search
    except (RegexError, RecursionError, OverflowError):
        return None


def _pad(text: str, low: int) -> str:
    """`text` grown to `low` characters by repeating it (a word-like filler, not "xxx")."""
    if len(text) >= low:
        return text
    base = text if text.strip() else "x"
    grown = text
    while len(grown) < low:
        grown = f"{grown} {base}" if grown else base
    return grown[:low].rstrip() + "x" * (low - len(grown[:low].rstrip()))


def _fit(
    text: str, low: int, high: int | None, fmt: str | None, pattern: Callable[[str], bool] | None
) -> str | None:
    """`text`, or it stretched/cut to fit [low, high], when the result still passes pattern and format."""
    options = [text]
    if len(text) < low:
        if fmt is None:
            options.append(_pad(text, low))
        elif fmt in ("email", "idn-email") and "@" in text:
            local, _, domain = text.partition("@")
            options.append(local + "x" * (low - len(text)) + "@" + domain)
        elif fmt in ("uri", "url", "iri", "uri-reference", "iri-reference"):
            options.append(text + ("/" if not text.endswith("/") else "") + "x" * (low - len(text)))
    if high is not None and len(text) > high and fmt is None:
        options.append(text[:high])
    for option in options:
        if len(option) < low or (high is not None and len(option) > high):
            continue
        if pattern is not None and not pattern(option):
            continue
        return option
    return None


def _resolve(root: Any, ref: str) -> Any:
    """Follow a local JSON pointer (`#`, `#/$defs/x`, `#/definitions/x`); None when it leads nowhere."""
    if not ref.startswith("#"):
        return None
    node = root
    for raw in ref[1:].split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _with_hints(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    """The schema plus the constraints its description hints at (keywords already present win)."""
    hints = hinted_keywords(schema.get("description"))
    if not hints:
        return schema
    merged = dict(schema)
    for keyword, value in hints.items():
        if value is not UNREADABLE:
            merged.setdefault(keyword, value)
    return merged


def _merge_all_of(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Flatten `allOf` into one schema: properties merged, `required` unioned, later keywords win."""
    merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
    parts = schema.get("allOf", [])
    for part in parts if isinstance(parts, list) else []:
        if not isinstance(part, Mapping):
            continue
        if "allOf" in part:
            part = _merge_all_of(part)
        for key, value in part.items():
            if key == "properties" and isinstance(value, Mapping):
                known = merged.get("properties")
                merged["properties"] = {**(known if isinstance(known, Mapping) else {}), **value}
            elif key == "required" and isinstance(value, list):
                known = merged.get("required")
                names = [*(known if isinstance(known, list) else []), *value]
                merged["required"] = list(dict.fromkeys(n for n in names if isinstance(n, str)))
            else:
                merged.setdefault(key, value)
    return merged
