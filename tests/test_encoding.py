"""Request body encodings (extract.transports.encoding): round trips, the exact headers, what msgpack does
with values outside the plain JSON model, the choice of encoding and the refusal predicate."""

from __future__ import annotations

import contextlib
import gzip
import math
import threading
from collections.abc import Iterator
from enum import Enum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgpack
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from extract.errors import ConfigurationError
from extract.transports import encoding
from extract.transports.encoding import (
    ENCODINGS,
    GZIP_THRESHOLD_BYTES,
    PAYLOAD_SETTINGS,
    choose_encoding,
    decode_body,
    encode_body,
    gzip_backend,
    is_encoding_refusal,
    msgpack_backend,
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(blacklist_categories=("Cs",)))
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=30,
)
bodies = st.dictionaries(st.text(max_size=10), json_values, max_size=6)


@settings(max_examples=150, deadline=None)
@given(body=bodies, enc=st.sampled_from(ENCODINGS))
def test_round_trip(body: dict[str, Any], enc: encoding.Encoding) -> None:
    sent = encode_body(body, enc)
    assert sent.encoding == enc
    assert decode_body(sent.content, sent.headers) == body


@pytest.mark.parametrize(
    ("enc", "headers"),
    [
        ("json", {"Content-Type": "application/json"}),
        ("gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}),
        ("msgpack", {"Content-Type": "application/vnd.msgpack"}),
        ("msgpack+gzip", {"Content-Type": "application/vnd.msgpack", "Content-Encoding": "gzip"}),
    ],
)
def test_headers_are_the_providers(enc: encoding.Encoding, headers: dict[str, str]) -> None:
    assert dict(encode_body({"a": 1}, enc).headers) == headers


def test_json_bytes_are_reused_and_gzip_is_standard() -> None:
    body = {"messages": [{"role": "user", "content": "x" * 10_000}]}
    raw = orjson.dumps(body)
    assert encode_body(body, "json", json_bytes=raw).content is raw
    packed = encode_body(body, "gzip", json_bytes=raw).content
    assert gzip.decompress(packed) == raw
    assert len(packed) < len(raw) // 10


@pytest.mark.parametrize("name", ["zlib", "isal", "zlib-ng"])
def test_every_gzip_backend_writes_standard_gzip(name: str) -> None:
    try:
        _, compress = gzip_backend(name)
    except ConfigurationError:
        pytest.skip(f"{name} is not installed")
    data = orjson.dumps({"text": "the quick brown fox " * 500})
    assert gzip.decompress(compress(data)) == data


@pytest.mark.parametrize("name", ["ormsgpack", "msgpack"])
def test_every_msgpack_backend_is_read_by_the_reference_unpacker(name: str) -> None:
    try:
        backend = msgpack_backend(name)
    except ConfigurationError:
        pytest.skip(f"{name} is not installed")
    assert backend is not None
    body = {"model": "m", "n": [1, -(2**63), 2**64 - 1, 0.1, None, True], "s": "é\u2028"}
    assert msgpack.unpackb(backend[1](body), raw=False) == body


def test_unknown_backends_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="gzip backend"):
        gzip_backend("brotli")
    with pytest.raises(ConfigurationError, match="msgpack backend"):
        msgpack_backend("cbor")


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize("enc", ["msgpack", "msgpack+gzip"])
def test_msgpack_carries_what_json_would(enc: encoding.Encoding) -> None:
    """Values outside the plain JSON model travel as orjson renders them: nan -> null, tuple -> list,
    enum -> its value, a str subclass -> str."""

    class Name(str):
        pass

    body = {
        "t": 0.5,
        "nan": math.nan,
        "inf": -math.inf,
        "tuple": (1, 2),
        "enum": Colour.RED,
        "name": Name("x"),
    }
    sent = encode_body(body, enc)
    assert decode_body(sent.content, sent.headers) == orjson.loads(orjson.dumps(body))
    assert decode_body(sent.content, sent.headers)["nan"] is None


@pytest.mark.parametrize("enc", ENCODINGS)
@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, "\ud800"])
def test_what_json_refuses_every_encoding_refuses(enc: encoding.Encoding, value: object) -> None:
    with pytest.raises(orjson.JSONEncodeError):
        encode_body({"v": value}, enc)


@pytest.mark.parametrize("enc", ENCODINGS)
def test_non_string_keys_fail_alike(enc: encoding.Encoding) -> None:
    with pytest.raises(TypeError):
        encode_body({"v": {1: "a"}}, enc)


def test_unknown_encoding_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="json, gzip, msgpack, msgpack\\+gzip"):
        encode_body({}, "brotli")  # type: ignore[arg-type]


