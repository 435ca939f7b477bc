"""A local Ray runtime for the tests of extract.ray (and the Ray benchmarks' tests): import `ray_local`.

    from tests._ray_fixture import ray_local  # noqa: F401  (a fixture)

Module-scoped: Ray takes seconds to start, so each test module starts it once, with 2 CPUs whatever the
machine (the worker processes the tests need, and no more), no dashboard, and workers that import this
checkout of `extract` and the test modules (so classes defined in a test unpickle there).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RAY_CPUS = 2


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    if ray.is_initialized():
        ray.shutdown()
    # Workers inherit the environment Ray starts with: set PYTHONPATH for them only while it starts (a
    # runtime_env would cost a fresh worker pool per job instead)
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), str(ROOT / "tests"), before) if p)
    try:
        ray.init(num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False, configure_logging=False)
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    try:
        yield ray
    finally:
        ray.shutdown()
