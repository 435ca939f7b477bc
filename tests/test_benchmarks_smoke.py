"""The benchmarks run on a fresh clone: each one in quick mode with tiny counts, against the real loopback server.

Figures from such tiny runs are noise, so these tests check what must hold whatever the speed: every
system ran, counts add up (a client without retries sends exactly one request per document), shares
are shares. Peers that are not installed (the `bench` extra) are skipped with the reason.
"""

from __future__ import annotations

import importlib.util
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

from benchmarks import bench_coverage, bench_overhead, bench_payload, bench_retry, run  # noqa: E402
from benchmarks._harness import CORPUS, markdown_table  # noqa: E402

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
    systems = ",".join(s for s in ["extract", "instructor", "pydantic-ai", "floor"] if _installed(s))
    rows = bench_retry.main(["--docs", "4", "--sizes", "short", "--systems", systems])
    return {str(r["system"]): r for r in rows}


def test_retry_floor_sends_one_request_per_document(retry_rows: dict[str, dict[str, Any]]) -> None:
    row = retry_rows["floor"]
    assert row["requests"] == row["docs"] == 4
    assert 0 <= row["success %"] <= 100


@pytest.mark.parametrize("system", ["extract", "instructor", "pydantic-ai"])
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
