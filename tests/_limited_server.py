"""A rate-limited TestServer in its own process, reporting what it admitted (for the Ray limiter tests).

Run as `python tests/_limited_server.py --tpm N --time-scale S --latency-ms L`: the first stdout line is the
base URL; each "stats" line on stdin is answered with one JSON line (requests, 429s, and every admission
as [seconds since start, tokens, tokens left]); end of stdin stops it.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time

from extract.testing import TestServer
from extract.testing._limits import Verdict


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tpm", type=int, required=True)
    parser.add_argument("--time-scale", type=float, required=True)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    args = parser.parse_args()
    server = TestServer(
        tpm=args.tpm, time_scale=args.time_scale, latency=args.latency_ms / 1000, record=False
    )
    admitted: list[tuple[float, int, float]] = []
    lock = threading.Lock()
    started = time.monotonic()
    limits = server._app.limits
    admit = limits.admit

    def counting(tokens: int) -> Verdict:
        verdict = admit(tokens)
        if verdict.code is None:
            with lock:
                admitted.append((time.monotonic() - started, tokens, limits._tokens.level))
        return verdict

    limits.admit = counting  # type: ignore[method-assign]
    with server:
        print(server.base_url, flush=True)
        for line in sys.stdin:
            if line.strip() == "stats":
                with lock:
                    entries = list(admitted)
                stats = {"requests": server.request_count, "429": server.count_429, "admitted": entries}
                print(json.dumps(stats), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
