"""One result's evidence: every leaf of the user-shaped value with its spans, alignment and confidence."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import TYPE_CHECKING, Any

import orjson

from extract.evidence._confidence import TokenMap
from extract.evidence._ground import Alignment, Grounder
from extract.evidence._paths import Path, leaf_list
from extract.evidence._scan import RISKY_NUMBER, locate
from extract.evidence._schema import SchemaIndex, choices
from extract.evidence._trace import trace

if TYPE_CHECKING:
    from extract.schema import CompiledSchema

__all__ = ["FieldEvidence", "collect"]


@dataclass(frozen=True, slots=True)
class FieldEvidence:
    """The evidence for one leaf value of a result, keyed in `Result.evidence` by its JSONPath.

    `spans`: (start, end) character offsets into the caller's text (Python string indices), every
    occurrence for `exact` and `normalised` matches, the best window for `fuzzy`, none for `none`.
    `alignment`: how the value was found (see `extract.evidence._ground`); `score`: 1.0 for exact and
    normalised, the match ratio for fuzzy, 0.0 for none. `confidence`: the probability the model gave the
    value's tokens in the final reply (see `extract.evidence._confidence`; for a document split into
    chunks, in the chunk reply the merge took the value from). None without logprobs, and for a value no
    returned token wrote: tokens that stop matching the reply before it, a reply the parser had to repair,
    a value the validator filled in (a default) or a merge computed. `derived`: the schema marks
    the field as computed (`"derived": true`), so `none` is expected there.
    """

    path: str
    value: Any
    spans: list[tuple[int, int]]
    alignment: Alignment
    confidence: float | None = None
    score: float = 0.0
    derived: bool = field(default=False)


_NAMES = ("path", "value", "spans", "alignment", "confidence", "score", "derived")
_new = object.__new__
# each field's slot, set directly (a frozen dataclass's own __setattr__ refuses; object.__setattr__ would
# look the name up on every call)
if sys.version_info >= (3, 11):
    from operator import call
else:  # pragma: no cover - Python 3.10

    def call(setter: Any, made: Any, value: Any) -> Any:
        return setter(made, value)


_SETTERS = tuple(getattr(FieldEvidence, name).__set__ for name in _NAMES)


def _evidence(
    path: str,
    value: Any,
    spans: list[tuple[int, int]],
    alignment: Alignment,
    confidence: float | None,
    score: float,
    derived: bool,
) -> FieldEvidence:
    """`FieldEvidence(...)` at a fraction of the cost (one per leaf): a frozen dataclass's `__init__` sets
    each field through `object.__setattr__` looked up anew; here the seven slots are set in one C-level loop."""
    made: FieldEvidence = _new(FieldEvidence)
    any(map(call, _SETTERS, repeat(made, 7), (path, value, spans, alignment, confidence, score, derived)))
    return made


def user_json(
    compiled: CompiledSchema, content: str | None, value: Any
) -> tuple[Any, dict[Path, tuple[int, int]], dict[Path, Path]]:
    """The user-shaped JSON of a reply, the span of each wire value in `content`, and user path -> wire path.

    Read from the reply text when it holds a JSON value (so paths follow what the model wrote); else
    from the validated value (pydantic models dumped by alias), with no spans."""
    shaped, spans, mapping = _user_json(compiled, content, value)
    if mapping is None:  # the wire is the user shape: every leaf at its own path
        mapping = {path: path for path, _ in leaf_list(shaped)}
    return shaped, spans, mapping


def _user_json(
    compiled: CompiledSchema, content: str | None, value: Any, *, spans: bool = True
) -> tuple[Any, dict[Path, tuple[int, int]], dict[Path, Path] | None]:
    """`user_json`, with None for the mapping when the schema's codec is the identity (nothing to trace).
    `spans=False` (no confidence to place): a reply that is one JSON value and nothing else is read by orjson
    alone, with no spans and no mapping."""
    if content and not spans:
        whole = _whole_json(content)
        if whole is not _NOT_JSON:
            return compiled.decode(whole), {}, {}
    located = locate(content) if content else None
    if located is not None:
        wire, found = located
        decoded = compiled.decode(wire)
        codec = getattr(compiled, "_codec", None)
        if codec is None or not spans:
            return decoded, found, {}
        if codec.identity:
            return decoded, found, None
        return decoded, found, trace(codec, wire)
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True), {}, {}
    return value, {}, {}


_NOT_JSON = object()


def _whole_json(content: str) -> Any:
    """The reply as one JSON value (what `locate` reads first when it is nothing else), or _NOT_JSON."""
    if RISKY_NUMBER.search(content):  # a number orjson cannot carry exactly: left to `locate`
        return _NOT_JSON
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        return _NOT_JSON


def collect(
    compiled: CompiledSchema,
    text: str,
    content: str | None,
    value: Any,
    logprobs: Sequence[Mapping[str, Any]] | None,
    grounder: Grounder | None = None,
    confidences: Mapping[str, float] | None = None,
) -> dict[str, FieldEvidence]:
    """Evidence for every leaf of the final reply, keyed by JSONPath, in document order. `confidences`:
    JSONPath -> confidence for a value no one reply holds (a chunked document's merge), read where the
    reply's tokens give none."""
    tokens = TokenMap.build(content, logprobs) if logprobs and content else None
    if tokens is None or content is None:  # no confidence to work out: no span is needed
        shaped, spans, mapping = _user_json(compiled, content, value, spans=False)
        spans, tokens, content = {}, None, ""
    else:
        shaped, spans, mapping = _user_json(compiled, content, value)
    match = (grounder or Grounder(text)).match
    index = SchemaIndex.of(compiled.user_schema)
    known = index.leaves  # what the schema says of each path, from earlier calls
    out: dict[str, FieldEvidence] = {}
    for path, leaf in leaf_list(shaped):
        alignment, found, score = match(leaf)
        key, derived, members = known.get(path) or index.leaf(path)
        confidence = None
        wire_path = path if mapping is None else mapping.get(path)
        span = spans.get(wire_path) if wire_path is not None else None
        if span is not None and tokens is not None:
            start, end = span
            if content[start] == '"' and end - start > 2:
                start, end = start + 1, end - 1  # a string's characters, not its quotes
            others = choices(members, leaf) if members or type(leaf) is bool else ()
            confidence = tokens.confidence(start, end, others)
        if confidence is None and confidences:
            confidence = confidences.get(key)
        out[key] = _evidence(key, leaf, found, alignment, confidence, score, derived)
    return out
