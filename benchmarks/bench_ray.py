"""Ray Data (issue 14): extract.ray.extract_dataset against Ray's own `ray.data.llm` HTTP processor.

    python benchmarks/bench_ray.py [--quick] [--only scaling|limit|baseline] [--docs N]

Scenarios, each against the test server in its own process (a fresh one per run, so every run starts
with a full rate-limit bucket), with a local Ray runtime in this process:

1. scaling: throughput vs number of actors (1, 2, 4) on a latency-bound server (200 ms per reply, no
   rate limit). The server's own clock gives the steady docs/s (first to last request it answered), so
   Ray's start-up (workers, actor pool) is reported apart; efficiency = docs/s at N actors / (N x docs/s
   at 1 actor).
2. limit: a server enforcing tokens per minute (sped up by --time-scale): the share of the limit the
   client used, the share of requests answered 429, docs/s, and re-sent requests (a document the server
   answered 200 more than once), for extract_dataset and for Ray's processor set up the way its docs say
   (`qps` per actor: the fair share of the limit, and twice that).

The server counts for itself: this script runs it (`--serve`) with two hooks on its instance, one on the
chat handler (status and document id of every answer) and one on the rate-limit buckets (the tokens each
admitted request was charged), and serves those counts as JSON on a second loopback port.

Ray's processor (ray 2.60, ray/llm/_internal/batch/stages/http_request_stage.py) paces each *batch* by
`qps` from that batch's start, sends its requests one at a time (the aiohttp request objects are awaited
in turn), runs up to 4 batches at once per actor (Ray Data's default for async batch UDFs; a batch's rows go one
after another, so small blocks are what give it more than one request in flight), and on a 429
waits `base_retry_wait_time_in_s * 2**n`, ignoring `retry-after` and the x-ratelimit-* headers; with the
default `max_retries=0` a 429 fails the row's task. Its `concurrency=n` is an autoscaling pool of 1 to n
actors; this script passes (n, n), a fixed pool like extract_dataset's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import REPO_ROOT, Row, Unavailable, markdown_table, version_of

MODEL = "llama3.1-8b"
MAX_COMPLETION_TOKENS = 256  # sent by both clients, so the server charges both the same per request
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
_DOC_TAG = re.compile(rb"DOC#(\d+)#")


def document(i: int) -> str:
    """The text of document `i`; the tag lets the server tell documents apart in any request body."""
    return f"DOC#{i}# Record {i}: Ada Lovelace, aged {20 + i % 60}, lives in London."


# --------------------------------------------------------------------------------------------- server


class _Counts:
    """What the server saw: (time, status, document) per chat answer, (time, tokens) per admitted charge."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answers: list[tuple[float, int | None, int | None]] = []
        self.charges: list[tuple[float, int]] = []

    def summary(self) -> dict[str, Any]:
        with self.lock:
            answers, charges = list(self.answers), list(self.charges)
        statuses = Counter(status for _, status, _ in answers)
        ok_per_doc = Counter(doc for _, status, doc in answers if status == 200 and doc is not None)
        ok_times = sorted(t for t, status, _ in answers if status == 200)
        return {
            "requests": len(answers),
            "statuses": {str(k): v for k, v in statuses.items()},
            "ok": statuses.get(200, 0),
            "rate_limited": statuses.get(429, 0),
            "documents_ok": len(ok_per_doc),
            "resent": sum(n - 1 for n in ok_per_doc.values()),
            "first_ok": min(ok_times) if ok_times else None,
            "last_ok": max(ok_times) if ok_times else None,
            "first_answer": min((t for t, _, _ in answers), default=None),
            "ok_t10": ok_times[len(ok_times) // 10] if len(ok_times) >= 10 else None,
            "ok_t90": ok_times[len(ok_times) * 9 // 10] if len(ok_times) >= 10 else None,
            "rate_limited_at": [t for t, status, _ in answers if status == 429],
            "charged_tokens": sum(tokens for _, tokens in charges),
            "charges": charges,
        }


def serve(argv: Sequence[str]) -> int:
    """`--serve`: the test server with counting hooks; prints its base URL, then the counts URL."""
    from extract.testing import TestServer
    from extract.testing._body import decode_body

    p = argparse.ArgumentParser(prog="bench_ray.py --serve")
    p.add_argument("--latency-ms", type=float, default=0.0)
    p.add_argument("--tpm", type=int, default=None)
    p.add_argument("--time-scale", type=float, default=1.0)
    args = p.parse_args(argv)
    counts = _Counts()
    server = TestServer(latency=args.latency_ms / 1000, tpm=args.tpm, time_scale=args.time_scale)
    app = server._app  # the hooks below are the benchmark's only reach into the server
    chat, admit = app.chat, app.limits.admit

    async def counted_chat(request: Any, entry: Any = None) -> Any:
        response = await chat(request, entry)
        body = decode_body(request.headers, request.body, app.settings.encodings).content
        found = _DOC_TAG.search(body) if isinstance(body, bytes) else None
        status = None if response is None else int(response.status)
        with counts.lock:
            counts.answers.append((time.monotonic(), status, int(found.group(1)) if found else None))
        return response

    def counted_admit(tokens: int) -> Any:
        verdict = admit(tokens)
        if verdict.code is None:
            counts.charges.append((time.monotonic(), tokens))  # called under the app's lock
        return verdict

    app.chat = counted_chat  # type: ignore[method-assign]
    app.limits.admit = counted_admit  # type: ignore[method-assign]

    class Stats(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = json.dumps({**counts.summary(), "now": time.monotonic()}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return

    stats = ThreadingHTTPServer(("127.0.0.1", 0), Stats)
    threading.Thread(target=stats.serve_forever, daemon=True, name="bench-ray-stats").start()
    with server:
        print(server.base_url, flush=True)
        print(f"http://127.0.0.1:{stats.server_address[1]}/stats", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


@dataclass
class Server:
    base_url: str
    stats_url: str

    def stats(self) -> dict[str, Any]:
        import httpx

        data: dict[str, Any] = httpx.get(self.stats_url, timeout=10).json()
        return data


@contextlib.contextmanager
def server_process(
    *, latency_ms: float = 0.0, tpm: int | None = None, time_scale: float = 1.0
) -> Iterator[Server]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--serve", "--latency-ms", str(latency_ms)]
    if tpm:
        cmd += ["--tpm", str(tpm), "--time-scale", str(time_scale)]
    proc = subprocess.Popen(
        cmd, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    try:
        out = proc.stdout
        lines = [out.readline().decode().strip() for _ in range(2)] if out is not None else []
        if len(lines) != 2 or not all(line.startswith("http") for line in lines):
            raise Unavailable(f"the counting test server did not start: {' '.join(cmd)}")
        yield Server(lines[0], lines[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# --------------------------------------------------------------------------------------------- clients


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise Unavailable(f"ray is not installed ({exc}); pip install 'ray[data]'") from exc
    if not ray.is_initialized():
        ray.init(
            num_cpus=RAY_CPUS,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
        )
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = False
        ctx.print_on_execution_start = False
    return ray


RAY_CPUS = 4  # logical CPUs for Ray: 4 actors fit whatever the machine (the work is waiting, not computing)


def _dataset(docs: int, blocks: int) -> Any:
    ray = _ray()
    items = [{"id": i, "text": document(i)} for i in range(docs)]
    return ray.data.from_items(items, override_num_blocks=max(1, min(blocks, docs)))


def run_ray_llm(
    server: Server, docs: int, *, actors: int, qps: int | None, max_retries: int, batch_size: int
) -> Row:
    """Ray's own HTTP processor over `docs` documents; the row's figures come from the server's counts."""
    try:
        from ray.data.llm import HttpRequestProcessorConfig, build_processor
    except ImportError as exc:
        raise Unavailable(f"ray.data.llm is not importable ({exc})") from exc
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "person", "strict": True, "schema": SCHEMA},
    }
    config = HttpRequestProcessorConfig(
        url=f"{server.base_url}/chat/completions",
        headers={"Authorization": "Bearer unused"},
        qps=qps,
        max_retries=max_retries,
        batch_size=batch_size,
        concurrency=(actors, actors),  # a fixed pool, as extract_dataset's (an int n autoscales from 1 to n)
    )

    def preprocess(row: dict[str, Any]) -> dict[str, Any]:
        messages = [
            {"role": "system", "content": "Extract the person as JSON."},
            {"role": "user", "content": row["text"]},
        ]
        body = {
            "model": MODEL,
            "messages": messages,
            "response_format": response_format,
            "max_completion_tokens": MAX_COMPLETION_TOKENS,
        }
        return {"id": row["id"], "payload": body}

    def postprocess(row: dict[str, Any]) -> dict[str, Any]:
        content = row["http_response"]["choices"][0]["message"]["content"]
        return {"id": row["id"], "value": content}

    processor = build_processor(config, preprocess=preprocess, postprocess=postprocess)
    ds = processor(_dataset(docs, blocks=docs // batch_size))
    return _timed(server, docs, ds.take_all)


def run_extract(
    server: Server, docs: int, *, actors: int, per_worker: int, batch_size: int, tpm: int | None = None
) -> Row:
    """extract.ray.extract_dataset over `docs` documents (as its docstring shows it); `tpm` tells its
    cluster-wide limiter the budget up front (None: it learns it from the x-ratelimit-* headers)."""
    import extract.ray

    options: dict[str, Any] = {} if tpm is None else {"tpm": tpm}
    ds = extract.ray.extract_dataset(
        _dataset(docs, blocks=docs // batch_size),
        SCHEMA,
        text_column="text",
        concurrency=actors,
        per_worker_concurrency=per_worker,
        batch_size=batch_size,
        base_url=server.base_url,
        api_key="unused",
        model=MODEL,
        max_completion_tokens=MAX_COMPLETION_TOKENS,
        **options,
    )

    def run() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = ds.select_columns(["id", "error"]).take_all()
        return rows

    row = _timed(server, docs, run)
    row["errors"] = sum(1 for r in row["_rows"] if r.get("error"))
    return row


def _timed(server: Server, docs: int, run: Any) -> Row:
    started = time.monotonic()
    error = ""
    rows: list[Any] = []
    try:
        rows = run()
    except Exception as exc:  # a failed job is a result of this benchmark, not a crash of it
        error = f"{type(exc).__name__}: {' '.join(str(exc).split())[:160]}"
    wall = time.monotonic() - started
    stats = server.stats()
    ids = Counter(int(r["id"]) for r in rows)
    requests = stats["requests"]
    return {
        "docs": docs,
        "rows out": len(rows),
        "ids missing": docs - len(ids),
        "ids duplicated": sum(1 for n in ids.values() if n > 1),
        "wall (s)": wall,
        "requests": requests,
        "429s": stats["rate_limited"],
        "429 share": stats["rate_limited"] / requests if requests else float("nan"),
        "re-sent": stats["resent"],
        "_stats": stats,
        "_rows": rows,
        "_error": error,
    }


def steady_docs_per_s(stats: dict[str, Any]) -> float:
    """Answers per second between the 10th and 90th percentile answer (the server's clock): the rate once
    every actor is up, without start-up and the last stragglers."""
    t10, t90, ok = stats["ok_t10"], stats["ok_t90"], stats["ok"]
    if t10 is None or t90 is None or t90 <= t10:
        return float("nan")
    return (ok * 9 // 10 - ok // 10) / (t90 - t10)


def limit_share(stats: dict[str, Any], tokens_per_s: float, capacity: int) -> float:
    """Tokens the server charged, as a share of what the limit made available from the first answer to the
    last charge: the full bucket it starts with plus its refill. Time a client idles with a full bucket is
    refill it cannot get back, so it counts against the client (a perfect client scores 100%)."""
    charges: list[list[float]] = stats["charges"]
    start = stats["first_answer"]
    if not charges or start is None:
        return float("nan")
    available = capacity + tokens_per_s * (charges[-1][0] - start)
    return float(stats["charged_tokens"]) / available


def _early(stats: dict[str, Any]) -> int:
    """429s answered in the first third of the run: while a client learns the limit, not once it knows it."""
    start, charges = stats["first_answer"], stats["charges"]
    if start is None or not charges:
        return 0
    cut = start + (charges[-1][0] - start) / 3
    return sum(1 for t in stats["rate_limited_at"] if t <= cut)


def _finish(row: Row, client: str, setup: str) -> Row:
    stats = row.pop("_stats")
    row.pop("_rows")
    error = row.pop("_error")
    out: Row = {"client": client, "setup": setup, **row}
    out["docs/s (steady)"] = steady_docs_per_s(stats)
    out["load avg"] = os.getloadavg()[0]  # the machine is shared: a busy one slows every Ray process
    if error:
        out["error"] = error
    out["_stats"] = stats
    return out


def public_rows(rows: Sequence[Row]) -> list[Row]:
    """The rows without the raw counts (`_stats`) that the figures were computed from."""
    return [{k: v for k, v in row.items() if not k.startswith("_")} for row in rows]


# --------------------------------------------------------------------------------------------- scenarios


def scaling(args: argparse.Namespace) -> list[Row]:
    """Throughput vs actors on a latency-bound server (no rate limit)."""
    rows: list[Row] = []
    base: dict[str, float] = {}
    plans: list[tuple[str, int]] = [("extract_dataset", n) for n in args.actors]
    if not args.skip_ray_llm:
        plans += [("ray.data.llm", n) for n in args.actors]
    for client, actors in plans:
        with server_process(latency_ms=args.latency_ms) as server:
            if client == "extract_dataset":
                docs = args.docs * actors
                raw = run_extract(
                    server, docs, actors=actors, per_worker=args.per_worker, batch_size=args.batch_size
                )
                setup = f"{actors} actor(s) x {args.per_worker} in flight"
            else:
                docs = args.ray_docs * actors
                setup = f"{actors} actor(s), batch_size {args.ray_batch_size}, qps None"
                try:
                    raw = run_ray_llm(
                        server, docs, actors=actors, qps=None, max_retries=3, batch_size=args.ray_batch_size
                    )
                except Unavailable as exc:
                    rows.append({"client": client, "setup": setup, "error": f"skipped: {exc}"})
                    continue
        row = _finish(raw, client, setup)
        rate = row["docs/s (steady)"]
        base.setdefault(client, rate / actors if actors else rate)
        row["actors"] = actors
        row["efficiency vs linear"] = rate / (base[client] * actors) if base[client] else float("nan")
        if client == "extract_dataset":
            # every actor keeping per_worker requests in flight, each answered after exactly the latency
            row["% of ideal"] = 100 * rate / (actors * args.per_worker * 1000 / args.latency_ms)
        rows.append(row)
    return rows


def limit(args: argparse.Namespace) -> list[Row]:
    """Utilisation of a token-per-minute limit (time-scaled) by each client."""
    tokens_per_s = args.tpm / 60 * args.time_scale
    rows: list[Row] = []
    actors = args.limit_actors
    real_tpm = int(args.tpm * args.time_scale)  # the server's minute is 1/time_scale of a real one
    plans: list[tuple[str, str, Any]] = [
        (
            "extract_dataset",
            f"{actors} actors x {args.per_worker} in flight, limit learned from headers",
            lambda s: run_extract(
                s, args.limit_docs, actors=actors, per_worker=args.per_worker, batch_size=args.batch_size
            ),
        ),
        (
            "extract_dataset",
            f"{actors} actors x {args.per_worker} in flight, tpm={real_tpm} given",
            lambda s: run_extract(
                s,
                args.limit_docs,
                actors=actors,
                per_worker=args.per_worker,
                batch_size=args.batch_size,
                tpm=real_tpm,
            ),
        ),
    ]
    if not args.skip_ray_llm:
        # Ray's knob is requests per second per actor: the fair share of the limit at its request size
        # (MAX_COMPLETION_TOKENS plus a short prompt), then twice that (a guess on the high side)
        ray_actors = args.ray_limit_actors
        fair = max(1, int(tokens_per_s / (MAX_COMPLETION_TOKENS + 40) / ray_actors))
        for qps in (fair, 2 * fair):
            plans.append(
                (
                    "ray.data.llm",
                    f"{ray_actors} actors, qps {qps} each, max_retries 5",
                    lambda s, q=qps: run_ray_llm(
                        s,
                        args.limit_docs,
                        actors=ray_actors,
                        qps=q,
                        max_retries=5,
                        batch_size=args.ray_batch_size,
                    ),
                )
            )
    for client, setup, run in plans:
        with server_process(
            latency_ms=args.limit_latency_ms, tpm=args.tpm, time_scale=args.time_scale
        ) as server:
            try:
                raw = run(server)
            except Unavailable as exc:
                rows.append({"client": client, "setup": setup, "error": f"skipped: {exc}"})
                continue
            row = _finish(raw, client, setup)
        row["share of limit"] = limit_share(row["_stats"], tokens_per_s, args.tpm)
        row["429s in 1st third"] = _early(row["_stats"])
        charges = row["_stats"]["charges"]
        row["tokens / request"] = row["_stats"]["charged_tokens"] / len(charges) if charges else float("nan")
        rows.append(row)
    return rows


def baseline(args: argparse.Namespace) -> list[Row]:
    """Ray's processor alone, 1 actor, on the latency-bound server: what its pacing and sequencing give."""
    rows: list[Row] = []
    for qps in (None, 20):
        with server_process(latency_ms=args.latency_ms) as server:
            raw = run_ray_llm(
                server, args.ray_docs, actors=1, qps=qps, max_retries=3, batch_size=args.ray_batch_size
            )
        rows.append(_finish(raw, "ray.data.llm", f"1 actor, batch_size {args.ray_batch_size}, qps {qps}"))
    return rows


SCENARIOS = {"scaling": scaling, "limit": limit, "baseline": baseline}


def summary(rows: Sequence[Row]) -> list[str]:
    """One line per target of issue 14, for run.py's summary."""
    lines: list[str] = []
    scale = [r for r in rows if r.get("client") == "extract_dataset" and "efficiency vs linear" in r]
    if scale:
        worst = min(float(r["efficiency vs linear"]) for r in scale)
        lines.append(
            f"extract_dataset scaling: lowest efficiency vs linear {100 * worst:.0f}% over "
            f"{', '.join(str(r['actors']) for r in scale)} actors (target >= 90%)"
        )
    for r in rows:
        if "share of limit" in r:
            lines.append(
                f"{r['client']} ({r['setup']}): {100 * float(r['share of limit']):.0f}% of the limit, "
                f"{100 * float(r['429 share']):.1f}% 429s, {r['re-sent']} re-sent (targets for extract: "
                ">= 95%, < 1%)"
            )
    return lines


def main(argv: Sequence[str] | None = None) -> list[Row]:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        raise SystemExit(serve(argv[1:]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="tiny counts: proves it runs (figures are noise)")
    p.add_argument("--only", default="scaling,limit", help="comma-separated: " + ", ".join(SCENARIOS))
    p.add_argument("--actors", default="1,2,4", help="actor counts for the scaling run")
    p.add_argument("--docs", type=int, default=512, help="documents per actor, scaling run (extract)")
    p.add_argument("--ray-docs", type=int, default=60, help="documents per actor, scaling run (ray.data.llm)")
    p.add_argument("--per-worker", type=int, default=8, help="extract's documents in flight per actor")
    p.add_argument("--batch-size", type=int, default=128, help="extract_dataset's rows per batch")
    p.add_argument("--ray-batch-size", type=int, default=16, help="ray.data.llm's rows per batch")
    p.add_argument("--latency-ms", type=float, default=200.0, help="server latency, scaling run")
    p.add_argument("--tpm", type=int, default=60_000, help="tokens per minute, limit run")
    p.add_argument("--time-scale", type=float, default=10.0, help="simulated seconds per real second")
    p.add_argument("--limit-docs", type=int, default=1024)
    p.add_argument("--limit-actors", type=int, default=2)
    p.add_argument("--ray-limit-actors", type=int, default=4, help="ray.data.llm's actors, limit run")
    p.add_argument("--limit-latency-ms", type=float, default=50.0)
    p.add_argument("--skip-ray-llm", action="store_true", help="extract only")
    args = p.parse_args(argv)
    args.actors = [int(n) for n in args.actors.split(",")]
    if args.quick:
        args.actors, args.docs, args.ray_docs, args.limit_docs = [1, 2], 48, 16, 120
        args.batch_size = 16  # so that every actor gets batches
    unknown = set(args.only.split(",")) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    if version_of("ray") == "not installed":
        raise Unavailable("ray is not installed; pip install 'ray[data]'")
    import ray

    started_ray = not ray.is_initialized()
    rows: list[Row] = []
    try:
        for name in args.only.split(","):
            rows += SCENARIOS[name](args)
    finally:
        if started_ray and ray.is_initialized():
            ray.shutdown()
    return public_rows(rows)


if __name__ == "__main__":
    result = main()
    for line in summary(result):
        print(f"- {line}")
    print()
    print(markdown_table(result))
