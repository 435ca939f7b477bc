"""What a batch hands back per document, and the running totals a progress line shows."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from extract.errors import APIError, ExtractError
from extract.results import Usage

__all__ = ["BatchStats", "DocId", "Outcome", "error_json", "to_jsonable", "usage_json"]

DocId = str | int


@dataclass(frozen=True, slots=True)
class Outcome:
    """One document's result: `value` when it worked, else `error` (an ExtractError, never raised).

    `index` is the document's position in the input, `attempts` how many model replies it took, `usage` the
    tokens it cost (zero when the server never answered) and `seconds` its wall time including waits.
    A long document split into chunks whose chunk failed has a `value` but `complete=False`, and `missing`
    names the character ranges no successful chunk covered; a resumed batch sends it again.
    `dropped` (require_grounding=True): JSONPath -> the value removed because the text does not contain it.
    """

    id: DocId
    index: int
    value: Any = None
    error: ExtractError | None = None
    usage: Usage = field(default_factory=Usage)
    attempts: int = 0
    seconds: float = 0.0
    evidence: Mapping[str, Any] | None = None  # path -> FieldEvidence, with evidence=True
    complete: bool = True
    missing: tuple[tuple[int, int], ...] = ()
    dropped: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_json(self) -> dict[str, Any]:
        """The checkpoint/stdout line: {"id", "value", "usage"} or {"id", "error": {"type", "message"}, "usage"}.

        An incomplete document's line also carries `"complete": false` and `"missing": [[start, end], ...]`
        (complete ones leave both out, so their lines stay as they were); one whose require_grounding
        removed values carries `"dropped": {path: value}`.
        """
        line: dict[str, Any] = {"id": self.id}
        if self.error is None:
            line["value"] = to_jsonable(self.value)
            if not self.complete:
                line["complete"] = False
                line["missing"] = [[start, end] for start, end in self.missing]
            if self.dropped:
                line["dropped"] = dict(self.dropped)
            if self.evidence is not None:
                line["evidence"] = evidence_json(self.evidence)
        else:
            line["error"] = error_json(self.error)
        line["usage"] = usage_json(self.usage)
        return line


def evidence_json(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """path -> {value, spans, alignment, score, confidence, derived}: FieldEvidence as an output line holds it."""
    return {
        path: {
            "value": ev.value,
            "spans": [list(span) for span in ev.spans],
            "alignment": ev.alignment,
            "score": ev.score,
            "confidence": ev.confidence,
            "derived": ev.derived,
        }
        for path, ev in evidence.items()
    }


def to_jsonable(value: Any) -> Any:
    """Pydantic models become their JSON-mode dump; everything else is passed through for orjson."""
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return value


def error_json(error: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    if isinstance(error, APIError) and error.status_code is not None:
        out["status_code"] = error.status_code
    return out


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


@dataclass(slots=True)
class BatchStats:
    """Running totals of one batch run (read it while iterating, or after)."""

    total: int | None = None
    done: int = 0
    failed: int = 0
    incomplete: int = 0  # of `done`: documents with a value but a chunk missing (they rerun on resume)
    skipped: int = 0
    tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the provider billed from its prompt cache
    throttled: int = 0
    concurrency: int = 0
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    @property
    def completed(self) -> int:
        return self.done + self.failed

    @property
    def elapsed(self) -> float:
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    def summary(self) -> str:
        rate = self.completed / self.elapsed if self.elapsed > 0 else 0.0
        incomplete = f" ({self.incomplete} incomplete)" if self.incomplete else ""
        return (
            f"{self.done} done{incomplete}, {self.failed} failed, {self.skipped} skipped (already in the output), "
            f"{self.tokens:,} tokens ({self.cached_tokens:,} cached), {self.elapsed:.1f}s ({rate:.1f} docs/s), {self.throttled} rate-limited (429)"
        )
