"""benchmarks/bench_stream.py runs in quick mode: every row is measured, the streamed parse yields the value."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import bench_stream  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def test_bench_stream_quick_run_measures_every_row() -> None:
    tables = bench_stream.run(["--quick"])
    cpu = tables["cpu"]
    assert len(cpu) == 5
    assert all(row["CPU ms"] >= 0 for row in cpu)
    assert "partials]" in cpu[2]["client work"]
    (latency,) = tables["latency"]
    assert latency["items yielded"] >= 2
    assert 0 < latency["first partial ms"] <= latency["last item ms"]
