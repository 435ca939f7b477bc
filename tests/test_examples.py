"""The scripts in examples/ run as their docstrings say (each in its own process, as a user runs it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(240)
def test_ray_local_example_extracts_then_resumes_without_sending() -> None:
    pytest.importorskip("ray.data")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ray_local.py"), "--docs", "40"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert "40 rows, 0 errors, 40 requests sent" in lines
    assert "rerun sent 0 requests" in lines
    assert sum(1 for line in lines if line.startswith("{'id': ")) == 3
