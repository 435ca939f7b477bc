"""Request body encodings on the wire (`Extractor(payload=...)`), over real HTTP, sync and async: what
arrives for each setting, that nothing but JSON goes to a server whose record does not accept it, and the
demotion to JSON (once, remembered) when a server refuses an encoding."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pydantic
import pytest
from _raw_servers import COMPLETION, RawServer, response
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from extract import Extractor
from extract.cli import main
from extract.core import aextract, extract
from extract.errors import ConfigurationError, ExtractError, InputError
from extract.providers import PROVIDERS
from extract.testing import TestServer
from extract.transports.encoding import (
    GZIP_THRESHOLD_BYTES,
    MSGPACK_AVAILABLE,
    PAYLOAD_SETTINGS,
    choose_encoding,
)

pytestmark = pytest.mark.timeout(120)

MODEL = "llama3.1-8b"
SHORT = "Ada Lovelace was 36 years old."
# prose well above the gzip threshold once wrapped in a request body
LONG = SHORT + " " + " ".join(f"Paragraph {i}: she wrote notes on the Analytical Engine." for i in range(120))


class Person(pydantic.BaseModel):
    name: str
    age: int


@pytest.fixture(autouse=True)
def _no_provider_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # a CEREBRAS_BASE_URL pointing at a test server would make a generic URL a Cerebras one
    for name in ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _run(ex: Extractor, text: str, use_async: bool, **kw: Any) -> Any:
    if use_async:
        return asyncio.run(ex.aextract(Person, text, full=True, **kw))
    return ex.extract(Person, text, full=True, **kw)


def _arrived(server: TestServer) -> list[tuple[str, int | None]]:
    return [(entry.encoding, entry.status) for entry in server.request_log]


both = pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
needs_msgpack = pytest.mark.skipif(not MSGPACK_AVAILABLE, reason="no msgpack library (the `fast` extra)")


# ---- auto: gzip above the threshold, JSON below ---------------------------------------------------------


@both
def test_auto_sends_json_below_the_threshold_and_gzip_above(use_async: bool) -> None:
    with TestServer() as server, Extractor(base_url=server.base_url, model=MODEL, provider="cerebras") as ex:
        assert ex.payload == "auto"
        _run(ex, SHORT, use_async)
        _run(ex, LONG, use_async)
        log = server.request_log
    assert [(e.encoding, e.status) for e in log] == [("json", 200), ("gzip", 200)]
    small, large = log
    assert small.wire_bytes < GZIP_THRESHOLD_BYTES <= large.body_bytes
    assert large.content_encoding == "gzip" and large.content_type == "application/json"
    assert large.wire_bytes < large.body_bytes / 3  # repetitive prose: gzip saves most of it


# ---- each explicit setting ------------------------------------------------------------------------------


@both
@pytest.mark.parametrize("setting", PAYLOAD_SETTINGS)
def test_each_setting_arrives_as_chosen_and_decodes_to_the_same_body(setting: str, use_async: bool) -> None:
    if "msgpack" in setting and not MSGPACK_AVAILABLE:
        pytest.skip("no msgpack library")
    with TestServer() as server:
        with Extractor(base_url=server.base_url, model=MODEL, provider="cerebras", payload=setting) as ex:
            result = _run(ex, SHORT, use_async, seed=2**63 + 5)  # a u64 seed survives msgpack too
        with Extractor(base_url=server.base_url, model=MODEL, provider="cerebras", payload="json") as plain:
            _run(plain, SHORT, use_async, seed=2**63 + 5)
        (entry, plain_entry) = server.request_log
        encoded_body, json_body = server.requests
    expected = "json" if setting == "auto" else setting  # a short body stays JSON under auto
    assert (entry.encoding, entry.status) == (expected, 200)
    assert plain_entry.encoding == "json"
    assert isinstance(result.value, Person)
    assert dict(encoded_body) == dict(json_body)
    assert encoded_body["seed"] == 2**63 + 5


def test_an_invalid_setting_is_a_configuration_error_listing_the_settings() -> None:
    with TestServer() as server:
        for bad in ("zstd", "GZIP", "", None, 1):
            with pytest.raises(ConfigurationError) as info:
                Extractor(base_url=server.base_url, model=MODEL, payload=bad)  # type: ignore[arg-type]
            assert all(s in str(info.value) for s in PAYLOAD_SETTINGS)
        with pytest.raises(ConfigurationError, match="msgpack\\+gzip"):
            extract(Person, SHORT, model=MODEL, base_url=server.base_url, payload="brotli")
        assert server.request_log == []


@both
def test_module_functions_pass_the_setting_through(use_async: bool) -> None:
    with TestServer() as server:
        options: dict[str, Any] = {"base_url": server.base_url, "provider": "cerebras", "payload": "gzip"}
        if use_async:
            asyncio.run(aextract(Person, SHORT, model=MODEL, **options))
        else:
            extract(Person, SHORT, model=MODEL, **options)
        assert _arrived(server) == [("gzip", 200)]


def test_extract_many_passes_the_setting_through() -> None:
    from extract.batch import extract_many

    with TestServer() as server:
        docs = [SHORT, "Grace Hopper was 85."]
        outcomes = list(
            extract_many(
                Person, docs, base_url=server.base_url, model=MODEL, provider="cerebras", payload="gzip"
            )
        )
        assert len(outcomes) == 2
        assert {e.encoding for e in server.request_log} == {"gzip"}


def test_cli_run_payload_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps(Person.model_json_schema()))
    doc = tmp_path / "a.txt"
    doc.write_text(SHORT)
    with TestServer() as server:
        common = ["--base-url", server.base_url, "--provider", "cerebras", "--model", MODEL, "-q"]
        assert main(["run", str(schema), str(doc), "--payload", "gzip", *common]) == 0
        assert main(["run", str(schema), str(doc), *common]) == 0
        assert _arrived(server) == [("gzip", 200), ("json", 200)]
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["run", str(schema), str(doc), "--payload", "zstd", *common])
    assert "invalid choice" in capsys.readouterr().err


# ---- never an encoding the record does not accept -------------------------------------------------------


@both
@pytest.mark.parametrize("setting", PAYLOAD_SETTINGS)
def test_a_generic_server_only_ever_gets_json(setting: str, use_async: bool) -> None:
    # the server would decode anything; the client must still send JSON (the record accepts no encoding)
    with TestServer(accept_encodings=frozenset({"gzip", "msgpack"})) as server:
        with Extractor(base_url=server.base_url, model=MODEL, payload=setting) as ex:
            assert ex.provider == "generic"
            _run(ex, LONG, use_async)
            _run(ex, SHORT, use_async)
        for entry in server.request_log:
            assert entry.encoding == "json" and entry.content_encoding == ""
            assert entry.content_type == "application/json"
            assert entry.wire_bytes == entry.body_bytes


@both
@pytest.mark.parametrize("setting", PAYLOAD_SETTINGS)
def test_the_llamacpp_flavor_only_ever_gets_json(setting: str, use_async: bool) -> None:
    with TestServer(flavor="llamacpp") as server:
        with Extractor(base_url=server.base_url, model=MODEL, provider="llamacpp", payload=setting) as ex:
            _run(ex, LONG, use_async)
        assert server.request_log and {e.encoding for e in server.request_log} == {"json"}
        assert all(e.status != 415 for e in server.request_log)


_RECORDS = [name for name, record in PROVIDERS.items() if not record.embedded]
_SETTINGS = st.sampled_from(PAYLOAD_SETTINGS)


@pytest.fixture(scope="module")
def open_server() -> Iterator[TestServer]:
    with TestServer(accept_encodings=frozenset({"gzip", "msgpack"})) as server:
        yield server


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(setting=_SETTINGS, record=st.sampled_from(_RECORDS), words=st.integers(0, 1200))
def test_what_arrives_is_always_what_the_record_accepts(
    open_server: TestServer, setting: str, record: str, words: int
) -> None:
    """Whatever the setting, record and size: the server (which would decode anything) receives only an
    encoding the record's model row lists, and exactly the one `choose_encoding` picks for that size."""
    text = SHORT + " word" * words
    before = len(open_server.request_log)
    with Extractor(base_url=open_server.base_url, model=MODEL, provider=record, payload=setting) as ex:
        ex.extract(Person, text, max_attempts=1)
        accepted = ex.record.row(MODEL).encodings
    log = open_server.request_log[before:]
    bodies = open_server.requests[before:]
    assert log and len(log) == len(bodies)
    for entry, body in zip(log, bodies, strict=True):
        json_size = len(orjson.dumps(dict(body)))  # the size the client measured before choosing
        assert entry.encoding == choose_encoding(setting, json_size, accepted)
        if not accepted:
            assert entry.encoding == "json" and entry.content_encoding == ""
            assert entry.content_type == "application/json"
        elif entry.encoding != "json":
            assert set(entry.encoding.split("+")) <= accepted


