"""benchmarks/bench_ray.py's measuring parts, without Ray: the counting server and the figures from its counts.

The Ray runs themselves are the benchmark (`python benchmarks/bench_ray.py --quick` proves they run); what
must hold whatever the speed is that the server counts each answer, 429 and re-sent document exactly, and
that the shares are computed against what the limit made available.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_ray, run  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def _ask(client: httpx.Client, base_url: str, doc: int) -> int:
    body = {
        "model": bench_ray.MODEL,
        "messages": [{"role": "user", "content": bench_ray.document(doc)}],
        "max_completion_tokens": 100,
    }
    return client.post(f"{base_url}/chat/completions", json=body, timeout=30).status_code


def test_counting_server_counts_answers_429s_and_resent_documents() -> None:
    # a bucket of 1,000 tokens barely refilled (time_scale tiny): each request is charged its prompt plus 100
    with bench_ray.server_process(tpm=1000, time_scale=0.001) as server, httpx.Client() as client:
        statuses = [_ask(client, server.base_url, doc) for doc in (1, 2, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11)]
        stats = server.stats()
    ok = statuses.count(200)
    assert 0 < ok < len(statuses) and statuses.count(429) == len(statuses) - ok
    assert stats["requests"] == len(statuses)
    assert stats["ok"] == ok and stats["rate_limited"] == len(statuses) - ok
    assert stats["statuses"] == {"200": ok, "429": len(statuses) - ok}
    assert stats["resent"] == 1  # document 1, asked twice among the first requests (which the bucket admits)
    assert stats["documents_ok"] == ok - 1
    assert len(stats["charges"]) == ok  # only admitted requests are charged
    assert stats["charged_tokens"] == sum(tokens for _, tokens in stats["charges"])
    assert all(tokens > 100 for _, tokens in stats["charges"])
    assert stats["charged_tokens"] <= 1000


def _stats(charges: list[tuple[float, int]], first: float) -> dict[str, Any]:
    return {"charges": charges, "first_answer": first, "charged_tokens": sum(t for _, t in charges)}


def test_limit_share_is_charged_over_bucket_plus_refill() -> None:
    # a perfect client: spends the 600-token bucket at once, then exactly the refill (100 tokens/s) for 10 s
    perfect = [(0.0, 600)] + [(float(s), 100) for s in range(1, 11)]
    assert bench_ray.limit_share(_stats(perfect, 0.0), 100.0, 600) == pytest.approx(1.0)
    # a client that idles half the time gets half
    idle = [(float(s), 100) for s in range(2, 22, 2)]
    assert bench_ray.limit_share(_stats(idle, 0.0), 100.0, 0) == pytest.approx(1000 / 2000)
    assert bench_ray.limit_share(_stats([], 0.0), 100.0, 600) != bench_ray.limit_share(
        _stats([], 0.0), 100.0, 600
    )


def test_steady_rate_leaves_out_start_up_and_stragglers() -> None:
    stats = {"ok": 100, "ok_t10": 10.0, "ok_t90": 18.0}
    assert bench_ray.steady_docs_per_s(stats) == pytest.approx(80 / 8.0)
    assert math.isnan(bench_ray.steady_docs_per_s({"ok": 5, "ok_t10": None, "ok_t90": None}))


def test_registered_in_run_py() -> None:
    bench = next(b for b in run.BENCHES if b.name == "ray")
    assert bench.module == "bench_ray" and bench.rows
    assert (ROOT / "benchmarks" / "bench_ray.py").exists()


def test_summary_names_each_target() -> None:
    rows = [
        {"client": "extract_dataset", "actors": 1, "efficiency vs linear": 1.0},
        {"client": "extract_dataset", "actors": 2, "efficiency vs linear": 0.93},
        {"client": "ray.data.llm", "setup": "x", "share of limit": 0.5, "429 share": 0.02, "re-sent": 3},
    ]
    lines = bench_ray.summary(rows)
    assert lines[0].startswith("extract_dataset scaling: lowest efficiency vs linear 93%")
    assert "50% of the limit, 2.0% 429s, 3 re-sent" in lines[1]
