"""A local Ray runtime for the tests of extract.ray (and the Ray benchmarks' tests): import `ray_local`.

    from tests._ray_fixture import ray_local  # noqa: F401  (a fixture)

Module-scoped: Ray takes seconds to start, so each test module starts it once, with 2 CPUs whatever the
machine (the worker processes the tests need, and no more), no dashboard, and workers that import this
checkout of `extract` and the test modules (so classes defined in a test unpickle there).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RAY_CPUS = 2


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if ray.is_initialized():
        ray.shutdown()
    # Workers inherit the environment Ray starts with: set PYTHONPATH for them only while it starts (a
    # runtime_env would cost a fresh worker pool per job instead)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(ROOT / "tests"), before) if p)
    try:
        ray.init(num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False, configure_logging=False)
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    try:
        yield ray
    finally:
        ray.shutdown()


class ServerProcess:
    """`extract.testing.TestServer` in a process of its own (as a provider is), for tests that need its logs.

        with ServerProcess(latency=0.05, api_key="k") as server:
            ... server.base_url ...
            seen = server.summary()   # {"request_count", "count_429", "peak_in_flight", "messages": [...]}

    The child (`python tests/_ray_fixture.py SETTINGS_JSON`) prints its base URL, then answers every line on
    its stdin with one JSON line: what it received so far (each completion request's messages as JSON text),
    its 429 count and the most requests it was answering at once. It exits when stdin closes.
    """

    def __init__(self, **settings: Any) -> None:
        self.settings = settings
        self.base_url = ""
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ServerProcess:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
        }
        self._proc = subprocess.Popen(
            [sys.executable, __file__, json.dumps(self.settings)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self._proc.stdout is not None
        self.base_url = self._proc.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.__exit__(None, None, None)
            raise RuntimeError(f"the test server did not start (it printed {self.base_url!r})")
        return self

    def summary(self) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("\n")
        proc.stdin.flush()
        result: dict[str, Any] = json.loads(proc.stdout.readline())
        return result

    def __exit__(self, *exc: object) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _serve(settings: dict[str, Any]) -> None:
    """The child of ServerProcess."""
    from extract.testing import TestServer

    peak = 0
    stop = threading.Event()
    with TestServer(**settings) as server:
        app = server._app  # the server's own count of requests being answered

        def watch() -> None:
            nonlocal peak
            while not stop.wait(0.002):
                with app.lock:
                    peak = max(peak, app.in_flight)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        print(server.base_url, flush=True)
        for _ in sys.stdin:
            summary = {
                "request_count": server.request_count,
                "count_429": server.count_429,
                "peak_in_flight": peak,
                "messages": [json.dumps(r.get("messages")) for r in server.requests],
            }
            print(json.dumps(summary), flush=True)
        stop.set()


if __name__ == "__main__":
    _serve(json.loads(sys.argv[1]))
