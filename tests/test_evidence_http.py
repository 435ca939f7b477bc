"""evidence= and require_grounding= end to end over real HTTP to a loopback TestServer whose logprobs are
scripted per JSON path (Fault.content(..., logprobs=...)), sync and async."""

from __future__ import annotations

import asyncio
import json
import math
from html.parser import HTMLParser
from typing import Any

import pytest
from pydantic import BaseModel, Field

from extract.core import Extractor, Result
from extract.errors import ConfigurationError
from extract.evidence import FieldEvidence
from extract.testing import Fault, TestServer
from extract.transports import RetryPolicy

MODEL = "llama3.1-8b"


class Item(BaseModel):
    description: str
    qty: int


class Invoice(BaseModel):
    vendor: str
    paid: bool
    status: str = Field(json_schema_extra={"enum": ["open", "closed", "void"]})
    items: list[Item]
    total: float = Field(json_schema_extra={"derived": True})


TEXT = "Invoice from ACME Corp.\n3 x Blue widget\n2 x red gadget\nStatus: open. Paid. Café 東京 🎉"
REPLY = {
    "vendor": "ACME Corp",
    "paid": True,
    "status": "open",
    "items": [{"description": "Blue widget", "qty": 3}, {"description": "Red gadget", "qty": 2}],
    "total": 99.5,
}


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def make(server: TestServer, provider: str = "cerebras") -> Extractor:
    ex = Extractor(base_url=server.base_url, api_key="sk-test", model=MODEL, provider=provider)
    ex._retry = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.02)
    return ex


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Any:
    def run(ex: Extractor, schema: Any, text: Any = TEXT, **kw: Any) -> Result:
        if request.param == "sync":
            result = ex.extract(schema, text, full=True, **kw)
        else:
            result = asyncio.run(ex.aextract(schema, text, full=True, **kw))
        assert isinstance(result, Result)
        return result

    return run


def test_scripted_logprobs_land_on_nested_paths(server: TestServer, call: Any) -> None:
    server.script(
        Fault.content(
            compact(REPLY),
            logprobs={"$.items[1].description": -3.0, "$.items[0].qty": -4.0, "$.vendor": -0.0},
        )
    )
    result = call(make(server), Invoice, evidence=True)
    sent = server.requests[-1]
    assert sent["logprobs"] is True and sent["top_logprobs"] == 3  # the widest choice: the 3-member enum
    ev = result.evidence
    assert ev is not None and result.source == TEXT
    assert list(ev) == [
        "$.vendor", "$.paid", "$.status", "$.items[0].description", "$.items[0].qty",
        "$.items[1].description", "$.items[1].qty", "$.total",
    ]  # fmt: skip
    # "Red gadget" is two tokens ("Red", " gadget"), each scripted at -3.0; "3" one token at -4.0
    assert ev["$.items[1].description"].confidence == pytest.approx(math.exp(-6.0))
    assert ev["$.items[0].qty"].confidence == pytest.approx(math.exp(-4.0))
    assert ev["$.vendor"].confidence == pytest.approx(1.0)
    others = [
        e.confidence
        for k, e in ev.items()
        if k not in ("$.items[1].description", "$.items[0].qty", "$.vendor")
    ]
    assert all(c is not None and math.exp(-6.0) < c <= 1.0 for c in others)
    # grounding: spans into the caller's text
    desc = ev["$.items[1].description"]
    assert desc.alignment == "normalised" and [TEXT[s:e] for s, e in desc.spans] == ["red gadget"]
    assert ev["$.vendor"] == FieldEvidence(
        "$.vendor", "ACME Corp", [(13, 22)], "exact", pytest.approx(1.0), 1.0
    )
    assert ev["$.total"].alignment == "none" and ev["$.total"].derived


def test_relaxed_wire_shapes_map_back_to_user_paths(server: TestServer, call: Any) -> None:
    class Relaxed(BaseModel):
        tags: dict[str, str]
        pair: tuple[int, str]
        nick: str | None = Field(default="x")

    wire = {"tags": [{"key": "colour", "value": "Blue"}], "pair": [3, "widget"], "nick": {"value": "ACME"}}
    server.script(
        Fault.content(
            compact(wire),
            logprobs={"$.tags[0].value": -2.5, "$.pair[1]": -1.5, "$.nick.value": -3.5},
        )
    )
    ev = call(make(server), Relaxed, evidence=True).evidence
    # no boolean or enum in the schema: top_logprobs (which multiply the reply's size) are not asked for
    assert server.requests[-1]["logprobs"] is True and "top_logprobs" not in server.requests[-1]
    assert ev["$.tags.colour"].value == "Blue"
    assert ev["$.tags.colour"].confidence == pytest.approx(math.exp(-2.5))
    assert ev["$.pair[1]"].confidence == pytest.approx(math.exp(-1.5))
    assert ev["$.nick"].value == "ACME" and ev["$.nick"].confidence == pytest.approx(math.exp(-3.5))
    assert ev["$.nick"].spans == [(13, 17)]


