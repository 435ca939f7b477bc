"""`TestServer`: the emulated provider on 127.0.0.1, in a background thread or in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import replace
from types import TracebackType
from typing import Any

from extract.testing._app import App, LoggedRequest, RecordedRequest, ServerSettings
from extract.testing._faults import Fault
from extract.testing._http import serve_connection

__all__ = ["TestServer"]

_START_TIMEOUT = 10.0


class TestServer:
    """A loopback HTTP server speaking the Cerebras inference API (chat and text completions), with scripted faults.

    `TestServer(port=0, host="127.0.0.1", **settings)`; the settings are the fields of `ServerSettings`
    (api_key, models, latency, rpm, tpm, time_scale, invalid_rate, seed, flavor, ...). Use it as a context
    manager (`with` or `async with`); it serves from its own thread so sync and async clients both work.
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, *, port: int = 0, host: str = "127.0.0.1", **settings: Any) -> None:
        self.settings = ServerSettings(**settings)
        self.host = host
        self._port = port
        self._app = App(self.settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        state = f"base_url={self.base_url!r}" if self._server is not None else "stopped"
        return f"TestServer({state}, {self.settings!r})"

    # ---- addresses -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not running; start it with `with TestServer() as server:`")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        """What to pass as `base_url` to a client: http://127.0.0.1:PORT/v1."""
        return f"http://{self.host}:{self.port}/v1"

    # ---- scripting and introspection ------------------------------------------------------------------
    def script(self, *faults: Fault | str) -> TestServer:
        """Queue behaviours for the next completion requests, one each, in order; then back to normal."""
        self._app.enqueue(f if isinstance(f, Fault) else Fault.named(f) for f in faults)
        return self

    @property
    def requests(self) -> list[RecordedRequest]:
        """Completion request bodies received so far (chat and text; see `.path`), oldest first (a copy)."""
        with self._app.lock:
            return list(self._app.requests)

    @property
    def request_log(self) -> list[LoggedRequest]:
        """How each completion request arrived (encoding, sizes, headers, status), oldest first (a copy).

        Parallel to `requests` but also kept for bodies that failed to decode; empty when record=False.
        """
        with self._app.lock:
            return [replace(entry, headers=dict(entry.headers)) for entry in self._app.request_log]

    @property
    def request_count(self) -> int:
        with self._app.lock:
            return self._app.request_count

    @property
    def count_429(self) -> int:
        with self._app.lock:
            return self._app.count_429

    @property
    def pending_faults(self) -> int:
        """Scripted faults not consumed yet."""
        with self._app.lock:
            return len(self._app.script)

    def reset(self) -> None:
        """Forget requests, counters and pending faults; refill the rate limits. Settings stay."""
        self._app.reset()

    # ---- lifecycle ------------------------------------------------------------------------------------
    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await serve_connection(reader, writer, self._app.handle)
        except asyncio.CancelledError:
            return  # cancelled by _close() on shutdown: the connection ends with the server
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _open(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, self.host, self._port, backlog=1024, reuse_address=True
        )

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def serve_forever(
        self, on_ready: Callable[[TestServer], None] | None = None, until: asyncio.Event | None = None
    ) -> None:
        """Serve in the running loop until `until` is set or the task is cancelled (used by the CLI)."""
        await self._open()
        if on_ready is not None:
            on_ready(self)
        try:
            await (until or asyncio.Event()).wait()
        finally:
            await self._close()
            self._server = None

    def start(self) -> TestServer:
        """Start serving from a background thread; returns once the port is bound."""
        if self._thread is not None:
            raise RuntimeError("this TestServer is already running")
        self._ready.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name="extract-testserver", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT):
            raise RuntimeError(f"the test server did not start within {_START_TIMEOUT} s")
        if self._failure is not None:
            self._thread.join()
            self._thread = None
            raise RuntimeError(
                f"the test server could not listen on {self.host}:{self._port}: {self._failure}"
            )
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            try:
                loop.run_until_complete(self._open())
            except OSError as exc:
                self._failure = exc
                return
            finally:
                self._ready.set()
            loop.run_forever()
            loop.run_until_complete(self._close())
        finally:
            with contextlib.suppress(RuntimeError):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    def stop(self) -> None:
        """Stop serving and join the thread; open connections are closed."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        thread.join()
        self._thread = None
        self._server = None

    def __enter__(self) -> TestServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> TestServer:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)
