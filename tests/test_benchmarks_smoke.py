"""The benchmarks run on a fresh clone: each one in quick mode with tiny counts, against the real loopback server.

Figures from such tiny runs are noise, so these tests check what must hold whatever the speed: every
system ran, counts add up (a client without retries sends exactly one request per document), shares
are shares. Peers that are not installed (the `bench` extra) are skipped with the reason.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from benchmarks import bench_coverage, bench_overhead, bench_payload, bench_retry, run  # noqa: E402
from benchmarks._harness import CORPUS, CountingProxy, markdown_table  # noqa: E402
from extract.testing import TestServer  # noqa: E402

pytestmark = pytest.mark.timeout(120)

PEER_PACKAGES = {"openai-sdk-untitled": "openai", "instructor": "instructor", "pydantic-ai": "pydantic_ai"}


def _installed(system: str) -> bool:
    package = PEER_PACKAGES.get(system)
    return package is None or importlib.util.find_spec(package) is not None


def _need(system: str) -> None:
    if not _installed(system):
        pytest.skip(
            f"{PEER_PACKAGES[system]} is not installed: pip install -e '.[bench]' to benchmark {system}"
        )


SYSTEMS = ["floor", "extract", "openai-sdk-untitled", "instructor", "pydantic-ai"]


@pytest.fixture(scope="module")
def overhead_rows() -> dict[str, dict[str, Any]]:
    systems = ",".join(s for s in SYSTEMS if _installed(s))
    rows = bench_overhead.main(["--calls", "3", "--rounds", "2", "--warmup", "1", "--systems", systems])
    return {str(r["system"]): r for r in rows}


@pytest.mark.parametrize("system", SYSTEMS)
def test_overhead_measures_every_system(overhead_rows: dict[str, dict[str, Any]], system: str) -> None:
    _need(system)
    row = overhead_rows[system]
    assert row["status"] == "ok", row["status"]
    for key in ("sync CPU µs/call", "async CPU µs/call", "sync calls/s", "async calls/s"):
        assert math.isfinite(row[key]) and row[key] > 0, (key, row[key])
    assert row["wire"].startswith("json_schema"), row["wire"]


def test_overhead_summary_compares_extract_with_the_floor(overhead_rows: dict[str, dict[str, Any]]) -> None:
    lines = bench_overhead.summary(list(overhead_rows.values()))
    assert any(line.startswith("extract / floor CPU (sync):") for line in lines), lines


@pytest.fixture(scope="module")
def retry_rows() -> dict[str, dict[str, Any]]:
    systems = ",".join(
        s for s in ["extract", "extract-plain", "instructor", "pydantic-ai", "floor"] if _installed(s)
    )
    rows = bench_retry.main(["--docs", "4", "--sizes", "short", "--systems", systems])
    return {str(r["system"]): r for r in rows}


def test_retry_floor_sends_one_request_per_document(retry_rows: dict[str, dict[str, Any]]) -> None:
    row = retry_rows["floor"]
    assert row["requests"] == row["docs"] == 4
    assert 0 <= row["success %"] <= 100


@pytest.mark.parametrize("system", ["extract", "extract-plain", "instructor", "pydantic-ai"])
def test_retry_libraries_recover_from_first_reply_faults(
    retry_rows: dict[str, dict[str, Any]], system: str
) -> None:
    _need(system)
    row = retry_rows[system]
    assert row["status"].startswith("ok"), row["status"]
    # The server breaks first replies only, so any library that re-asks at least once always succeeds.
    assert row["success %"] == 100
    assert row["requests"] >= row["docs"]
    assert row["prompt tokens / success"] > 0
    cached, uncached = row["cached prompt tokens / success"], row["uncached prompt tokens / success"]
    assert 0 <= cached <= row["prompt tokens / success"]
    assert uncached == pytest.approx(row["prompt tokens / success"] - cached)
    assert math.isfinite(row["wall ms / success"]) and row["wall ms / success"] > 0
    # first requests and re-asks account for every uncached token
    successes = row["docs"] * row["success %"] / 100
    first, reasks = row["requests"] - row["re-asks"], row["re-asks"]
    parts = first * row["uncached prompt tokens / first request"]
    if reasks:
        parts += reasks * row["uncached prompt tokens / re-ask"]
    assert parts / successes == pytest.approx(uncached)


def test_retry_extract_predicts_its_re_asks_and_the_plain_baseline_does_not(
    retry_rows: dict[str, dict[str, Any]],
) -> None:
    ours, plain = retry_rows["extract"], retry_rows["extract-plain"]
    # the same seed and documents: the same bad first replies, so the same requests
    assert ours["requests"] == plain["requests"] and ours["re-asks"] == plain["re-asks"]
    assert ours["predictions sent"] == ours["re-asks"]  # gpt-oss-120b's row takes predictions
    assert plain["predictions sent"] == 0
    assert plain["accepted prediction tokens / success"] == 0
    if ours["re-asks"]:
        assert ours["accepted prediction tokens / success"] > 0


def test_retry_summary_states_the_uncached_token_target(retry_rows: dict[str, dict[str, Any]]) -> None:
    lines = bench_retry.summary(list(retry_rows.values()))
    verdicts = [line for line in lines if "uncached prompt tokens / success, extract" in line]
    assert len(verdicts) == 1, lines
    assert verdicts[0].endswith(("met", "MISSED")), verdicts[0]
    assert any("vs extract-plain" in line for line in lines), lines
    assert any("extract uncached tokens / success = " in line for line in lines), lines


def _invoice_request(**extra: Any) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": {"number": {"type": "string"}},
        "required": ["number"],
        "additionalProperties": False,
    }
    return {
        "model": "gpt-oss-120b",
        "reasoning_effort": "low",
        # a constant prefix of several 128-token blocks, so a second request finds it in the prompt cache
        "messages": [
            {"role": "system", "content": "Extract the invoice number. " * 80},
            {"role": "user", "content": "Invoice INV-7 for Acme."},
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "invoice", "strict": True, "schema": schema},
        },
        **extra,
    }


def _post_gzip(proxy: CountingProxy, body: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(
        proxy.base_url + "/chat/completions",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    reply: dict[str, Any] = response.json()
    return reply


def test_counting_proxy_reads_gzip_bodies_and_tallies_cache_and_prediction_usage() -> None:
    with TestServer() as server, CountingProxy(server.base_url) as proxy:
        first = _post_gzip(proxy, _invoice_request(prompt_cache_key="k"))
        content = first["choices"][0]["message"]["content"]
        messages = _invoice_request()["messages"] + [
            {"role": "assistant", "content": content},
            {"role": "user", "content": "Fix it."},
        ]
        prediction = {"type": "content", "content": content}
        second = _post_gzip(
            proxy, _invoice_request(messages=messages, prompt_cache_key="k", prediction=prediction)
        )
    tally = proxy.tally
    usages = [first["usage"], second["usage"]]
    assert tally.requests == 2 and tally.reasks == 1 and tally.predictions_sent == 1
    assert tally.formats == {"json_schema strict=true"}  # the gzip body was read, not "unreadable"
    assert tally.prompt_tokens == sum(u["prompt_tokens"] for u in usages)
    assert tally.cached_prompt_tokens == sum(u["prompt_tokens_details"]["cached_tokens"] for u in usages)
    assert tally.reask_cached_prompt_tokens == second["usage"]["prompt_tokens_details"]["cached_tokens"] > 0
    assert tally.uncached_prompt_tokens == tally.prompt_tokens - tally.cached_prompt_tokens
    details = second["usage"]["completion_tokens_details"]
    assert tally.accepted_prediction_tokens == details["accepted_prediction_tokens"] > 0
    assert tally.rejected_prediction_tokens == details["rejected_prediction_tokens"]


def test_counting_proxy_strips_the_named_fields_before_the_server_sees_them() -> None:
    strip = frozenset({"prompt_cache_key", "prediction"})
    with TestServer() as server, CountingProxy(server.base_url, strip=strip) as proxy:
        prediction = {"type": "content", "content": '{"number":"INV-7"}'}
        _post_gzip(proxy, _invoice_request(prompt_cache_key="k", prediction=prediction))
        received = server.requests
    assert len(received) == 1
    assert "prompt_cache_key" not in received[0] and "prediction" not in received[0]
    assert received[0]["model"] == "gpt-oss-120b"
    assert proxy.tally.predictions_sent == 0


def test_coverage_shares_are_percentages() -> None:
    if not (CORPUS / "schemas").is_dir():
        pytest.skip(
            f"JSONSchemaBench corpus not found at {CORPUS / 'schemas'} (it lives in ../shared/corpus)"
        )
    rows = bench_coverage.main(["--limit", "4"])
    assert rows[-1]["split"] == "all"
    assert rows[-1]["schemas"] == sum(r["schemas"] for r in rows[:-1])
    for row in rows:
        value = row["extract % strict-ready"]
        assert isinstance(value, float) and 0 <= value <= 100, row


def test_payload_measures_every_encoding_and_the_whole_extraction() -> None:
    tls = shutil.which("openssl") is not None
    rows = bench_payload.main(
        ["--quick", "--http", "--rounds", "1", "--calls", "1", *(["--tls"] if tls else [])]
    )
    extract_rows = {(r["document"], r["encoding"]): r for r in rows if r["library"] == "extract encode_body"}
    for label in bench_payload.SIZES:
        json_row = extract_rows[label, "json"]
        assert json_row["saved %"] == 0
        gzip_row = extract_rows[label, "gzip"]
        assert 0 < gzip_row["body bytes"] < json_row["body bytes"]
        assert math.isfinite(gzip_row["encode CPU us"]) and gzip_row["encode CPU us"] > 0
    e2e = {(r["document"], r["payload"]): r for r in bench_payload._LAST["e2e"]}
    # auto: JSON under the threshold, gzip above it; every whole extraction was timed
    assert e2e["1 KB", "auto"]["sent as"] == "json" and e2e["200 KB", "auto"]["sent as"] == "gzip"
    assert all(math.isfinite(r["client CPU us / extraction"]) for r in e2e.values())
    if tls:  # the same over HTTPS, through the local TLS forwarder
        over_tls = bench_payload._LAST["tls"]
        assert len(over_tls) == len(e2e)
        assert all(math.isfinite(r["client CPU us / extraction"]) for r in over_tls)
    # the HTTP variant: the test server read every encoding (none refused)
    assert {r["status"] for r in bench_payload._LAST["http"]} == {"200"}
    lines = bench_payload.summary(rows)
    assert any(line.startswith("200 KB end to end, payload='auto'") for line in lines), lines
    assert any(line.startswith("auto threshold derived:") for line in lines), lines


def test_runner_writes_results_and_reports_missing_benchmarks(tmp_path: Path) -> None:
    out = tmp_path / "latest.md"
    assert run.main(["--quick", "--only", "coverage", "--output", str(out)]) == 0
    text = out.read_text()
    assert "## coverage" in text and "## Summary" in text
    assert "cores" in text and "versions:" in text and "python benchmarks/run.py --quick" in text
    missing = run.Bench("nothing", "bench_does_not_exist", "absent", rows=False)
    assert run.run_theirs(missing, quick=True).status.startswith("not yet")


cells = st.one_of(st.integers(), st.floats(allow_nan=True), st.text(max_size=8))
rows_strategy = st.lists(
    st.dictionaries(st.sampled_from(["a", "b|c", "d"]), cells, min_size=1, max_size=3), min_size=1, max_size=5
)


@given(rows_strategy)
def test_markdown_table_has_one_line_per_row_and_equal_cell_counts(rows: list[dict[str, Any]]) -> None:
    lines = markdown_table(rows).splitlines()
    assert len(lines) == len(rows) + 2
    widths = {line.replace("\\|", "").count("|") for line in lines}
    assert len(widths) == 1


def test_hostile_transport_and_schema_sections_run_quick() -> None:
    from benchmarks import bench_hostile

    transport = bench_hostile.transport_section(True)
    assert "| endless body |" in transport and "ResponseTooLargeError" in transport
    assert "APITimeoutError" in transport
    schema = bench_hostile.schema_section(True)
    assert "SchemaError" in schema and "^(a+)+$" in schema
