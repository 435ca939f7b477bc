"""extract.ray.extract_dataset on a local Ray runtime (2 CPUs, 2 worker actors) against the loopback TestServer.

For the Ray jobs the server runs in a process of its own (`_ray_fixture.ServerProcess`), as a provider
would, and reports what it received, so
its request log shows what the worker processes sent. Each Ray job costs seconds of actor start-up, so each
test checks several things on one job.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.errors import ConfigurationError
from extract.testing import TestServer
from tests._ray_fixture import ServerProcess, ray_local  # noqa: F401  (a fixture)

pytest.importorskip("pyarrow")

MODEL = "llama3.1-8b"
_DOC_NUMBER = re.compile(r"Document number (\d+):")


class Address(pydantic.BaseModel):
    city: str
    zip: str


class Person(pydantic.BaseModel):
    name: str
    age: int
    address: Address | None = None


def _doc(i: int) -> str:
    return f"Document number {i}: a person of some age lives somewhere."


def _sent(summary: Mapping[str, Any]) -> Counter[int]:
    """How many completion requests the server received per document number."""
    counts: Counter[int] = Counter()
    for messages in summary["messages"]:
        found = _DOC_NUMBER.search(messages)
        if found:
            counts[int(found.group(1))] += 1
    return counts


class KillOnce:
    """A Limiter that SIGKILLs its own worker process at its `at`-th reservation, once per job (a marker file
    says it happened), so that worker dies mid-batch with documents finished and others in flight."""

    def __init__(self, marker: str, at: int) -> None:
        self.marker = marker
        self.at = at
        self.calls = 0

    def reserve(self, tokens: int) -> float:
        del tokens
        self.calls += 1
        if self.calls == self.at:
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return 0.0
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        return 0.0

    def observe(
        self, status_code: int, headers: Mapping[str, str], tokens_used: int | None, reserved: int
    ) -> None:
        del status_code, headers, tokens_used, reserved


# ---- with Ray ------------------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_rows_columns_errors_and_laziness(ray_local: Any) -> None:  # noqa: F811
    import extract.ray

    n = 30
    items = [{"id": f"d{i}", "body": _doc(i), "lang": "en"} for i in range(n)]
    items[3]["body"] = None  # not a string: a row with an error, not sent
    items[7]["body"] = "Document number 7: POISON"  # the server answers 503 for this one, always
    with ServerProcess(oracle_unavailable="POISON", latency=0.2, max_concurrency=8) as server:
        ds = ray_local.data.from_items(items)
        out = extract.ray.extract_dataset(
            ds,
            Person,
            text_column="body",
            base_url=server.base_url,
            api_key="k",
            model=MODEL,
            max_retries=0,
            concurrency=2,
            per_worker_concurrency=4,
            batch_size=8,
        )
        time.sleep(1.0)
        assert server.summary()["request_count"] == 0  # lazy: nothing is sent before the dataset is consumed
        rows = out.take_all()
        schema = out.schema()
        seen = server.summary()
        sent = _sent(seen)
        limiters = [
            ray_local.get(ray_local.get_actor(name).stats.remote())
            for name in ray_local.util.list_named_actors()
            if name.startswith("extract-limiter-")
        ]
    # each actor keeps several documents in flight (not one at a time), and no more than
    # per_worker_concurrency: 2 actors x 4 never exceed the server's 8 (above it, it answers 429)
    assert seen["peak_in_flight"] >= 3 and seen["count_429"] == 0
    assert schema is not None
    # both workers leased from the job's one limiter actor, for every request they sent
    assert any(s["workers"] == 2 and s["granted"] >= sum(sent.values()) for s in limiters), limiters
    assert list(schema.names) == ["id", "body", "lang", "name", "age", "address", "error", "usage"]
    assert sorted(r["id"] for r in rows) == sorted(f"d{i}" for i in range(n))  # every id, once
    by_id = {r["id"]: r for r in rows}
    assert by_id["d3"]["error"].startswith("InputError: column 'body' holds null")
    assert by_id["d3"]["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    assert by_id["d7"]["error"] is not None and "503" in by_id["d7"]["error"]
    assert by_id["d7"]["name"] is None
    good = [r for r in rows if r["id"] not in ("d3", "d7")]
    assert all(r["error"] is None and isinstance(r["name"], str) and isinstance(r["age"], int) for r in good)
    assert all(r["usage"]["total_tokens"] > 0 and r["lang"] == "en" for r in good)
    assert 3 not in sent and sent[7] == 1  # the null text was never sent; the poisoned one once
    assert all(sent[i] == 1 for i in range(n) if i not in (3, 7))


@pytest.mark.timeout(240)
def test_api_key_never_in_ray_logs_or_dataset(ray_local: Any) -> None:  # noqa: F811
    import extract.ray

    key = "sk-h18-" + os.urandom(12).hex()
    wrong = "sk-h18-wrong-" + os.urandom(12).hex()
    with ServerProcess(api_key=key) as server:
        ds = ray_local.data.from_items([{"id": i, "text": _doc(i)} for i in range(12)])
        # a wrong key is about the setup, not a document: the job fails (once, not a row per document),
        # and the failure does not show the key
        failing = extract.ray.extract_dataset(
            ds, Person, text_column="text", base_url=server.base_url, api_key=wrong, model=MODEL
        )
        with pytest.raises(Exception, match="AuthenticationError") as failed:
            failing.take_all()
        assert wrong not in str(failed.value) and wrong not in repr(failed.value)
        out = extract.ray.extract_dataset(
            ds,
            Person,
            text_column="text",
            base_url=server.base_url,
            api_key=key,
            model=MODEL,
            keep_columns=False,
            per_worker_concurrency=4,
            batch_size=4,
        )
        rows = out.take_all()
        plan = str(out) + repr(out.stats())
    assert len(rows) == 12 and all(r["error"] is None for r in rows)  # the key reached the workers
    assert set(rows[0]) == {"id", "name", "age", "address", "error", "usage"}  # keep_columns=False
    assert key not in json.dumps(rows, default=str) and key not in plan
    # what Ray ships to every actor (the map operator's constructor arguments, and the object they point to)
    shipped = out._logical_plan.dag.fn_constructor_kwargs
    assert key.encode() not in ray_local.cloudpickle.dumps(shipped)
    assert key.encode() not in ray_local.cloudpickle.dumps(ray_local.get(shipped["spec"].secret))
    session = Path(ray_local._private.worker._global_node.get_session_dir_path())
    needles = (key.encode(), wrong.encode())
    files = [p for p in session.rglob("*") if p.is_file() and not p.is_symlink()]
    seen_worker = False
    for path in files:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        assert not any(n in data for n in needles), f"an API key is in {path}"
        seen_worker = seen_worker or b"ExtractWorker" in data
    assert seen_worker  # the scan did read the logs of this job's workers


@pytest.mark.timeout(300)
def test_killed_worker_resumes_without_resending_finished_documents(ray_local: Any, tmp_path: Path) -> None:  # noqa: F811
    import extract.ray

    n, per_worker, batch = 60, 2, 20
    output = tmp_path / "out"
    marker = tmp_path / "killed"
    with ServerProcess(latency=0.05) as server:
        ds = ray_local.data.from_items([{"id": i, "body": _doc(i)} for i in range(n)])
        options: dict[str, Any] = {
            "text_column": "body",
            "base_url": server.base_url,
            "api_key": "k",
            "model": MODEL,
            "output": output,
            "concurrency": 2,
            "per_worker_concurrency": per_worker,
            "batch_size": batch,
        }
        # the 12th reservation of a worker: about 10 documents of its batch finished, 2 in flight
        rows = extract.ray.extract_dataset(
            ds, Person, limiter=KillOnce(str(marker), at=12), **options
        ).take_all()
        assert marker.exists()  # a worker was killed mid-batch
        sent = _sent(server.summary())
        # only the documents in flight when the worker died were sent twice; the finished ones were not
        assert set(sent) == set(range(n))
        assert max(sent.values()) <= 2
        assert sum(c - 1 for c in sent.values()) <= per_worker
        # a rerun of the whole job: every id answered from the output, nothing sent
        before = server.summary()["request_count"]
        again = extract.ray.extract_dataset(ds, Person, **options).take_all()
        assert server.summary()["request_count"] == before
        assert ray_local.data.read_json(str(output)).count() == n  # read back (.extract-meta is skipped)
    assert sorted(r["id"] for r in rows) == list(range(n))  # each id exactly once, none missing
    assert all(r["error"] is None for r in rows)
    lines = [
        json.loads(line) for part in output.glob("part-*.jsonl") for line in part.read_text().splitlines()
    ]
    assert sorted(line["id"] for line in lines) == list(range(n))  # each finished document written once
    assert len(list(output.glob("part-*.jsonl"))) >= 3  # the killed worker's part, and its replacement's
    assert {r["id"]: (r["name"], r["age"]) for r in again} == {r["id"]: (r["name"], r["age"]) for r in rows}


# ---- without Ray workers ---------------------------------------------------------------------------------


def test_import_extract_does_not_import_ray() -> None:
    code = "import sys, extract, extract.ray; print(any(m == 'ray' or m.startswith('ray.') for m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == "False"
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if "|" in line}
    assert "ray" not in imported and not any(m.startswith("ray.") for m in imported)


def test_without_ray_the_error_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "import extract.ray\n"
        "from extract.errors import ConfigurationError\n"
        "try:\n"
        "    extract.ray.extract_dataset(None, {'type': 'object'}, text_column='t')\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert 'pip install "extract-llm[ray]"' in done.stdout


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=8, max_size=200).filter(lambda s: len(s.encode()) >= 8))
def test_secret_key_round_trips_and_never_pickles_in_plain_text(key: str) -> None:
    from extract.ray._secret import SecretKey

    secret = SecretKey(key)
    data = pickle.dumps(secret)
    assert key.encode() not in data
    assert pickle.loads(data).reveal() == key
    assert key not in repr(secret) and key not in str(secret)


def test_result_store_reads_only_complete_lines_and_new_ones(tmp_path: Path) -> None:
    from extract.ray._resume import ResultStore, prepare_output

    folder = prepare_output(tmp_path / "out", "fingerprint")
    writer = ResultStore(folder, "a")
    writer.append({"id": 1, "value": {"x": 1}, "usage": {}})
    writer.append({"id": "two", "value": {"x": 2}, "usage": {}})
    writer.sync()
    with open(folder / "part-b.jsonl", "wb") as fh:  # another worker, killed while writing its last line
        fh.write(b'{"id": 3, "value": {"x": 3}, "usage": {}}\n{"id": 4, "val')
    reader = ResultStore(folder, "c")
    reader.refresh()
    assert 1 in reader and "two" in reader and 3 in reader and 4 not in reader
    assert reader.stored([1, 4])[1]["value"] == {"x": 1}
    with open(folder / "part-b.jsonl", "ab") as fh:  # a torn line is never completed by its dead writer...
        fh.write(b'ue": {"x": 4}}\n')
    writer.append({"id": 5, "value": {"x": 5}, "usage": {}})
    reader.refresh()  # ...but lines appended later are read, from where the last refresh stopped
    assert 5 in reader and reader.stored([5])[5]["value"] == {"x": 5}
    writer.close()


def test_output_of_another_schema_is_refused(tmp_path: Path) -> None:
    from extract.ray._resume import prepare_output

    prepare_output(tmp_path / "out", "one")
    prepare_output(tmp_path / "out", "one")  # the same job resumes
    with pytest.raises(ConfigurationError, match="another job"):
        prepare_output(tmp_path / "out", "two")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="is a file"):
        prepare_output(tmp_path / "file", "one")


def test_arrow_types_follow_the_schema() -> None:
    import pyarrow as pa

    from extract.ray._arrow import arrow_type
    from extract.schema import compile_schema

    user = compile_schema(Person).user_schema
    props = user["properties"]
    assert arrow_type(props["name"], user) == pa.string()
    assert arrow_type(props["age"], user) == pa.int64()
    assert arrow_type(props["address"], user) is None  # an object: inferred (a struct)
    assert arrow_type({"type": "array", "items": {"type": "number"}}, user) == pa.list_(pa.float64())
    assert arrow_type({"anyOf": [{"type": "boolean"}, {"type": "null"}]}, user) == pa.bool_()


def test_setup_mistakes_are_refused_before_anything_runs(ray_local: Any, tmp_path: Path) -> None:  # noqa: F811
    import extract.ray

    ds = ray_local.data.from_items([{"id": 1, "body": "x", "name": "n"}])
    common: dict[str, Any] = {"base_url": "http://127.0.0.1:9/v1", "api_key": "k", "model": MODEL}
    with pytest.raises(ConfigurationError, match="no column 'text'"):
        extract.ray.extract_dataset(ds, Person, text_column="text", **common)
    with pytest.raises(ConfigurationError, match="no column 'key'"):
        extract.ray.extract_dataset(ds, Person, text_column="body", id_column="key", **common)
    with pytest.raises(ConfigurationError, match="keep_columns=False"):  # `name` is an input and a field
        extract.ray.extract_dataset(ds, Person, text_column="body", **common)
    extract.ray.extract_dataset(ds, Person, text_column="body", keep_columns=False, **common)  # lazy: no I/O

    class Clash(pydantic.BaseModel):
        error: str

    with pytest.raises(ConfigurationError, match="clash"):
        extract.ray.extract_dataset(ds, Clash, text_column="body", keep_columns=False, **common)
    with pytest.raises(ConfigurationError, match="transport"):
        extract.ray.extract_dataset(ds, Person, text_column="body", transport=object(), **common)
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigurationError, match="is a file"):
        extract.ray.extract_dataset(
            ds, Person, text_column="body", keep_columns=False, output=tmp_path / "file", **common
        )


def test_worker_answers_from_the_output_and_refuses_ambiguous_ids(tmp_path: Path) -> None:
    """One worker's batch logic, in this process (no Ray runtime): resumed ids, duplicates, changed texts."""
    import pyarrow as pa

    from extract.ratelimit import RateLimiter
    from extract.ray._arrow import arrow_type
    from extract.ray._resume import prepare_output
    from extract.ray._worker import ExtractWorker, WorkerSpec
    from extract.schema import compile_schema

    user = compile_schema(Person).user_schema
    fields = ("name", "age", "address")
    folder = prepare_output(tmp_path / "out", "fp")
    with TestServer() as server:
        spec = WorkerSpec(
            schema=Person,
            text_column="body",
            id_column="id",
            fields=fields,
            field_types={f: arrow_type(user["properties"][f], user) for f in fields},
            keep_columns=True,
            per_worker_concurrency=4,
            instructions=None,
            extractor_options={
                "base_url": server.base_url,
                "api_key": "k",
                "model": MODEL,
                "limiter": RateLimiter(),
            },
            output=str(folder),
        )
        first = ExtractWorker(spec)(pa.table({"id": [1, 2, 2], "body": [_doc(1), _doc(2), _doc(22)]}))
        assert server.request_count == 2  # the second id 2 was not sent
        again = ExtractWorker(spec)(pa.table({"id": [1, 2, 3], "body": [_doc(1), _doc(99), _doc(3)]}))
        assert server.request_count == 3  # only id 3: id 1 came from the output, id 2 is another text
    one, two = first.to_pylist(), again.to_pylist()
    assert one[0]["error"] is None and one[1]["error"] is None
    assert one[2]["error"].startswith("InputError: duplicate id 2 in this batch")
    assert {k: two[0][k] for k in ("name", "age", "usage")} == {
        k: one[0][k] for k in ("name", "age", "usage")
    }
    assert two[1]["error"].startswith("InputError: id 2 is already in the output for another text")
    assert two[2]["error"] is None and isinstance(two[2]["age"], int)
    assert again.schema.field("usage").type == first.schema.field("usage").type
    assert "evidence" not in first.column_names
    with pytest.raises(ConfigurationError, match="already has column"):  # the driver could not tell
        ExtractWorker(spec)(pa.table({"id": [4], "body": [_doc(4)], "error": ["x"]}))


