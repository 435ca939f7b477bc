"""Progress for long runs: a tqdm bar when tqdm is installed and the stream is a terminal (or a notebook),
else a plain line every few seconds, which reads well in logs.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any, TextIO

from extract._batch._outcome import BatchStats, Outcome

__all__ = ["Progress"]

_PLAIN_EVERY_S = 5.0


def _tqdm_class(notebook: bool) -> Any | None:
    try:
        if notebook:
            from tqdm.auto import tqdm
        else:
            from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


class Progress:
    """Fed one outcome at a time (from any thread); `close()` ends the bar or prints the last line."""

    def __init__(
        self,
        *,
        total: int | None = None,
        stream: TextIO | None = None,
        notebook: bool = False,
        plain: bool | None = None,
        every: float = _PLAIN_EVERY_S,
        desc: str = "extract",
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._every = every
        self._last = time.monotonic()
        self._lock = threading.Lock()
        self._desc = desc
        self.total = total
        self._bar: Any | None = None
        self._closed = False
        if plain is None:
            plain = not notebook and not getattr(self._stream, "isatty", lambda: False)()
        tqdm = None if plain else _tqdm_class(notebook)
        if tqdm is not None:
            self._bar = tqdm(total=total, file=None if notebook else self._stream, unit="doc", desc=desc)

    def set_total(self, total: int | None) -> None:
        self.total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def update(self, outcome: Outcome | None, stats: BatchStats) -> None:
        del outcome
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix(
                    failed=stats.failed, tokens=stats.tokens, **{"429s": stats.throttled}, refresh=False
                )
                self._bar.update(1)
                return
            now = time.monotonic()
            if now - self._last >= self._every:
                self._last = now
                self._line(stats)

    def _line(self, stats: BatchStats) -> None:
        # the count is against the full total, so documents done by an earlier run (skipped) count too
        rate = stats.completed / stats.elapsed if stats.elapsed > 0 else 0.0
        count = stats.completed + stats.skipped
        of = f"/{self.total}" if self.total is not None else ""
        eta = ""
        if self.total is not None and rate > 0:
            left = max(self.total - count, 0)
            eta = f", ETA {left / rate:.0f}s"
        earlier = f", {stats.skipped} from an earlier run" if stats.skipped else ""
        print(
            f"{self._desc}: {count}{of} ({stats.failed} failed{earlier}), {stats.tokens:,} tokens, "
            f"{rate:.1f} docs/s{eta}, {stats.throttled} 429s",
            file=self._stream,
            flush=True,
        )

    def close(self, stats: BatchStats) -> None:
        with self._lock:
            if self._bar is not None:
                self._bar.set_postfix(
                    failed=stats.failed, tokens=stats.tokens, **{"429s": stats.throttled}, refresh=False
                )
                self._bar.close()
                self._bar = None
            elif not self._closed:
                self._line(stats)  # the final count, whenever the last periodic line was
            self._closed = True
