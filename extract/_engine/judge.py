"""Deciding what a reply is worth, and what to tell the model when it is not good enough.

Each way a reply can fail gets its own verdict kind, so the re-ask says something specific (a schema
echo needs a different correction than a missing field) and the engine can treat refusals and
truncation differently from plain validation errors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from extract._reply import ReplyKind, parse_reply, unwrap_candidates
from extract.errors import ValidationFailed
from extract.modes import Reply

__all__ = ["Verdict", "correction", "judge"]

Kind = Literal["ok", "refusal", "length", "empty", "json", "echo", "invalid"]

_BY_REPLY_KIND: dict[ReplyKind, Kind] = {
    ReplyKind.EMPTY: "empty",
    ReplyKind.REFUSAL: "refusal",
    ReplyKind.SCHEMA_ECHO: "echo",
    ReplyKind.TRUNCATED: "json",
    ReplyKind.NOT_JSON: "json",
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """`ok` with the validated value, or the failure kind, its errors (each naming a JSON path) and,
    for failures that are not about the schema, the reply parser's one-line advice for the model."""

    kind: Kind
    value: Any = None
    errors: tuple[str, ...] = ()
    advice: str = ""

    @property
    def ok(self) -> bool:
        return self.kind == "ok"


def _first_valid(compiled: Any, candidates: list[Any]) -> Verdict | None:
    for candidate in candidates:
        try:
            return Verdict("ok", value=compiled.parse(candidate))
        except ValidationFailed:
            continue
    return None


def judge(compiled: Any, reply: Reply) -> Verdict:
    """Read, decode and validate one reply against the compiled schema."""
    if reply.refusal:
        return Verdict("refusal", errors=(f"$: the model refused: {reply.refusal}",))
    if reply.finish_reason == "content_filter":
        return Verdict("refusal", errors=("$: the provider's content filter stopped the reply",))
    truncated = reply.finish_reason == "length"
    parsed = parse_reply(reply.content)
    if parsed.kind is ReplyKind.OK or parsed.kind is ReplyKind.SCHEMA_ECHO:
        # A schema echo is still tried: a schema about schemas legitimately gets schema-shaped data.
        try:
            return Verdict("ok", value=compiled.parse(parsed.value))
        except ValidationFailed as exc:
            failure = exc
        unwrapped = _first_valid(compiled, unwrap_candidates(parsed.value))
        if unwrapped is not None:
            return unwrapped
        if parsed.kind is ReplyKind.OK:
            errors = tuple(str(v) for v in failure.violations) or (str(failure),)
            return Verdict("length" if truncated else "invalid", errors=errors)
    kind = _BY_REPLY_KIND.get(parsed.kind, "json")
    if truncated and kind in ("json", "empty"):
        kind = "length"
    detail = parsed.message or "the reply could not be used"
    return Verdict(kind, errors=(f"$: {detail}",), advice=parsed.message)


def correction(verdict: Verdict) -> str:
    """The one short user message sent after a failed reply; it names every failing path."""
    listed = "\n".join(f"- {e}" for e in verdict.errors[:20])
    if verdict.kind == "json" and verdict.advice:
        return f"Your reply could not be used: {verdict.advice}."
    if verdict.kind == "echo":
        return (
            "You replied with the JSON Schema itself. Reply with the data taken from the document, as one "
            "JSON value that matches the schema."
        )
    if verdict.kind == "empty":
        return "Your reply was empty. Reply with the JSON value taken from the document."
    if verdict.kind == "refusal":
        return (
            "This is a routine data-extraction task on the document given. Reply with the JSON value; use "
            "null where the document gives no value and the schema allows it."
        )
    if verdict.kind == "length":
        return (
            "Your reply was cut off at the token limit. Reply again with compact JSON: only what the "
            "schema asks for, no extra whitespace."
        )
    if verdict.kind == "json":
        return f"Invalid JSON:\n{listed}\nReply with the JSON value only."
    return f"Fix and reply with corrected JSON only:\n{listed}"
