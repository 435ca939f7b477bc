"""Streaming, sans-IO: the incremental JSON parser, the SSE reader, partial twins, and the property of the
issue: random values of models, fed in random chunkings, give partials consistent with the final value."""

from __future__ import annotations

import itertools
import json
from typing import Annotated, Any, Literal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field, field_validator

from extract._engine.streaming import NOTHING, Progress
from extract.schema import compile_schema
from extract.schema._codec import dump_json
from extract.streaming import ChatStream, IncrementalJson, partial_twin
from extract.transports import StreamStart

# -- incremental JSON -----------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=20,
)


def _cuts(draw: st.DrawFn, n: int) -> list[int]:
    return sorted(set(draw(st.lists(st.integers(0, n), max_size=12))))


def _pieces(text: str, cuts: list[int]) -> list[str]:
    bounds = [0, *cuts, len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def consistent(partial: Any, final: Any) -> bool:
    """Every present part of `partial` equals the final value's; arrays are prefixes of finished items."""
    if partial is None:
        return True
    if isinstance(partial, dict):
        return isinstance(final, dict) and all(
            k in final and consistent(v, final[k]) for k, v in partial.items()
        )
    if isinstance(partial, list):
        return isinstance(final, list) and len(partial) <= len(final) and partial == final[: len(partial)]
    return bool(partial == final)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_incremental_json_any_chunking(data: st.DataObject) -> None:
    value = data.draw(json_values)
    text = json.dumps(
        value, indent=data.draw(st.sampled_from([None, 1])), ensure_ascii=data.draw(st.booleans())
    )
    parser = IncrementalJson()
    for piece in _pieces(text, _cuts(data.draw, len(text))):
        parser.feed(piece)
        snap = parser.snapshot()
        assert consistent(snap, value), (snap, value)
    parser.finish()
    assert parser.error is None
    assert parser.done
    assert parser.root == value


def test_incremental_json_keeps_snapshots_frozen() -> None:
    parser = IncrementalJson()
    parser.feed('{"a": [1, 2')
    first = parser.snapshot()
    parser.feed(', 3], "b": {"c": "x"')
    assert first == {"a": [1]}  # 2 is not known to be complete until a separator follows
    assert parser.snapshot() == {"a": [1, 2, 3], "b": {"c": "x"}}


def test_incremental_json_scalars_only_when_complete() -> None:
    parser = IncrementalJson()
    parser.feed('{"n": 12')
    assert parser.snapshot() is None
    parser.feed('3, "s": "pen')
    assert parser.snapshot() == {"n": 123}
    parser.feed('ding"}')
    assert parser.snapshot() == {"n": 123, "s": "pending"}


@pytest.mark.parametrize("text", ['{"a" 1}', "[1,,2]", '{"a":1}}', "]", '{"a":1} x'])
def test_incremental_json_reports_non_json(text: str) -> None:
    parser = IncrementalJson()
    parser.feed(text)
    parser.finish()
    assert parser.error is not None


# -- server-sent events ---------------------------------------------------------------------------------


def _sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    out = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    return out + (b"data: [DONE]\n\n" if done else b"")


def test_chat_stream_keeps_reasoning_apart_and_reads_the_final_usage() -> None:
    raw = _sse(
        {
            "id": "c1",
            "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning": "let me"}}],
        },
        {"choices": [{"index": 0, "delta": {"reasoning": " think", "content": '{"a":'}}]},
        {"choices": [{"index": 0, "delta": {"content": "1}"}}]},
        {
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
            "time_info": {"total_time": 0.5},
        },
    ).replace(b"\n\n", b"\r\n\r\n", 1)
    stream = ChatStream()
    deltas = [stream.feed(raw[i : i + 5]) for i in range(0, len(raw), 5)]
    assert "".join(deltas) == '{"a":1}'
    assert stream.done
    body = stream.completion()
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": '{"a":1}',
        "reasoning": "let me think",
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["total_tokens"] == 7
    assert body["time_info"] == {"total_time": 0.5}
    assert body["id"] == "c1"


