"""Shared helpers for the benchmarks: the loopback server in its own process, CPU timing, tables.

The server runs in a separate process so that `time.process_time()` in the benchmark process counts
only the client's work: that is the figure the overhead benchmark is about.
"""

from __future__ import annotations

import gzip
import importlib.metadata
import json
import os
import platform
import queue
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = REPO_ROOT.parent / "shared" / "corpus" / "jsonschemabench"
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"

# A benchmark's result: one dict per table row, keys are the column headers (insertion order kept).
Row = dict[str, Any]

SERVER_ENV = "EXTRACT_BENCH_SERVER"
"""Command that starts another OpenAI-compatible server instead of `python -m extract.testing`.

It must accept the same flags (`--port 0`, `--latency-ms`, `--invalid-rate`, `--seed`, and the token
latency flags of bench_retry's `LATENCY_FLAGS`) and print its base URL on the first line of stdout.
"""


class Unavailable(RuntimeError):
    """Something a benchmark needs is missing (a peer package, our test server, the corpus).

    The runner turns it into a "not yet" / "skipped" row instead of failing the whole run.
    """


# --------------------------------------------------------------------------------------------- server


def server_command(*flags: str) -> list[str]:
    custom = os.environ.get(SERVER_ENV)
    if custom:
        return [*shlex.split(custom), *flags]
    return [sys.executable, "-m", "extract.testing", *flags]


@contextmanager
def server_process(
    *,
    latency_ms: float = 0.0,
    invalid_rate: float = 0.0,
    seed: int | None = None,
    startup_timeout: float = 60.0,
) -> Iterator[str]:
    """Start the loopback test server in its own process and yield its base URL (``.../v1``)."""
    with server_processes(
        1, latency_ms=latency_ms, invalid_rate=invalid_rate, seed=seed, startup_timeout=startup_timeout
    ) as urls:
        yield urls[0]


@contextmanager
def server_processes(
    count: int,
    *,
    latency_ms: float = 0.0,
    invalid_rate: float = 0.0,
    seed: int | None = None,
    startup_timeout: float = 60.0,
    extra_flags: Sequence[str] = (),
) -> Iterator[list[str]]:
    """`count` identical servers, started together (their start-up, mostly imports, overlaps).

    `extra_flags` go to every server as they are (e.g. the token latency model's `--completion-token-ms`)."""
    flags = ["--port", "0", *extra_flags]
    if latency_ms:
        flags += ["--latency-ms", str(latency_ms)]
    if invalid_rate:
        flags += ["--invalid-rate", str(invalid_rate)]
    if seed is not None:
        flags += ["--seed", str(seed)]
    cmd = server_command(*flags)
    with ExitStack() as stack:
        started: list[tuple[subprocess.Popen[bytes], IO[bytes]]] = []
        for _ in range(count):
            log: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())
            proc = subprocess.Popen(
                cmd, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, cwd=REPO_ROOT
            )
            stack.callback(_stop, proc)
            started.append((proc, log))
        urls: list[str] = []
        for proc, stderr in started:
            base_url = _read_base_url(proc, startup_timeout)
            if base_url is None:
                _stop(proc)
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace").strip().splitlines()[-5:]
                reason = " | ".join(tail) or f"exit code {proc.returncode}"
                raise Unavailable(f"test server did not start ({shlex.join(cmd)}): {reason}")
            urls.append(base_url.rstrip("/"))
        yield urls


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _read_base_url(proc: subprocess.Popen[bytes], timeout: float) -> str | None:
    """First stdout line of the server, then keep draining stdout so the server never blocks on it."""
    lines: queue.Queue[bytes] = queue.Queue()
    stdout = proc.stdout
    if stdout is None:
        return None

    def drain() -> None:
        for line in stdout:
            lines.put(line)
        lines.put(b"")

    threading.Thread(target=drain, daemon=True, name="bench-server-stdout").start()
    try:
        first = lines.get(timeout=timeout).decode().strip()
    except queue.Empty:
        return None
    return first if first.startswith("http") else None


