"""A reply with logprobs is decoded once into compact token records (extract._logprobs): the same
values as orjson gives, key for key; a body of another shape is decoded as plain JSON; and evidence
from the records equals evidence from the dicts, over real HTTP."""

from __future__ import annotations

import copy
import gc
import json
import math
import pickle
import socket
import subprocess
import sys
from collections.abc import Mapping
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from extract._logprobs import Token, column, decode_reply
from extract.core import Extractor, Result
from extract.evidence import collect
from extract.evidence._confidence import TokenMap
from extract.transports.http import _carries_logprobs, _decode
from tests._raw_servers import RawServer, response

pytestmark = pytest.mark.timeout(120)

_MISSING = object()
_TEXT = st.text(
    alphabet=st.characters(exclude_categories=("Cs",)), max_size=8
)  # JSON carries no lone surrogate
_NUMBER = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
)
_BYTES = st.lists(st.integers(0, 255), max_size=6)


def _entry(draw: st.DrawFn, alternative: bool = False) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "token": draw(st.one_of(_TEXT, st.none(), st.just(_MISSING))),
        "logprob": draw(st.one_of(_NUMBER, st.none(), st.just(_MISSING))),
        "bytes": draw(st.one_of(_BYTES, st.none(), st.just(_MISSING))),
    }
    if alternative:  # an alternative is kept as raw JSON: any field, any value
        fields["extra"] = draw(st.one_of(st.just(_MISSING), _TEXT, st.lists(_NUMBER, max_size=2)))
    else:
        fields["id"] = draw(st.one_of(st.just(_MISSING), st.integers(0, 2**31), st.none()))
        fields["top_logprobs"] = draw(
            st.one_of(st.just(_MISSING), st.none(), st.lists(_alternatives(), max_size=3))
        )
    return {k: v for k, v in fields.items() if v is not _MISSING}


@st.composite
def _alternatives(draw: st.DrawFn) -> dict[str, Any]:
    return _entry(draw, alternative=True)


