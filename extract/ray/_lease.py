"""Leasing slices of one cluster-wide rate limit: the pure logic behind `ClusterLimiter`.

A `Desk` (inside the limiter actor) owns the one `RateLimiter` of the job. Each worker process keeps a
`Book`: the requests it has leased and not yet spent, its recent demand, and the answers it has not yet
reported. A worker and the desk talk in one message each way (`Report` -> `Grant`), a few times a second,
never once per request: `reserve()` and `observe()` only touch the book.

A lease is counted in requests of about `unit` tokens each (the worker's typical reservation). The desk
grants them one by one from its `RateLimiter`, so every leased request is one grant there, and every one
comes back exactly once: as an answer the worker observed, or handed back unused when the lease expires
or the worker closes (`Book.hand_back`, which asks for nothing more).
The limiter matches answers to grants by size (answers carry no request identity); leased requests of
one size would all look alike, and an answer that fits many grants cannot correct the estimate upwards.
So each leased request gets a size of its own (`unit` plus a small offset, zero on average), and the
worker reports each answer under the size of its oldest request still unanswered: answers then match
their grants as they do on one machine, and the desk learns from the provider's headers fully.

Pure logic: no I/O, no Ray; time is passed in (or injected), so tests drive it with a fake clock.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from extract.ratelimit import KnownLimits, RateLimiter
from extract.transports.waits import retry_after

__all__ = [
    "Book",
    "Desk",
    "Grant",
    "Observation",
    "Report",
    "fallback_limiter",
    "share_headers",
]

LEASE_S = 0.5  # a lease covers this much of a worker's recent demand (and a fair share bounds it)
TTL_S = 1.0  # leased requests not spent by then are handed back
FLUSH_S = 0.1  # while busy, a worker reports at least this often (and asks again for more)
IDLE_S = 1.0  # an idle worker still reports this often: it stays counted, and hears of pauses
ACTIVE_S = 5.0  # a worker heard from within this long counts towards the fair share
DEMAND_S = 1.0  # the window over which a worker's demand is measured
MIN_POLL_S = 0.02  # the shortest wait reserve() hands out while a lease is on its way
MAX_UNITS = 512  # the most requests one lease grants
SPREAD = 64  # leased requests' sizes are spread over this many tokens, so each open grant is told apart
_KEPT_HEADERS = ("x-ratelimit-", "retry-after")


@dataclass(frozen=True, slots=True)
class Observation:
    """One answer as the engine saw it, reduced to what a limiter reads."""

    status: int
    headers: tuple[tuple[str, str], ...]
    tokens_used: int | None
    reserved: int


@dataclass(frozen=True, slots=True)
class Report:
    """What a worker tells the desk: answers since the last report, unused requests, and what it wants."""

    worker: str
    observations: tuple[Observation, ...] = ()
    returned: tuple[int, ...] = ()  # token sizes of leased requests handed back unused
    unit: int = 0  # tokens per request wanted
    want: int = 0  # requests wanted


@dataclass(frozen=True, slots=True)
class Grant:
    """The desk's answer: one leased request per entry of `sizes` (its tokens), valid for `ttl` seconds."""

    sizes: tuple[int, ...]
    ttl: float
    wait: float  # when fewer than wanted were granted: seconds until asking again is worth it
    blocked: float  # seconds every worker must hold (a 429's retry-after or backoff); 0.0 if none
    workers: int  # workers heard from recently (the N of the fallback's 1/N share)
    limits: KnownLimits = field(default_factory=KnownLimits)


def fair_share(limits: KnownLimits, unit: int, workers: int) -> int:
    """The most requests one lease may grant: a worker's share of `LEASE_S` worth of the known rates."""
    caps: list[float] = []
    share = LEASE_S / max(1, workers)
    if limits.token_rate and unit > 0:
        caps.append(limits.token_rate * share / unit)
    if limits.request_rate:
        caps.append(limits.request_rate * share)
    if not caps:
        return MAX_UNITS
    return max(1, min(MAX_UNITS, math.floor(min(caps))))


