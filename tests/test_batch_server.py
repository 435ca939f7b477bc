"""extract_many against the TestServer over real HTTP: rate limits, faults, ordering."""

from __future__ import annotations

from extract import extract_many
from extract.errors import ServerError
from extract.testing import TestServer

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}
MODEL = "llama3.1-8b"


def test_token_limited_server_no_document_lost_and_few_429s() -> None:
    """~130k reserved tokens through a 60k-token bucket refilling 30k a second: the limiter paces it."""
    docs = [(f"d{i}", f"Person {i} is {i % 90} years old.") for i in range(120)]
    with TestServer(tpm=60_000, time_scale=30, latency=0.01, record=False) as server:
        run = extract_many(SCHEMA, docs, concurrency=32, base_url=server.base_url, model=MODEL)
        with run:
            got = list(run)
        refused = server.count_429
    assert sorted(o.id for o in got) == sorted(d[0] for d in docs)
    assert all(o.ok for o in got), [str(o.error) for o in got if not o.ok][:3]
    assert refused <= 3
    assert run.stats.throttled == refused


def test_server_faults_fail_some_documents_but_never_lose_one() -> None:
    docs = [f"Person {i}, {i} years" for i in range(60)]
    with TestServer(fault_rate=0.25, fault_kinds=("server_error",), seed=5, record=False) as server:
        run = extract_many(SCHEMA, docs, concurrency=8, base_url=server.base_url, model=MODEL, max_retries=0)
        with run:
            got = list(run)
    assert sorted(o.index for o in got) == list(range(60))
    failed = [o for o in got if not o.ok]
    assert failed and all(isinstance(o.error, ServerError) for o in failed)
    assert len(failed) < 60


def test_ordered_over_http_matches_input_order() -> None:
    docs = [f"Person {i}" for i in range(40)]
    with (
        TestServer(latency=0.005) as server,
        extract_many(SCHEMA, docs, concurrency=8, ordered=True, base_url=server.base_url, model=MODEL) as run,
    ):
        assert [o.index for o in run] == list(range(40))
