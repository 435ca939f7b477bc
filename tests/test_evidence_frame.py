"""evidence= through extract_many (Outcome.evidence, the output line) and extract_frame (columns)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from pydantic import BaseModel

from extract.batch import extract_many
from extract.frame import extract_frame
from extract.testing import Fault, TestServer

MODEL = "llama3.1-8b"


class Address(BaseModel):
    city: str


class Person(BaseModel):
    name: str
    address: Address
    tags: list[str]


def compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_frame_evidence_columns_follow_each_value_column() -> None:
    df = pd.DataFrame(
        {"bio": ["Ada Lovelace of London, a poet", "Grace Hopper of Arlington"]}, index=["a", "b"]
    )
    with TestServer() as server:
        server.script(
            Fault.content(
                compact({"name": "Ada Lovelace", "address": {"city": "London"}, "tags": ["poet", "Math"]}),
                logprobs={"$.tags[1]": -2.0, "$.tags[0]": -1.0, "$.name": -0.5},
            ),
            Fault.content(compact({"name": "Grace Hopper", "address": {"city": "Paris"}, "tags": []})),
        )
        out = extract_frame(
            df, Person, "bio", base_url=server.base_url, api_key="k", model=MODEL, provider="cerebras",
            progress=False, concurrency=1, evidence=True,
        )  # fmt: skip
    assert list(out.columns) == [
        "name", "name__confidence", "name__alignment",
        "address.city", "address.city__confidence", "address.city__alignment",
        "tags", "tags__confidence", "tags__alignment",
        "_error",
    ]  # fmt: skip
    assert out.loc["a", "name__confidence"] == pytest.approx(math.exp(-1.0))  # "Ada", " Lovelace"
    assert out.loc["a", "name__alignment"] == "exact"
    assert out.loc["a", "tags__confidence"] == pytest.approx(math.exp(-2.0))  # the lowest in the list
    assert out.loc["a", "tags__alignment"] == "none"  # "Math" is not in the text: the weakest wins
    assert out.loc["b", "address.city__alignment"] == "none"
    assert pd.isna(out.loc["b", "tags__alignment"])  # an empty list has no evidence


def test_frame_without_evidence_has_no_extra_columns() -> None:
    df = pd.DataFrame({"bio": ["Ada Lovelace of London"]})
    with TestServer() as server:
        out = extract_frame(df, Person, "bio", base_url=server.base_url, model=MODEL, progress=False)
        assert "logprobs" not in server.requests[-1]
    assert not any(c.endswith(("__confidence", "__alignment")) for c in out.columns)


def test_batch_outcomes_and_output_lines_carry_evidence(tmp_path: Path) -> None:
    output = tmp_path / "out.jsonl"
    with TestServer() as server:
        server.script(Fault.content(compact({"name": "Ada", "address": {"city": "London"}, "tags": []})))
        with extract_many(
            Person, ["Ada from London"], base_url=server.base_url, api_key="k", model=MODEL,
            provider="cerebras", output=output, evidence=True, concurrency=1,
        ) as run:  # fmt: skip
            outcomes = list(run)
    assert outcomes[0].evidence is not None
    assert outcomes[0].evidence["$.address.city"].spans == [(9, 15)]
    line = json.loads(output.read_text().splitlines()[0])
    assert line["evidence"]["$.name"]["spans"] == [[0, 3]]
    assert line["evidence"]["$.name"]["alignment"] == "exact"
    assert 0.0 < line["evidence"]["$.name"]["confidence"] <= 1.0


def test_cli_run_evidence_writes_it_into_each_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from extract.cli import main

    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(Person.model_json_schema()))
    docs = tmp_path / "in.jsonl"
    docs.write_text(json.dumps({"id": "d1", "text": "Ada from London"}) + "\n")
    with TestServer() as server:
        server.script(
            Fault.content(compact({"name": "Ada", "address": {"city": "Paris"}, "tags": []})),
            Fault.content(compact({"name": "Ada", "address": {"city": "London"}, "tags": []})),
        )
        common = ["--base-url", server.base_url, "--model", MODEL, "--provider", "cerebras", "-q"]
        code = main(["run", str(schema), "--input", str(docs), "--evidence", "--require-grounding", *common])
        assert code == 0
        assert len(server.requests) == 2  # Paris is not in the text: re-asked
        assert "$.address.city" in server.requests[1]["messages"][-1]["content"]
    line = json.loads(capsys.readouterr().out.splitlines()[0])
    assert line["value"]["address"]["city"] == "London"
    assert line["evidence"]["$.address.city"]["spans"] == [[9, 15]]


def test_cli_report_writes_one_page_least_confident_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from html.parser import HTMLParser

    from extract.cli import main

    monkeypatch.setenv("CEREBRAS_API_KEY", "k")
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(Person.model_json_schema()))
    docs = tmp_path / "in.jsonl"
    docs.write_text(
        json.dumps({"id": "sure", "text": "Ada from London <b>"})
        + "\n"
        + json.dumps({"id": "doubtful", "text": "Bob from Leeds"})
        + "\n"
    )
    out = tmp_path / "out.jsonl"
    page = tmp_path / "report.html"
    with TestServer() as server:
        server.script(
            Fault.content(
                compact({"name": "Ada", "address": {"city": "London"}, "tags": []}),
                logprobs={"$.name": -0.01},
            ),
            Fault.content(
                compact({"name": "Bob", "address": {"city": "Paris"}, "tags": []}), logprobs={"$.name": -3.0}
            ),
        )
        common = ["--base-url", server.base_url, "--model", MODEL, "--provider", "cerebras", "-q"]
        args = ["run", str(schema), "--input", str(docs), "-o", str(out), "--evidence", "--concurrency", "1"]
        assert main([*args, *common]) == 0
    assert main(["report", str(out), "--input", str(docs), "-o", str(page)]) == 0
    text = page.read_text()

    class Sections(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.ids: list[str] = []
            self.srcs: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found = dict(attrs)
            if tag == "section":
                self.ids.append(str(found["data-id"]))
            self.srcs.extend(str(v) for k, v in attrs if k in ("src", "href"))

    parsed = Sections()
    parsed.feed(text)
    assert parsed.ids == ["doubtful", "sure"]  # least confident first
    assert parsed.srcs == [] and "http" not in text
    assert "&lt;b&gt;" in text and 'data-none="1"' in text  # Paris is not in Bob's text
    assert main(["report", str(docs), "--input", str(docs), "-o", str(page)]) == 2  # no evidence there
