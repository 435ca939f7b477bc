"""One rate limit for a whole Ray job: a named limiter actor, and `ClusterLimiter` for the workers.

`start_limiter(name, tpm=...)` starts (or finds) the actor, which holds the job's one `RateLimiter`
(see `_lease.Desk`). `ClusterLimiter(name)` is what each worker's `Extractor` gets as `limiter=`: it
implements the library's `Limiter` protocol, so the engine needs no Ray-specific code. It pickles as its
name alone; in the worker a background thread leases requests from the actor a few times a second and
reports the answers (headers, 429s) in batches. `reserve()` and `observe()` only read and write local
state under a lock, so neither ever blocks an event loop on a remote call.

If the actor cannot be reached (killed, its node lost), each worker goes on with a local `RateLimiter`
holding a 1/N share of the last known limits, N being the number of workers the actor last heard from;
the headers it learns from are divided by N too, so the shares stay shares. Every few seconds it looks for
the actor again (a new `start_limiter` with the same name) and goes back to leasing when it is there.
Nothing is lost either way: a request the share misjudges is answered 429 and retried by the engine.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Mapping
from typing import Any

from extract.errors import ConfigurationError
from extract.ratelimit import RateLimiter
from extract.ray._lease import Book, Desk, Grant, Report, fallback_limiter, share_headers

__all__ = ["ClusterLimiter", "start_limiter"]

logger = logging.getLogger("extract.ray")

SYNC_TIMEOUT_S = 10.0  # a report the actor has not answered by then counts as the actor being gone
RECONNECT_S = 2.0  # how often a worker on its fallback share looks for the actor again


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigurationError('extract.ray needs Ray: pip install "extract-llm[ray]" (Ray Data)') from None
    return ray


class _LimiterActor:
    """The actor behind `start_limiter`: a `Desk`, called by every worker's background thread."""

    def __init__(self, tpm: int | None, rpm: int | None) -> None:
        self._desk = Desk(RateLimiter(tokens_per_minute=tpm, requests_per_minute=rpm))

    def sync(self, report: Report) -> Grant:
        return self._desk.sync(report)

    def stats(self) -> dict[str, int]:
        """Counters for tests and progress lines (grants, 429s seen, workers heard from)."""
        stats = self._desk.limiter.stats()
        return {
            "granted": stats.granted,
            "throttled": self._desk.throttled,
            "observed": stats.observed,
            "workers": self._desk.workers(),
        }


def start_limiter(
    name: str, *, rpm: int | None = None, tpm: int | None = None, namespace: str | None = None
) -> Any:
    """Get or create the job's limiter actor named `name`; returns its handle.

    `rpm`/`tpm` are the budgets to respect before the provider's headers have said anything (None: learn
    them, probing with one request first). The first call creates the actor and its limits win; later calls
    with the same name return the same actor. The actor is not detached: it ends with the job (the driver).
    Call it on the driver after `ray.init()`, then give every worker `ClusterLimiter(name)`.
    """
    for label, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            raise ConfigurationError(f"{label} must be a positive integer or None, not {value!r}")
    if not name:
        raise ConfigurationError("the limiter needs a name (any string unique to the job)")
    ray = _ray()
    actor = ray.remote(num_cpus=0, max_concurrency=1)(_LimiterActor)
    return actor.options(name=name, namespace=namespace, get_if_exists=True).remote(tpm, rpm)


