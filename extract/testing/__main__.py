"""`python -m extract.testing`: run the test server in the foreground; the first stdout line is its base URL."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import signal
import sys
from collections.abc import Sequence

from extract.errors import ConfigurationError
from extract.testing._body import ENCODINGS
from extract.testing._faults import FAULT_NAMES
from extract.testing._latency import TokenLatency
from extract.testing._server import TestServer
from extract.testing._wire import DEFAULT_MODELS


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m extract.testing",
        description="Serve the Cerebras inference API (chat and text completions) on 127.0.0.1 with "
        "deterministic answers.",
    )
    p.add_argument("--port", type=int, default=0, help="port to listen on (0: a free port; default 0)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--api-key", default=None, help="require this Bearer key")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), help="model names to serve")
    p.add_argument("--latency-ms", type=float, default=0.0, help="simulated latency per completion")
    p.add_argument("--rpm", type=int, default=None, help="requests per minute (default unlimited)")
    p.add_argument("--rpd", type=int, default=None, help="requests per day (default unlimited)")
    p.add_argument("--tpm", type=int, default=None, help="tokens per minute (default unlimited)")
    p.add_argument("--time-scale", type=float, default=1.0, help="simulated seconds per real second")
    p.add_argument("--max-concurrency", type=int, default=None, help="429 queue_exceeded above this")
    p.add_argument(
        "--json-object-only",
        nargs="*",
        default=None,
        metavar="MODEL",
        help="refuse json_schema: for the named models, or for all models when no name is given",
    )
    p.add_argument("--flavor", choices=("cerebras", "llamacpp"), default="cerebras")
    p.add_argument(
        "--invalid-rate", type=float, default=0.0, help="share of first replies that break the schema"
    )
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of requests given a transient fault")
    p.add_argument(
        "--fault-kinds",
        nargs="+",
        default=["server_error", "unavailable", "rate_limited"],
        choices=FAULT_NAMES,
        metavar="NAME",
        help=f"faults drawn by --fault-rate, among: {', '.join(FAULT_NAMES)}",
    )
    p.add_argument("--reply", default=None, help="content for requests that send no schema (default {})")
    p.add_argument("--seed", type=int, default=0, help="seed for --invalid-rate, --fault-rate and answers")
    p.add_argument("--record", action="store_true", help="keep request bodies in memory (off by default)")
    p.add_argument(
        "--accept-encodings",
        nargs="*",
        default=None,
        choices=sorted(ENCODINGS),
        metavar="ENCODING",
        help="optional body encodings accepted (gzip, msgpack; none when empty; default: both)",
    )
    p.add_argument(
        "--context-window",
        action="append",
        default=[],
        metavar="MODEL=TOKENS",
        help="override a model's context window (repeatable)",
    )
    p.add_argument(
        "--service-tiers",
        nargs="+",
        default=["auto", "default", "flex"],
        choices=["auto", "default", "flex", "priority"],
        metavar="TIER",
        help="service tiers accepted (default: auto default flex)",
    )
    p.add_argument("--queue-ms", type=float, default=0.0, help="simulated queue time for queue_threshold")
    p.add_argument("--no-prompt-cache", action="store_true", help="never report cached prompt tokens")
    # The token latency model (extract/testing/_latency.py): off unless one of these is set.
    p.add_argument(
        "--prompt-token-us", type=float, default=0.0, help="simulated µs per uncached prompt token"
    )
    p.add_argument(
        "--cached-prompt-token-us", type=float, default=0.0, help="simulated µs per cached prompt token"
    )
    p.add_argument(
        "--completion-token-ms", type=float, default=0.0, help="simulated ms per generated completion token"
    )
    p.add_argument(
        "--prediction-factor",
        type=float,
        default=0.25,
        help="a predicted-output token's share of a generated token's time (default 0.25)",
    )
    p.add_argument(
        "--stream-chunk-chars",
        type=int,
        default=0,
        help="streamed replies carry their content in pieces of this many characters (0: one piece)",
    )
    p.add_argument("--stream-gap-ms", type=float, default=0.0, help="pause between two streamed events")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        server = _server(args)
    except ConfigurationError as exc:
        parser.error(str(exc))
    _warm_up()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(server))
    return 0


def _server(args: argparse.Namespace) -> TestServer:
    only: bool | frozenset[str] = False
    if args.json_object_only is not None:
        only = frozenset(args.json_object_only) if args.json_object_only else True
    return TestServer(
        port=args.port,
        host=args.host,
        api_key=args.api_key,
        models=tuple(args.models),
        reply=args.reply,
        latency=args.latency_ms / 1000.0,
        rpm=args.rpm,
        rpd=args.rpd,
        tpm=args.tpm,
        time_scale=args.time_scale,
        max_concurrency=args.max_concurrency,
        json_object_only=only,
        flavor=args.flavor,
        invalid_rate=args.invalid_rate,
        fault_rate=args.fault_rate,
        fault_kinds=tuple(args.fault_kinds),
        seed=args.seed,
        record=args.record,
        accept_encodings=None if args.accept_encodings is None else frozenset(args.accept_encodings),
        context_windows=_windows(args.context_window),
        service_tiers=frozenset(args.service_tiers),
        queue_ms=args.queue_ms,
        prompt_cache=not args.no_prompt_cache,
        token_latency=TokenLatency(
            prompt_token_s=args.prompt_token_us / 1e6,
            cached_prompt_token_s=args.cached_prompt_token_us / 1e6,
            completion_token_s=args.completion_token_ms / 1e3,
            prediction_factor=args.prediction_factor,
        ),
        stream_chunk_chars=args.stream_chunk_chars,
        stream_gap=args.stream_gap_ms / 1000.0,
    )


def _windows(pairs: Sequence[str]) -> dict[str, int]:
    windows: dict[str, int] = {}
    for pair in pairs:
        model, sep, tokens = pair.rpartition("=")
        if not sep or not model or not tokens.isdigit():
            raise ConfigurationError(f"--context-window takes MODEL=TOKENS, got {pair!r}")
        windows[model] = int(tokens)
    return windows


def _warm_up() -> None:
    """Import what the first requests would otherwise import inside the event loop.

    Benchmarks start timing once the base URL is printed; a multi-second import on the first request that
    needs jsonschema (a schema_violation fault, an invalid_rate draw) would land inside their measurement.
    """
    importlib.import_module("jsonschema")


async def _serve(server: TestServer) -> None:
    """Serve until SIGINT or SIGTERM, then close connections cleanly."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
            loop.add_signal_handler(signum, stop.set)

    def ready(s: TestServer) -> None:
        print(s.base_url, flush=True)

    await server.serve_forever(on_ready=ready, until=stop)


if __name__ == "__main__":
    sys.exit(main())
