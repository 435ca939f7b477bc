"""Run the async batch loop on a private event loop in a background thread, handing outcomes to a plain
iterator through a bounded queue. The scheduling exists once (in `_engine`); this is only a bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

__all__ = ["ThreadedIterator"]

T = TypeVar("T")

_POLL_S = 0.1
_JOIN_TIMEOUT_S = 10.0
# After Ctrl-C the caller gets control back this soon, even if the loop is stuck in a blocking call (the
# background thread is a daemon and finishes its cleanup on its own).
_INTERRUPT_JOIN_S = 0.5


class _End:
    pass


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class ThreadedIterator(Generic[T]):
    """An iterator over an async iterator that runs in its own thread and loop.

    The queue is bounded, so a slow consumer slows the producer instead of growing memory. `close()` (also
    on exit of a `with` block, on KeyboardInterrupt in the consumer, or when the iterator is collected)
    cancels the async side and waits for it to wind down.
    """

    def __init__(
        self, factory: Callable[[], AsyncIterator[T]], *, buffer: int = 256, name: str = "extract"
    ) -> None:
        self._factory = factory
        self._queue: queue.Queue[T | _End | _Failed] = queue.Queue(maxsize=max(1, buffer))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._started = threading.Event()
        self._closing = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._main, name=f"{name}-batch", daemon=True)
        self._thread.start()
        self._started.wait()

    # -- background thread ---------------------------------------------------------------------
    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            self._task = loop.create_task(self._pump())
            self._started.set()
            with contextlib.suppress(asyncio.CancelledError):
                loop.run_until_complete(self._task)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            self._started.set()
            loop.close()

    async def _put(self, item: T | _End | _Failed) -> bool:
        while not self._closing.is_set():
            try:
                self._queue.put_nowait(item)
                return True
            except queue.Full:
                await asyncio.sleep(0.005)
        return False

    async def _pump(self) -> None:
        source = self._factory()
        try:
            async for item in source:
                if not await self._put(item):
                    break
            else:
                await self._put(_End())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
            await self._put(_Failed(exc))
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()

    # -- consumer side -------------------------------------------------------------------------
    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        try:
            while True:
                try:
                    item = self._queue.get(timeout=_POLL_S)
                    break
                except queue.Empty:
                    if not self._thread.is_alive() and self._queue.empty():
                        self._finished = True
                        raise StopIteration from None
        except KeyboardInterrupt:
            self.close(_INTERRUPT_JOIN_S)
            raise
        if isinstance(item, _End):
            self._finished = True
            self._thread.join(_JOIN_TIMEOUT_S)
            raise StopIteration
        if isinstance(item, _Failed):
            self._finished = True
            self._thread.join(_JOIN_TIMEOUT_S)
            raise item.error
        return item

    def close(self, timeout: float | None = None) -> None:
        """Stop the run: in-flight work is cancelled, what finished is kept (and written).

        Waits at most `timeout` seconds (default 10) for the background loop to wind down."""
        self._finished = True
        if self._closing.is_set():
            return
        self._closing.set()
        loop, task = self._loop, self._task
        if loop is not None and task is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed between the check and the call
                loop.call_soon_threadsafe(task.cancel)
        if threading.current_thread() is not self._thread:
            self._thread.join(_JOIN_TIMEOUT_S if timeout is None else timeout)

    def __enter__(self) -> ThreadedIterator[T]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        if not self._closing.is_set():
            self._closing.set()
            loop, task = self._loop, self._task
            if loop is not None and task is not None and not loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(task.cancel)