class Desk:
    """The limiter actor's state: one `RateLimiter` fed by every worker, handing out leases."""

    def __init__(self, limiter: RateLimiter, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._limiter = limiter
        self._clock = clock
        self._seen: dict[str, float] = {}
        self.throttled = 0  # 429s reported by the workers
        self._offsets = itertools.cycle(range(-SPREAD // 2, SPREAD // 2))

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    def workers(self) -> int:
        return len(self._seen)

    def sync(self, report: Report) -> Grant:
        now = self._clock()
        self._seen[report.worker] = now
        for worker in [w for w, seen in self._seen.items() if now - seen > ACTIVE_S]:
            del self._seen[worker]
        limiter = self._limiter
        for size in report.returned:
            # the same hand-back as a request cancelled before it was answered
            limiter.observe(0, {}, None, size)
        for seen in report.observations:
            status = seen.status
            if status == 429:
                self.throttled += 1
                if limiter.blocked_for() > 0 and not any(
                    k.startswith("retry-after") for k, _ in seen.headers
                ):
                    # sent before the pause began (answers arrive in batches): it must not lengthen it, as
                    # each unexplained 429 would double the backoff; its headers still count
                    status = 0
            limiter.observe(status, dict(seen.headers), seen.tokens_used, seen.reserved)
        workers = len(self._seen)
        limits = limiter.known_limits()
        want = min(report.want, fair_share(limits, report.unit, workers))
        sizes: list[int] = []
        wait = 0.0
        while len(sizes) < want:
            size = max(1, report.unit + next(self._offsets))
            wait = limiter.reserve(size)
            if wait > 0:
                break
            sizes.append(size)
        return Grant(tuple(sizes), TTL_S, wait, limiter.blocked_for(), workers, limits)


class Book:
    """A worker's side of the lease: serves `reserve()` from leased requests, buffers answers.

    Not thread-safe by itself: the caller holds one lock around every call.
    """

    def __init__(self, worker: str, *, max_wait: float = 60.0) -> None:
        self.worker = worker
        self._max_wait = max_wait
        self._units: deque[int] = deque()  # sizes of the leased requests not yet spent, oldest first
        self._sent: deque[int] = deque()  # sizes of the leased requests spent and not yet answered
        self._tokens = 0.0  # tokens leased and not yet spent
        self._expires = 0.0
        self._blocked_until = 0.0
        self._next_ask = 0.0  # the desk said more is not worth asking for before this
        self._last_sync = -math.inf
        self._pending: list[Observation] = []
        self._first_pending = math.inf
        self._urgent = False
        self._misses = 0
        self._miss_size = 0
        self._recent: deque[tuple[float, int]] = deque()  # (time, tokens) of recent local grants
        self._unit = 0.0  # typical reservation (moving average)
        self.workers = 1
        self.limits = KnownLimits()

    @property
    def leased(self) -> int:
        return len(self._units)

    def reserve(self, tokens: int, now: float) -> tuple[float, bool]:
        """(seconds to wait, whether the desk should be asked at once); 0.0 records the reservation."""
        if now < self._blocked_until:
            return self._blocked_until - now, False
        self._unit = float(tokens) if self._unit == 0 else 0.9 * self._unit + 0.1 * tokens
        # a leased request's size is the unit give or take half the spread: any request of about the unit
        # fits one, and the overdraft of a smaller one is repaid by a bigger one (zero on average)
        if self._units and now < self._expires and self._tokens + SPREAD // 2 >= tokens:
            self._tokens -= tokens
            self._sent.append(self._units.popleft())
            self._recent.append((now, tokens))
            return 0.0, False
        self._misses += 1
        self._miss_size = max(self._miss_size, tokens)
        ask_now = now >= self._next_ask
        wait = min(max(self._next_ask - now, MIN_POLL_S), FLUSH_S)
        return wait, ask_now

    def observe(
        self, status: int, headers: Mapping[str, str], tokens_used: int | None, reserved: int, now: float
    ) -> bool:
        """Buffer one answer for the desk; True when it should hear of it at once (a 429)."""
        kept = tuple(
            (name.lower(), value) for name, value in headers.items() if name.lower().startswith(_KEPT_HEADERS)
        )
        if not self._pending:
            self._first_pending = now
        # reported under the oldest unanswered request's size: the desk knows that grant, and attributing
        # an answer to an older grant than its own only widens what the server may not have counted yet
        size = self._sent.popleft() if self._sent else reserved
        self._pending.append(Observation(status, kept, tokens_used, size))
        if status == 429:
            pause = retry_after(dict(kept), cap=self._max_wait)
            if pause is not None:
                self._blocked_until = max(self._blocked_until, now + pause)
            self._urgent = True
            return True
        return False

    def due(self, now: float) -> float:
        """Seconds until the next report is needed."""
        if self._urgent:
            return 0.0
        at = self._last_sync + IDLE_S
        if self._pending:
            at = min(at, self._first_pending + FLUSH_S)
        if self._misses:
            at = min(at, max(self._next_ask, self._last_sync + MIN_POLL_S))
        if self._units:
            at = min(at, self._expires)
        return max(0.0, at - now)

    def report(self, now: float) -> Report:
        """The next message to the desk; takes the buffered answers and any expired requests."""
        returned: tuple[int, ...] = ()
        if self._units and now >= self._expires:
            returned = tuple(self._units)
            self._units.clear()
            self._tokens = 0.0
        while self._recent and now - self._recent[0][0] > DEMAND_S:
            self._recent.popleft()
        unit = max(math.ceil(self._unit), 1)
        if self._miss_size > unit and not self._recent:
            unit = self._miss_size
        demand = len(self._recent) / DEMAND_S * LEASE_S
        want = 0
        if self._misses or demand:
            want = min(MAX_UNITS, max(0, math.ceil(demand) + self._misses - len(self._units)))
        if self._miss_size > self._tokens and self._misses:
            # a request bigger than what is left in hand: ask for one of its size at least
            unit = max(unit, self._miss_size)
            want = max(want, 1)
        report = Report(self.worker, tuple(self._pending), returned, unit, want)
        self._pending = []
        self._first_pending = math.inf
        self._urgent = False
        self._misses = 0
        self._miss_size = 0
        self._last_sync = now
        return report

    def hand_back(self, now: float) -> Report:
        """The last message to the desk, when the worker is done: its buffered answers and every leased
        request it still holds, asking for nothing.

        `report()` would ask for more whenever recent demand is still in its window, and a grant made to
        a worker that has stopped is never spent nor handed back: the desk's limiter would count it in
        flight for good. A request spent but not answered by now never will be (the worker is done): it
        is handed back too, as a cancelled one is.
        """
        returned = tuple(self._units) + tuple(self._sent)
        self._units.clear()
        self._sent.clear()
        self._tokens = 0.0
        self._recent.clear()
        report = Report(self.worker, tuple(self._pending), returned)
        self._pending = []
        self._first_pending = math.inf
        self._urgent = False
        self._misses = 0
        self._miss_size = 0
        self._last_sync = now
        return report

    def apply(self, grant: Grant, now: float) -> None:
        """Take the desk's answer into the book."""
        if grant.sizes:
            self._units.extend(grant.sizes)
            self._tokens += sum(grant.sizes)
            self._expires = now + grant.ttl
        self._next_ask = now + min(grant.wait, FLUSH_S) if grant.wait > 0 else now
        if grant.blocked > 0:
            self._blocked_until = max(self._blocked_until, now + grant.blocked)
        self.workers = max(1, grant.workers)
        self.limits = grant.limits

    def unsent(self) -> tuple[Observation, ...]:
        """Answers not yet reported (handed to a fallback limiter when the desk is gone)."""
        pending = tuple(self._pending)
        self._pending = []
        self._first_pending = math.inf
        return pending


def share_headers(headers: Mapping[str, str], workers: int) -> dict[str, str]:
    """The headers as one worker's 1/`workers` share would read them: limits and remainders divided."""
    if workers <= 1:
        return dict(headers)
    shared: dict[str, str] = {}
    for name, value in headers.items():
        lower = name.lower()
        if lower.startswith(("x-ratelimit-limit-", "x-ratelimit-remaining-")):
            try:
                count = float(value.strip())
            except ValueError:
                shared[name] = value
                continue
            if math.isfinite(count):
                shared[name] = str(int(count // workers))
                continue
        shared[name] = value
    return shared


def fallback_limiter(
    limits: KnownLimits, workers: int, *, clock: Callable[[], float] = time.monotonic
) -> RateLimiter:
    """A local limiter with a 1/`workers` share of the last known limits (fed headers via `share_headers`)."""
    n = max(1, workers)
    tpm = math.floor(limits.tokens_per_minute / n) if limits.tokens_per_minute else None
    rpm = math.floor(limits.requests_per_minute / n) if limits.requests_per_minute else None
    return RateLimiter(
        tokens_per_minute=tpm if tpm and tpm > 0 else None,
        requests_per_minute=rpm if rpm and rpm > 0 else None,
        clock=clock,
    )