# ---- refusal: demote to JSON once, remember it ----------------------------------------------------------


@both
def test_a_415_demotes_to_json_once_and_is_remembered(
    use_async: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        TestServer(accept_encodings=frozenset()) as server,
        Extractor(base_url=server.base_url, model=MODEL, provider="cerebras", payload="gzip") as ex,
        caplog.at_level(logging.WARNING, logger="extract"),
    ):
        first = _run(ex, LONG, use_async)
        assert _arrived(server) == [("gzip", 415), ("json", 200)]  # exactly one extra request
        second = _run(ex, LONG, use_async)
        assert _arrived(server)[2:] == [("json", 200)]  # straight to JSON
    assert len(first.attempts) == 1 and first.attempts[0].status_code == 200
    assert len(second.attempts) == 1
    warnings = [r for r in caplog.records if "refused gzip" in r.getMessage()]
    assert len(warnings) == 1
    # the output mode was not demoted: the JSON resend still asks for the strict schema
    sent = [body for body in server.requests if body]  # the refused body was never decoded
    assert len(sent) == 2 and all(body["response_format"]["type"] == "json_schema" for body in sent)


@needs_msgpack
def test_a_refused_combination_falls_back_a_step_per_refusal() -> None:
    # the server takes gzip but not msgpack: msgpack+gzip is refused once, then gzip is used
    with TestServer(accept_encodings=frozenset({"gzip"})) as server:
        with Extractor(
            base_url=server.base_url, model=MODEL, provider="cerebras", payload="msgpack+gzip"
        ) as ex:
            ex.extract(Person, SHORT)
            ex.extract(Person, SHORT)
        assert _arrived(server) == [("msgpack+gzip", 415), ("json", 200), ("gzip", 200)]


