"""Token logprobs from the embedded model: the wire shape, streamed and unstreamed, and evidence on it.

The entries are computed from the logits row each token was sampled from (extract._local._logprobs); the
pure part is checked against a direct log-softmax, the rest on the real SmolLM2-135M with short replies.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from extract import Extractor
from extract._local import _logprobs
from extract._local._logprobs import TokenLog
from extract._local._wire import LocalRequestError, logprobs_width
from extract.local import LocalTransport
from extract.streaming import ChatStream
from extract.transports import StreamStart, WireRequest, WireResponse
from tests._local_model import local_model_missing

_SKIP_REASON = local_model_missing()
needs_model = pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or "")

pytestmark = pytest.mark.timeout(600)


class Person(BaseModel):
    name: str = Field(max_length=40)
    city: str = Field(max_length=40)
    age: int


TEXT = "Maria Lopez, 41, lives in Lisbon."

_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "city": {"type": "string"}},
    "required": ["name", "city"],
}


def _body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "local",
        "max_tokens": 32,
        "temperature": 0,
        "messages": [{"role": "user", "content": f"Name and city as JSON: {TEXT}"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "p", "schema": _SCHEMA}},
        **extra,
    }


# ---- pure: the token log --------------------------------------------------------------------------------


def _log_softmax(logits: np.ndarray[Any, Any]) -> list[float]:
    values = [float(x) for x in logits]
    peak = max(values)
    total = peak + math.log(sum(math.exp(v - peak) for v in values))
    return [v - total for v in values]


def test_logprobs_are_the_log_softmax_of_the_row_and_top_is_ordered() -> None:
    rng = np.random.default_rng(7)
    logits = rng.normal(0, 4, size=300).astype(np.float32)
    log = TokenLog(5, lambda token: f"t{token}".encode())
    chosen = int(np.argsort(logits)[-3])  # the third most likely token
    log.add(chosen, logits)
    (entry,) = log.take(100, final=True)
    expected = _log_softmax(logits)
    assert entry["logprob"] == pytest.approx(expected[chosen], abs=1e-4)
    assert type(entry["logprob"]) is float
    top = entry["top_logprobs"]
    assert [t["token"] for t in top] == [f"t{i}" for i in np.argsort(-logits)[:5]]
    assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
    assert all(type(t["logprob"]) is float for t in top)
    assert entry["token"] in [t["token"] for t in top]
    assert sum(math.exp(v) for v in expected) == pytest.approx(1.0)
    orjson.dumps(entry)  # plain Python values all the way down


def test_top_alternatives_far_below_a_dominant_token_are_still_listed() -> None:
    logits = np.array([0.0, 50.0, -3.0, 2.0, -40.0], dtype=np.float32)
    log = TokenLog(3, lambda token: bytes([65 + token]))
    log.add(1, logits)
    (entry,) = log.take(1, final=True)
    assert [t["token"] for t in entry["top_logprobs"]] == ["B", "D", "A"]
    expected = _log_softmax(logits)
    assert [t["logprob"] for t in entry["top_logprobs"]] == pytest.approx(
        [expected[1], expected[3], expected[0]]
    )


def test_width_zero_lists_no_alternatives_and_the_end_token_is_dropped() -> None:
    pieces = {0: b'{"a"', 1: b": ", 2: b"1}", 3: b""}  # 3: the end-of-generation token, no bytes
    log = TokenLog(0, pieces.__getitem__)
    for token in (0, 1, 2, 3):
        log.add(token, np.zeros(4, dtype=np.float32))
    entries = log.take(len(b'{"a": 1}'), final=True)
    assert [bytes(e["bytes"]) for e in entries] == [b'{"a"', b": ", b"1}"]
    assert all(e["top_logprobs"] == [] for e in entries)
    assert all(e["logprob"] == pytest.approx(-math.log(4)) for e in entries)


@settings(max_examples=200, deadline=None)
@given(
    pieces=st.lists(st.binary(max_size=4), min_size=1, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=80), max_size=5),
    trim=st.integers(min_value=0, max_value=5),
)
def test_taken_entries_tile_the_reply_exactly(pieces: list[bytes], cuts: list[int], trim: int) -> None:
    """However the reply is streamed, the entries' bytes end to end are exactly the reply, each token once."""
    joined = b"".join(pieces)
    reply = joined[: max(len(joined) - trim, 0)]  # a stop sequence or a partial character cut off the end
    log = TokenLog(2, lambda token: pieces[token])
    for token in range(len(pieces)):
        log.add(token, np.arange(len(pieces), dtype=np.float32))
    entries: list[dict[str, Any]] = []
    for upto in sorted(min(c, len(reply)) for c in cuts):
        taken = log.take(upto)
        assert sum(len(e["bytes"]) for e in entries + taken) <= upto
        entries += taken
    entries += log.take(len(reply), final=True)
    assert b"".join(bytes(e["bytes"]) for e in entries) == reply
    assert log.take(len(reply), final=True) == []


