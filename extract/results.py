"""What an extraction hands back besides the value: each attempt's story, the tokens and time it cost.

Public types (re-exported from `extract`); the engine fills them, callers and batch reports read them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from extract.evidence import FieldEvidence

__all__ = ["TIME_KEYS", "Attempt", "ChunkReport", "Disagreement", "Result", "Usage", "sum_time_info"]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts; `+` sums them so a Result can report the cost of every attempt together."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    # predicted outputs: completion tokens that matched (accepted) or did not match (rejected) the prediction
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
            self.total_tokens + other.total_tokens,
            self.accepted_prediction_tokens + other.accepted_prediction_tokens,
            self.rejected_prediction_tokens + other.rejected_prediction_tokens,
        )

    @classmethod
    def from_wire(cls, usage: Any) -> Usage:
        """Read an OpenAI/Cerebras `usage` object; missing or odd fields count as zero."""
        if not isinstance(usage, Mapping):
            return cls()
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        prompt = _int(usage.get("prompt_tokens"))
        completion = _int(usage.get("completion_tokens"))
        total = _int(usage.get("total_tokens")) or prompt + completion
        done: Mapping[str, Any] = completion_details if isinstance(completion_details, Mapping) else {}
        given: Mapping[str, Any] = prompt_details if isinstance(prompt_details, Mapping) else {}
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            reasoning_tokens=_int(done.get("reasoning_tokens")),
            cached_tokens=_int(given.get("cached_tokens")),
            total_tokens=total,
            accepted_prediction_tokens=_int(done.get("accepted_prediction_tokens")),
            rejected_prediction_tokens=_int(done.get("rejected_prediction_tokens")),
        )


# the durations (seconds) a provider reports per request in `time_info`; summed over attempts
TIME_KEYS: Final = ("queue_time", "prompt_time", "completion_time", "total_time")


def sum_time_info(parts: Iterable[Mapping[str, Any] | None]) -> dict[str, float] | None:
    """The durations of several `time_info` objects added up; None when none was reported."""
    total: dict[str, float] | None = None
    for part in parts:
        if part is None:
            continue
        total = total if total is not None else dict.fromkeys(TIME_KEYS, 0.0)
        for key in TIME_KEYS:
            value = part.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                total[key] += float(value)
    return total


@dataclass(frozen=True, slots=True)
class Attempt:
    """One model reply and what was wrong with it (`errors` is empty for the attempt that succeeded).

    `reasoning` is a reasoning model's thinking (never mixed into `content`); `logprobs` the per-token
    entries (`choices[0].logprobs.content`) when they were asked for, each a read-only mapping with the
    entry's fields (`token`, `logprob`, `bytes`, `top_logprobs`; `dict(entry)` for a dict, and
    `msgspec.json.encode` writes the list back as JSON); `time_info` the provider's timing.
    """

    mode: str
    content: str | None
    reasoning: str | None
    errors: list[str]
    usage: Usage
    finish_reason: str | None
    latency_s: float
    status_code: int
    logprobs: Sequence[Mapping[str, Any]] | None = None
    time_info: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Disagreement:
    """Chunks of one document gave different values for one field: the JSONPath, every value given in
    document order, and the character range [start, end) of the chunk each came from."""

    path: str
    values: tuple[Any, ...]
    ranges: tuple[tuple[int, int], ...]


@dataclass(frozen=True, slots=True)
class ChunkReport:
    """One chunk of a split document: its character range [start, end), its attempts and their usage,
    and, when it failed after its retries and re-asks, why (`error`; None when it succeeded)."""

    start: int
    end: int
    attempts: int
    usage: Usage
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class Result:
    """The value and how it was obtained: every attempt, the summed usage and time (`time_info`: the
    durations of every attempt added up, None when the server reported none), and the mode that worked.

    A document split into chunks (too long for the model's context) also says how: `chunks` (one report
    per chunk, in document order; empty when the document went whole), `complete` (False when a chunk
    failed: its text is in no value), `missing` (the character ranges no successful chunk covered) and
    `disagreements` (fields the chunks gave different values for, resolved by the merge policy).
    `attempts` and `usage` then cover every chunk.

    `evidence` (with `evidence=True`): JSONPath of each leaf value -> FieldEvidence (spans in the text,
    alignment, confidence); None when not asked for. `source` is the text the spans point into.

    With `require_grounding=True`, `dropped` maps the JSONPath of each string value the model gave but
    the text does not contain, and that re-asks did not fix, to that value: it was removed from `value`
    (null, or left out). `reply` is the index in `attempts` of the reply `value` was read from: the last
    one, except when require_grounding settled on an earlier, better grounded reply."""

    value: Any
    attempts: list[Attempt]
    usage: Usage
    time_info: dict[str, Any] | None
    mode: str
    model: str
    complete: bool = True
    chunks: tuple[ChunkReport, ...] = ()
    missing: tuple[tuple[int, int], ...] = ()
    disagreements: tuple[Disagreement, ...] = ()
    evidence: Mapping[str, FieldEvidence] | None = None
    source: str | None = None
    dropped: Mapping[str, Any] = field(default_factory=dict)
    reply: int = -1

    def _repr_html_(self) -> str:
        from extract.evidence._html import result_html

        return result_html(self)