@st.composite
def _completions(draw: st.DrawFn) -> dict[str, Any]:
    entries = draw(st.lists(st.composite(_entry)(), max_size=12))
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": draw(_TEXT)},
        "finish_reason": draw(st.sampled_from(["stop", "length", None])),
    }
    logprobs: dict[str, Any] = {"content": draw(st.sampled_from([entries, entries, None]))}
    if draw(st.booleans()):
        logprobs["refusal"] = None
    choice["logprobs"] = draw(st.sampled_from([logprobs, logprobs, None]))
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion", "choices": [choice]}
    if draw(st.booleans()):
        body["usage"] = {"prompt_tokens": 3, "completion_tokens": len(entries), "total_tokens": 9}
    if draw(st.booleans()):
        body["time_info"] = {"queue_time": draw(_NUMBER)}
    return body


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same types all the way down (so 0 is not 0.0, and -0.0 is not 0.0)."""
    if isinstance(a, float) or isinstance(b, float):
        return type(a) is type(b) and (math.copysign(1.0, a) == math.copysign(1.0, b)) and a == b
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return set(a) == set(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return type(a) is type(b) and a == b


def _serialised(body: dict[str, Any], style: int) -> bytes:
    if style == 0:
        return orjson.dumps(body)
    if style == 1:  # every non-ASCII character escaped, astral ones as surrogate pairs
        return json.dumps(body, ensure_ascii=True).encode()
    return json.dumps(body, indent=2, ensure_ascii=False).encode()  # whitespace everywhere


@settings(max_examples=300, deadline=None)
@given(_completions(), st.integers(0, 2))
def test_property_records_equal_what_orjson_decodes(body: dict[str, Any], style: int) -> None:
    raw = _serialised(body, style)
    plain = orjson.loads(raw)
    decoded = decode_reply(raw)
    assert decoded is not None and decoded == plain
    assert _decode(raw, "application/json") == plain
    assert _carries_logprobs(raw) == isinstance(plain["choices"][0].get("logprobs"), dict)
    wanted = (plain["choices"][0].get("logprobs") or {}).get("content")
    got = (decoded["choices"][0].get("logprobs") or {}).get("content")
    if wanted is None:
        assert got is None
        return
    assert len(got) == len(wanted)
    for entry, expected in zip(got, wanted, strict=True):
        assert type(entry) is Token and isinstance(entry, Mapping) and not gc.is_tracked(entry)
        assert _same(dict(entry), expected) and _same(entry, expected)
        assert sorted(entry) == sorted(expected) and len(entry) == len(expected)
        for key in ("id", "token", "logprob", "bytes", "top_logprobs", "other"):
            if key in expected:
                assert key in entry and _same(entry[key], expected[key])
                assert _same(entry.get(key), expected[key])
            else:
                assert key not in entry and entry.get(key, "absent") == "absent"
                with pytest.raises(KeyError):
                    entry[key]
    for name in ("token", "logprob", "bytes", "top_logprobs"):
        assert _same(column(got, name), [e.get(name) for e in wanted])


@pytest.mark.parametrize(
    "body",
    [
        # a token field the records do not know: the whole body as plain JSON, nothing dropped
        {"choices": [{"logprobs": {"content": [{"token": "a", "logprob": -1.0, "surprise": 1}]}}]},
        # text completions' parallel lists
        {"choices": [{"text": "ab", "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1.0, -2.0]}}]},
        {"choices": [{"logprobs": {"content": []}}], "x_extra": {"a": 1}},  # an unknown top-level field
        {"choices": [{"logprobs": {"content": [{"token": 5, "logprob": -1.0}]}}]},  # a token that is no text
        {"choices": [{"logprobs": {"content": [{"token": "a", "logprob": "-1"}]}}]},  # a logprob that is text
        {"choices": {"0": {"logprobs": None}}},  # choices that are not a list
        ["logprobs"],  # not an object
    ],
)
def test_other_shapes_are_decoded_as_plain_json(body: Any) -> None:
    raw = orjson.dumps(body)
    assert decode_reply(raw) is None
    assert _decode(raw, "application/json") == body


def test_the_records_are_used_only_for_a_logprobs_object() -> None:
    assert _carries_logprobs(b'{"choices":[{"logprobs" :\n {"content":[]}}]}')
    assert not _carries_logprobs(b'{"choices":[{"logprobs":null,"message":{"content":"{}"}}]}')
    assert not _carries_logprobs(b'{"choices":[{"message":{"content":"\\"logprobs\\":{"}}]}')
    assert _carries_logprobs(b'{"a":{"logprobs":1},"choices":[{"logprobs":{}}]}')  # the second key


def test_a_body_that_is_not_json_decodes_to_nothing() -> None:
    assert decode_reply(b'{"logprobs": ') is None
    assert _decode(b'{"logprobs": ', "application/json") is None


def test_a_token_reads_like_a_frozen_dict() -> None:
    raw = orjson.dumps(
        {"choices": [{"logprobs": {"content": [{"token": "é", "logprob": -0.5, "bytes": [195, 169]}]}}]}
    )
    data = decode_reply(raw)
    assert data is not None
    entry = data["choices"][0]["logprobs"]["content"][0]
    assert entry == {"token": "é", "logprob": -0.5, "bytes": [195, 169]}
    assert entry == {"token": "é", "logprob": -0.5, "bytes": [195, 169]}
    assert entry != {"token": "é", "logprob": -0.5} and entry != "é"
    assert repr(entry) == repr({"token": "é", "logprob": -0.5, "bytes": [195, 169]})
    assert list(entry.items()) == [("token", "é"), ("logprob", -0.5), ("bytes", [195, 169])]
    assert list(entry.values()) == ["é", -0.5, [195, 169]]
    assert pickle.loads(pickle.dumps(entry)) == entry and copy.deepcopy(entry) == entry
    entry["bytes"].append(0)  # each read is a fresh list: the record itself cannot change
    assert entry["bytes"] == [195, 169]
    with pytest.raises(AttributeError):
        entry.token = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(entry)
    assert orjson.dumps([entry], default=dict) == b'[{"token":"\xc3\xa9","logprob":-0.5,"bytes":[195,169]}]'


# -------------------------------------------------------------------------- end to end over HTTP


class Order(BaseModel):
    customer: str
    paid: bool
    status: str = Field(json_schema_extra={"enum": ["open", "closed", "void"]})
    city: str
    total: float


DOCUMENT = "Order for Café Lumière 🎉, Paris 東京 branch. Status: open. Paid in full: 12.50 EUR."
CONTENT = '{"customer":"Café Lumière 🎉","paid":true,"status":"open","city":"東京","total":12.5}'


def _tokens(content: str, style: str) -> list[dict[str, Any]]:
    """Two-byte pieces of the content's UTF-8 (splitting multi-byte characters), each with a logprob and two
    alternatives; llama.cpp's style: `bytes` null and the token ids, texts without undecodable bytes."""
    data = content.encode()
    out: list[dict[str, Any]] = []
    for i in range(0, len(data), 2):
        piece = data[i : i + 2]
        text = piece.decode("utf-8", "ignore" if style == "llamacpp" else "replace")
        raw = None if style == "llamacpp" else list(piece)
        logprob = -0.01 * (i % 13) - (0.7 if piece.startswith(b"tr") else 0.0)
        top = [
            {"token": text, "logprob": logprob, "bytes": raw},
            {"token": "fa", "logprob": -1.5, "bytes": None if raw is None else list(b"fa")},
        ]
        entry = {"token": text, "logprob": logprob, "bytes": raw, "top_logprobs": top}
        if style == "llamacpp":
            entry = {"id": 1000 + i, **entry}
        out.append(entry)
    return out