def test_enum_and_boolean_confidence_uses_top_logprobs(server: TestServer) -> None:
    lp = math.log
    server.script(
        Fault.content(
            compact(REPLY),
            logprobs={"$.paid": lp(0.6), "$.status": lp(0.5), "$.vendor": lp(0.5)},
            alternatives={
                "$.paid": {"false": lp(0.3), " null": lp(0.1)},  # null is not a boolean
                "$.status": {"closed": lp(0.2), "void": lp(0.1), "other": lp(0.2)},
                "$.vendor": {"Glob": lp(0.4)},  # an open string: alternatives do not matter
            },
        )
    )
    ev = make(server).extract(Invoice, TEXT, full=True, evidence=True).evidence
    assert server.requests[-1]["top_logprobs"] == 3
    assert ev["$.paid"].confidence == pytest.approx(0.6 / 0.9)
    assert ev["$.status"].confidence == pytest.approx(0.5 / 0.8)
    assert ev["$.vendor"].confidence == pytest.approx(0.5 * 0.5)  # "ACME", " Corp"


def test_without_evidence_nothing_is_asked_or_computed(server: TestServer, call: Any) -> None:
    server.script(Fault.content(compact(REPLY)))
    result = call(make(server), Invoice)
    assert "logprobs" not in server.requests[-1] and "top_logprobs" not in server.requests[-1]
    assert result.evidence is None and result.source is None


async def test_evidence_without_full_asks_for_nothing(server: TestServer) -> None:
    # the evidence lives on the Result: a plain value has nowhere to keep it, so no logprobs are bought
    ex = make(server)
    server.script(Fault.content(compact(REPLY)), Fault.content(compact(REPLY)))
    assert ex.extract(Invoice, TEXT, evidence=True).vendor == "ACME Corp"
    assert (await ex.aextract(Invoice, TEXT, evidence=True)).vendor == "ACME Corp"
    assert all("logprobs" not in r for r in server.requests[-2:])


def test_no_logprobs_from_backend_means_no_confidence(server: TestServer, call: Any) -> None:
    server.script(Fault.content(compact(REPLY)))
    result = call(make(server, provider="generic"), Invoice, evidence=True)  # logprobs unknown: not asked
    assert "logprobs" not in server.requests[-1]
    assert result.evidence is not None
    assert all(e.confidence is None for e in result.evidence.values())
    assert result.evidence["$.vendor"].alignment == "exact"


def test_unicode_values_span_the_original_text(server: TestServer, call: Any) -> None:
    class Notes(BaseModel):
        words: list[str]

    text = "Cafe\u0301 — 東京 — 🎉 — 東京"
    server.script(Fault.content(compact({"words": ["Café", "東京", "🎉"]})))
    ev = call(make(server), Notes, text, evidence=True).evidence
    assert [text[s:e] for s, e in ev["$.words[0]"].spans] == ["Cafe\u0301"]
    assert ev["$.words[0]"].alignment == "normalised"
    assert ev["$.words[1]"].spans == [(8, 10), (17, 19)]  # a repeated value: every occurrence
    assert [text[s:e] for s, e in ev["$.words[2]"].spans] == ["🎉"]


def test_require_grounding_reasks_naming_the_path(server: TestServer, call: Any) -> None:
    made_up = dict(REPLY, vendor="Globex Industries")
    server.script(Fault.content(compact(made_up)), Fault.content(compact(REPLY)))
    result = call(make(server), Invoice, require_grounding=True)
    assert result.value.vendor == "ACME Corp"
    assert len(result.attempts) == 2
    assert result.attempts[0].errors == [
        "$.vendor: 'Globex Industries' does not appear in the text; this field is required: copy it "
        "exactly as the document writes it"
    ]
    correction = server.requests[-1]["messages"][-1]["content"]
    assert "$.vendor" in correction and "does not appear in the text" in correction
    # total (99.5, derived) and paid (a boolean) are never grounding failures
    assert all("$.total" not in e and "$.paid" not in e for e in result.attempts[0].errors)


def test_require_grounding_exempts_derived_strings(server: TestServer) -> None:
    class Summary(BaseModel):
        name: str
        category: str = Field(json_schema_extra={"derived": True})

    server.script(Fault.content(compact({"name": "ACME Corp", "category": "manufacturer"})))
    result = make(server).extract(Summary, TEXT, full=True, require_grounding=True)
    assert len(result.attempts) == 1 and result.value.category == "manufacturer"


def test_evidence_needs_text_as_string(server: TestServer) -> None:
    with pytest.raises(ConfigurationError, match="string"):
        make(server).extract(Invoice, [{"role": "user", "content": TEXT}], evidence=True)
    assert server.requests == []