def test_chat_stream_error_event_before_content_is_a_server_error() -> None:
    progress = Progress(compile_schema({"type": "object", "properties": {"a": {"type": "integer"}}}))
    progress.begin(StreamStart(200, {"content-type": "text/event-stream"}))
    progress.feed(b'data: {"error": {"message": "overloaded", "status_code": 503}}\n\n')
    response = progress.end()
    assert response.status_code == 503
    assert response.data == {"error": {"message": "overloaded", "status_code": 503}}


# -- partial twins ----------------------------------------------------------------------------------------


class Line(BaseModel):
    name: str = Field(min_length=3)
    qty: Annotated[int, Field(gt=0)]

    @field_validator("name")
    @classmethod
    def _never_on_partials(cls, value: str) -> str:
        if value == "boom":
            raise ValueError("a validator ran")
        return value


class Invoice(BaseModel):
    number: str
    status: Literal["open", "paid"]
    lines: list[Line]
    totals: dict[str, int]
    note: str | None = None
    meta: Any = None


def test_partial_twin_drops_constraints_and_validators() -> None:
    twin = partial_twin(Invoice)
    assert twin is partial_twin(Invoice)  # cached
    value = twin.model_validate({"lines": [{"name": "boom", "qty": -1}]})
    assert value.lines[0].name == "boom"
    assert value.lines[0].qty == -1
    assert value.number is None
    with pytest.raises(ValueError, match=r"Input should be"):
        twin.model_validate({"status": "closed"})  # types are kept: a wrong value is not shown


# -- the property: random values, random chunkings, every partial consistent --------------------------------


class Leaf(BaseModel):
    word: str
    n: int
    ok: bool | None = None
    score: int | None = 3  # optional, nullable, not null by default: {"value": ...} on the wire


class Tree(BaseModel):
    title: str
    leaves: list[Leaf]
    by_name: dict[str, Leaf]
    pair: tuple[int, str]
    maybe: Leaf | None = None
    anything: Any = None
    tags: list[str] = []


def _progress_items(compiled: Any, content: str, cuts: list[int]) -> list[Any]:
    """What the stream shows for `content` arriving in these pieces (one SSE event per piece)."""
    progress = Progress(compiled)
    progress.begin(StreamStart(200, {"content-type": "text/event-stream"}))
    shown = []
    for piece in _pieces(content, cuts):
        event = {"choices": [{"index": 0, "delta": {"content": piece}}]}
        item = progress.feed(b"data: " + orjson.dumps(event) + b"\n\n")
        if item is not NOTHING:
            shown.append(item)
    progress.feed(b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    response = progress.end()
    assert response.data["choices"][0]["message"]["content"] == content
    return shown


def _dump(value: Any) -> Any:
    return value.model_dump(mode="json", exclude_none=False) if isinstance(value, BaseModel) else value


def _strip_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


json_leaf = st.none() | st.integers(-5, 5) | st.text(max_size=5) | st.lists(st.integers(0, 3), max_size=3)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.builds(
        Tree,
        title=st.text(max_size=8),
        leaves=st.lists(st.builds(Leaf), max_size=4),
        by_name=st.dictionaries(st.text(max_size=4), st.builds(Leaf), max_size=3),
        maybe=st.none() | st.builds(Leaf),
        anything=json_leaf,
        tags=st.lists(st.text(max_size=3), max_size=3),
    ),
    st.data(),
)
def test_partials_of_a_generated_model_are_consistent(value: Tree, data: st.DataObject) -> None:
    compiled = compile_schema(Tree)
    wire = compiled.encode(value.model_dump(mode="json"))
    content = dump_json(wire)
    final = compiled.parse(content)
    assert final == value
    shown = _progress_items(compiled, content, _cuts(data.draw, len(content)))
    want = _strip_none(_dump(final))
    for partial in shown:
        assert type(partial).__name__ == "PartialTree"
        got = _strip_none(partial.model_dump(mode="json"))
        assert consistent(got, want), (got, want)
    if shown:
        assert _strip_none(shown[-1].model_dump(mode="json")) == want  # the complete reply, as a partial


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(-100, 100), max_size=6), st.data())
def test_partials_of_a_wrapped_root_are_consistent(value: list[int], data: st.DataObject) -> None:
    compiled = compile_schema(list[int])  # the wire wraps a non-object root
    content = dump_json(compiled.encode(value))
    assert compiled.parse(content) == value
    for partial in _progress_items(compiled, content, _cuts(data.draw, len(content))):
        assert isinstance(partial, list)
        assert partial == value[: len(partial)]


