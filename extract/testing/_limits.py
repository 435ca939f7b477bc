"""Provider-style rate limits: continuously refilled token buckets and the x-ratelimit-* headers.

Pure logic over an injected clock. `time_scale` makes simulated time run faster than real time (60 turns a
minute window into one real second); header values are in real seconds, since that is what a client waits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from extract.errors import ConfigurationError

__all__ = ["Bucket", "Limits", "Verdict"]

_UNLIMITED_REQUESTS_DAY = 1_000_000_000
_UNLIMITED_TOKENS_MINUTE = 1_000_000_000


class Bucket:
    """`capacity` units refilled evenly over `window` simulated seconds."""

    __slots__ = ("capacity", "level", "rate", "stamp")

    def __init__(self, capacity: int, window: float, now: float) -> None:
        self.capacity = float(capacity)
        self.rate = capacity / window
        self.level = float(capacity)
        self.stamp = now

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def seconds_until(self, amount: float) -> float:
        """Simulated seconds until `amount` units are available (capped at the capacity)."""
        missing = min(amount, self.capacity) - self.level
        return max(missing, 0.0) / self.rate

    def seconds_until_full(self) -> float:
        return (self.capacity - self.level) / self.rate


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one admission: `code` is None when admitted, else the 429 variant."""

    code: str | None
    headers: list[tuple[str, str]]


class Limits:
    """Requests-per-minute, requests-per-day and tokens-per-minute buckets; whichever runs out first applies."""

    def __init__(
        self,
        *,
        rpm: int | None,
        rpd: int | None,
        tpm: int | None,
        time_scale: float = 1.0,
        clock: Callable[[], float],
    ) -> None:
        if time_scale <= 0:
            raise ConfigurationError(f"time_scale must be > 0, got {time_scale!r}")
        for name, value in (("rpm", rpm), ("rpd", rpd), ("tpm", tpm)):
            if value is not None and value <= 0:
                raise ConfigurationError(f"{name} must be a positive integer or None, got {value!r}")
        self._rpm, self._rpd, self._tpm = rpm, rpd, tpm
        self._scale = time_scale
        self._clock = clock
        self.reset()

    def reset(self) -> None:
        now = self._now()
        self._minute = Bucket(self._rpm, 60.0, now) if self._rpm else None
        self._day = Bucket(self._rpd or _UNLIMITED_REQUESTS_DAY, 86_400.0, now)
        self._tokens = Bucket(self._tpm or _UNLIMITED_TOKENS_MINUTE, 60.0, now)

    def _now(self) -> float:
        return self._clock() * self._scale

    def admit(self, tokens: int) -> Verdict:
        """Take one request and `tokens` reserved tokens, or refuse and say which limit was hit."""
        now = self._now()
        buckets = [b for b in (self._minute, self._day, self._tokens) if b is not None]
        for bucket in buckets:
            bucket.refill(now)
        code: str | None = None
        if (self._minute is not None and self._minute.level < 1) or self._day.level < 1:
            code = "request_quota_exceeded"
        elif self._tokens.level < tokens:
            code = "token_quota_exceeded"
        else:
            if self._minute is not None:
                self._minute.level -= 1
            self._day.level -= 1
            self._tokens.level -= tokens
        return Verdict(code, self.headers())

    def headers(self) -> list[tuple[str, str]]:
        """The six x-ratelimit-* headers for the current state (resets in real seconds)."""
        scale = self._scale
        requests_reset = self._day.seconds_until_full()
        if self._minute is not None and self._minute.level < 1:
            requests_reset = max(requests_reset, self._minute.seconds_until(1))
        return [
            ("x-ratelimit-limit-requests-day", str(int(self._day.capacity))),
            ("x-ratelimit-limit-tokens-minute", str(int(self._tokens.capacity))),
            ("x-ratelimit-remaining-requests-day", str(int(self._day.level))),
            ("x-ratelimit-remaining-tokens-minute", str(int(self._tokens.level))),
            ("x-ratelimit-reset-requests-day", f"{requests_reset / scale:.3f}"),
            ("x-ratelimit-reset-tokens-minute", f"{self._tokens.seconds_until_full() / scale:.3f}"),
        ]
