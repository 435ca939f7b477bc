"""docs/spark.md's recipe runs as written: mapInPandas over extract_frame on a local SparkSession.

The recipe's code block is executed from the document itself, so the page cannot drift from what is tested.
Skipped unless pyspark imports and `java` is on PATH (neither is a dependency of extract).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from extract.testing import TestServer

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("java is not on PATH: Spark needs a JVM", allow_module_level=True)

import pandas as pd  # noqa: E402
from pyspark import TaskContext  # noqa: E402
from pyspark.sql import DataFrame, SparkSession  # noqa: E402

pytestmark = pytest.mark.timeout(300)

ROOT = Path(__file__).resolve().parent.parent
MODEL = "llama3.1-8b"
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}, "city": {"type": "string"}},
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
OUT_SCHEMA = "id long, name string, age long, city string, _error string"
DOCS = 24
PARTITIONS = 3
_TAG = re.compile(r"DOC#(\d+)#")


def _recipe() -> dict[str, Any]:
    text = (ROOT / "docs" / "spark.md").read_text(encoding="utf-8")
    section = text.split("## The recipe", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "docs/spark.md lost its recipe code block"
    # a module name that is not importable: cloudpickle ships the functions by value to the Python workers
    namespace: dict[str, Any] = {"__name__": "spark_recipe_doc"}
    exec(compile(match.group(1), "docs/spark.md", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def recipe() -> dict[str, Any]:
    return _recipe()


@pytest.fixture(scope="module")
def spark() -> Iterator[SparkSession]:
    # the Python workers must run this interpreter and import this checkout's extract
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    session = (
        SparkSession.builder.master("local[2,3]")  # 2 slots; a task may fail 3 times: retries happen locally
        .appName("extract-spark-recipe")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", str(PARTITIONS))
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "4")  # several Arrow batches per partition
        .config("spark.executorEnv.PYTHONPATH", os.environ["PYTHONPATH"])
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer(record=True) as srv:
        yield srv


def _docs(spark: SparkSession) -> DataFrame:
    rows = pd.DataFrame(
        {
            "id": range(DOCS),
            "body": [f"DOC#{i}# Ada Lovelace, aged {20 + i}, lives in London." for i in range(DOCS)],
        }
    )
    return spark.createDataFrame(rows).repartitionByRange(PARTITIONS, "id")


def _answers_per_doc(server: TestServer) -> Counter[int]:
    found: Counter[int] = Counter()
    for body, entry in zip(server.requests, server.request_log, strict=True):
        tag = _TAG.search(str(body.get("messages")))
        assert tag is not None and entry.status == 200
        found[int(tag.group(1))] += 1
    return found


def _lost_once(run: Callable[[Iterator[pd.DataFrame]], Iterator[pd.DataFrame]]) -> Any:
    """The recipe's function, but partition 0's first attempt dies after its requests were answered, before
    Spark gets the output: the task retry that re-bills a plain thread pool."""

    def wrapped(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        context = TaskContext.get()
        out = list(run(frames))
        if context is not None and context.partitionId() == 0 and context.attemptNumber() == 0:
            raise RuntimeError("executor lost after the partition's requests were answered")
        yield from out

    return wrapped


def _check_output(frame: pd.DataFrame) -> None:
    assert sorted(frame["id"].tolist()) == list(range(DOCS))  # every id exactly once
    assert frame["_error"].isna().all(), frame["_error"].dropna().tolist()
    assert frame["name"].notna().all() and frame["age"].notna().all()


def test_frame_extractor_runs_one_request_per_document(
    spark: SparkSession, server: TestServer, recipe: dict[str, Any]
) -> None:
    run = recipe["frame_extractor"](
        SCHEMA, text_column="body", base_url=server.base_url, api_key="sk-test", model=MODEL, concurrency=4
    )
    out = _docs(spark).mapInPandas(run, OUT_SCHEMA).toPandas()
    _check_output(out)
    assert _answers_per_doc(server) == Counter(range(DOCS))


def test_frame_extractor_rebills_a_retried_partition(
    spark: SparkSession, server: TestServer, recipe: dict[str, Any]
) -> None:
    """The problem the checkpoint solves, shown: the plain recipe sends a retried partition again."""
    run = recipe["frame_extractor"](
        SCHEMA, text_column="body", base_url=server.base_url, api_key="sk-test", model=MODEL, concurrency=4
    )
    out = _docs(spark).mapInPandas(_lost_once(run), OUT_SCHEMA).toPandas()
    _check_output(out)
    answers = _answers_per_doc(server)
    assert set(answers) == set(range(DOCS))
    twice = {doc for doc, n in answers.items() if n == 2}
    assert twice and max(answers.values()) == 2  # one partition's documents, billed twice


def test_resumable_extractor_never_resends_a_finished_document(
    spark: SparkSession, server: TestServer, recipe: dict[str, Any], tmp_path: Path
) -> None:
    run = recipe["resumable_extractor"](
        SCHEMA,
        checkpoint_dir=str(tmp_path),
        text_column="body",
        base_url=server.base_url,
        api_key="sk-test",
        model=MODEL,
        concurrency=4,
        rows_per_frame=5,
    )
    out = _docs(spark).mapInPandas(_lost_once(run), OUT_SCHEMA).toPandas()
    _check_output(out)
    assert _answers_per_doc(server) == Counter(range(DOCS))  # the retried partition came from its checkpoint
    assert len(list(tmp_path.glob("part-*.jsonl"))) == PARTITIONS


def test_anti_join_skips_what_an_earlier_run_wrote(
    spark: SparkSession, server: TestServer, recipe: dict[str, Any], tmp_path: Path
) -> None:
    run = recipe["frame_extractor"](
        SCHEMA, text_column="body", base_url=server.base_url, api_key="sk-test", model=MODEL, concurrency=4
    )
    docs = _docs(spark)
    target = str(tmp_path / "people")
    docs.filter("id < 10").mapInPandas(run, OUT_SCHEMA).write.parquet(target)  # an earlier, partial run
    done = spark.read.parquet(target).select("id")
    todo = docs.join(done, on="id", how="left_anti")
    todo.mapInPandas(run, OUT_SCHEMA).write.mode("append").parquet(target)
    _check_output(spark.read.parquet(target).toPandas())
    assert _answers_per_doc(server) == Counter(range(DOCS))
