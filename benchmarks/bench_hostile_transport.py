"""Hostile servers against the HTTP transport: memory per request under an endless body, and how long a
trickling server holds a call compared with the timeout set.

    python benchmarks/bench_hostile_transport.py [--requests 5] [--timeout 2.0]

Prints one markdown table. Memory rows: each case runs in a fresh subprocess (so its peak RSS is its own)
that sends `--requests` requests to a raw-socket server streaming an endless body (plain or chunked) and
(or a gzip bomb) reports its RSS after imports and its peak RSS after the requests; the difference is what reading capped
bodies cost. Deadline rows: wall time from sending to the APITimeoutError against a server that drips a
valid reply (or header lines) one byte every 0.25 s, sync and async, next to the timeout set.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import markdown_table
from extract.errors import APITimeoutError
from extract.transports import DEFAULT_MAX_RESPONSE_BYTES, HttpTransport, WireRequest
from tests._raw_servers import RawServer, chunked_endless, drip, endless, fixed, slowloris

REPO = Path(__file__).resolve().parent.parent
REQUEST = WireRequest("/chat/completions", {"model": "m", "messages": [{"role": "user", "content": "hi"}]})

_CHILD = """
import sys
from extract.errors import ResponseTooLargeError
from extract.transports import HttpTransport, WireRequest
def status_mib(field):
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's high-water mark across exec
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")
transport = HttpTransport(sys.argv[1], max_response_bytes=int(sys.argv[3]))
request = WireRequest("/chat/completions", {"model": "m", "messages": []})
before = status_mib("VmRSS")
capped = 0
for _ in range(int(sys.argv[2])):
    try:
        transport.send(request, 60.0)
    except ResponseTooLargeError:
        capped += 1
peak = status_mib("VmHWM")
print(before, peak, capped)
"""


def memory_row(name: str, handler: Any, requests: int, cap: int) -> dict[str, Any]:
    with RawServer(handler) as server:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, server.base_url, str(requests), str(cap)],
            capture_output=True,
            text=True,
            timeout=300,
            cwd=REPO,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        )
    if done.returncode != 0:
        return _row(case=name, result=f"child failed: {done.stderr.strip().splitlines()[-1:]}")
    before, peak, capped = done.stdout.split()
    return _row(
        case=name,
        limit=f"max_response_bytes={cap / 2**20:g} MiB",
        requests=requests,
        result=f"ResponseTooLargeError x{capped}",
        base=float(before),
        peak=float(peak),
    )


_COLUMNS = {
    "case": "case",
    "limit": "limit set",
    "requests": "requests",
    "result": "result",
    "base": "RSS after imports (MiB)",
    "peak": "peak RSS (MiB)",
    "growth": "peak - base (MiB)",
    "wall": "wall until error (s)",
    "overshoot": "over the timeout (s)",
}


def _row(**values: Any) -> dict[str, Any]:
    if "peak" in values:
        values["growth"] = values["peak"] - values["base"]
    return {title: values.get(key, "") for key, title in _COLUMNS.items()}


def deadline_row(name: str, handler: Any, timeout: float, is_async: bool) -> dict[str, Any]:
    with RawServer(handler) as server:
        transport = HttpTransport(server.base_url)
        started = time.perf_counter()
        outcome = "no error?!"
        try:
            if is_async:

                async def go() -> None:
                    try:
                        await transport.asend(REQUEST, timeout)
                    finally:
                        await transport.aclose()

                asyncio.run(go())
            else:
                transport.send(REQUEST, timeout)
        except APITimeoutError:
            outcome = "APITimeoutError"
        finally:
            transport.close()
        wall = time.perf_counter() - started
    return _row(
        case=f"{name} ({'async' if is_async else 'sync'})",
        limit=f"timeout={timeout:g} s",
        requests=1,
        result=outcome,
        wall=wall,
        overshoot=wall - timeout,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--cap", type=int, default=DEFAULT_MAX_RESPONSE_BYTES)
    args = parser.parse_args(argv)
    bomb = gzip.compress(b"\0" * (256 * 2**20), compresslevel=1)  # ~1.1 MB sent, 256 MiB inflated
    gzip_bomb = fixed(200, bomb, {"Content-Type": "application/json", "Content-Encoding": "gzip"})
    rows = [
        memory_row("endless body", endless, args.requests, args.cap),
        memory_row("chunked endless body", chunked_endless, args.requests, args.cap),
        memory_row("gzip bomb (256 MiB inflated)", gzip_bomb, args.requests, args.cap),
    ]
    for name, handler in (
        ("slow drip body, 0.25 s/byte", drip),
        ("slowloris headers, 0.25 s/byte", slowloris),
    ):
        for is_async in (False, True):
            rows.append(deadline_row(name, handler, args.timeout, is_async))
    print("## Hostile transport: memory per request and the whole-call deadline\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
