"""Confidence per leaf over real HTTP, for every way a reply's tokens can differ from its JSON: llama.cpp's
server (logprobs only with top_logprobs, `bytes: null`, split characters' bytes dropped from token
texts), json_object replies with prose and fences around the JSON, reasoning tokens left out of the
content, re-asks (the final reply's logprobs only), lists and nested objects, and chunked documents
(each merged leaf scored by the chunk reply it came from)."""

from __future__ import annotations

import json
import math
import re
import socket
from collections.abc import Callable, Sequence
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from extract.core import Extractor, Result
from extract.evidence._confidence import TokenMap
from extract.evidence._scan import locate
from extract.testing import Fault, TestServer
from extract.testing._oracle import RECORD_PATTERN, planted_document
from tests._raw_servers import RawServer, response

pytestmark = pytest.mark.timeout(120)

MODEL = "llama3.1-8b"
TEXT = "Contact: Café 🎉 owner Ada Lovelace, 36, lives in 東京. Tags: vip, early."

Piece = tuple[bytes, float]  # one token: its bytes and its logprob


class Person(BaseModel):
    name: str
    age: int
    city: str


def _pieces(text: str, logprob: Callable[[int], float] = lambda i: -0.1) -> list[Piece]:
    """Byte-level tokens: ASCII words and punctuation whole, every multi-byte character cut after its
    first byte (as a byte-level BPE splits rare characters)."""
    out: list[bytes] = []
    for match in re.finditer(r" ?[A-Za-z0-9]+|[^\sA-Za-z0-9]|\s+", text):
        chunk = match.group().encode()
        if chunk.isascii():
            out.append(chunk)
        else:
            for char in match.group():
                raw = char.encode()
                out.extend([raw[:1], raw[1:]] if len(raw) > 1 else [raw])
    return [(p, logprob(i)) for i, p in enumerate(out)]


def _expected(
    pieces: Sequence[Piece], content: str, value_start: int, value_end: int, shift: int = 0
) -> float:
    lo, hi = len(content[:value_start].encode()), len(content[:value_end].encode())
    total, at = 0.0, -shift
    for piece, logprob in pieces:
        if at < hi and lo < at + len(piece):
            total += logprob
        at += len(piece)
    return math.exp(total)


def _completion(content: str, pieces: Sequence[Piece] | None, style: str) -> bytes:
    entries = None
    if pieces is not None:
        entries = []
        for piece, logprob in pieces:
            if style == "llamacpp":  # llama-cpp-python: bytes null, undecodable bytes dropped
                token, raw = piece.decode("utf-8", "ignore"), None
            else:
                token, raw = piece.decode("utf-8", "replace"), list(piece)
            top = [{"token": token, "logprob": logprob, "bytes": raw}]
            entries.append({"token": token, "logprob": logprob, "bytes": raw, "top_logprobs": top})
    return orjson.dumps(
        {
            "id": "chatcmpl-h22",
            "object": "chat.completion",
            "created": 0,
            "model": "smollm2-135m",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "logprobs": None if entries is None else {"content": entries, "refusal": None},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 10, "completion_tokens": len(pieces or ()), "total_tokens": 10},
        }
    )


class _Replies:
    """A raw server's handler: one scripted reply per request, with logprobs as the style's server sends
    them; llama-cpp-python's sends none unless the request sets top_logprobs."""

    def __init__(self, replies: Sequence[tuple[str, Sequence[Piece]]], style: str = "llamacpp") -> None:
        self.replies = list(replies)
        self.style = style
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, conn: socket.socket, request: bytes) -> None:
        body = json.loads(request.partition(b"\r\n\r\n")[2])
        self.bodies.append(body)
        content, pieces = self.replies[min(len(self.bodies), len(self.replies)) - 1]
        wanted = body.get("logprobs") and (self.style != "llamacpp" or body.get("top_logprobs") is not None)
        conn.sendall(response(200, _completion(content, pieces if wanted else None, self.style)))


def _run(handler: _Replies, schema: Any, text: str = TEXT, provider: str = "llamacpp") -> Result:
    with RawServer(handler) as server:
        ex = Extractor(base_url=server.base_url, model="smollm2-135m", provider=provider, max_retries=0)
        with ex:
            result = ex.extract(schema, text, full=True, evidence=True)
    assert isinstance(result, Result) and result.evidence is not None
    return result


def test_llamacpp_server_scores_every_leaf_split_characters_included() -> None:
    content = '{ "name": "Café 🎉", "age": 36, "city": "東京"}'
    pieces = _pieces(content, lambda i: -0.05 * (i % 7 + 1))
    handler = _Replies([(content, pieces)])
    ev = _run(handler, Person).evidence
    assert ev is not None
    # llama-cpp-python's server returns logprobs only when top_logprobs is set: the row asks for one
    assert handler.bodies[0]["logprobs"] is True and handler.bodies[0]["top_logprobs"] == 1
    for path, text in (("$.name", "Café 🎉"), ("$.age", "36"), ("$.city", "東京")):
        start = content.index(text)
        assert ev[path].confidence == pytest.approx(_expected(pieces, content, start, start + len(text)))


@pytest.mark.parametrize("style", ["openai", "llamacpp"])
def test_json_object_reply_with_prose_and_a_fence_around_the_json(style: str) -> None:
    content = 'Sure {as asked}, here it is:\n```json\n{"name": "Ada Lovelace", "age": 36, "city": "東京"}\n```\nThanks!'
    pieces = _pieces(content, lambda i: -0.02 * (i % 5 + 1))
    ev = _run(_Replies([(content, pieces)], style), Person).evidence
    assert ev is not None
    for path, text in (("$.name", "Ada Lovelace"), ("$.age", "36"), ("$.city", "東京")):
        start = content.index(text)
        assert ev[path].confidence == pytest.approx(_expected(pieces, content, start, start + len(text)))
        assert ev[path].alignment == "exact"