def test_logprobs_width_follows_the_openai_rules() -> None:
    assert logprobs_width({}) is None
    assert logprobs_width({"logprobs": False}) is None
    assert logprobs_width({"logprobs": True}) == 0
    assert logprobs_width({"logprobs": True, "top_logprobs": 20}) == 20
    for body, param in (
        ({"logprobs": 1}, "logprobs"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": -1}, "top_logprobs"),
        ({"logprobs": True, "top_logprobs": True}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
    ):
        with pytest.raises(LocalRequestError) as caught:
            logprobs_width(body)
        assert caught.value.status_code == 400 and caught.value.param == param


# ---- the real embedded model ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transport() -> LocalTransport:
    return LocalTransport()


def _check_entries(content: str, entries: list[dict[str, Any]], width: int) -> None:
    assert entries
    assert b"".join(bytes(e["bytes"]) for e in entries) == content.encode("utf-8")
    for entry in entries:
        assert type(entry["logprob"]) is float and math.isfinite(entry["logprob"]) and entry["logprob"] <= 0
        top = entry["top_logprobs"]
        assert len(top) == width
        values = [t["logprob"] for t in top]
        assert all(type(v) is float and math.isfinite(v) and v <= 0 for v in values)
        assert values == sorted(values, reverse=True)
        if entry["logprob"] > values[-1] + 1e-6:  # in the top-k: listed with the same logprob
            assert any(
                t["bytes"] == entry["bytes"] and t["logprob"] == pytest.approx(entry["logprob"]) for t in top
            )


@needs_model
def test_unstreamed_reply_carries_logprobs_in_the_wire_shape(transport: LocalTransport) -> None:
    response = transport.send(WireRequest("/chat/completions", _body(logprobs=True, top_logprobs=3)), 300)
    assert response.status_code == 200
    data = orjson.loads(response.body)  # the bytes a server would send
    choice = data["choices"][0]
    _check_entries(choice["message"]["content"], choice["logprobs"]["content"], 3)


@needs_model
def test_each_logprob_comes_from_the_row_its_token_was_sampled_from(transport: LocalTransport) -> None:
    """Greedy, with no grammar and no penalty, every token is its own row's most likely one: a log read one
    step early or late would not be."""
    body = {
        "model": "local",
        "max_tokens": 24,
        "temperature": 0,
        "frequency_penalty": 0,
        "logprobs": True,
        "top_logprobs": 1,
        "messages": [{"role": "user", "content": "Name three colours."}],
    }
    response = transport.send(WireRequest("/chat/completions", body), 300)
    assert response.status_code == 200 and response.data is not None
    entries = response.data["choices"][0]["logprobs"]["content"]
    assert len(entries) >= 5
    for entry in entries:
        (best,) = entry["top_logprobs"]
        assert best["bytes"] == entry["bytes"] and best["logprob"] == pytest.approx(entry["logprob"])


@needs_model
def test_streamed_logprobs_match_the_unstreamed_ones(transport: LocalTransport) -> None:
    body = _body(logprobs=True, top_logprobs=2)
    whole = transport.send(WireRequest("/chat/completions", body), 300)
    assert isinstance(whole, WireResponse) and whole.data is not None
    parts = list(transport.stream(WireRequest("/chat/completions", {**body, "stream": True}), 300))
    assert isinstance(parts[0], StreamStart)
    chat = ChatStream()
    for part in parts[1:]:
        assert isinstance(part, bytes)
        chat.feed(part)
    streamed = chat.completion()["choices"][0]
    expected = whole.data["choices"][0]
    assert streamed["message"]["content"] == expected["message"]["content"]
    _check_entries(streamed["message"]["content"], streamed["logprobs"]["content"], 2)
    # greedy decoding: the same tokens with the same logprobs, whichever path carried them
    got = [(e["bytes"], e["logprob"]) for e in streamed["logprobs"]["content"]]
    want = [(e["bytes"], e["logprob"]) for e in expected["logprobs"]["content"]]
    assert [b for b, _ in got] == [b for b, _ in want]
    assert [lp for _, lp in got] == pytest.approx([lp for _, lp in want], abs=1e-3)


@needs_model
def test_a_bad_top_logprobs_is_a_400_before_generating(transport: LocalTransport) -> None:
    response = transport.send(WireRequest("/chat/completions", _body(logprobs=True, top_logprobs=50)), 30)
    assert response.status_code == 400
    assert response.data is not None and response.data["error"]["param"] == "top_logprobs"


@needs_model
def test_evidence_gives_leaf_confidence_and_no_evidence_computes_no_logprobs(
    transport: LocalTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    add = TokenLog.add

    def counted(self: TokenLog, token: int, logits: Any) -> None:
        nonlocal calls
        calls += 1
        add(self, token, logits)

    monkeypatch.setattr(_logprobs.TokenLog, "add", counted)
    extractor = Extractor(transport=transport, provider="local", model=transport.model_name)

    plain = extractor.extract(Person, TEXT, full=True, max_attempts=3, max_completion_tokens=60)
    assert calls == 0
    assert plain.attempts[-1].logprobs is None and plain.evidence is None

    result = extractor.extract(
        Person, TEXT, full=True, evidence=True, max_attempts=3, max_completion_tokens=60
    )
    assert calls > 0
    assert result.attempts[-1].logprobs
    assert result.evidence is not None
    leaves = {path: ev.confidence for path, ev in result.evidence.items()}
    assert set(leaves) == {"$.name", "$.city", "$.age"}
    assert all(c is not None and 0.0 <= c <= 1.0 for c in leaves.values())
