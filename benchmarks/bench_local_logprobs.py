"""What logprobs cost on the embedded model: memory and generation speed, three ways.

- `off`: LocalTransport, no logprobs asked (what every request without evidence pays);
- `on`: LocalTransport with logprobs=true, top_logprobs=5: a log-softmax of the one logits row each token
  was sampled from (extract._local._logprobs); the time spent in that work is reported per token;
- `logits_all`: llama-cpp-python's own way, a Llama loaded with logits_all=True answering logprobs=True,
  top_logprobs=5 (a float32 row per context position, and the vocabulary sorted per token).

Each way runs in a fresh process (so peak RSS is its own): load, one warm-up reply, then `--replies`
replies of up to `--tokens` tokens to a ~2 KB document, greedy. Tokens/s is completion tokens over the
wall time of the replies; on a shared machine compare the ways within one run, not across runs.

    python benchmarks/bench_local_logprobs.py [--replies 3] [--tokens 64] [--rounds 1] [--modes off,on]
    python benchmarks/bench_local_logprobs.py --pairs 10   # speed only: off/on in turn, one process
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._harness import REPO_ROOT, Row, markdown_table

NAME = "local_logprobs"
MODES = ("off", "on", "logits_all")

_CHILD = r"""
import json, resource, sys, time
from extract._local._logprobs import TokenLog
from extract.local import DEFAULT_N_CTX, LocalTransport, _default_threads
from extract.transports import WireRequest

mode, replies, tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")

lines = [
    f"Order {i}: Maria Lopez (maria.lopez{i}@northwind.example) asked for {i + 3} boxes of item SKU-{1000 + i} "
    f"at EUR {12 + i}.50 each, to be shipped to Rua Augusta {i}, Lisbon, before 2025-0{1 + i % 9}-1{i % 9}."
    for i in range(12)
]
document = "\n".join(lines)[:2048]
messages = [
    {"role": "system", "content": "Answer with one JSON object listing every order: sku, quantity, price."},
    {"role": "user", "content": document},
]
spent = [0.0]
add = TokenLog.add
def timed(self, token, logits):
    begun = time.perf_counter()
    add(self, token, logits)
    spent[0] += time.perf_counter() - begun
TokenLog.add = timed

transport = LocalTransport()
if mode == "logits_all":
    from llama_cpp import Llama
    threads = _default_threads()
    llama = Llama(model_path=str(transport.model_path), n_ctx=DEFAULT_N_CTX, n_threads=threads,
                  n_threads_batch=threads, logits_all=True, verbose=False)
    def reply():
        out = llama.create_chat_completion(messages=messages, max_tokens=tokens, temperature=0,
                                           frequency_penalty=1.0, logprobs=True, top_logprobs=5)
        assert out["choices"][0]["logprobs"]["content"]
        return out["usage"]["completion_tokens"]
else:
    transport.load()
    body = {"model": "local", "messages": messages, "max_tokens": tokens, "temperature": 0}
    if mode in ("on", "paired"):
        body.update(logprobs=True, top_logprobs=5)
    def reply():
        out = transport.send(WireRequest("/chat/completions", body), 600).data
        assert (out["choices"][0].get("logprobs") is not None) == (mode == "on")
        return out["usage"]["completion_tokens"]
loaded = rss_mb()
if mode == "paired":  # one process, requests without and with logprobs in turn: load drifts out
    import statistics
    plain = {k: v for k, v in body.items() if k not in ("logprobs", "top_logprobs")}
    with_lp = {**plain, "logprobs": True, "top_logprobs": 5}
    transport.send(WireRequest("/chat/completions", with_lp), 600)
    spent[0] = 0.0
    times = {"off": [], "on": []}
    counts = {"off": 0, "on": 0}
    for _ in range(replies):
        for name, b in (("off", plain), ("on", with_lp)):
            begun = time.perf_counter()
            out = transport.send(WireRequest("/chat/completions", b), 600).data
            times[name].append(time.perf_counter() - begun)
            counts[name] += out["usage"]["completion_tokens"]
    ratios = [on / off for off, on in zip(times["off"], times["on"])]
    print(json.dumps({"off_tokens_per_s": counts["off"] / sum(times["off"]),
                      "on_tokens_per_s": counts["on"] / sum(times["on"]),
                      "median_time_ratio": statistics.median(ratios), "pairs": replies,
                      "logprob_us_per_token": 1e6 * spent[0] / max(counts["on"], 1)}))
    sys.exit(0)
reply()  # warm-up: first-call allocations and caches
spent[0] = 0.0
generated = 0
begun = time.perf_counter()
for _ in range(replies):
    generated += reply()
wall = time.perf_counter() - begun
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rss_loaded_mb": loaded, "peak_rss_mb": peak, "tokens": generated,
                  "tokens_per_s": generated / wall, "logprob_us_per_token": 1e6 * spent[0] / max(generated, 1)}))
"""


def _run(mode: str, replies: int, tokens: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(replies), str(tokens)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=3600,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def paired(pairs: int, tokens: int) -> Row:
    """Without and with logprobs in turn in one process: the cost, with the machine's load drift cancelled."""
    got = _run("paired", pairs, tokens)
    return {
        "logprobs": f"off vs on, {pairs} pairs in one process",
        "tokens/s off": round(got["off_tokens_per_s"], 1),
        "tokens/s on": round(got["on_tokens_per_s"], 1),
        "median time on/off per pair": round(got["median_time_ratio"], 3),
        "logprob work (µs/token)": round(got["logprob_us_per_token"]),
    }


def main(argv: Sequence[str] | None = None) -> list[Row]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--replies", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="each way this many times, interleaved")
    parser.add_argument("--modes", default=",".join(MODES), help="which ways, comma-separated")
    parser.add_argument("--pairs", type=int, default=0, help="instead: this many off/on pairs in one process")
    args = parser.parse_args(argv)
    if args.pairs:
        return [paired(args.pairs, args.tokens)]
    modes = [m for m in MODES if m in args.modes.split(",")]
    runs: dict[str, list[dict[str, float]]] = {mode: [] for mode in modes}
    for _ in range(args.rounds):
        for mode in modes:
            runs[mode].append(_run(mode, args.replies, args.tokens))
            print(mode, runs[mode][-1], file=sys.stderr, flush=True)
    rows: list[Row] = []
    for mode in modes:
        done = runs[mode]
        rows.append(
            {
                "logprobs": mode,
                "RSS after load (MB)": round(statistics.median(r["rss_loaded_mb"] for r in done)),
                "peak RSS (MB)": round(statistics.median(r["peak_rss_mb"] for r in done)),
                "tokens/s": round(statistics.median(r["tokens_per_s"] for r in done), 1),
                "logprob work (µs/token)": round(statistics.median(r["logprob_us_per_token"] for r in done))
                if mode == "on"
                else "-",
                "completion tokens": int(sum(r["tokens"] for r in done)),
            }
        )
    return rows


if __name__ == "__main__":
    print(markdown_table(main()))
