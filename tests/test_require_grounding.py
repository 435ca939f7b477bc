"""require_grounding=True over real HTTP to a loopback TestServer with scripted replies: what a reply whose
re-asks never ground every value comes to (grounded fields kept, invented optional ones removed and
recorded, a required one failing), the re-ask's wording, replies combined; and the pure settle step's
invariants (hypothesis)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from extract.core import Extractor, Result
from extract.errors import ExtractionFailed, UngroundedRequired
from extract.evidence import Grounder, Grounding
from extract.schema import compile_schema
from extract.testing import Fault, TestServer
from extract.transports import RetryPolicy

MODEL = "llama3.1-8b"
TEXT = "Contact: Jane Doe, Acme Corp, Berlin. Phone +49 30 1234567."


class Contact(BaseModel):
    name: str
    email: str | None = None
    phone: str | None = None
    company: str | None = None
    city: str | None = None


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def make(server: TestServer) -> Extractor:
    ex = Extractor(base_url=server.base_url, api_key="sk-test", model=MODEL, provider="cerebras")
    ex._retry = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.02)
    return ex


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Any:
    def run(ex: Extractor, schema: Any, text: str = TEXT, **kw: Any) -> Result:
        if request.param == "sync":
            result = ex.extract(schema, text, full=True, **kw)
        else:
            result = asyncio.run(ex.aextract(schema, text, full=True, **kw))
        assert isinstance(result, Result)
        return result

    return run


INVENTED = {
    "name": "Jane Doe",
    "email": "jane@example.com",
    "phone": "+49 30 1234567",
    "company": "Acme Corp",
    "city": "Berlin",
}


def test_an_invented_value_the_reask_keeps_is_dropped_and_recorded(
    server: TestServer, call: Any, caplog: pytest.LogCaptureFixture
) -> None:
    first = dict(INVENTED, city="Munich")  # email and city invented
    again = dict(INVENTED, company="Globex")  # the re-ask fixes the city, keeps the email, invents a company
    server.script(
        Fault.content(compact(first), logprobs={"$.name": -0.1, "$.company": -0.5}),
        Fault.content(compact(again), logprobs={"$.name": -0.2}),
    )
    with caplog.at_level(logging.WARNING, logger="extract"):
        result = call(make(server), Contact, max_attempts=2, evidence=True, require_grounding=True)
    value = result.value
    assert (value.name, value.phone, value.city) == ("Jane Doe", "+49 30 1234567", "Berlin")
    assert value.company == "Acme Corp"  # the first reply's; the re-ask was not asked to change it
    assert value.email is None  # invented in both replies: removed
    assert result.dropped == {"$.email": "jane@example.com"}
    assert len(server.requests) == 2 and len(result.attempts) == 2
    assert result.reply == 0  # the first reply, its invented city replaced by the re-ask's grounded one
    assert "$.email" in caplog.text and "jane@example.com" not in caplog.text
    # each reply's errors name what it wrote that is not in the text
    assert [e.split(":")[0] for e in result.attempts[0].errors] == ["$.email", "$.city"]
    assert [e.split(":")[0] for e in result.attempts[1].errors] == ["$.email", "$.company"]
    # evidence describes the returned value: no entry for the removed email; the base reply's confidence
    # for what it wrote, none for the city taken from the other reply
    ev = result.evidence
    assert ev is not None and "$.email" not in ev
    assert list(ev) == ["$.name", "$.phone", "$.company", "$.city"]
    assert ev["$.company"].confidence is not None and ev["$.company"].confidence < ev["$.name"].confidence
    assert ev["$.city"].value == "Berlin" and ev["$.city"].alignment == "exact"
    assert ev["$.city"].confidence is None
    assert [TEXT[s:e] for s, e in ev["$.city"].spans] == ["Berlin"]


def test_the_reask_names_every_path_once_and_asks_to_change_only_them(server: TestServer) -> None:
    first = dict(INVENTED, city="Paris", company="Globex")
    server.script(Fault.content(compact(first)), Fault.content(compact(INVENTED | {"email": None})))
    result = make(server).extract(Contact, TEXT, full=True, require_grounding=True, max_attempts=3)
    assert result.value.email is None and result.dropped == {} and result.reply == -1
    assert len(server.requests) == 2
    correction = server.requests[1]["messages"][-1]["content"]
    for path in ("$.email", "$.company", "$.city"):
        assert correction.count(path) == 1
    assert "changing only these fields" in correction and "keep every other value" in correction
    assert "use null if the document does not give it" in correction


def test_a_required_value_never_grounded_fails_naming_it(server: TestServer, call: Any) -> None:
    invented = dict(INVENTED, name="John Smith")
    server.script(Fault.content(compact(invented)), Fault.content(compact(invented)))
    with pytest.raises(UngroundedRequired) as caught:
        call(make(server), Contact, max_attempts=2, require_grounding=True)
    assert isinstance(caught.value, ExtractionFailed)
    message = str(caught.value)
    assert "$.name" in message and "cannot be left out" in message
    assert caught.value.paths == ("$.name",)
    assert "this field is required" in caught.value.attempts[0].errors[0]
    # the grounded fields are not lost: the partial value has them, and nothing that is not in the text
    partial = caught.value.partial
    assert partial.value == {
        "email": None,
        "phone": "+49 30 1234567",
        "company": "Acme Corp",
        "city": "Berlin",
    }
    assert partial.dropped == {"$.name": "John Smith", "$.email": "jane@example.com"}
    assert partial.reply == 0 and len(partial.attempts) == 2
    correction = server.requests[1]["messages"][-1]["content"]
    assert "$.name: 'John Smith' does not appear in the text; this field is required" in correction


def test_replies_that_each_fix_what_the_other_invented_end_early(server: TestServer) -> None:
    first = dict(INVENTED, email=None, city="Paris")  # city invented
    second = dict(INVENTED, email=None, company="Initech")  # city fixed, company invented
    server.script(Fault.content(compact(first)), Fault.content(compact(second)), Fault.content("{}"))
    result = make(server).extract(Contact, TEXT, full=True, require_grounding=True, max_attempts=3)
    assert (result.value.city, result.value.company) == ("Berlin", "Acme Corp")
    assert result.dropped == {}
    assert len(server.requests) == 2  # the third attempt was not needed


def test_the_best_grounded_reply_is_the_base(server: TestServer) -> None:
    first = dict(INVENTED, email=None)  # one thing wrong? no: nothing invented but ...
    first["city"] = "Rome"  # ... the city
    second = dict(INVENTED, city="Rome", company="Globex")  # city and company invented, email too
    server.script(Fault.content(compact(first)), Fault.content(compact(second)))
    result = make(server).extract(Contact, TEXT, full=True, require_grounding=True, max_attempts=2)
    assert result.reply == 0
    assert result.value.company == "Acme Corp" and result.value.city is None
    assert result.dropped == {"$.city": "Rome"}


def test_a_valid_reply_survives_a_later_broken_one(server: TestServer) -> None:
    server.script(Fault.content(compact(INVENTED)), Fault.content('{"name": "Jane'))
    result = make(server).extract(Contact, TEXT, full=True, require_grounding=True, max_attempts=2)
    assert result.reply == 0 and result.value.email is None and result.value.name == "Jane Doe"
    assert result.dropped == {"$.email": "jane@example.com"}


def test_json_schema_optional_keys_and_list_items_are_left_out(server: TestServer) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "nickname": {"type": "string"},
            "cities": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["name", "cities"],
        "additionalProperties": False,
    }
    reply = {"name": "Jane Doe", "nickname": "JD", "cities": ["Oslo", "Berlin", "Lima"]}
    server.script(Fault.content(compact(reply)), Fault.content(compact(reply)))
    result = make(server).extract(schema, TEXT, full=True, require_grounding=True, max_attempts=2)
    assert result.value == {"name": "Jane Doe", "cities": ["Berlin"]}
    assert result.dropped == {"$.nickname": "JD", "$.cities[0]": "Oslo", "$.cities[2]": "Lima"}


def test_without_require_grounding_nothing_changes(server: TestServer) -> None:
    server.script(Fault.content(compact(INVENTED)))
    result = make(server).extract(Contact, TEXT, full=True, max_attempts=2)
    assert result.value.email == "jane@example.com" and result.dropped == {} and result.reply == -1


# -- the settle step alone (pure) -----------------------------------------------------------------------

WORDS = ["Jane Doe", "Acme Corp", "Berlin", "Globex", "Paris", "Initech", None]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({k: st.sampled_from(WORDS) for k in Contact.model_fields}), min_size=1))
def test_a_settled_value_has_no_ungrounded_leaf_and_keeps_the_bases_grounded_ones(
    replies: list[dict[str, Any]],
) -> None:
    grounding = Grounding(compile_schema(Contact), TEXT)
    grounder = Grounder(TEXT)
    checks = [grounding.check(Contact.model_validate(r)) for r in replies if r["name"] is not None]
    if not checks:
        return
    settled = grounding.settle(checks, drop=True)
    assert settled is not None
    base = checks[settled.base]
    if settled.blocked:  # only the required name can block
        assert [u.path for u in settled.blocked] == ["$.name"] and settled.value is None
        return
    dumped = settled.value.model_dump()
    for key, leaf in dumped.items():
        if leaf is not None:
            assert grounder.match(leaf)[0] != "none"
        if base.shaped[key] is not None and grounder.match(base.shaped[key])[0] != "none":
            assert leaf == base.shaped[key]  # a grounded value of the base reply is never replaced
    assert set(settled.dropped) | set(settled.filled) == {u.path for u in base.missing}


def test_a_batch_output_line_names_what_was_dropped(server: TestServer) -> None:
    from extract import extract_many

    server.script(Fault.content(compact(INVENTED)), Fault.content(compact(INVENTED)))
    with extract_many(
        Contact,
        [TEXT],
        base_url=server.base_url,
        model=MODEL,
        provider="cerebras",
        max_attempts=2,
        require_grounding=True,
    ) as run:
        outcomes = list(run)
    assert len(outcomes) == 1 and outcomes[0].ok
    line = outcomes[0].to_json()
    assert line["value"]["email"] is None and line["value"]["name"] == "Jane Doe"
    assert line["dropped"] == {"$.email": "jane@example.com"}


def test_evaluation_scores_the_partial_value_of_a_failed_document(server: TestServer) -> None:
    from extract.evaluation import evaluate

    gold = {"name": "Jane Doe", "phone": "+49 30 1234567", "company": "Acme Corp", "city": "Berlin"}
    invented = dict(INVENTED, name="John Smith")
    server.script(Fault.content(compact(invented)), Fault.content(compact(invented)))
    report = evaluate(
        Contact,
        [{"text": TEXT, "gold": gold}],
        extractor=make(server),
        max_attempts=2,
        require_grounding=True,
    )
    assert report.failed == 1 and report.exact_match == 0.0
    assert (report.totals.tp, report.totals.fp, report.totals.fn) == (3, 0, 1)  # the name is missed
    assert report.grounding_rate == 1.0 and report.with_alignment == 3


def test_numbers_are_checked_whatever_their_format_and_booleans_never(server: TestServer) -> None:
    class Offer(BaseModel):
        name: str
        price: float | None = None
        seats: int | None = None
        remote: bool = False

    text = "Jane Doe offers the course for $1,250.50, on site."
    reply = {"name": "Jane Doe", "price": 1250.5, "seats": 40, "remote": True}
    server.script(Fault.content(compact(reply)), Fault.content(compact(reply)))
    result = make(server).extract(Offer, text, full=True, require_grounding=True, max_attempts=2)
    assert result.value.price == 1250.5  # "$1,250.50" in the text: grounded
    assert result.value.seats is None and result.dropped == {"$.seats": 40}  # 40 appears nowhere
    assert result.value.remote is True  # a boolean is never a grounding failure
    assert [e.split(":")[0] for e in result.attempts[0].errors] == ["$.seats"]
    assert "$.seats: 40 does not appear in the text" in server.requests[1]["messages"][-1]["content"]


def test_a_list_item_the_schema_needs_blocks_and_the_partial_keeps_the_filled_values(
    server: TestServer,
) -> None:
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "city": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["name", "tags"],
        "additionalProperties": False,
    }
    first = {"name": "Jane Doe", "city": "Rome", "tags": ["Oslo", "Lima"]}  # each tag alone may go, not both
    second = {"name": "John Smith", "city": "Berlin", "tags": ["Oslo", "Lima"]}
    server.script(Fault.content(compact(first)), Fault.content(compact(second)))
    with pytest.raises(UngroundedRequired) as caught:
        make(server).extract(schema, TEXT, full=True, require_grounding=True, max_attempts=2)
    assert caught.value.paths == ("$.tags[0]",)  # the last tag goes, then the first cannot (minItems)
    partial = caught.value.partial
    assert partial.reply == 0 and partial.value == {"name": "Jane Doe", "city": "Berlin", "tags": []}
    assert partial.dropped == {"$.tags[0]": "Oslo", "$.tags[1]": "Lima"}