class _Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_repr_html_highlights_spans_escapes_and_has_no_network(server: TestServer) -> None:
    text = "<script>alert(1)</script> Invoice from ACME Corp, 3 x Blue widget, 2 x red gadget, open"
    server.script(Fault.content(compact(REPLY), logprobs={"$.vendor": -3.0}))
    result = make(server).extract(Invoice, text, full=True, evidence=True)
    page = result._repr_html_()
    parsed = _Parsed()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "link" not in parsed.tags
    assert not any(name in ("src", "href") for name, _ in parsed.attrs)
    assert "http" not in page
    assert "<script>alert(1)</script>" in "".join(parsed.text)  # shown as text, escaped
    assert parsed.tags.count("mark") >= 3
    assert ("title", "$.vendor") in parsed.attrs
    assert "(low)" in page  # vendor's confidence exp(-3) is flagged
    assert "table" in parsed.tags


def test_scripted_logprobs_need_compact_json() -> None:
    with pytest.raises(ConfigurationError, match="compact"):
        Fault.content('{"a": 1}', logprobs={"$.a": -1.0})
    with pytest.raises(ConfigurationError, match="no value"):
        Fault.content('{"a":1}', logprobs={"$.b": -1.0})


@pytest.mark.parametrize("reasoning_format", [None, "hidden"])
def test_reasoning_model_logprobs_map_past_the_thinking(
    server: TestServer, reasoning_format: str | None
) -> None:
    ex = Extractor(base_url=server.base_url, api_key="sk-test", model="zai-glm-4.7", provider="cerebras")
    server.script(Fault.content(compact(REPLY), logprobs={"$.items[0].description": -2.0}))
    options = {"reasoning_format": reasoning_format} if reasoning_format else {}
    result = ex.extract(Invoice, TEXT, full=True, evidence=True, **options)
    assert (result.attempts[-1].reasoning is None) == (reasoning_format == "hidden")
    ev = result.evidence
    assert ev is not None
    assert ev["$.items[0].description"].confidence == pytest.approx(math.exp(-4.0))  # "Blue", " widget"
    assert ev["$.vendor"].confidence is not None and ev["$.vendor"].confidence > math.exp(-4.1)


def test_a_server_refusing_logprobs_gets_the_request_without_them(server: TestServer) -> None:
    refused = {
        "message": "logprobs are not enabled for this organization.",
        "type": "invalid_request_error",
        "param": "logprobs",
        "code": "wrong_api_format",
    }
    server.script(Fault.http_error(400, refused), Fault.content(compact(REPLY)))
    result = make(server).extract(Invoice, TEXT, full=True, evidence=True)
    assert server.requests[0]["logprobs"] is True
    assert "logprobs" not in server.requests[1]
    assert result.evidence is not None and result.evidence["$.vendor"].confidence is None
    assert result.evidence["$.vendor"].alignment == "exact"


def test_module_level_extract_takes_evidence(server: TestServer) -> None:
    import extract

    server.script(Fault.content(compact(REPLY), logprobs={"$.vendor": -1.0}))
    result = extract.extract(
        Invoice, TEXT, model=MODEL, base_url=server.base_url, api_key="sk-test", provider="cerebras",
        full=True, evidence=True,
    )  # fmt: skip
    assert result.evidence["$.vendor"].confidence == pytest.approx(math.exp(-2.0))  # "ACME", " Corp"


def test_wrapped_root_and_json_text_values_map_to_user_paths(server: TestServer) -> None:
    root_list = {"type": "array", "items": {"type": "string"}}
    server.script(
        Fault.content(compact({"value": ["ACME Corp", "Blue widget"]}), logprobs={"$.value[1]": -1.5})
    )
    ev = make(server).extract(root_list, TEXT, full=True, evidence=True).evidence
    assert list(ev) == ["$[0]", "$[1]"]
    assert ev["$[1]"].confidence == pytest.approx(math.exp(-3.0))  # "Blue", " widget"
    assert ev["$[0]"].spans == [(13, 22)]

    any_json = {"type": "object", "properties": {"meta": {}}, "required": ["meta"]}
    server.script(
        Fault.content(compact({"meta": compact({"who": "Ada", "n": [3]})}), logprobs={"$.meta": -0.25})
    )
    ev = make(server).extract(any_json, "Ada bought 3", full=True, evidence=True).evidence
    assert list(ev) == ["$.meta.who", "$.meta.n[0]"]
    # both leaves were written inside one JSON-text string: they share its tokens' probability
    assert ev["$.meta.who"].confidence == ev["$.meta.n[0]"].confidence
    assert ev["$.meta.who"].confidence is not None and ev["$.meta.who"].confidence < 1.0
    assert ev["$.meta.n[0]"].spans == [(11, 12)]