class ClusterLimiter:
    """A `Limiter` sharing one rate limit between every worker of a Ray job (see the module docstring).

    Args:
        name: the limiter actor's name, as given to `start_limiter`.
        namespace: its Ray namespace (None: the job's).
        max_wait: the longest a 429's retry-after may pause this worker, in seconds (as `RateLimiter`).
    """

    def __init__(self, name: str, *, namespace: str | None = None, max_wait: float = 60.0) -> None:
        if not name:
            raise ConfigurationError("ClusterLimiter needs the limiter actor's name (see start_limiter)")
        self.name = name
        self.namespace = namespace
        self.max_wait = max_wait
        self._local()

    def _local(self) -> None:
        self._lock = threading.Lock()
        self._book = Book(f"{os.getpid()}-{uuid.uuid4().hex[:8]}", max_wait=self.max_wait)
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._fallback: RateLimiter | None = None
        self._share = 1
        self._closed = False

    def __getstate__(self) -> dict[str, Any]:
        # only the name travels: the lease, the thread and the lock belong to the process they live in
        return {"name": self.name, "namespace": self.namespace, "max_wait": self.max_wait}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.name = state["name"]
        self.namespace = state["namespace"]
        self.max_wait = state["max_wait"]
        self._local()

    def __repr__(self) -> str:
        mode = "fallback share" if self._fallback is not None else "leasing"
        return f"ClusterLimiter(name={self.name!r}, namespace={self.namespace!r}, {mode})"

    @property
    def on_fallback(self) -> bool:
        """True while this worker runs on its local share because the limiter actor is unreachable."""
        return self._fallback is not None

    def reserve(self, tokens: int) -> float:
        if tokens < 0:
            raise ConfigurationError(f"tokens must be >= 0, not {tokens}")
        self._start()
        fallback = self._fallback
        if fallback is not None:
            return fallback.reserve(tokens)
        with self._lock:
            wait, ask = self._book.reserve(tokens, time.monotonic())
        if ask:
            self._wake.set()
        return wait

    def observe(
        self, status_code: int, headers: Mapping[str, str], tokens_used: int | None, reserved: int
    ) -> None:
        fallback = self._fallback
        if fallback is not None:
            fallback.observe(status_code, share_headers(headers, self._share), tokens_used, reserved)
            return
        with self._lock:
            urgent = self._book.observe(status_code, headers, tokens_used, reserved, time.monotonic())
        if urgent:
            self._wake.set()

    def close(self) -> None:
        """Stop the background thread, which first hands the lease back to the actor: the requests this
        worker still holds, and any answers not yet reported (it also stops by itself once the limiter
        is garbage, without that hand-back)."""
        self._closed = True
        self._wake.set()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=_keep_leasing,
                    args=(weakref.ref(self), self._wake),
                    name=f"extract-limiter-{self.name}",
                    daemon=True,
                )
                self._thread = thread
                thread.start()

    # --- the background thread's steps -------------------------------------------------------------

    def _next_report(self) -> tuple[float, Report | None]:
        with self._lock:
            now = time.monotonic()
            delay = self._book.due(now)
            if delay > 0:
                return delay, None
            return 0.0, self._book.report(now)

    def _apply(self, grant: Grant) -> None:
        with self._lock:
            self._book.apply(grant, time.monotonic())

    def _hand_back(self, handle: Any) -> None:
        with self._lock:
            last = self._book.hand_back(time.monotonic())
        try:
            _ray().get(handle.sync.remote(last), timeout=SYNC_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - the actor is gone: there is nothing left to hand back to
            logger.debug("rate limiter actor %r missed this worker's hand-back: %s", self.name, exc)

    def _fall_back(self, reason: BaseException) -> None:
        with self._lock:
            share = self._book.workers
            limiter = fallback_limiter(self._book.limits, share)
            unsent = self._book.unsent()
        for seen in unsent:
            limiter.observe(
                seen.status, share_headers(dict(seen.headers), share), seen.tokens_used, seen.reserved
            )
        self._share = share
        self._fallback = limiter
        logger.warning(
            "rate limiter actor %r unreachable (%s: %s); this worker goes on with a 1/%d share of the "
            "last known limits",
            self.name,
            type(reason).__name__,
            reason,
            share,
        )

    def _resume(self) -> None:
        self._fallback = None
        logger.warning("rate limiter actor %r is back; this worker leases from it again", self.name)


def _keep_leasing(ref: weakref.ReferenceType[ClusterLimiter], wake: threading.Event) -> None:
    """The worker's background thread: report, lease, and fall back when the actor is gone."""
    handle: Any = None
    retry_at = 0.0
    while True:
        limiter = ref()
        if limiter is None:
            return
        if limiter._closed:
            if limiter._fallback is None and handle is not None:
                limiter._hand_back(handle)
            return
        if limiter._fallback is not None:
            delay = max(0.0, retry_at - time.monotonic())
            report = None if delay > 0 else Report(limiter._book.worker)
        else:
            delay, report = limiter._next_report()
        name, namespace = limiter.name, limiter.namespace
        del limiter  # the thread must not keep the limiter alive while it sleeps
        if report is None:
            wake.wait(timeout=min(delay, 1.0))
            wake.clear()
            continue
        try:
            ray = _ray()
            if not ray.is_initialized():
                # ray.get_actor would start a local Ray runtime from this thread: never do that
                raise ConfigurationError(
                    "Ray is not running in this process; ClusterLimiter is for the workers of a Ray job"
                )
            if handle is None:
                handle = ray.get_actor(name, namespace=namespace)
            grant = ray.get(handle.sync.remote(report), timeout=SYNC_TIMEOUT_S)
        except Exception as exc:  # noqa: BLE001 - any failure to reach the actor means the same: go local
            handle = None
            retry_at = time.monotonic() + RECONNECT_S
            limiter = ref()
            if limiter is not None and limiter._fallback is None:
                limiter._fall_back(exc)
            del limiter
            continue
        limiter = ref()
        if limiter is None:
            return
        if limiter._fallback is not None:
            limiter._resume()
        if isinstance(grant, Grant):
            limiter._apply(grant)
        del limiter
