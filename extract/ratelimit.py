"""Client-side model of the provider's rate limits, so a batch waits instead of collecting 429s.

The provider reserves ``prompt tokens + max_completion_tokens`` when a request arrives and reports what is
left in ``x-ratelimit-*`` headers. :class:`RateLimiter` mirrors that: every request reserves its tokens here
before it is sent, and every response's headers correct the local picture. Budgets are modelled as
token buckets refilled continuously (the provider's documented model), with the refill rate learnt from
``(limit - remaining) / reset``.

Pure logic: no I/O, time comes from an injectable clock, and one lock makes it safe to share between the
threads of sync callers and the tasks of an event loop.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from extract.errors import ConfigurationError
from extract.transports.waits import DEFAULT_MAX_WAIT_S, check_cap, parse_duration, retry_after

__all__ = ["KnownLimits", "Limiter", "LimiterStats", "RateLimiter", "parse_duration"]

_MINUTE = 60.0
_DAY = 86_400.0
_MIN_WAIT = 0.001
_FORGET_AFTER = 300.0
_MAX_RESERVE = 0.1  # of the capacity, kept in hand against clock skew between us and the server
_BACKOFF_FIRST = 0.5
_BACKOFF_MAX = 8.0
_MAX_SLICE = 60.0  # the longest single wait reserve() hands out


class Limiter(Protocol):
    """What the engine needs from a limiter (see docs/ARCHITECTURE.md)."""

    def reserve(self, tokens: int) -> float:
        """Seconds to wait before sending; 0.0 means go, and only then is the reservation recorded."""
        ...

    def observe(
        self, status_code: int, headers: Mapping[str, str], tokens_used: int | None, reserved: int
    ) -> None:
        """Learn from one response (429s included)."""
        ...


@dataclass(frozen=True, slots=True)
class LimiterStats:
    """Counters a scheduler or a progress line reads; monotonic over the limiter's life."""

    granted: int
    throttled: int
    observed: int
    tokens_reserved: int
    tokens_used: int


@dataclass(frozen=True, slots=True)
class KnownLimits:
    """The budgets a limiter knows (configured or learnt from headers); None where unknown.

    The rates are per real second, as learnt: a server whose "minute" is scaled reports a faster rate.
    """

    tokens_per_minute: float | None = None
    token_rate: float | None = None
    requests_per_minute: float | None = None
    request_rate: float | None = None


