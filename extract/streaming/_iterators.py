"""The iterators `extract.stream` and `extract.astream` return.

Items: partial values while a reply arrives, then the validated value as the last item (what `extract`
returns). A partial is a `Partial<Model>` twin instance for a pydantic model (every field optional; see
`extract.streaming._twin`) or a dict for a JSON Schema, holding only complete values: strings, numbers and
booleans appear once their last character has arrived (strings are not shown as they grow), objects
appear with the fields completed so far, arrays with their finished items.

Re-asks: when a reply fails validation the engine asks again and the stream goes on with the new reply.
`attempt` is the number of the reply the last item came from (1 for the first); when it grows, the
partials start over from the new reply's beginning. After exhaustion `result` is the `Result`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from extract.errors import ConfigurationError

if TYPE_CHECKING:
    from types import TracebackType

    from extract._engine.streaming import Progress
    from extract.results import Result

__all__ = ["AsyncPartialStream", "PartialStream"]

_DONE: Any = object()


def _show(handle: Any, item: Any) -> Any:
    """Show `item` in the output cell of `handle` (a new cell the first time); the handle to reuse."""
    try:
        from IPython.display import display
    except ImportError:
        raise ConfigurationError(
            "display() shows the stream in a notebook and needs IPython; iterate the stream instead"
        ) from None
    if handle is None:
        return display(item, display_id=True)  # type: ignore[no-untyped-call]
    handle.update(item)
    return handle


class PartialStream(Iterator[Any]):
    """Partial values, then the validated value; `attempt` and, at the end, `result` (see the module)."""

    def __init__(self, parts: Iterator[Any], progress: Progress) -> None:
        self._parts = parts
        self._progress = progress
        self._finished = False

    @property
    def attempt(self) -> int:
        return self._progress.attempt

    @property
    def result(self) -> Result | None:
        """The Result once the stream is exhausted (None before)."""
        return self._progress.result if self._finished else None

    def __iter__(self) -> PartialStream:
        return self

    def __next__(self) -> Any:
        if self._finished:
            raise StopIteration
        item = next(self._parts, _DONE)
        if item is not _DONE:
            return item
        self._finished = True
        result = self._progress.result
        if result is None:  # the engine ended without a result only by raising, which propagated
            raise StopIteration
        return result.value

    def display(self) -> Any:
        """In a notebook: run the stream, showing each item in one output cell that is updated in place
        (IPython's display handles); returns the validated value."""
        handle = None
        last: Any = None
        for item in self:
            handle = _show(handle, item)
            last = item
        return last

    def close(self) -> None:
        """Stop early: the connection in use is closed."""
        close = getattr(self._parts, "close", None)
        if close is not None:
            close()
        self._finished = True

    def __enter__(self) -> PartialStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncPartialStream(AsyncIterator[Any]):
    """Async twin of PartialStream."""

    def __init__(self, parts: AsyncIterator[Any], progress: Progress) -> None:
        self._parts = parts
        self._progress = progress
        self._finished = False

    @property
    def attempt(self) -> int:
        return self._progress.attempt

    @property
    def result(self) -> Result | None:
        return self._progress.result if self._finished else None

    def __aiter__(self) -> AsyncPartialStream:
        return self

    async def __anext__(self) -> Any:
        if self._finished:
            raise StopAsyncIteration
        try:
            return await self._parts.__anext__()
        except StopAsyncIteration:
            pass
        self._finished = True
        result = self._progress.result
        if result is None:
            raise StopAsyncIteration
        return result.value

    async def display(self) -> Any:
        """Async twin of `PartialStream.display` (`await stream.display()` in a notebook cell)."""
        handle = None
        last: Any = None
        async for item in self:
            handle = _show(handle, item)
            last = item
        return last

    async def aclose(self) -> None:
        aclose = getattr(self._parts, "aclose", None)
        if aclose is not None:
            await aclose()
        self._finished = True

    async def __aenter__(self) -> AsyncPartialStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
