"""Every wait a server asks for, read in one place: `retry-after` (seconds or an HTTP-date),
`retry-after-ms`, and `x-ratelimit-reset-*` (plain seconds or Go-style durations such as ``"6m0s"``).

A server's number is input like any other: NaN, infinity, negative values, dates in the past or the next
century and garbage must not reach `time.sleep` (where ``1e308`` raises OverflowError) or a limiter's
"blocked until" (where ``999999`` stalls a whole batch for eleven days). Each reader returns a finite,
non-negative number of seconds no larger than the caller's cap, or None when the header says nothing
usable. The default cap, 60 s, is the one the official SDKs apply; the transport (`RetryPolicy`) and the
limiter (`RateLimiter`) both take it as an option. Pure functions, no I/O.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Mapping
from datetime import timezone

from extract.errors import ConfigurationError

__all__ = [
    "DEFAULT_MAX_WAIT_S",
    "RETRY_AFTER_CAP_S",
    "check_cap",
    "parse_duration",
    "ratelimit_reset",
    "retry_after",
    "server_wait",
]

DEFAULT_MAX_WAIT_S = 60.0
RETRY_AFTER_CAP_S = DEFAULT_MAX_WAIT_S  # the historical name, kept for readers of the retry policy

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_TEXT = 64  # no legitimate wait header is longer; longer text is not scanned


def _usable(seconds: float) -> float | None:
    return seconds if math.isfinite(seconds) and seconds >= 0.0 else None


def parse_duration(text: str) -> float | None:
    """Seconds from ``"12.5"``, ``"1m30s"``, ``"250ms"`` or ``"1.5s"``; None when unreadable, negative,
    NaN or infinite (uncapped: the callers cap)."""
    text = text.strip().lower()
    if not text or len(text) > _MAX_TEXT:
        return None
    try:
        value = float(text)
    except ValueError:
        pass
    else:
        return _usable(value)
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            return None
        total += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    return _usable(total) if pos == len(text) and pos > 0 else None


def _http_date(text: str, now: float) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about the sender's zone
        when = when.replace(tzinfo=timezone.utc)
    try:
        seconds = when.timestamp() - now
    except (OverflowError, ValueError, OSError):
        return None
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def check_cap(cap: float, name: str = "max_wait") -> float:
    """`cap` itself validated: a finite number of seconds >= 0 (a caller's typo must not become a hang)."""
    if not isinstance(cap, (int, float)) or isinstance(cap, bool) or not math.isfinite(cap) or cap < 0:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0, got {cap!r}")
    return float(cap)


def retry_after(
    headers: Mapping[str, str], *, cap: float = DEFAULT_MAX_WAIT_S, now: float | None = None
) -> float | None:
    """The wait a `retry-after-ms` or `retry-after` header asks for (ms first, as the SDKs read them),
    capped at `cap`; None when neither is present and usable."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        ms = parse_duration(raw_ms)
        if ms is not None:
            return min(ms / 1000.0, cap)
    raw = headers.get("retry-after")
    if raw is None:
        return None
    seconds = parse_duration(raw)
    if seconds is None and len(raw) <= _MAX_TEXT:
        seconds = _http_date(raw, time.time() if now is None else now)
    return None if seconds is None else min(seconds, cap)


def ratelimit_reset(headers: Mapping[str, str], *, cap: float = DEFAULT_MAX_WAIT_S) -> float | None:
    """Seconds until a 429's bucket refills, from `x-ratelimit-reset-*`: the longest reset among buckets
    reported empty, else (no remaining counts given) the soonest reset, since some bucket ran out."""
    exhausted: list[float] = []
    unknown: list[float] = []
    for name, value in headers.items():
        if not name.startswith("x-ratelimit-reset-"):
            continue
        seconds = parse_duration(value)
        if seconds is None:
            continue
        remaining = headers.get("x-ratelimit-remaining-" + name.removeprefix("x-ratelimit-reset-"))
        if remaining is None:
            unknown.append(seconds)
        elif remaining.strip() in {"0", "0.0"}:
            exhausted.append(seconds)
    if exhausted:
        return min(max(exhausted), cap)
    return min(min(unknown), cap) if unknown else None


def server_wait(
    headers: Mapping[str, str],
    status_code: int | None,
    *,
    cap: float = DEFAULT_MAX_WAIT_S,
    now: float | None = None,
) -> float | None:
    """The server's word on how long to wait before trying again: `retry-after*` first, then for a 429 the
    reset of the exhausted bucket; capped, or None when the server gave nothing usable."""
    hinted = retry_after(headers, cap=cap, now=now)
    if hinted is None and status_code == 429:
        hinted = ratelimit_reset(headers, cap=cap)
    return hinted