def _parse_count(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    # a count the server cannot mean (NaN, inf, 1e308) is no count: int(inf) would raise OverflowError
    return int(value) if math.isfinite(value) and 0 <= value < 1e15 else None


class _Bucket:
    """One budget (tokens per minute, requests per day...) as a continuously refilled token bucket.

    The provider reports `remaining` and `reset` (seconds until the bucket is full again); together with
    the limit they give the refill rate, so a server whose "minute" is scaled (a test server) is learnt
    as easily as the real one. The server wrote its headers some time in the last `uncertainty` seconds,
    and may not have counted what we reserved since: both bounds are applied when folding them in.
    """

    __slots__ = ("capacity", "level", "period", "rate", "stamp")

    def __init__(self, period: float, limit: int | None, now: float) -> None:
        self.period = period
        self.capacity: float | None = float(limit) if limit is not None else None
        self.level: float | None = self.capacity
        self.rate: float | None = self.capacity / period if self.capacity is not None else None
        self.stamp = now

    def refill(self, now: float) -> None:
        if (
            self.level is not None
            and self.capacity is not None
            and self.rate is not None
            and now > self.stamp
        ):
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = max(self.stamp, now)

    def wait_for(self, cost: float, lag: float) -> float:
        """Seconds until `cost` fits, keeping `lag` seconds of refill in hand.

        We charge when we grant, the server when the request arrives; refill the server lost to a full
        bucket in between we would count twice. That error is at most `rate x lag` (lag: a round trip), a
        constant reserve that costs no throughput.
        """
        if self.level is None:
            return 0.0
        if self.capacity is not None and self.level >= self.capacity:
            # bigger than the whole budget: let it through alone on a full bucket rather than wait forever
            return 0.0
        if not self.rate:
            return 0.0 if self.level >= cost else _MIN_WAIT
        reserve = min(self.rate * lag, (self.capacity or 0.0) * _MAX_RESERVE)
        needed = (
            min(cost + reserve, self.capacity if self.capacity is not None else cost + reserve) - self.level
        )
        if needed <= 0:
            return 0.0
        # a hair longer than exact, so clock jitter and float rounding never arrive a token short
        return needed / self.rate * 1.001 + _MIN_WAIT

    def take(self, cost: float) -> None:
        if self.level is not None:
            self.level -= cost

    def sync(
        self,
        now: float,
        uncertainty: float,
        limit: int | None,
        remaining: int | None,
        reset: float | None,
        uncounted: float,
        in_flight: float = 0.0,
    ) -> None:
        """Fold one response's view of this budget into ours.

        `uncounted` bounds what we reserved that the server had not charged when it wrote the headers
        (everything granted since this request was sent, answered or not), so ``remaining - uncounted`` is
        a floor for what is really left; ``remaining`` plus what refilled since then is a ceiling.
        """
        if reset is not None:
            reset = min(
                reset, self.period
            )  # a bucket is full again within its period, whatever the header says
        if limit is not None and limit > 0:
            self.capacity = float(limit)
        elif remaining is not None and (self.capacity is None or remaining > self.capacity):
            # no limit header: the most we have seen left is a safe estimate of the budget
            self.capacity = float(remaining)
        if self.capacity is None or remaining is None:
            return
        missing = self.capacity - remaining
        if reset is not None and reset > 0 and missing >= max(2.0, self.capacity / 1000):
            # headers are rounded (whole tokens, milliseconds): err towards the slower rate
            self.rate = (missing - 1.0) / (reset + 0.001)
        elif self.rate is None:
            self.rate = self.capacity / self.period
        self.refill(now)
        ceiling = min(self.capacity, remaining + self.rate * uncertainty)
        if self.level is None:
            # first sight: whatever we granted so far may be uncounted
            self.level = remaining - (uncounted if uncounted != float("inf") else in_flight)
        else:
            floor = remaining - uncounted
            self.level = max(min(self.level, ceiling), floor)


_HEADER_KEYS = ("tokens-minute", "requests-minute", "requests-day")


class RateLimiter:
    """A shared limiter for every request of a client or a batch.

    Args:
        tokens_per_minute: budget to respect before the server has said anything (None: learn it).
        requests_per_minute: same, for requests.
        requests_per_day: same, per day.
        max_wait: the longest a server-given wait (`retry-after`, `retry-after-ms`) may block every caller,
            in seconds; longer or unreadable values are capped or ignored (60 s, as the SDKs do).
        probe: while no budget is known yet, send one request at a time until the first answer shows the
            server's headers, so a burst of hundreds of requests cannot overshoot an unknown limit. A server
            that sends no rate-limit headers lifts the limit after that single probe.
        clock: monotonic seconds; injectable for tests.
    """

    def __init__(
        self,
        tokens_per_minute: int | None = None,
        requests_per_minute: int | None = None,
        requests_per_day: int | None = None,
        *,
        probe: bool = True,
        clock: Callable[[], float] = time.monotonic,
        max_wait: float = DEFAULT_MAX_WAIT_S,
    ) -> None:
        for name, value in (
            ("tokens_per_minute", tokens_per_minute),
            ("requests_per_minute", requests_per_minute),
            ("requests_per_day", requests_per_day),
        ):
            if value is not None and value <= 0:
                raise ConfigurationError(f"{name} must be a positive number or None, not {value!r}")
        self._max_wait = check_cap(max_wait, "max_wait")
        self._clock = clock
        self._lock = threading.Lock()
        now = clock()
        self._buckets: dict[str, _Bucket] = {
            "tokens-minute": _Bucket(_MINUTE, tokens_per_minute, now),
            "requests-minute": _Bucket(_MINUTE, requests_per_minute, now),
            "requests-day": _Bucket(_DAY, requests_per_day, now),
        }
        configured = any(v is not None for v in (tokens_per_minute, requests_per_minute, requests_per_day))
        self._probing = probe and not configured
        self._probe_out = False
        self._blocked_until = 0.0
        self._backoff = _BACKOFF_FIRST
        self._in_flight_tokens = 0.0
        # every grant since the oldest unanswered one, in grant order:
        # [time, tokens, answered, guessed, tokens in flight before it].
        # The head's time bounds how stale an answer's headers can be, and the tokens granted since a
        # request left bound what the server may not have counted yet (answers arrive in any order).
        self._grants: deque[list[Any]] = deque()
        self._lag = 0.0  # recent round trips (rises at once, decays slowly)
        self._granted = 0
        self._throttled = 0
        self._observed = 0
        self._tokens_reserved = 0
        self._tokens_used = 0

    def __repr__(self) -> str:
        b = self._buckets["tokens-minute"]
        return f"RateLimiter(tokens_per_minute={b.capacity}, level={b.level}, throttled={self._throttled})"

    def stats(self) -> LimiterStats:
        with self._lock:
            return LimiterStats(
                granted=self._granted,
                throttled=self._throttled,
                observed=self._observed,
                tokens_reserved=self._tokens_reserved,
                tokens_used=self._tokens_used,
            )

    def known_limits(self) -> KnownLimits:
        """What this limiter knows of the budgets, for a scheduler that splits them between workers."""
        with self._lock:
            tokens = self._buckets["tokens-minute"]
            requests = self._buckets["requests-minute"]
            return KnownLimits(tokens.capacity, tokens.rate, requests.capacity, requests.rate)

    def blocked_for(self) -> float:
        """Seconds until a shared pause (a 429's retry-after, or its backoff) ends; 0.0 when none."""
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

    def reserve(self, tokens: int) -> float:
        """Seconds to wait before sending a request that reserves `tokens`; 0.0 records the reservation.

        A positive answer records nothing: sleep that long and ask again.
        """
        if tokens < 0:
            raise ConfigurationError(f"tokens must be >= 0, not {tokens}")
        with self._lock:
            now = self._clock()
            if now < self._blocked_until:
                return self._blocked_until - now
            if self._probing:
                if self._probe_out:
                    # poll: the probe's answer arrives within a round trip
                    return 0.05
                self._probe_out = True
            else:
                costs = {"tokens-minute": float(tokens), "requests-minute": 1.0, "requests-day": 1.0}
                wait = 0.0
                for key, bucket in self._buckets.items():
                    bucket.refill(now)
                    wait = max(wait, bucket.wait_for(costs[key], self._lag))
                if wait > 0:
                    # a long wait is answered in slices: the caller asks again, and a finite sleep never
                    # overflows however odd the budgets the server reported
                    return min(wait, _MAX_SLICE) if math.isfinite(wait) else _MAX_SLICE
                for key, bucket in self._buckets.items():
                    bucket.take(costs[key])
            self._grants.append([now, tokens, False, False, self._in_flight_tokens])
            self._in_flight_tokens += tokens
            self._granted += 1
            self._tokens_reserved += tokens
            return 0.0

    def observe(
        self, status_code: int, headers: Mapping[str, str], tokens_used: int | None, reserved: int
    ) -> None:
        """Correct the local picture with one response's headers; a 429 also pauses everyone briefly."""
        with self._lock:
            now = self._clock()
            self._observed += 1
            self._in_flight_tokens = max(0.0, self._in_flight_tokens - reserved)
            uncertainty, uncounted = self._answered(now, reserved)
            self._lag = max(uncertainty, 0.9 * self._lag + 0.1 * uncertainty)
            if tokens_used is not None:
                self._tokens_used += tokens_used
            lower = {k.lower(): v for k, v in headers.items()}
            for key in _HEADER_KEYS:
                limit = _parse_count(lower.get(f"x-ratelimit-limit-{key}"))
                remaining = _parse_count(lower.get(f"x-ratelimit-remaining-{key}"))
                reset_text = lower.get(f"x-ratelimit-reset-{key}")
                reset = parse_duration(reset_text) if reset_text is not None else None
                if limit is None and remaining is None and reset is None:
                    continue
                tokens = key == "tokens-minute"
                self._buckets[key].sync(
                    now,
                    uncertainty,
                    limit,
                    remaining,
                    reset,
                    uncounted if tokens else 0.0,
                    self._in_flight_tokens if tokens else 0.0,
                )
            if self._probing:
                self._probing = False
                self._probe_out = False
            if status_code == 429:
                self._throttled += 1
                self._on_throttled(now, lower, reserved)
            elif 200 <= status_code < 300:
                self._backoff = _BACKOFF_FIRST

    def _answered(self, now: float, reserved: int) -> tuple[float, float]:
        """Mark one grant answered; return (how old its headers may be, tokens the server may not have
        counted when it wrote them).

        Answers carry no request identity, only the reserved amount. When exactly one open grant has that
        amount (and was never part of a guess) the answer is surely its own, so everything granted since
        bounds what the server had not counted. Otherwise the answer is ambiguous: the floor is disabled
        (infinite) and the candidates are marked so they never count as certain later.
        """
        grants = self._grants
        open_ = [g for g in grants if not g[2]]
        if not open_:
            return 0.0, float("inf")
        candidates = [g for g in open_ if g[1] == reserved] or open_
        match = candidates[0]
        oldest = open_[0][0]
        if len(candidates) == 1 and not match[3]:
            started = match[0]
            # requests sent before it may still arrive after it: all that was in flight when it left counts
            uncounted = match[4] + sum(g[1] for g in grants if g[0] >= started) - reserved
        else:
            for g in candidates:
                g[3] = True
            uncounted = float("inf")
        match[2] = True
        while grants and (grants[0][2] or now - grants[0][0] > _FORGET_AFTER):
            # answered, or never answered (connection lost): no longer bounds anything
            grants.popleft()
        return now - oldest, max(0.0, uncounted)

    def _on_throttled(self, now: float, headers: Mapping[str, str], reserved: int) -> None:
        retry_after_s = retry_after(headers, cap=self._max_wait)
        if retry_after_s is not None:
            self._blocked_until = max(self._blocked_until, now + retry_after_s)
            return
        explained = False
        for key, bucket in self._buckets.items():
            cost = float(reserved) if key == "tokens-minute" else 1.0
            if bucket.level is not None and bucket.level < cost:
                explained = True
        if not explained:
            # a limit we cannot see (queue full, another budget): back off exponentially, shared
            self._blocked_until = max(self._blocked_until, now + self._backoff)
            self._backoff = min(self._backoff * 2, _BACKOFF_MAX)
