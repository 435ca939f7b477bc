"""A simple model of the time a completion takes, from its usage; off (all zero) by default.

Real providers spend time per token, not per request: reading the prompt (much cheaper for a prefix already in the
prompt cache), then generating each completion token in turn. A predicted output lets the model check many
tokens of the prediction in one step, so each prediction token (accepted or rejected) costs only a fraction of a
generated one. With this model a benchmark's wall time per success reflects those savings; the figures are the
benchmark's assumptions, stated with its results, not measurements of any provider.

    seconds = prompt_token_s * uncached prompt tokens + cached_prompt_token_s * cached prompt tokens
            + completion_token_s * (completion tokens - accepted prediction tokens)
            + completion_token_s * prediction_factor * (accepted + rejected prediction tokens)

Rejected prediction tokens were checked and thrown away, so they add checking time only. The fixed time per
request is the server's separate `latency` setting.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["TokenLatency"]


@dataclass(frozen=True, slots=True)
class TokenLatency:
    """Seconds per token of each kind; `prediction_factor` is a prediction token's share of a generated one."""

    prompt_token_s: float = 0.0
    cached_prompt_token_s: float = 0.0
    completion_token_s: float = 0.0
    prediction_factor: float = 0.25

    def __post_init__(self) -> None:
        for name in ("prompt_token_s", "cached_prompt_token_s", "completion_token_s"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN
                raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
        if not 0.0 <= self.prediction_factor <= 1.0:
            raise ValueError(f"prediction_factor must be between 0 and 1, got {self.prediction_factor!r}")

    @property
    def enabled(self) -> bool:
        return bool(self.prompt_token_s or self.cached_prompt_token_s or self.completion_token_s)

    def seconds(
        self,
        *,
        prompt_tokens: int,
        cached_tokens: int = 0,
        completion_tokens: int = 0,
        accepted_prediction_tokens: int = 0,
        rejected_prediction_tokens: int = 0,
    ) -> float:
        """The time this usage takes (never negative, whatever the counts)."""
        cached = min(max(cached_tokens, 0), max(prompt_tokens, 0))
        uncached = max(prompt_tokens, 0) - cached
        accepted = min(max(accepted_prediction_tokens, 0), max(completion_tokens, 0))
        generated = max(completion_tokens, 0) - accepted
        checked = accepted + max(rejected_prediction_tokens, 0)
        return (
            self.prompt_token_s * uncached
            + self.cached_prompt_token_s * cached
            + self.completion_token_s * (generated + self.prediction_factor * checked)
        )
