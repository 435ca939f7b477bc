"""Rate limits: token buckets over a fake clock, and 429s with x-ratelimit-* headers over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.errors import ConfigurationError
from extract.testing import TestServer
from extract.testing._limits import Limits

HEADERS = (
    "x-ratelimit-limit-requests-day",
    "x-ratelimit-limit-tokens-minute",
    "x-ratelimit-remaining-requests-day",
    "x-ratelimit-remaining-tokens-minute",
    "x-ratelimit-reset-requests-day",
    "x-ratelimit-reset-tokens-minute",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_refill_continuously() -> None:
    clock = FakeClock()
    limits = Limits(rpm=60, rpd=None, tpm=None, clock=clock)
    assert all(limits.admit(1).code is None for _ in range(60))
    assert limits.admit(1).code == "request_quota_exceeded"
    clock.now += 1.0  # one request's worth of refill
    assert limits.admit(1).code is None
    assert limits.admit(1).code == "request_quota_exceeded"


def test_tokens_are_reserved_up_front() -> None:
    clock = FakeClock()
    limits = Limits(rpm=None, rpd=None, tpm=1000, clock=clock)
    assert limits.admit(600).code is None
    refused = limits.admit(600)
    assert refused.code == "token_quota_exceeded"
    headers = dict(refused.headers)
    assert headers["x-ratelimit-remaining-tokens-minute"] == "400"
    assert float(headers["x-ratelimit-reset-tokens-minute"]) == pytest.approx(36.0)  # 600 tokens at 1000/min


def test_time_scale_shrinks_the_window_and_the_reset_headers() -> None:
    clock = FakeClock()
    limits = Limits(rpm=None, rpd=None, tpm=1000, time_scale=60.0, clock=clock)
    assert limits.admit(1000).code is None
    assert float(dict(limits.headers())["x-ratelimit-reset-tokens-minute"]) == pytest.approx(1.0)
    clock.now += 0.5  # half a real second = half a simulated minute
    assert limits.admit(500).code is None
    assert limits.admit(10).code == "token_quota_exceeded"


def test_day_limit_applies() -> None:
    limits = Limits(rpm=None, rpd=2, tpm=None, clock=FakeClock())
    assert [limits.admit(1).code for _ in range(3)] == [None, None, "request_quota_exceeded"]
    assert dict(limits.headers())["x-ratelimit-limit-requests-day"] == "2"


@settings(max_examples=100, deadline=None)
@given(
    rpm=st.integers(1, 50),
    steps=st.lists(st.tuples(st.floats(0, 5), st.integers(1, 5)), min_size=1, max_size=60),
)
def test_admissions_never_exceed_capacity_plus_refill(rpm: int, steps: list[tuple[float, int]]) -> None:
    clock = FakeClock()
    start = clock.now
    limits = Limits(rpm=rpm, rpd=None, tpm=None, clock=clock)
    admitted = 0
    for advance, burst in steps:
        clock.now += advance
        admitted += sum(limits.admit(1).code is None for _ in range(burst))
        assert admitted <= rpm + (clock.now - start) * rpm / 60 + 1e-9


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        Limits(rpm=0, rpd=None, tpm=None, clock=FakeClock())
    with pytest.raises(ConfigurationError):
        Limits(rpm=None, rpd=None, tpm=None, time_scale=0, clock=FakeClock())


# ---- over HTTP ----------------------------------------------------------------------------------------------
def chat(**extra: Any) -> dict[str, Any]:
    return {"model": "llama3.1-8b", "messages": [{"role": "user", "content": "Ada Lovelace"}], **extra}


def test_every_response_carries_the_rate_limit_headers(server: TestServer) -> None:
    ok = httpx.post(server.base_url + "/chat/completions", json=chat())
    bad = httpx.post(server.base_url + "/chat/completions", json=chat(model="nope"))
    for response in (ok, bad):
        assert all(name in response.headers for name in HEADERS), response.headers
        float(response.headers["x-ratelimit-reset-tokens-minute"])


def test_rpm_gives_429_request_quota_exceeded(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(rpm=2)
    with httpx.Client(base_url=srv.base_url) as client:
        statuses = [client.post("/chat/completions", json=chat()).status_code for _ in range(2)]
        refused = client.post("/chat/completions", json=chat())
    assert statuses == [200, 200]
    assert refused.status_code == 429
    assert refused.json() == {
        "message": refused.json()["message"],
        "type": "too_many_requests_error",
        "param": "quota",
        "code": "request_quota_exceeded",
    }
    assert float(refused.headers["x-ratelimit-reset-requests-day"]) > 0
    assert srv.count_429 == 1


def test_tpm_counts_max_completion_tokens(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(tpm=3000)
    with httpx.Client(base_url=srv.base_url) as client:
        first = client.post("/chat/completions", json=chat(max_completion_tokens=2000))
        remaining = int(first.headers["x-ratelimit-remaining-tokens-minute"])
        second = client.post("/chat/completions", json=chat(max_completion_tokens=2000))
        small = client.post("/chat/completions", json=chat(max_completion_tokens=100))
    assert first.status_code == 200 and 3000 - 2000 - 10 < remaining < 1000
    assert second.status_code == 429 and second.json()["code"] == "token_quota_exceeded"
    assert small.status_code == 200


def test_default_reservation_is_used_without_max_completion_tokens(
    make_server: Callable[..., TestServer],
) -> None:
    srv = make_server(tpm=1500, default_max_completion_tokens=1024)
    with httpx.Client(base_url=srv.base_url) as client:
        assert client.post("/chat/completions", json=chat()).status_code == 200
        assert client.post("/chat/completions", json=chat()).status_code == 429


def test_time_scale_refills_within_a_test(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(rpm=1, time_scale=600.0)  # one request per 0.1 real seconds
    with httpx.Client(base_url=srv.base_url) as client:
        assert client.post("/chat/completions", json=chat()).status_code == 200
        refused = client.post("/chat/completions", json=chat())
        assert refused.status_code == 429
        time.sleep(float(refused.headers["x-ratelimit-reset-requests-day"]) + 0.05)
        assert client.post("/chat/completions", json=chat()).status_code == 200


async def test_max_concurrency_gives_queue_exceeded(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(max_concurrency=1, latency=0.2)
    async with httpx.AsyncClient(base_url=srv.base_url) as client:
        responses = await asyncio.gather(*[client.post("/chat/completions", json=chat()) for _ in range(3)])
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200, 429, 429]
    queued = [r.json() for r in responses if r.status_code == 429]
    assert all(q["code"] == "queue_exceeded" and q["param"] == "queue" for q in queued)


def test_reset_refills_the_buckets(make_server: Callable[..., TestServer]) -> None:
    srv = make_server(rpm=1)
    assert httpx.post(srv.base_url + "/chat/completions", json=chat()).status_code == 200
    assert httpx.post(srv.base_url + "/chat/completions", json=chat()).status_code == 429
    srv.reset()
    assert srv.count_429 == 0
    assert httpx.post(srv.base_url + "/chat/completions", json=chat()).status_code == 200
