"""How many documents to keep in flight: additive increase, multiplicative decrease (TCP-style).

Starts at the caller's concurrency (the ceiling), halves on a 429 (at most once per cooldown, since a burst
of 429s is one congestion event), shrinks gently when latency climbs well above the best seen (the server
is queueing), and climbs back by one slot per window of successes.
"""

from __future__ import annotations

from extract.errors import ConfigurationError

__all__ = ["AdaptiveLimit"]

_LATENCY_FACTOR = 3.0
_EWMA = 0.1
_BASELINE_DRIFT = 1.0005  # the best latency seen is allowed to age, so a slower server is re-learnt
_MIN_COOLDOWN = 0.5


class AdaptiveLimit:
    """The current in-flight limit; pure logic, time passed in."""

    def __init__(self, maximum: int, minimum: int = 1) -> None:
        if maximum < 1:
            raise ConfigurationError(f"concurrency must be at least 1, not {maximum}")
        self.maximum = maximum
        self.minimum = max(1, min(minimum, maximum))
        self._limit = float(maximum)
        self._baseline: float | None = None
        self._ewma: float | None = None
        self._last_decrease = float("-inf")
        self.decreases = 0

    @property
    def limit(self) -> int:
        return max(self.minimum, int(self._limit))

    def _cooldown(self) -> float:
        return max(_MIN_COOLDOWN, 2 * (self._ewma or 0.0))

    def _decrease(self, factor: float, now: float) -> None:
        if now - self._last_decrease < self._cooldown():
            return
        self._limit = max(float(self.minimum), self._limit * factor)
        self._last_decrease = now
        self.decreases += 1

    def on_throttled(self, now: float) -> None:
        """The server answered 429: congestion, halve."""
        self._decrease(0.5, now)

    def on_success(self, latency: float | None, now: float) -> None:
        """A document finished; `latency` is the server round trip of its last request (None if unknown)."""
        if latency is not None and latency > 0:
            self._baseline = (
                latency if self._baseline is None else min(self._baseline * _BASELINE_DRIFT, latency)
            )
            self._ewma = latency if self._ewma is None else self._ewma + _EWMA * (latency - self._ewma)
            if self._ewma > _LATENCY_FACTOR * self._baseline and self._baseline > 0.005:
                self._decrease(0.9, now)
                return
        if self._limit < self.maximum:
            self._limit = min(float(self.maximum), self._limit + 1.0 / self._limit)
