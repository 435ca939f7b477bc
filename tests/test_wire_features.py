"""The provider's optional request features end to end, over real HTTP to a loopback TestServer, sync and
async: reasoning effort and format, prompt caching (layout, key, cached tokens), predicted re-asks,
service tiers and the queue threshold, logprobs, time_info. Each feature is sent only where the model's
row allows it, and refused before anything is sent where it does not."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import orjson
import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract import modes
from extract._engine.features import (
    PREDICTION_MAX_BYTES,
    FeatureError,
    cache_prefix_report,
    prediction_fields,
)
from extract.batch import extract_many
from extract.core import Extractor, Result
from extract.errors import BadRequestError, RateLimitError
from extract.providers import PROVIDERS
from extract.ratelimit import RateLimiter
from extract.schema import compile_schema
from extract.testing import Fault, TestServer
from extract.transports import RetryPolicy

REASONING = "gpt-oss-120b"
GLM = "zai-glm-4.7"
PLAIN = "llama3.1-8b"
TEXT = "Ada Lovelace was 36 years old."
# Long enough that the constant part of the prompt spans several 128-token cache blocks.
LONG_INSTRUCTIONS = "Take the person's full name as written and the age in whole years. " * 12


class Person(pydantic.BaseModel):
    name: str
    age: int


Call = Callable[..., Result]
_COMPILED = compile_schema(Person, provider=PROVIDERS["cerebras"].profile)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer(api_key="sk-test") as srv:
        yield srv


@pytest.fixture(params=["sync", "async"])
def call(request: pytest.FixtureRequest) -> Call:
    """Run one extraction with full=True through Extractor.extract or Extractor.aextract."""

    def run(ex: Extractor, text: Any = TEXT, **kw: Any) -> Result:
        if request.param == "sync":
            result = ex.extract(Person, text, full=True, **kw)
        else:
            result = asyncio.run(ex.aextract(Person, text, full=True, **kw))
        assert isinstance(result, Result)
        return result

    return run


def make(server: TestServer, model: str = REASONING, **options: Any) -> Extractor:
    options.setdefault("provider", "cerebras")
    ex = Extractor(base_url=server.base_url, api_key="sk-test", model=model, **options)
    ex._retry = RetryPolicy(max_retries=options.get("max_retries", 2), initial_delay=0.01, max_delay=0.02)
    return ex


# ---- reasoning ------------------------------------------------------------------------------------------


def test_reasoning_default_effort_and_text_kept(server: TestServer, call: Call) -> None:
    result = call(make(server))
    body = server.requests[0]
    assert body["reasoning_effort"] == "low"  # the row's measured default
    attempt = result.attempts[0]
    assert attempt.reasoning and attempt.reasoning not in (attempt.content or "")
    assert result.usage.reasoning_tokens == attempt.usage.reasoning_tokens == 64


def test_reasoning_effort_and_format_pass_through(server: TestServer, call: Call) -> None:
    result = call(make(server, reasoning_format="hidden"), reasoning_effort="high")
    body = server.requests[0]
    assert (body["reasoning_effort"], body["reasoning_format"]) == ("high", "hidden")
    assert result.usage.reasoning_tokens == 1024 and result.attempts[0].reasoning is None


def test_no_effort_sent_when_the_caller_unsets_it(server: TestServer, call: Call) -> None:
    result = call(make(server), reasoning_effort=None)
    assert "reasoning_effort" not in server.requests[0]
    assert result.usage.reasoning_tokens == 256  # the server's default (medium)


def test_glm_takes_only_none(server: TestServer, call: Call) -> None:
    result = call(make(server, model=GLM), reasoning_effort="none")
    assert server.requests[0]["reasoning_effort"] == "none" and result.usage.reasoning_tokens == 0
    with pytest.raises(FeatureError, match="none"):
        call(make(server, model=GLM), reasoning_effort="low")
    assert server.request_count == 1


@pytest.mark.parametrize(
    ("model", "options", "match"),
    [
        (PLAIN, {"reasoning_effort": "low"}, "takes no reasoning_effort"),
        (REASONING, {"reasoning_effort": "max"}, "low, medium, high"),
        (REASONING, {"reasoning_format": "raw"}, "raw"),
        (PLAIN, {"reasoning_format": "parsed"}, "takes no reasoning_format"),
    ],
)
def test_reasoning_refused_before_sending(
    server: TestServer, call: Call, model: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(FeatureError, match=match):
        call(make(server, model=model), **options)
    with pytest.raises(FeatureError, match=match):
        make(server, model=model, **options)  # at construction, too
    assert server.request_count == 0


def test_budget_spent_inside_the_reasoning_grows(server: TestServer, call: Call) -> None:
    # medium spends 256 reasoning tokens first: 100 and 200 run out inside the reasoning, 400 is enough
    result = call(make(server, max_attempts=4), reasoning_effort="medium", max_completion_tokens=100)
    budgets = [r["max_completion_tokens"] for r in server.requests]
    assert budgets == [100, 200, 400]
    first = result.attempts[0]
    assert first.finish_reason == "length" and not first.content and first.reasoning
    assert result.usage.reasoning_tokens == sum(a.usage.reasoning_tokens for a in result.attempts)
    assert all(r["messages"] == server.requests[0]["messages"] for r in server.requests)  # no re-ask text


class RecordingLimiter:
    """A Limiter that grants everything and remembers what was reserved and observed."""

    def __init__(self) -> None:
        self.reserved: list[int] = []
        self.observed: list[int] = []

    def reserve(self, tokens: int) -> float:
        self.reserved.append(tokens)
        return 0.0

    def observe(
        self, status_code: int, headers: Mapping[str, str], tokens_used: int | None, reserved: int
    ) -> None:
        self.observed.append(status_code)


def test_limiter_reserves_expected_reasoning(server: TestServer, call: Call) -> None:
    reserved = {}
    for effort in ("none", "low", "high"):
        limiter = RecordingLimiter()
        model = GLM if effort == "none" else REASONING
        call(make(server, model=model, limiter=limiter), reasoning_effort=effort)
        reserved[effort] = limiter.reserved[0]
    assert reserved["none"] < reserved["low"] < reserved["high"]
    assert reserved["high"] - reserved["low"] >= 1024  # high reasoning alone spends 1024 on the server
    limiter = RecordingLimiter()
    call(make(server, limiter=limiter), reasoning_effort="high", max_completion_tokens=300)
    assert limiter.reserved[0] < reserved["low"]  # a caller's budget bounds reasoning and reply together


# ---- prompt caching -------------------------------------------------------------------------------------


def _sent_messages(server: TestServer, ex: Extractor, call: Call, **kw: Any) -> Callable[[str], Any]:
    def build(document: str) -> Sequence[Mapping[str, Any]]:
        call(ex, document, **kw)
        messages: Sequence[Mapping[str, Any]] = server.requests[-1]["messages"]
        return messages

    return build


@pytest.mark.parametrize("mode_model", [REASONING, PLAIN])
@pytest.mark.parametrize("instructions", [None, "Names in capitals.", LONG_INSTRUCTIONS])
def test_constant_prefix_across_documents(
    server: TestServer, call: Call, mode_model: str, instructions: str | None
) -> None:
    report = cache_prefix_report(
        _sent_messages(server, make(server, model=mode_model), call, instructions=instructions)
    )
    assert report.ok, report.problems
    assert report.shared_bytes >= report.constant_bytes > 0


def test_instruction_variants_share_the_schema_prefix(server: TestServer, call: Call) -> None:
    ex = make(server, model=PLAIN)
    ex._demoted[(ex.base_url, PLAIN)] = {"json_schema"}  # json_object: the schema is in the prompt
    systems = []
    for instructions in ("Names in capitals.", "Ages in whole years only."):
        call(ex, instructions=instructions)
        systems.append(orjson.dumps(server.requests[-1]["messages"][0]["content"]))
    compiled = ex._compile(Person, ex.profile)
    schema_text = orjson.dumps(orjson.dumps(compiled.wire_schema).decode())[1:-1]
    shared = 0
    while systems[0][shared] == systems[1][shared]:
        shared += 1
    assert systems[0].find(schema_text) > 0  # the schema is inside the shared prefix
    assert shared >= systems[0].find(schema_text) + len(schema_text)
    plain = modes.system_prompt("json_object", compiled)
    assert len(modes.system_prompt("json_object", compiled, "Be brief.")) <= len(
        plain
    )  # no longer than before


def test_prompt_cache_key_per_schema_and_instructions(server: TestServer, call: Call) -> None:
    ex = make(server)
    call(ex, "Ada Lovelace was 36.")
    call(ex, "Alan Turing was 41.")
    call(ex, "Alan Turing was 41.", instructions="Names in capitals.")
    keys = [r["prompt_cache_key"] for r in server.requests]
    assert keys[0] == keys[1] != keys[2] and all(k.startswith("extract-") for k in keys)
    call(ex, prompt_cache_key="my-batch-7")
    assert server.requests[-1]["prompt_cache_key"] == "my-batch-7"


def test_prompt_cache_key_only_where_the_row_accepts_it(server: TestServer, call: Call) -> None:
    generic = Extractor(base_url=server.base_url, api_key="sk-test", model=PLAIN)  # no provider: unknown
    call(generic)
    assert "prompt_cache_key" not in server.requests[-1]
    count = server.request_count
    with pytest.raises(FeatureError, match="prompt_cache_key"):
        call(make(server, model=PLAIN, provider="llamacpp"), prompt_cache_key="k")
    assert server.request_count == count


_NOT_ENABLED = {
    "message": "prompt_cache_key is not enabled for this organization.",
    "type": "invalid_request_error",
    "param": "prompt_cache_key",
    "code": "wrong_api_format",
}


def test_a_refused_derived_cache_key_is_dropped_once_and_remembered(server: TestServer, call: Call) -> None:
    server.script(Fault.http_error(400, _NOT_ENABLED))
    ex = make(server)
    result = call(ex)
    assert server.request_count == 2 and len(result.attempts) == 1
    assert "prompt_cache_key" in server.requests[0] and "prompt_cache_key" not in server.requests[1]
    assert result.mode == "json_schema"  # not mistaken for a refusal of the output mode
    call(ex, "Alan Turing was 41.")
    assert "prompt_cache_key" not in server.requests[2] and server.request_count == 3


def test_a_refused_caller_cache_key_is_an_error(server: TestServer, call: Call) -> None:
    server.script(Fault.http_error(400, _NOT_ENABLED))
    with pytest.raises(BadRequestError, match="not enabled"):
        call(make(server), prompt_cache_key="mine")
    assert server.request_count == 1


def test_second_document_reads_cached_tokens(server: TestServer, call: Call) -> None:
    ex = make(server)
    first = call(ex, "Ada Lovelace was 36 years old.", instructions=LONG_INSTRUCTIONS)
    second = call(ex, "Grace Hopper was 85 years old.", instructions=LONG_INSTRUCTIONS)
    assert first.usage.cached_tokens == 0
    assert second.usage.cached_tokens >= 128 and second.usage.cached_tokens % 128 == 0
    assert second.usage.cached_tokens < second.usage.prompt_tokens


def test_batch_reports_cached_tokens(server: TestServer) -> None:
    docs = [f"Person {i}: Ada the {i}th was {30 + i} years old." for i in range(4)]
    with make(server) as ex:
        run = extract_many(Person, docs, extractor=ex, concurrency=1, instructions=LONG_INSTRUCTIONS)
        with run:
            outcomes = list(run)
    assert all(o.ok for o in outcomes)
    assert run.stats.cached_tokens >= 3 * 128
    assert f"({run.stats.cached_tokens:,} cached)" in run.stats.summary()


# ---- predicted outputs on re-ask ------------------------------------------------------------------------


def test_reask_sends_the_last_reply_as_prediction(server: TestServer, call: Call) -> None:
    bad = '{"name": "Ada Lovelace", "age": "thirty-six"}'
    server.script(Fault.content(bad))
    result = call(make(server))
    assert server.request_count == 2
    assert "prediction" not in server.requests[0]
    assert server.requests[1]["prediction"] == {"type": "content", "content": bad}
    assert result.attempts[0].content == bad
    second = result.attempts[1].usage
    assert second.accepted_prediction_tokens + second.rejected_prediction_tokens > 0
    assert result.usage.accepted_prediction_tokens == second.accepted_prediction_tokens


def test_no_prediction_where_the_row_has_none_or_reply_too_big(server: TestServer, call: Call) -> None:
    server.script("schema_violation")
    call(make(server, model=PLAIN))
    assert "prediction" not in server.requests[1]
    huge = '{"name": "' + "A" * 20_000 + '", "age": "x"}'
    server.script(Fault.content(huge))
    result = call(make(server))
    assert result.attempts[0].content == huge and len(result.attempts) == 2
    assert "prediction" not in server.requests[-1]


def test_caller_prediction_refused_where_the_row_has_none(server: TestServer, call: Call) -> None:
    with pytest.raises(FeatureError, match="prediction"):
        call(make(server, model=PLAIN), prediction={"type": "content", "content": "{}"})
    assert server.request_count == 0


# ---- service tiers and the queue threshold --------------------------------------------------------------


def test_service_tier_and_queue_threshold_on_the_wire(server: TestServer, call: Call) -> None:
    call(make(server, service_tier="flex", queue_threshold=500))
    request = server.requests[0]
    assert request["service_tier"] == "flex" and request.headers["queue_threshold"] == "500"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"queue_threshold": 500}, "flex"),
        ({"service_tier": "default", "queue_threshold": 500}, "flex"),
        ({"service_tier": "flex", "queue_threshold": 10}, "out of range"),
        ({"service_tier": "economy"}, "auto, default, flex, priority"),
    ],
)
def test_service_options_refused_before_sending(
    server: TestServer, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(FeatureError, match=match):
        make(server, **options)
    assert server.request_count == 0


def test_service_tier_refused_where_the_row_has_none(server: TestServer, call: Call) -> None:
    with pytest.raises(FeatureError, match="service_tier"):
        call(make(server, model=PLAIN, provider="llamacpp"), service_tier="flex")
    assert server.request_count == 0


def test_queue_exceeded_is_retried_and_not_a_rate_limit(server: TestServer, call: Call) -> None:
    server.script(Fault.queue_exceeded())
    limiter = RateLimiter()
    result = call(make(server, limiter=limiter, service_tier="flex"))
    assert server.request_count == 2 and isinstance(result.value, Person)
    assert limiter.stats().throttled == 0  # a busy provider is not quota evidence


def test_queue_longer_than_threshold_retried_then_reported() -> None:
    with TestServer(api_key="sk-test", queue_ms=1000) as server:
        ex = make(server, service_tier="flex", queue_threshold=100, max_retries=2)
        with pytest.raises(RateLimitError):
            ex.extract(Person, TEXT)
        assert server.request_count == 3  # the first try and two retries


# ---- logprobs and time_info -----------------------------------------------------------------------------


def test_logprobs_kept_per_attempt(server: TestServer, call: Call) -> None:
    result = call(make(server), logprobs=True, top_logprobs=2)
    body = server.requests[0]
    assert body["logprobs"] is True and body["top_logprobs"] == 2
    entries = result.attempts[0].logprobs
    assert entries and all(isinstance(e["logprob"], float) for e in entries)
    assert all(len(e["top_logprobs"]) == 2 for e in entries)
    assert "".join(e["token"] for e in entries) == result.attempts[0].content


def test_logprobs_absent_unless_asked_and_bounds_checked(server: TestServer, call: Call) -> None:
    result = call(make(server))
    assert "logprobs" not in server.requests[0] and result.attempts[0].logprobs is None
    with pytest.raises(FeatureError, match="top_logprobs"):
        call(make(server), top_logprobs=21)
    assert server.request_count == 1


def test_time_info_per_attempt_and_summed(server: TestServer, call: Call) -> None:
    server.script("schema_violation")
    result = call(make(server))
    infos = [a.time_info for a in result.attempts]
    assert len(infos) == 2 and all(i is not None for i in infos)
    assert result.time_info is not None
    for key in ("queue_time", "prompt_time", "completion_time", "total_time"):
        assert result.time_info[key] == pytest.approx(sum(i[key] for i in infos if i is not None))


# ---- the reasoning benchmark (quick run: what must hold whatever the speed) -----------------------------


def test_bench_reasoning_quick() -> None:
    import sys
    from pathlib import Path

    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from benchmarks import bench_reasoning

    rows = bench_reasoning.main(["--docs", "2", "--budget", "512"])
    by = {(r["effort"], r["budget"]): r for r in rows}
    assert len(rows) == 8 and all(r["success %"] == 100.0 for r in rows)
    assert by[("low", "none")]["reasoning tok/success"] == 64
    assert by[("high", "none")]["reasoning tok/success"] == 1024
    assert by[("high", 512)]["attempts/doc"] > 1  # the budget ran out inside the reasoning and grew
    assert bench_reasoning.choose(rows) == "low"
    assert PROVIDERS["cerebras"].row(REASONING).reasoning_effort == bench_reasoning.choose(rows)


# ---- extract run: --service-tier / --queue-threshold, and the cached tokens in the end summary ----------


def test_cli_run_service_tier_and_cached_summary(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from extract.cli import main

    for name in ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    schema = tmp_path / "person.json"
    schema.write_bytes(orjson.dumps(Person.model_json_schema()))
    inp, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [orjson.dumps({"id": f"d{i}", "text": f"Ada {i} is {30 + i}."}) + b"\n" for i in range(3)]
    inp.write_bytes(b"".join(lines))
    with TestServer() as server:  # no key: the CLI never takes one on the command line
        args = ["run", str(schema), "--input", str(inp), "--output", str(out), "--concurrency", "1"]
        args += ["--base-url", server.base_url, "--model", REASONING, "--provider", "cerebras"]
        args += ["--service-tier", "flex", "--queue-threshold", "500", "--instructions", LONG_INSTRUCTIONS]
        assert main(args) == 0
        assert len(server.requests) == 3
        assert all(r["service_tier"] == "flex" for r in server.requests)
        assert all(r.headers["queue_threshold"] == "500" for r in server.requests)
    summary = capsys.readouterr().err
    assert " cached)" in summary and "(0 cached)" not in summary, summary


# ---- module-level entry points take the options too -----------------------------------------------------


def test_module_extract_takes_the_feature_options(server: TestServer) -> None:
    from extract import aextract, extract

    options = {"base_url": server.base_url, "api_key": "sk-test", "provider": "cerebras"}
    extract(Person, TEXT, model=REASONING, service_tier="flex", queue_threshold=300, logprobs=True, **options)
    asyncio.run(aextract(Person, TEXT, model=REASONING, reasoning_effort="medium", **options))
    first, second = server.requests
    assert first["service_tier"] == "flex" and first.headers["queue_threshold"] == "300" and first["logprobs"]
    assert second["reasoning_effort"] == "medium" and "queue_threshold" not in second.headers


# ---- properties of the pure parts -----------------------------------------------------------------------

_texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=60, deadline=None)
@given(
    instructions=st.one_of(st.none(), _texts), mode=st.sampled_from(["json_schema", "json_object", "prompt"])
)
def test_layout_keeps_the_document_last_and_the_prefix_constant(instructions: str | None, mode: str) -> None:
    compiled = _COMPILED
    system = modes.system_prompt(mode, compiled, instructions)

    def build(document: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": system}, modes.document_message(document)]

    report = cache_prefix_report(build)
    assert report.ok, report.problems


@settings(max_examples=60, deadline=None)
@given(a=_texts, b=_texts, mode=st.sampled_from(["json_schema", "json_object", "prompt"]))
def test_instruction_variants_share_every_constant_byte(a: str, b: str, mode: str) -> None:
    constant = modes.system_prompt(mode, _COMPILED, "x")[:-1]  # everything before the instructions
    for instructions in (a, b):
        system = modes.system_prompt(mode, _COMPILED, instructions)
        assert system.startswith(constant)


_large = st.tuples(st.sampled_from(["a", "é", "€", "😀", " "]), st.integers(4000, 17_000)).map(
    lambda t: t[0] * t[1]
)


@given(reply=st.one_of(st.none(), _texts, _large))
def test_prediction_is_the_reply_only_when_non_blank_and_small(reply: str | None) -> None:
    row = PROVIDERS["cerebras"].row(REASONING)
    fields = prediction_fields(row, reply)
    small = reply is not None and len(reply.encode("utf-8", "surrogatepass")) <= PREDICTION_MAX_BYTES
    if reply is not None and reply.strip() and small:
        assert fields == {"prediction": {"type": "content", "content": reply}}
    else:
        assert fields == {}
    assert prediction_fields(PROVIDERS["cerebras"].row(PLAIN), reply) == {}