def test_worker_evidence_column_survives_resume(tmp_path: Path) -> None:
    import pyarrow as pa

    from extract.ratelimit import RateLimiter
    from extract.ray._resume import prepare_output
    from extract.ray._worker import ExtractWorker, WorkerSpec

    folder = prepare_output(tmp_path / "out", "fp")
    text = "Ada Lovelace, 36, lives in London."
    with TestServer() as server:
        spec = WorkerSpec(
            schema=Person,
            text_column="body",
            id_column="id",
            fields=("name", "age", "address"),
            field_types={},
            keep_columns=False,
            per_worker_concurrency=2,
            instructions=None,
            extractor_options={
                "base_url": server.base_url,
                "api_key": "k",
                "model": MODEL,
                "limiter": RateLimiter(),
            },
            call_options={"evidence": True},
            output=str(folder),
        )
        first = ExtractWorker(spec)(pa.table({"id": ["a"], "body": [text]})).to_pylist()[0]
        again = ExtractWorker(spec)(pa.table({"id": ["a"], "body": [text]})).to_pylist()[0]
        assert server.request_count == 1
    assert first["error"] is None
    found = json.loads(first["evidence"])
    assert found["$.name"]["value"] == first["name"] and found["$.age"]["value"] == first["age"]
    assert {"spans", "alignment", "confidence"} <= set(found["$.name"])
    assert json.loads(again["evidence"]) == found  # answered from the output, evidence included
