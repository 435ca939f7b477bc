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

__all__ = ["REASK_EXCERPT_CHARS", "Verdict", "correction", "judge", "quoted_reply", "ungrounded_verdict"]

REASK_EXCERPT_CHARS = 2000
"""At most this many characters of a failed reply are quoted back to the model in a re-ask (its head and
its tail, with a marker saying how much was left out): enough to show the model what it wrote and where it
stopped, while a runaway reply of megabytes costs the next request a few kilobytes (at most ~8 KB of
UTF-8, ~12 KB if every character needs a JSON escape), not its own size again."""

MAX_ERROR_CHARS = 300  # one error line (a violation, a refusal) as listed in a correction or an Attempt
_MAX_LISTED = 20  # errors listed in one correction

Kind = Literal["ok", "refusal", "length", "empty", "json", "echo", "invalid", "ungrounded"]

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
        return Verdict("refusal", errors=(_clip(f"$: the model refused: {reply.refusal}"),))
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
            errors = tuple(_clip(str(v)) for v in failure.violations) or (_clip(str(failure)),)
            return Verdict("length" if truncated else "invalid", errors=errors)
    kind = _BY_REPLY_KIND.get(parsed.kind, "json")
    if truncated and kind in ("json", "empty"):
        kind = "length"
    detail = parsed.message or "the reply could not be used"
    return Verdict(kind, errors=(f"$: {detail}",), advice=parsed.message)


def ungrounded_verdict(errors: tuple[str, ...]) -> Verdict:
    """A valid reply whose string values do not all appear in the text (`require_grounding=True`): its
    errors name every such path, and the re-ask asks for those fields only to change."""
    return Verdict("ungrounded", errors=tuple(_clip(e) for e in errors))


def quoted_reply(content: str, limit: int = REASK_EXCERPT_CHARS) -> str:
    """A failed reply as quoted back in a re-ask: whole when short, else its head and tail around a marker
    (the result is at most `limit` characters plus the marker's ~50)."""
    if len(content) <= limit:
        return content
    head = limit * 3 // 4
    tail = limit - head
    omitted = len(content) - head - tail
    return f"{content[:head]}\n[... {omitted:,} characters of this reply left out ...]\n{content[-tail:]}"


def _clip(line: str, limit: int = MAX_ERROR_CHARS) -> str:
    """One error line, bounded: a message quoting a huge value must not grow every later request."""
    if len(line) <= limit:
        return line
    return f"{line[: limit - 30]}… ({len(line):,} characters in all)"


def correction(verdict: Verdict) -> str:
    """The one short user message sent after a failed reply; it names every failing path (up to 20),
    each line at most MAX_ERROR_CHARS long, so its size is bounded whatever the reply was."""
    listed = "\n".join(f"- {_clip(e)}" for e in verdict.errors[:_MAX_LISTED])
    if len(verdict.errors) > _MAX_LISTED:
        listed += f"\n- ... and {len(verdict.errors) - _MAX_LISTED} more"
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
    if verdict.kind == "ungrounded":
        return (
            f"These values are not in the document:\n{listed}\nReply with the same JSON, changing only "
            "these fields; keep every other value exactly as it is."
        )
    return f"Fix and reply with corrected JSON only:\n{listed}"
