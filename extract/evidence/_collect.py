"""One result's evidence: every leaf of the user-shaped value with its spans, alignment and confidence."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from extract.evidence._confidence import TokenMap
from extract.evidence._ground import Alignment, Grounder
from extract.evidence._paths import Path, format_path, leaves
from extract.evidence._scan import locate
from extract.evidence._schema import SchemaIndex, choices
from extract.evidence._trace import trace

if TYPE_CHECKING:
    from extract.schema import CompiledSchema

__all__ = ["FieldEvidence", "collect", "ungrounded"]


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


def user_json(
    compiled: CompiledSchema, content: str | None, value: Any
) -> tuple[Any, dict[Path, tuple[int, int]], dict[Path, Path]]:
    """The user-shaped JSON of a reply, the span of each wire value in `content`, and user path -> wire path.

    Read from the reply text when it holds a JSON value (so paths follow what the model wrote); else
    from the validated value (pydantic models dumped by alias), with no spans."""
    located = locate(content) if content else None
    if located is not None:
        wire, spans = located
        decoded = compiled.decode(wire)
        codec = getattr(compiled, "_codec", None)
        mapping = trace(codec, wire) if codec is not None else {}
        return decoded, spans, mapping
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json", by_alias=True), {}, {}
    return value, {}, {}


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
    shaped, spans, mapping = user_json(compiled, content, value)
    tokens = TokenMap.build(content, logprobs) if logprobs and content else None
    ground = grounder or Grounder(text)
    schema = compiled.user_schema
    index = SchemaIndex.of(schema)
    out: dict[str, FieldEvidence] = {}
    for path, leaf in leaves(shaped):
        alignment, found, score = ground.match(leaf)
        derived, members = index.facts(index.node(path))
        confidence = None
        wire_path = mapping.get(path)
        span = spans.get(wire_path) if wire_path is not None else None
        if tokens is not None and span is not None:
            start, end = span
            if content is not None and content[start] == '"' and end - start > 2:
                start, end = start + 1, end - 1  # a string's characters, not its quotes
            confidence = tokens.confidence(start, end, choices(members, leaf))
        key = format_path(path)
        if confidence is None and confidences:
            confidence = confidences.get(key)
        out[key] = FieldEvidence(key, leaf, found, alignment, confidence, score, derived)
    return out


def ungrounded(compiled: CompiledSchema, text: str, content: str | None, value: Any) -> tuple[str, ...]:
    """One error per string leaf that does not appear in the text (alignment `none`), derived fields
    exempt: the `require_grounding` check, phrased for the re-ask."""
    shaped, _, _ = user_json(compiled, content, value)
    ground = Grounder(text)
    schema = compiled.user_schema
    index = SchemaIndex.of(schema)
    errors: list[str] = []
    for path, leaf in leaves(shaped):
        if not isinstance(leaf, str) or not leaf.strip():
            continue
        if ground.match(leaf)[0] != "none" or index.facts(index.node(path))[0]:
            continue
        shown = leaf if len(leaf) <= 80 else leaf[:77] + "..."
        errors.append(
            f"{format_path(path)}: {shown!r} does not appear in the text; copy the value as the document "
            "writes it, or use null if the document does not give it"
        )
    return tuple(errors)