def test_decode_refuses_a_body_that_does_not_match_its_headers() -> None:
    with pytest.raises(ValueError, match="gzip"):
        decode_body(b"{}", {"content-encoding": "gzip"})
    with pytest.raises(ValueError, match="Content-Encoding"):
        decode_body(b"{}", {"content-encoding": "br"})
    with pytest.raises(ValueError, match="JSON"):
        decode_body(msgpack.packb({"a": 1}), {"content-type": "application/json"})


# ------------------------------------------------------------------------------------------- over HTTP


@pytest.fixture
def echo_server() -> Iterator[str]:
    """Decodes what it receives with the standard library's gzip and the reference msgpack, per the
    headers alone (what the provider does), and answers the decoded body as JSON."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers["content-length"]))
            if self.headers.get("content-encoding") == "gzip":
                data = gzip.decompress(data)
            if self.headers.get("content-type") == "application/vnd.msgpack":
                value = msgpack.unpackb(data, raw=False)
                status = 200
            elif self.headers.get("content-type") == "application/json":
                value = orjson.loads(data)
                status = 200
            else:
                value, status = {"message": "unsupported media type"}, 415
            out = orjson.dumps(value)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/chat/completions"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("enc", ENCODINGS)
def test_a_server_reading_the_headers_gets_the_body(echo_server: str, enc: encoding.Encoding) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "é " * 5000}], "temperature": 0.25}
    sent = encode_body(body, enc)
    with httpx.Client() as client:
        response = client.post(echo_server, content=sent.content, headers=dict(sent.headers))
    assert response.status_code == 200
    assert response.json() == body


# ------------------------------------------------------------------------------------------- choosing

subsets = st.frozensets(st.sampled_from(ENCODINGS))


@settings(max_examples=400, deadline=None)
@given(
    setting=st.sampled_from(PAYLOAD_SETTINGS),
    size=st.integers(min_value=0, max_value=10**7),
    accepted=subsets,
    refused=subsets,
)
def test_never_an_unaccepted_or_refused_encoding(
    setting: str, size: int, accepted: frozenset[str], refused: frozenset[str]
) -> None:
    chosen = choose_encoding(setting, size, accepted, refused)
    assert chosen in ENCODINGS
    if chosen == "json":
        return
    halves = set(chosen.split("+"))
    assert chosen in accepted or (chosen == "msgpack+gzip" and halves <= accepted)
    assert chosen not in refused
    assert not (halves & refused), "a refused half blocks the combination"
    if setting == "auto":
        assert chosen == "gzip"
        assert size >= GZIP_THRESHOLD_BYTES
    if setting == "json":
        pytest.fail("payload='json' must always send JSON")


def test_auto_gzips_from_the_threshold() -> None:
    everything = frozenset(ENCODINGS)
    assert choose_encoding("auto", GZIP_THRESHOLD_BYTES - 1, everything) == "json"
    assert choose_encoding("auto", GZIP_THRESHOLD_BYTES, everything) == "gzip"
    assert choose_encoding("auto", 10**6, everything, frozenset({"gzip"})) == "json"
    assert choose_encoding("auto", 10**6, frozenset()) == "json"
    assert choose_encoding("auto", 100, everything, threshold=50) == "gzip"


def test_explicit_choices_degrade_to_the_closest_usable() -> None:
    everything = frozenset(ENCODINGS)
    assert choose_encoding("msgpack+gzip", 10, everything) == "msgpack+gzip"
    assert choose_encoding("msgpack+gzip", 10, frozenset({"msgpack", "gzip"})) == "msgpack+gzip"
    assert choose_encoding("msgpack+gzip", 10, everything, frozenset({"msgpack"})) == "gzip"
    assert choose_encoding("msgpack+gzip", 10, everything, frozenset({"gzip"})) == "msgpack"
    assert choose_encoding("msgpack", 10, frozenset({"gzip"})) == "json"
    assert choose_encoding("gzip", 10, everything, frozenset({"gzip"})) == "json"


def test_bad_setting_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="auto, json, gzip, msgpack, msgpack\\+gzip"):
        choose_encoding("zstd", 10, frozenset())


# ------------------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (415, None, True),
        (415, b"", True),
        (400, {"message": "Request body is not valid JSON", "type": "invalid_request_error"}, True),
        (400, {"message": "The request body is not valid JSON.", "code": "wrong_api_format"}, True),
        (400, b"Unsupported Content-Encoding: gzip", True),
        (422, {"detail": "JSONDecodeError: Expecting value: line 1 column 1 (char 0)"}, True),
        (400, {"error": {"message": "Invalid Content-Type header", "code": ""}}, True),
        (
            400,
            {"message": "json_schema is invalid", "param": "response_format", "code": "wrong_api_format"},
            False,
        ),
        (400, {"message": "'tools' is incompatible with 'response_format'"}, False),
        (
            400,
            {"message": "Current length is 42328 while limit is 40000", "code": "context_length_exceeded"},
            False,
        ),
        (429, {"message": "content type"}, False),
        (500, b"gzip", False),
        (200, b"", False),
    ],
)
def test_is_encoding_refusal(status: int, body: object, expected: bool) -> None:
    assert is_encoding_refusal(status, body) is expected


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=64),
    headers=st.sampled_from(
        [
            {"content-type": "application/vnd.msgpack"},
            {"content-type": "application/json"},
            {"content-type": "application/vnd.msgpack", "content-encoding": "gzip"},
            {"Content-Encoding": "GZIP"},
        ]
    ),
)
def test_decode_of_garbage_is_a_value_error(data: bytes, headers: dict[str, str]) -> None:
    """What a server that decodes with `decode_body` gets from any bytes: a value or a ValueError."""
    with contextlib.suppress(ValueError):
        decode_body(data, headers)


def test_without_a_msgpack_library(monkeypatch: pytest.MonkeyPatch) -> None:
    """msgpack is optional: without it, asking for it is an actionable error and the choice avoids it."""
    monkeypatch.setattr(encoding, "_MSGPACK", None)
    monkeypatch.setattr(encoding, "MSGPACK_AVAILABLE", False)
    with pytest.raises(ConfigurationError, match=r"extract-llm\[fast\]"):
        encode_body({"a": 1}, "msgpack")
    everything = frozenset(ENCODINGS)
    assert choose_encoding("msgpack", 10, everything) == "json"
    assert choose_encoding("msgpack+gzip", 10, everything) == "gzip"


def test_default_backends_are_the_fastest_installed() -> None:
    assert gzip_backend()[0] == "isal"
    backend = msgpack_backend()
    assert backend is not None and backend[0] == "ormsgpack"


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        ({"Content-Type": "application/json", "Content-Encoding": "br"}, b"{}"),
        ({"Content-Type": "application/json", "Content-Encoding": "gzip"}, b"not gzip at all"),
        ({"Content-Type": "application/json"}, msgpack.packb({"model": "gpt-oss-120b", "messages": []})),
    ],
)
def test_the_test_servers_refusals_are_recognised(headers: dict[str, str], content: bytes) -> None:
    """What extract.testing.TestServer answers a body it cannot read is an encoding refusal, and an
    ordinary bad request on a JSON body is not."""
    from extract.testing import TestServer

    with TestServer() as server, httpx.Client() as client:
        url = server.base_url + "/chat/completions"
        refused = client.post(url, content=content, headers=headers)
        assert refused.status_code >= 400
        parsed = refused.json() if "json" in refused.headers.get("content-type", "") else refused.text
        assert is_encoding_refusal(refused.status_code, parsed)
        assert is_encoding_refusal(refused.status_code, refused.content)
        ordinary = client.post(url, json={"model": "gpt-oss-120b", "messages": "not a list"})
        assert ordinary.status_code >= 400
        assert not is_encoding_refusal(ordinary.status_code, ordinary.json())


def test_the_auto_threshold_follows_the_benchmarks_rule() -> None:
    """benchmarks/bench_payload.py derives the threshold as the smallest body whose gzip saves one TCP
    segment within the CPU target; the rule itself, on made-up sweep figures."""
    from benchmarks.bench_payload import MSS, derive_threshold, request_cpu_at

    points = [(2000, 0.001), (200_000, 0.002)]
    assert request_cpu_at(points, 2000) == pytest.approx(0.001)
    assert request_cpu_at(points, 101_000) == pytest.approx(0.0015)
    assert request_cpu_at(points, 500) == pytest.approx(0.001)  # never below the smallest measured
    assert request_cpu_at([], 500) is None
    sweep = [
        (2000, 2000 - MSS + 1, 0.0, 0.00001),  # saves one byte short of a segment
        (3000, 3000 - MSS, 0.0, 0.0002),  # saves a segment but costs 20% of an extraction
        (4000, 1000, 0.0, 0.00005),  # pays
        (8000, 2000, 0.0, 0.00008),
    ]
    threshold, lines = derive_threshold(sweep, points)
    assert threshold == 4000
    assert [line.endswith("<- pays") for line in lines] == [False, False, True, True]
    assert derive_threshold(sweep, [])[0] == 3000  # without a CPU baseline only the bytes decide
