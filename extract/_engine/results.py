"""What an extraction hands back besides the value: each attempt's story and the tokens it cost."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Attempt", "Result", "Usage"]


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

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.reasoning_tokens + other.reasoning_tokens,
            self.cached_tokens + other.cached_tokens,
            self.total_tokens + other.total_tokens,
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
        return cls(
            prompt_tokens=prompt,
            completion_tokens=completion,
            reasoning_tokens=_int(completion_details.get("reasoning_tokens"))
            if isinstance(completion_details, Mapping)
            else 0,
            cached_tokens=_int(prompt_details.get("cached_tokens"))
            if isinstance(prompt_details, Mapping)
            else 0,
            total_tokens=total,
        )


@dataclass(frozen=True, slots=True)
class Attempt:
    """One model reply and what was wrong with it (`errors` is empty for the attempt that succeeded)."""

    mode: str
    content: str | None
    reasoning: str | None
    errors: list[str]
    usage: Usage
    finish_reason: str | None
    latency_s: float
    status_code: int


@dataclass(frozen=True, slots=True)
class Result:
    """The value and how it was obtained: every attempt, the summed usage, and the mode that worked."""

    value: Any
    attempts: list[Attempt]
    usage: Usage
    time_info: dict[str, Any] | None
    mode: str
    model: str
