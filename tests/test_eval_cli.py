"""`extract eval` end to end over real HTTP to a loopback TestServer with scripted replies."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from extract.cli import main
from extract.testing import Fault, TestServer

MODEL = "llama3.1-8b"
SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "city": {"type": "string"}},
    "required": ["name", "city"],
    "additionalProperties": False,
}
TEXT_A = "Call from Ada Lovelace (London)."
TEXT_B = "Grace Hopper wrote from Arlington."


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    schema = tmp_path / "contact.json"
    schema.write_text(json.dumps(SCHEMA))
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        json.dumps({"id": "a", "text": TEXT_A, "gold": {"name": "Ada Lovelace", "city": "London"}})
        + "\n"
        + json.dumps({"id": "b", "text": TEXT_B, "gold": {"name": "Grace Hopper", "city": "Arlington"}})
        + "\n"
    )
    return {"schema": schema, "gold": gold, "dir": tmp_path}


def test_eval_prints_table_writes_json_and_html(
    server: TestServer,
    files: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("CEREBRAS_API_KEY", "sk-test")
    monkeypatch.setenv("CEREBRAS_BASE_URL", server.base_url)
    server.script(
        Fault.content(compact({"name": "Ada Lovelace", "city": "London"}), logprobs={"$.city": -0.01}),
        Fault.content(compact({"name": "Grace Hopper", "city": "Boston"}), logprobs={"$.city": -3.0}),
    )
    out_json, page = files["dir"] / "r.json", files["dir"] / "r.html"
    argv = ["eval", str(files["schema"]), str(files["gold"]), "--model", MODEL, "--evidence", "-q"]
    assert main([*argv, "--json", str(out_json), "-o", str(page)]) == 0
    table = capsys.readouterr().out
    assert "$.city" in table and "AUROC 1.000" in table
    report = json.loads(out_json.read_text())
    assert report["documents"] == 2 and report["fields"]["$.city"]["tp"] == 1
    assert report["fields"]["$.name"]["f1"] == 1.0 and report["exact_match"] == 0.5
    assert report["grounding_rate"] == pytest.approx(3 / 4) and report["auroc"] == 1.0
    html = page.read_text()
    HTMLParser().feed(html)
    assert 'data-id="b"' in html and "Boston" in html and "http" not in html.replace("http-equiv", "")


def test_eval_reads_texts_from_input_by_id(
    server: TestServer, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gold = files["dir"] / "gold_only.jsonl"
    gold.write_text(json.dumps({"id": "a", "gold": {"name": "Ada Lovelace", "city": "London"}}) + "\n")
    inp = files["dir"] / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "text": TEXT_A}) + "\n")
    server.script(Fault.content(compact({"name": "Ada Lovelace", "city": "London"})))
    argv = ["eval", str(files["schema"]), str(gold), "--input", str(inp), "--json", "-"]
    assert main([*argv, "--base-url", server.base_url, "--model", MODEL, "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["f1"] == 1.0 and report["exact_match"] == 1.0 and report["auroc"] is None
    assert TEXT_A in json.dumps(server.requests[-1]["messages"])


def test_eval_bad_input_is_exit_code_2(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    bad = files["dir"] / "bad.jsonl"
    bad.write_text('{"id": "x"}\n')
    assert (
        main(
            ["eval", str(files["schema"]), str(bad), "--base-url", "http://127.0.0.1:9/v1", "--model", MODEL]
        )
        == 2
    )
    assert '"gold"' in capsys.readouterr().err
    assert main(["eval", str(files["schema"]), str(files["gold"]), "-o", "x.html"]) == 2
    assert "--evidence" in capsys.readouterr().err


def test_bench_quality_runs_against_a_server(server: TestServer) -> None:
    import sys

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks import bench_quality

    rows = bench_quality.main(
        ["--quick", "--base-url", server.base_url, "--model", MODEL, "--provider", "cerebras"]
    )
    assert [
        r["run"].endswith(f"require_grounding={g}") for r, g in zip(rows, (False, True), strict=True)
    ] == [
        True,
        True,
    ]
    for row in rows:
        assert row["docs (failed)"].startswith("4 (") and 0.0 <= row["field F1"] <= 1.0
        assert row["scored leaves"] > 0 and (row["AUROC"] == "n/a" or 0.0 <= row["AUROC"] <= 1.0)


def test_eval_require_grounding_reasks_a_value_not_in_the_text(
    server: TestServer, files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gold = files["dir"] / "one.jsonl"
    gold.write_text(
        json.dumps({"id": "a", "text": TEXT_A, "gold": {"name": "Ada Lovelace", "city": "London"}}) + "\n"
    )
    server.script(
        Fault.content(compact({"name": "Ada Lovelace", "city": "Paris"})),
        Fault.content(compact({"name": "Ada Lovelace", "city": "London"})),
    )
    argv = ["eval", str(files["schema"]), str(gold), "--require-grounding", "--json", "-"]
    assert main([*argv, "--base-url", server.base_url, "--model", MODEL, "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["requests_per_document"] == 2.0 and report["f1"] == 1.0
    assert "does not appear in the text" in json.dumps(server.requests[-1]["messages"])
