"""extract.evaluate and extract.evaluation.score: exact figures on hand-made examples, properties, and a run
over real HTTP to a loopback TestServer with scripted replies and logprobs."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import extract
from extract.core import Extractor
from extract.errors import InputError
from extract.evaluation import Observation, auroc, expected_calibration_error, normalise, score
from extract.testing import Fault, TestServer
from extract.transports import RetryPolicy

MODEL = "llama3.1-8b"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "total": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "items": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}},
            },
        },
    },
}


def test_normalised_match_folds_case_accents_punctuation_and_numbers() -> None:
    assert normalise("  José  O'Neil ") == normalise("jose oneil")
    assert normalise("$1,250.50") == normalise(1250.5)
    assert normalise(3) == normalise(3.0)
    assert normalise(True) != normalise("true")
    for written in (
        "March 5, 2024",
        "Tue, Mar 5 2024",
        "the 5th of March 2024",
        "2024-03-05",
        "5 March 2024",
    ):
        assert normalise(written) == "2024-03-05", written
    assert normalise("03/05/2024") != "2024-03-05"  # two readings: left as text


def test_hand_made_counts_precision_recall_f1() -> None:
    gold = {"name": "Ada Lovelace", "total": 12.5, "tags": ["a", "b"], "items": [{"sku": "X1", "qty": 2}]}
    pred = {"name": "ada lovelace", "total": 13, "tags": ["b", "c"], "items": [{"sku": "X1"}], "extra": "z"}
    report = score(SCHEMA, [Observation(gold, pred)])
    f = report.fields
    assert (f["$.name"].tp, f["$.name"].fp, f["$.name"].fn, f["$.name"].exact) == (1, 0, 0, 0)
    assert (f["$.total"].tp, f["$.total"].fp, f["$.total"].fn) == (0, 1, 1)  # wrong: both FP and FN
    # tags is a set: "b" matches whatever its position; "c" is extra, "a" missed
    assert (f["$.tags[*]"].tp, f["$.tags[*]"].fp, f["$.tags[*]"].fn, f["$.tags[*]"].exact) == (1, 1, 1, 1)
    assert (f["$.items[*].sku"].tp, f["$.items[*].qty"].fn) == (1, 1)
    assert (f["$.extra"].fp, f["$.extra"].fn) == (1, 0)
    t = report.totals
    assert (t.tp, t.fp, t.fn) == (3, 3, 3)
    assert report.precision == pytest.approx(0.5) and report.recall == pytest.approx(0.5)
    assert report.f1 == pytest.approx(0.5)
    assert report.exact_match == 0.0 and report.documents == 1


def test_ordered_lists_compare_by_position() -> None:
    schema = {"type": "object", "properties": {"names": {"type": "array", "items": {"type": "string"}}}}
    report = score(schema, [Observation({"names": ["a", "b"]}, {"names": ["b", "a"]})])
    assert (report.totals.tp, report.totals.fp, report.totals.fn) == (0, 2, 2)
    set_schema = {"type": "object", "properties": {"names": {"type": "array", "uniqueItems": True}}}
    report = score(set_schema, [Observation({"names": ["a", "b"]}, {"names": ["B", "a"]})])
    assert (report.totals.tp, report.totals.fp, report.totals.fn) == (2, 0, 0)
    assert report.exact_match == 1.0 and report.strict_exact_match == 0.0


def test_exact_match_failures_grounding_and_calibration() -> None:
    gold = {"name": "Ada", "total": 1}
    ok = Observation(
        gold,
        {"name": "Ada", "total": 1},
        {
            "$.name": {"alignment": "exact", "confidence": 0.9},
            "$.total": {"alignment": "exact", "confidence": 0.8},
        },
        requests=1,
        prompt_tokens=100,
        completion_tokens=10,
    )
    bad = Observation(
        gold,
        {"name": "Bob", "total": 1},
        {
            "$.name": {"alignment": "none", "confidence": 0.3},
            "$.total": {"alignment": "exact", "confidence": None},
        },
        requests=2,
        prompt_tokens=200,
        completion_tokens=30,
    )
    failed = Observation(gold, None, error="gave up", requests=0)
    report = score(SCHEMA, [ok, bad, failed])
    assert report.documents == 3 and report.failed == 1
    assert report.exact_match == pytest.approx(1 / 3) and report.strict_exact_match == pytest.approx(1 / 3)
    assert (report.totals.tp, report.totals.fp, report.totals.fn) == (3, 1, 3)
    assert report.grounding_rate == pytest.approx(3 / 4) and report.none_wrong_rate == 1.0
    assert report.confidences == 3 and report.no_confidence == 1
    assert report.auroc == 1.0
    # bins: 0.3 (wrong) -> |0 - 0.3|, 0.8 (right) -> 0.2, 0.9 (right) -> 0.1; each weighted 1/3
    assert report.ece == pytest.approx((0.3 + 0.2 + 0.1) / 3)
    assert report.requests_per_document == 1.0 and report.tokens_per_document == pytest.approx(340 / 3)
    data = json.loads(report.to_json())
    assert data["f1"] == pytest.approx(report.f1) and data["fields"]["$.name"]["tp"] == 1
    table = report.table()
    assert "$.name" in table and "AUROC 1.000" in table and "(all)" in table


def test_verbatim_values_are_checked_for_an_exact_span_over_them() -> None:
    text = "Ada met Ada Lovelace; total 1"
    gold = {"name": "Ada Lovelace", "total": 1}
    right_span = Observation(
        gold, {"name": "Ada Lovelace", "total": 1},
        {"$.name": {"alignment": "exact", "spans": [(8, 20)]}, "$.total": {"alignment": "exact"}},
        text=text,
    )  # fmt: skip
    wrong_span = Observation(
        gold, {"name": "Ada", "total": 1},
        {"$.name": {"alignment": "exact", "spans": [(8, 12)]}},  # "Ada " is not the value
        text=text,
    )  # fmt: skip
    not_exact = Observation(gold, {"name": "met", "total": 1}, {"$.name": {"alignment": "fuzzy"}}, text=text)
    absent = Observation(gold, {"name": "Grace", "total": 1}, {"$.name": {"alignment": "none"}}, text=text)
    no_text = Observation(gold, {"name": "Ada", "total": 1}, {"$.name": {"alignment": "exact"}})
    report = score(SCHEMA, [right_span, wrong_span, not_exact, absent, no_text])
    # numbers are not counted (their text form is the grounder's business); "Grace" and the textless one neither
    assert (report.verbatim, report.verbatim_exact) == (3, 1)
    assert report.verbatim_exact_rate == pytest.approx(1 / 3)
    assert json.loads(report.to_json())["verbatim"] == 3 and "verbatim values" in report.table()
    assert score(SCHEMA, [absent]).verbatim_exact_rate is None


def test_auroc_and_ece_exact_values() -> None:
    scored = [(0.9, True), (0.4, True), (0.6, False), (0.1, False)]
    assert auroc(scored) == pytest.approx(0.75)  # 3 of 4 (correct, wrong) pairs ordered right
    assert auroc([(0.5, True), (0.5, False)]) == 0.5
    assert auroc([(0.5, True)]) is None and expected_calibration_error([]) is None
    assert expected_calibration_error([(1.0, True), (0.0, False)]) == 0.0
    assert expected_calibration_error([(0.95, False)]) == pytest.approx(0.95)


_leaf = st.one_of(st.text(max_size=8), st.integers(-1000, 1000), st.booleans())
_record = st.fixed_dictionaries(
    {},
    optional={
        "name": _leaf,
        "total": st.floats(-1e6, 1e6, allow_nan=False),
        "tags": st.lists(st.text(max_size=5), max_size=4),
        "items": st.lists(
            st.fixed_dictionaries({"sku": st.text(max_size=5), "qty": st.integers(0, 9)}), max_size=3
        ),
    },
)


@settings(max_examples=60, deadline=None)
@given(st.lists(_record, min_size=1, max_size=5))
def test_a_perfect_extractor_scores_one(golds: list[dict[str, Any]]) -> None:
    report = score(SCHEMA, [Observation(g, json.loads(json.dumps(g))) for g in golds])
    assert report.exact_match == 1.0
    assert report.totals.fp == 0 and report.totals.fn == 0
    if report.totals.tp:
        assert report.f1 == 1.0


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), max_size=40))
def test_calibration_figures_are_bounded(scored: list[tuple[float, bool]]) -> None:
    ece = expected_calibration_error(scored)
    area = auroc(scored)
    assert ece is None or 0.0 <= ece <= 1.0
    assert area is None or 0.0 <= area <= 1.0
    if area is not None:  # flipping the labels mirrors the curve
        flipped = auroc([(c, not ok) for c, ok in scored])
        assert flipped is not None and math.isclose(area + flipped, 1.0)


class Contact(BaseModel):
    name: str
    city: str
    age: int


TEXT = "Met Ada Lovelace from London yesterday; she is 36."


def make(server: TestServer) -> Extractor:
    ex = Extractor(base_url=server.base_url, api_key="sk-test", model=MODEL, provider="cerebras")
    ex._retry = RetryPolicy(max_retries=0, initial_delay=0.01, max_delay=0.02)
    return ex


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def test_evaluate_over_http_with_scripted_logprobs(server: TestServer) -> None:
    server.script(
        Fault.content(
            compact({"name": "Ada Lovelace", "city": "Paris", "age": 36}), logprobs={"$.city": -2.0}
        ),
        Fault.content(
            compact({"name": "ADA LOVELACE", "city": "London", "age": 36}), logprobs={"$.name": -0.1}
        ),
    )
    gold = {"name": "Ada Lovelace", "city": "London", "age": 36}
    examples = [{"id": "a", "text": TEXT, "gold": gold}, (TEXT, Contact(**gold))]
    with make(server) as ex:
        report = extract.evaluate(Contact, examples, extractor=ex)
    assert report.documents == 2 and report.failed == 0
    assert (report.totals.tp, report.totals.fp, report.totals.fn) == (5, 1, 1)
    assert report.fields["$.city"].f1 == pytest.approx(0.5)
    assert report.fields["$.name"].tp == 2 and report.fields["$.name"].exact == 1
    assert report.exact_match == 0.5 and report.strict_exact_match == 0.0
    assert report.grounding_rate == pytest.approx(5 / 6) and report.none_wrong_rate == 1.0  # "Paris"
    assert report.confidences == 6 and report.auroc == 1.0  # "Paris" at e^-2 is the least sure
    assert report.requests_per_document == 1.0 and report.tokens_per_document > 0
    assert server.requests[-1]["logprobs"] is True


def test_evaluate_counts_a_failed_document_and_rejects_bad_examples(server: TestServer) -> None:
    server.script(*["invalid_json"] * 3)
    with make(server) as ex:
        report = extract.evaluate(
            Contact, [(TEXT, {"name": "Ada", "city": "London", "age": 36})], extractor=ex
        )
        assert report.failed == 1 and report.totals.fn == 3 and report.f1 == 0.0
        assert report.requests_per_document == 3.0  # the failed attempts still cost requests
        with pytest.raises(InputError, match="example 1"):
            extract.evaluate(Contact, ["just text"], extractor=ex)