def test_refusal_memory_is_per_model() -> None:
    with TestServer(accept_encodings=frozenset()) as server:
        with Extractor(base_url=server.base_url, model=MODEL, provider="cerebras", payload="gzip") as ex:
            ex.extract(Person, SHORT)
            ex.extract(Person, SHORT, model="qwen-3-235b-a22b-instruct-2507")
        assert _arrived(server) == [("gzip", 415), ("json", 200), ("gzip", 415), ("json", 200)]


def _ignores_content_encoding(conn: socket.socket, request: bytes) -> None:
    """A server that ignores Content-Encoding and parses every body as JSON (the provider's 400)."""
    head = request.partition(b"\r\n\r\n")[0].lower()
    if b"content-encoding: gzip" in head:
        error = {
            "message": "The request body is not valid JSON.",
            "type": "invalid_request_error",
            "param": None,
            "code": "wrong_api_format",
        }
        conn.sendall(response(400, orjson.dumps(error)))
    else:
        conn.sendall(response(200, COMPLETION))


class Name(pydantic.BaseModel):
    name: str


@both
def test_a_not_valid_json_400_is_an_encoding_refusal_not_a_mode_refusal(use_async: bool) -> None:
    with RawServer(_ignores_content_encoding) as server:
        ex = Extractor(base_url=server.base_url, model="m", provider="cerebras", payload="gzip")
        try:
            for _ in range(2):
                if use_async:
                    result = asyncio.run(ex.aextract(Name, LONG, full=True))
                else:
                    result = ex.extract(Name, LONG, full=True)
                assert result.value == Name(name="Ada") and result.mode == "json_schema"
        finally:
            ex.close()
        heads = [r.partition(b"\r\n\r\n")[0].lower() for r in server.requests]
    assert [b"content-encoding: gzip" in h for h in heads] == [True, False, False]
    bodies = [orjson.loads(r.partition(b"\r\n\r\n")[2]) for r in server.requests[1:]]
    assert all(b["response_format"]["type"] == "json_schema" for b in bodies)