def test_reasoning_tokens_in_the_logprobs_but_not_in_the_content() -> None:
    thinking = "<think>The owner is Ada, 36.</think>\n"
    content = '{"name":"Ada Lovelace","age":36,"city":"Tokyo"}'
    pieces = _pieces(thinking + content, lambda i: -0.03 * (i % 4 + 1))
    ev = _run(_Replies([(content, pieces)]), Person).evidence
    assert ev is not None
    shift = len(thinking.encode())
    for path, text in (("$.name", "Ada Lovelace"), ("$.age", "36"), ("$.city", "Tokyo")):
        start = content.index(text)
        expected = _expected(pieces, content, start, start + len(text), shift)
        assert ev[path].confidence == pytest.approx(expected)


def test_a_reask_takes_confidence_from_the_final_reply_only(server: TestServer) -> None:
    wrong = {"name": "Ada Lovelace", "age": "thirty-six", "city": "Tokyo"}  # age is not an integer
    right = {"name": "Ada Lovelace", "age": 36, "city": "Tokyo"}
    server.script(
        Fault.content(_compact(wrong), logprobs={"$.name": -4.0, "$.city": -4.0}),
        Fault.content(_compact(right), logprobs={"$.name": -0.25, "$.age": -0.5, "$.city": -0.75}),
    )
    ex = Extractor(base_url=server.base_url, api_key="sk-test", model=MODEL, provider="cerebras")
    result = ex.extract(Person, TEXT, full=True, evidence=True)
    assert len(result.attempts) == 2 and result.attempts[0].errors
    ev = result.evidence
    assert ev is not None
    assert ev["$.name"].confidence == pytest.approx(math.exp(-0.25 * 2))  # "Ada", " Lovelace"
    assert ev["$.age"].confidence == pytest.approx(math.exp(-0.5))
    assert ev["$.city"].confidence == pytest.approx(math.exp(-0.75))


def test_lists_and_nested_objects_each_get_their_own_confidence(server: TestServer) -> None:
    class Address(BaseModel):
        city: str
        zip: str | None = None

    class Owner(BaseModel):
        name: str
        tags: list[str]
        homes: list[Address]
        scores: dict[str, int]

    wire = {
        "name": "Ada Lovelace",
        "tags": ["vip", "early"],
        "homes": [{"city": "Tokyo", "zip": None}, {"city": "Paris", "zip": "75001"}],
        "scores": [{"key": "math", "value": 99}],  # a map is sent as key/value entries
    }
    scripted = {
        "$.tags[0]": -0.5,
        "$.tags[1]": -1.0,
        "$.homes[0].city": -1.5,
        "$.homes[1].city": -2.0,
        "$.homes[1].zip": -2.5,
        "$.scores[0].value": -3.0,
    }
    server.script(Fault.content(_compact(wire), logprobs=scripted))
    ex = Extractor(base_url=server.base_url, api_key="sk-test", model=MODEL, provider="cerebras")
    ev = ex.extract(Owner, TEXT, full=True, evidence=True).evidence
    assert ev is not None
    assert ev["$.tags[0]"].confidence == pytest.approx(math.exp(-0.5))
    assert ev["$.tags[1]"].confidence == pytest.approx(math.exp(-1.0))
    assert ev["$.homes[0].city"].confidence == pytest.approx(math.exp(-1.5))
    assert ev["$.homes[1].city"].confidence == pytest.approx(math.exp(-2.0))
    assert ev["$.homes[1].zip"].confidence == pytest.approx(math.exp(-2.5 * 2))  # "750", "01"
    assert ev["$.scores.math"].confidence == pytest.approx(math.exp(-3.0))
    assert "$.homes[0].zip" not in ev  # null: an absent value, not a leaf
    assert all(e.confidence is not None for e in ev.values())


def test_a_chunked_document_scores_each_leaf_by_the_chunk_reply_it_came_from() -> None:
    class Rec(BaseModel):
        id: str
        name: str

    class Records(BaseModel):
        records: list[Rec]

    text, _ = planted_document(40_000, seed=5)
    with TestServer(
        models=(MODEL,), oracle=RECORD_PATTERN, context_windows={MODEL: 8192}, api_key="sk-test"
    ) as srv:
        ex = Extractor(base_url=srv.base_url, api_key="sk-test", model=MODEL, provider="cerebras")
        result = ex.extract(Records, text, full=True, evidence=True, chunk_tokens=3000)
    assert len(result.chunks) > 2 and result.evidence is not None
    # each chunk's reply, in document order: (id, name) -> the confidence of its id and name there
    seen: dict[tuple[str, str], tuple[float | None, float | None]] = {}
    for attempt in result.attempts:
        assert attempt.content and attempt.logprobs
        found = locate(attempt.content)
        tokens = TokenMap.build(attempt.content, attempt.logprobs)
        assert found is not None and tokens is not None
        value, spans = found
        for j, record in enumerate(value["records"]):
            scores = []
            for field in ("id", "name"):
                start, end = spans[("records", j, field)]
                scores.append(tokens.confidence(start + 1, end - 1))
            seen.setdefault((record["id"], record["name"]), (scores[0], scores[1]))
    for k, record in enumerate(result.value.records):
        id_score, name_score = seen[(record.id, record.name)]  # the first chunk that gave it: kept by dedupe
        assert result.evidence[f"$.records[{k}].id"].confidence == pytest.approx(id_score)
        assert result.evidence[f"$.records[{k}].name"].confidence == pytest.approx(name_score)
        assert id_score is not None


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
