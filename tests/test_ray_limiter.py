"""The cluster limiter on a local Ray runtime: worker processes sharing one tokens-per-minute limit.

The provider is a rate-limited TestServer in its own process (tests/_limited_server.py) whose minute lasts
two seconds; it reports every admission, so utilisation is measured where the limit is enforced.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from extract import Extractor, aextract_many  # noqa: E402
from extract.ray._limiter import ClusterLimiter, start_limiter  # noqa: E402
from tests._ray_fixture import ray_local  # noqa: E402, F401  (a fixture)

ROOT = Path(__file__).resolve().parent.parent
TPM = 12_000
SCALE = 30.0  # a minute lasts two seconds: 6,000 tokens a real second
RATE = TPM / 60.0 * SCALE
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
    "required": ["name", "year"],
    "additionalProperties": False,
}
TEXT = "Ada Lovelace, born 1815 in London, wrote the first published algorithm. " * 3


class LimitedServer:
    def __init__(self, *, tpm: int, scale: float, latency_ms: float) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, str(ROOT / "tests" / "_limited_server.py"), "--tpm", str(tpm)]
        command += ["--time-scale", str(scale), "--latency-ms", str(latency_ms)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        assert self.process.stdout is not None
        self.base_url = self.process.stdout.readline().strip()
        if not self.base_url.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the limited server did not start (said {self.base_url!r})")

    def stats(self) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write("stats\n")
        self.process.stdin.flush()
        result: dict[str, Any] = json.loads(self.process.stdout.readline())
        return result

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def limited() -> Iterator[LimitedServer]:
    server = LimitedServer(tpm=TPM, scale=SCALE, latency_ms=30)
    try:
        yield server
    finally:
        server.stop()


@ray.remote(num_cpus=0.5)  # the fixture starts Ray with 2 CPUs: up to 4 workers
class Worker:
    """One worker process: an Extractor whose limiter is the cluster's, running batches concurrently."""

    def __init__(self, base_url: str, limiter: ClusterLimiter) -> None:
        self.limiter = limiter
        self.extractor = Extractor(
            base_url=base_url,
            api_key="sk-test",
            model="llama3.1-8b",
            provider="cerebras",
            limiter=limiter,
            max_retries=8,
            max_completion_tokens=64,
        )

    async def run(self, count: int) -> dict[str, Any]:
        done = failed = 0
        async for outcome in aextract_many(SCHEMA, [TEXT] * count, extractor=self.extractor, concurrency=16):
            if outcome.ok:
                done += 1
            else:
                failed += 1
        return {"done": done, "failed": failed, "fallback": self.limiter.on_fallback}

    def close(self) -> None:
        self.limiter.close()


def utilisation(admitted: list[list[float]]) -> float:
    """Tokens admitted over the most the server could admit between its first and last admission."""
    first, last = admitted[0][0], admitted[-1][0]
    return sum(entry[1] for entry in admitted) / (TPM + RATE * (last - first))


def run_workers(base_url: str, name: str, workers: int, per_worker: int) -> tuple[list[Any], list[Any]]:
    crew = [Worker.remote(base_url, ClusterLimiter(name)) for _ in range(workers)]
    return crew, [w.run.remote(per_worker) for w in crew]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.usefixtures("ray_local")
def test_workers_together_use_the_limit_without_429s(limited: LimitedServer, workers: int) -> None:
    name = f"limit-{workers}-{time.monotonic_ns()}"
    limiter = start_limiter(name, tpm=TPM)
    per_worker = 360 // workers
    crew, runs = run_workers(limited.base_url, name, workers, per_worker)
    results = ray.get(runs, timeout=100)
    stats = limited.stats()
    assert [r["done"] for r in results] == [per_worker] * workers
    assert not any(r["fallback"] for r in results)
    share_429 = stats["429"] / stats["requests"]
    used = utilisation(stats["admitted"])
    print(f"\n{workers} workers: utilisation {used:.3f}, 429s {stats['429']}/{stats['requests']}")
    assert share_429 < 0.01
    assert used >= 0.9
    assert ray.get(limiter.stats.remote())["workers"] == workers
    # closed, each worker hands back what it still holds: every grant comes back to the actor once
    ray.get([w.close.remote() for w in crew], timeout=30)
    deadline = time.monotonic() + 30
    while (desk := ray.get(limiter.stats.remote()))["observed"] < desk["granted"]:
        assert time.monotonic() < deadline, desk
        time.sleep(0.05)
    assert desk["observed"] == desk["granted"]
    for actor in [*crew, limiter]:
        ray.kill(actor)


@pytest.mark.timeout(120)
@pytest.mark.usefixtures("ray_local")
def test_workers_go_on_with_a_share_when_the_limiter_dies(limited: LimitedServer) -> None:
    name = f"doomed-{time.monotonic_ns()}"
    limiter = start_limiter(name, tpm=TPM)
    crew, runs = run_workers(limited.base_url, name, 2, 200)
    deadline = time.monotonic() + 60
    while limited.stats()["requests"] < 60 and time.monotonic() < deadline:
        time.sleep(0.05)
    ray.kill(limiter)
    results = ray.get(runs, timeout=100)
    stats = limited.stats()
    assert [(r["done"], r["failed"]) for r in results] == [(200, 0), (200, 0)]
    assert all(r["fallback"] for r in results)
    print(f"\nafter the limiter died: 429s {stats['429']}/{stats['requests']}")
    for actor in crew:
        ray.kill(actor)