@pytest.mark.parametrize("setting", ["json", "gzip"])
def test_a_request_refused_as_json_too_keeps_its_encoding_and_ends_without_a_loop(setting: str) -> None:
    """A 400 "not valid JSON" that the JSON resend gets as well is the request's fault, not the encoding's:
    nothing is remembered (a later good request is still gzipped), and the attempts stay bounded."""
    error = {"message": "The request body is not valid JSON.", "code": "wrong_api_format"}
    state = {"broken": True}

    def handler(conn: socket.socket, request: bytes) -> None:
        conn.sendall(response(400, orjson.dumps(error)) if state["broken"] else response(200, COMPLETION))

    def gzipped(requests: list[bytes]) -> list[bool]:
        return [b"content-encoding: gzip" in r.partition(b"\r\n\r\n")[0].lower() for r in requests]

    with (
        RawServer(handler) as server,
        Extractor(base_url=server.base_url, model="m", provider="cerebras", payload=setting) as ex,
    ):
        with pytest.raises(ExtractError):
            ex.extract(Name, LONG)
        # each output mode (json_schema, json_object, prompt): the body as chosen, then once as JSON
        per_mode = [True, False] if setting == "gzip" else [False]
        assert gzipped(server.requests) == per_mode * 3
        state["broken"] = False
        before = len(server.requests)
        assert ex.extract(Name, LONG) == Name(name="Ada")
        assert gzipped(server.requests[before:]) == [setting == "gzip"]


# ---- values msgpack cannot carry ------------------------------------------------------------------------


@needs_msgpack
@pytest.mark.parametrize("setting", ["msgpack", "msgpack+gzip", "gzip", "json"])
def test_an_integer_beyond_64_bits_is_an_input_error_before_anything_is_sent(setting: str) -> None:
    with TestServer() as server:
        with Extractor(base_url=server.base_url, model=MODEL, provider="cerebras", payload=setting) as ex:
            with pytest.raises(InputError, match="could not be encoded as JSON"):
                ex.extract(Person, SHORT, seed=2**64)
            with pytest.raises(InputError):
                ex.extract(Person, SHORT, seed=-(2**63) - 1)
        assert server.request_log == []


@needs_msgpack
def test_values_outside_plain_json_travel_in_msgpack_as_json_renders_them() -> None:
    extra = {"x_nan": float("nan"), "x_tuple": (1, 2)}
    with TestServer() as server:
        for setting in ("msgpack", "json"):
            with Extractor(base_url=server.base_url, model=MODEL, provider="cerebras", payload=setting) as ex:
                ex.extract(Person, SHORT, extra_body=extra)
        as_msgpack, as_json = server.requests
    assert server.request_log[0].encoding == "msgpack"
    assert as_msgpack["x_nan"] is None and as_msgpack["x_tuple"] == [1, 2]
    assert dict(as_msgpack) == dict(as_json)