def test_chat_stream_reads_every_data_line_form() -> None:
    stream = ChatStream()
    raw = (
        b": keep-alive\n\n"
        b'data:{"choices":[{"delta":{"content":"a"}}]}\n\n'  # no space after the colon
        b'event: message\ndata: {"choices":\ndata: [{"delta":{"content":"b"}}]}\n\n'  # one event, two data lines
        b'data: {"choices":[{"delta":{"content":" c"}}]}\n\n'  # the content's own leading space is kept
        b"data: [DONE]"  # no blank line at the end
    )
    text = stream.feed(raw)
    assert not stream.done
    stream.close()
    assert stream.done
    assert text == "ab c"
    assert stream.content == "ab c"


# -- the SSE reader's inline path for the usual event agrees with the general one --------------------------

_piece = st.text(max_size=6)
_sse_events = st.lists(
    st.one_of(
        st.builds(lambda t: {"choices": [{"index": 0, "delta": {"content": t}}]}, _piece),
        st.builds(
            lambda t: {"choices": [{"index": 0, "delta": {"role": "assistant", "content": t}}]}, _piece
        ),
        st.builds(lambda t: {"choices": [{"index": 0, "delta": {"reasoning": t}}]}, _piece),
        st.builds(
            lambda t: {"choices": [{"index": 0, "delta": {"content": t}, "finish_reason": "length"}]}, _piece
        ),
        st.builds(
            lambda t: {
                "choices": [{"index": 0, "delta": {"content": t}, "logprobs": {"content": [{"t": t}]}}]
            },
            _piece,
        ),
        st.builds(
            lambda t: {"id": "x", "choices": [{"index": 0, "delta": {"content": t}, "finish_reason": None}]},
            _piece,
        ),
        st.just({"choices": [], "usage": {"total_tokens": 7}, "time_info": {"total_time": 0.1}}),
        st.just({"choices": [{"index": 0, "delta": {"content": None}}]}),
        st.just({"choices": ["not a choice"]}),
        st.just(["not", "a", "chunk"]),
    ),
    max_size=12,
)


def _sse_state(stream: ChatStream) -> Any:
    return (stream.content, stream.completion(), stream.events, stream.done)


@settings(max_examples=200, deadline=None)
@given(_sse_events, st.data())
def test_chat_stream_inline_path_matches_the_general_reader(events: list[Any], data: st.DataObject) -> None:
    raw = [b"data: " + orjson.dumps(e) for e in events] + [b"data: {broken", b": keep-alive", b"data: [DONE]"]
    wire = b"".join(r + b"\n\n" for r in raw)
    general = ChatStream()  # every event through the general reader, one by one
    for r in raw:
        general._event(r)
    fed = ChatStream()
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(wire) - 1)), max_size=10)))
    texts = [fed.feed(wire[a:b]) for a, b in itertools.pairwise([0, *cuts, len(wire)])]
    fed.close()
    assert "".join(texts) == fed.content
    assert _sse_state(fed) == _sse_state(general)


class _CountingJson(IncrementalJson):
    __slots__ = ("calls",)

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def feed(self, text: str) -> bool:
        self.calls += 1
        return super().feed(text)


def test_progress_parses_a_long_reply_once_per_window_not_once_per_event() -> None:
    value = {"items": [{"n": i, "word": "w" * (i % 7)} for i in range(400)]}
    content = json.dumps(value, separators=(",", ":"))
    compiled = compile_schema({"type": "object", "properties": {"items": {"type": "array"}}})
    progress = Progress(compiled)
    progress.begin(StreamStart(200, {"content-type": "text/event-stream"}))
    counting = progress._json = _CountingJson()
    events = 0
    shown = []
    for i in range(0, len(content), 3):
        event = {"choices": [{"index": 0, "delta": {"content": content[i : i + 3]}}]}
        item = progress.feed(b"data: " + orjson.dumps(event) + b"\n\n")
        events += 1
        if item is not NOTHING:
            shown.append(item)
    assert counting.done and counting.root == value
    assert shown[-1] == value  # the whole value is shown the moment it completes
    assert counting.calls < events / 3, (counting.calls, events)