def wait_ready(base_url: str, timeout: float = 10.0) -> None:
    """Poll GET /models until the server answers (any status): the port accepts connections."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(f"{base_url}/models", timeout=2.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------- timing


@dataclass(frozen=True, slots=True)
class Timing:
    """One system's figure: the median round of several, each of `calls` sequential extractions."""

    cpu_us_per_call: float
    calls_per_s: float
    rounds: int
    calls: int
    cpu_us_rounds: tuple[float, ...] = field(default=())

    @property
    def spread_pct(self) -> float:
        """(slowest - fastest round) / median, in %: how far to trust the median on a busy machine."""
        if not self.cpu_us_rounds or not self.cpu_us_per_call:
            return float("nan")
        return (max(self.cpu_us_rounds) - min(self.cpu_us_rounds)) / self.cpu_us_per_call * 100


def _median_round(rounds: Sequence[tuple[float, float]], calls: int) -> Timing:
    ordered = sorted(rounds)  # by client CPU
    cpu, wall = ordered[len(ordered) // 2]
    return Timing(
        cpu_us_per_call=cpu / calls * 1e6,
        calls_per_s=calls / wall if wall > 0 else float("inf"),
        rounds=len(rounds),
        calls=calls,
        cpu_us_rounds=tuple(c / calls * 1e6 for c, _ in rounds),
    )


def time_sync(fn: Callable[[], object], *, calls: int, rounds: int, warmup: int) -> Timing:
    """Client CPU (time.process_time) and wall time per call of `fn`, median of `rounds` rounds."""
    for _ in range(warmup):
        fn()
    results: list[tuple[float, float]] = []
    for _ in range(rounds):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            fn()
        results.append((time.process_time() - cpu0, time.perf_counter() - wall0))
    return _median_round(results, calls)


async def time_async(fn: Callable[[], Awaitable[object]], *, calls: int, rounds: int, warmup: int) -> Timing:
    """Async twin of `time_sync`: a loop of sequential awaits, so both measure the same work."""
    for _ in range(warmup):
        await fn()
    results: list[tuple[float, float]] = []
    for _ in range(rounds):
        cpu0, wall0 = time.process_time(), time.perf_counter()
        for _ in range(calls):
            await fn()
        results.append((time.process_time() - cpu0, time.perf_counter() - wall0))
    return _median_round(results, calls)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------------------------- usage proxy


@dataclass
class Tally:
    """What one client sent through a `CountingProxy`: requests and the usage the server reported.

    `cached_prompt_tokens` is `usage.prompt_tokens_details.cached_tokens` (the provider's prompt cache);
    prompt minus cached is what the provider meters as uncached input. The `reask_` figures cover the
    follow-up requests only, so the first requests are the totals minus them.
    """

    requests: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0
    completion_tokens: int = 0
    accepted_prediction_tokens: int = 0
    rejected_prediction_tokens: int = 0
    predictions_sent: int = 0
    reasks: int = 0
    reask_prompt_tokens: int = 0
    reask_cached_prompt_tokens: int = 0
    formats: set[str] = field(default_factory=set)

    @property
    def uncached_prompt_tokens(self) -> int:
        return self.prompt_tokens - self.cached_prompt_tokens


def decoded_json(body: bytes, headers: Mapping[str, str] | None = None) -> Any:
    """The JSON value of a request body, gunzipped first when it says `Content-Encoding: gzip` (or
    starts with the gzip magic); None when it is not JSON (msgpack bodies are not inspected)."""
    encoding = ""
    if headers is not None:
        encoding = next((v for k, v in headers.items() if k.lower() == "content-encoding"), "")
    if encoding.lower() == "gzip" or body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return None
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def is_reask(body: bytes) -> bool:
    """A request that carries an assistant turn is a follow-up (a re-ask), not a first attempt."""
    data = decoded_json(body)
    messages = data.get("messages") if isinstance(data, dict) else None
    return isinstance(messages, list) and any(
        isinstance(m, dict) and m.get("role") == "assistant" for m in messages
    )


def wire_format(body: bytes) -> str:
    """How a request asked for structure: `json_schema strict=true`, `json_object`, `tools`, `text`."""
    data = decoded_json(body)
    if not isinstance(data, dict):
        return "unreadable body"
    rf = data.get("response_format")
    if isinstance(rf, dict):
        kind = str(rf.get("type"))
        spec = rf.get("json_schema")
        if kind == "json_schema" and isinstance(spec, dict):
            strict = spec.get("strict", "absent")
            return f"json_schema strict={str(strict).lower()}"
        return kind
    if data.get("tools"):
        return "tools"
    return "text"


class CountingProxy:
    """A loopback HTTP proxy that forwards POSTs to the test server and sums the usage in its answers.

    Counting at one place in front of the server gives the same figure for every library, whatever
    each one does (or fails to do) with `usage` on a failed attempt. `strip` names top-level request
    fields removed before forwarding (the body is then re-sent as plain JSON): it measures a client
    that does not send them, for a comparison no public option of that client offers.
    """

    def __init__(self, upstream: str, *, strip: frozenset[str] = frozenset()) -> None:
        self.upstream = upstream.rstrip("/")
        self.strip = strip
        self.tally = Tally()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=60.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self._forward(self.rfile.read(length))

            def _forward(self, body: bytes) -> None:
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() in {"content-type", "content-encoding", "authorization", "accept"}
                }
                body, headers = proxy._rewrite(body, headers)
                upstream = proxy._client.request(
                    self.command,
                    proxy.upstream + self.path.removeprefix("/v1"),
                    content=body,
                    headers=headers,
                )
                proxy._record(upstream, body)
                payload = upstream.content
                self.send_response(upstream.status_code)
                self.send_header("content-type", upstream.headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="bench-proxy")

    def _rewrite(self, body: bytes, headers: dict[str, str]) -> tuple[bytes, dict[str, str]]:
        if not self.strip or not body:
            return body, headers
        data = decoded_json(body, headers)
        if not isinstance(data, dict) or not self.strip & data.keys():
            return body, headers
        for name in self.strip:
            data.pop(name, None)
        kept = {k: v for k, v in headers.items() if k.lower() not in {"content-type", "content-encoding"}}
        kept["content-type"] = "application/json"
        return json.dumps(data).encode(), kept

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def _record(self, response: httpx.Response, sent: bytes) -> None:
        if response.request.method != "POST":
            return
        usage: dict[str, Any] = {}
        try:
            data = response.json()
        except json.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("usage"), dict):
            usage = data["usage"]
        prompt_details = usage.get("prompt_tokens_details")
        completion_details = usage.get("completion_tokens_details")
        prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
        completion_details = completion_details if isinstance(completion_details, dict) else {}
        request = decoded_json(sent, response.request.headers)
        with self._lock:
            tally = self.tally
            tally.requests += 1
            tally.formats.add(wire_format(sent))
            prompt = int(usage.get("prompt_tokens") or 0)
            cached = int(prompt_details.get("cached_tokens") or 0)
            tally.prompt_tokens += prompt
            tally.cached_prompt_tokens += cached
            tally.completion_tokens += int(usage.get("completion_tokens") or 0)
            tally.accepted_prediction_tokens += int(completion_details.get("accepted_prediction_tokens") or 0)
            tally.rejected_prediction_tokens += int(completion_details.get("rejected_prediction_tokens") or 0)
            if isinstance(request, dict) and request.get("prediction") is not None:
                tally.predictions_sent += 1
            if is_reask(sent):
                tally.reasks += 1
                tally.reask_prompt_tokens += prompt
                tally.reask_cached_prompt_tokens += cached

    def __enter__(self) -> CountingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()


# --------------------------------------------------------------------------------------------- reporting


def fmt(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    return str(value)


def _cell(text: str) -> str:
    """One table cell: on one line, its pipes escaped."""
    return " ".join(text.splitlines()).replace("|", "\\|")


def markdown_table(rows: Sequence[Row]) -> str:
    """Rows (dicts) as a GitHub markdown table; columns are the union of keys in first-seen order."""
    if not rows:
        return "_(no rows)_"
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    lines = ["| " + " | ".join(map(_cell, columns)) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(fmt(row.get(c, ""))) for c in columns) + " |")
    return "\n".join(lines)


def version_of(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def machine_info() -> dict[str, str]:
    """nproc, CPU model and RAM of this machine, for the header of the results."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "python": platform.python_version(),
        "os": f"{platform.system()} {platform.release()}",
    }


PACKAGES = ("extract", "openai", "instructor", "pydantic-ai-slim", "pydantic", "httpx", "httpx2", "orjson")


def versions() -> dict[str, str]:
    return {name: version_of(name) for name in PACKAGES}