def _completion(style: str) -> bytes:
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": CONTENT},
        "logprobs": {"content": _tokens(CONTENT, style)},
        "finish_reason": "stop",
    }
    body: dict[str, Any] = {
        "id": "c",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [choice],
    }
    body["usage"] = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    if style == "llamacpp":
        body["timings"] = {"predicted_ms": 1.0}
    return orjson.dumps(body)


@pytest.mark.parametrize(("style", "provider"), [("openai", "cerebras"), ("llamacpp", "llamacpp")])
def test_evidence_from_records_equals_evidence_from_dicts(style: str, provider: str) -> None:
    def handler(conn: socket.socket, request: bytes) -> None:
        conn.sendall(response(200, _completion(style)))

    with RawServer(handler) as server:
        model = "llama3.1-8b" if provider == "cerebras" else "smollm2-135m"
        with Extractor(base_url=server.base_url, api_key="sk-x", model=model, provider=provider) as ex:
            result = ex.extract(Order, DOCUMENT, full=True, evidence=True)
            compiled = ex._compile(Order, ex.profile)
    assert isinstance(result, Result) and result.evidence is not None
    attempt = result.attempts[-1]
    assert attempt.logprobs and {type(e) for e in attempt.logprobs} == {Token}
    as_dicts = orjson.loads(_completion(style))["choices"][0]["logprobs"]["content"]
    assert attempt.logprobs == as_dicts
    expected = collect(compiled, DOCUMENT, attempt.content, result.value, as_dicts)
    assert result.evidence == expected
    scored = {path: ev.confidence for path, ev in result.evidence.items()}
    assert all(score is not None for score in scored.values()), scored
    # the boolean's first token was renormalised over its alternatives (top_logprobs read from the record)
    tokens = TokenMap.build(CONTENT, attempt.logprobs)
    start = CONTENT.index("true")
    assert tokens is not None and scored["$.paid"] != pytest.approx(tokens.confidence(start, start + 4))


def test_msgspec_is_imported_only_for_a_reply_with_logprobs() -> None:
    code = (
        "import sys, extract\n"
        "from extract.transports.http import _decode\n"
        '_decode(b\'{"choices":[{"logprobs":null,"message":{"content":"{}"}}]}\', \'application/json\')\n'
        "print('msgspec' in sys.modules)\n"
        '_decode(b\'{"choices":[{"logprobs":{"content":[]}}]}\', \'application/json\')\n'
        "print('msgspec' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.split() == ["False", "True"]
