"""A call's arguments are checked before anything is sent: unknown options, extra_body, texts, schemas."""

from __future__ import annotations

import asyncio
from typing import Any

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

import extract
from extract.core import Extractor, aextract
from extract.errors import ConfigurationError, InputError, SchemaError, UnknownOptionError
from extract.testing import TestServer

MODEL = "llama3.1-8b"
TEXT = "Ada Lovelace was 36 years old."


class Person(pydantic.BaseModel):
    name: str
    age: int


@pytest.fixture
def srv() -> Any:
    with TestServer() as server:
        yield server


@pytest.fixture
def ex(srv: TestServer) -> Any:
    with Extractor(base_url=srv.base_url, model=MODEL) as extractor:
        yield extractor


# -- unknown options ----------------------------------------------------------------------------------


def test_a_typo_is_an_error_naming_the_closest_option(ex: Extractor, srv: TestServer) -> None:
    with pytest.raises(UnknownOptionError) as info:
        ex.extract(Person, TEXT, temprature=0.2)
    message = str(info.value)
    assert "'temprature'" in message and "did you mean 'temperature'?" in message
    assert "instructions" in message and "extra_body" in message  # the valid options and the way out
    assert info.value.option == "temprature" and info.value.suggestion == "temperature"
    assert isinstance(info.value, ConfigurationError) and isinstance(info.value, TypeError)
    assert srv.request_count == 0


def test_every_entry_point_checks_its_options(srv: TestServer) -> None:
    with pytest.raises(UnknownOptionError, match=r"'max_atempts'.*'max_attempts'"):
        Extractor(base_url=srv.base_url, model=MODEL, max_atempts=2)
    with pytest.raises(UnknownOptionError, match=r"'bse_url'.*'base_url'"):
        extract.extract(Person, TEXT, bse_url=srv.base_url, model=MODEL)
    with pytest.raises(UnknownOptionError, match=r"'instruction'.*'instructions'"):
        asyncio.run(aextract(Person, TEXT, base_url=srv.base_url, model=MODEL, instruction="x"))
    with pytest.raises(UnknownOptionError, match="'zzz'"):
        asyncio.run(Extractor(base_url=srv.base_url, model=MODEL).aextract(Person, TEXT, zzz=1))
    assert srv.request_count == 0


def test_known_request_fields_still_go_out(ex: Extractor, srv: TestServer) -> None:
    ex.extract(Person, TEXT, temperature=0.1, top_p=0.9, seed=7, max_completion_tokens=300, stop=["\n\n"])
    body = srv.requests[-1]
    assert (body["temperature"], body["top_p"], body["seed"], body["max_completion_tokens"]) == (
        0.1,
        0.9,
        7,
        300,
    )
    assert body["stop"] == ["\n\n"]


def test_extra_body_reaches_the_server(srv: TestServer) -> None:
    with Extractor(base_url=srv.base_url, model=MODEL, extra_body={"vendor_flag": True}) as ex:
        ex.extract(Person, TEXT, extra_body={"my_field": {"x": 1}})
        body = srv.requests[-1]
        assert body["vendor_flag"] is True and body["my_field"] == {"x": 1}
        asyncio.run(ex.aextract(Person, TEXT, extra_body={"other": 2}))
        body = srv.requests[-1]
        assert body["vendor_flag"] is True and body["other"] == 2 and "my_field" not in body
        ex.extract(Person, TEXT)
        assert "my_field" not in srv.requests[-1] and srv.requests[-1]["vendor_flag"] is True


def test_extra_body_cannot_replace_the_messages(ex: Extractor, srv: TestServer) -> None:
    ex.extract(Person, TEXT, extra_body={"messages": [], "model": "other"})
    body = srv.requests[-1]
    assert body["model"] == MODEL and body["messages"]
    with pytest.raises(ConfigurationError, match="extra_body must be a dict"):
        ex.extract(Person, TEXT, extra_body=[("a", 1)])  # type: ignore[arg-type]


# -- texts ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 42, 3.5, b"Ada", bytearray(b"Ada"), ["Ada"], [], {"role": "user"}])
def test_a_text_that_is_not_a_str_is_an_input_error(ex: Extractor, srv: TestServer, bad: Any) -> None:
    with pytest.raises(InputError, match="text must be a str") as info:
        ex.extract(Person, bad)
    if isinstance(bad, (bytes, bytearray)):
        assert "decode" in str(info.value)
    with pytest.raises(InputError):
        asyncio.run(ex.aextract(Person, bad))
    assert srv.request_count == 0


def test_lone_surrogates_name_the_offset_and_the_fix(ex: Extractor, srv: TestServer) -> None:
    with pytest.raises(InputError, match=r"offset 4.*errors='replace'"):
        ex.extract(Person, "Ada \udcff")
    with pytest.raises(InputError, match=r"message 1's content.*offset 1"):
        ex.extract(Person, [{"role": "system", "content": "x"}, {"role": "user", "content": "a\ud800"}])
    with pytest.raises(InputError, match="offset 4"):
        extract.extract(Person, "Ada \udcff", base_url=srv.base_url, model=MODEL)
    assert srv.request_count == 0


@given(st.text(max_size=20), st.integers(0xD800, 0xDFFF), st.text(max_size=20))
def test_any_lone_surrogate_is_found_at_its_offset(before: str, code: int, after: str) -> None:
    from extract._engine.inputs import check_text

    text = before + chr(code) + after  # st.text never draws surrogates itself
    with pytest.raises(InputError, match=f"offset {len(before)}"):
        check_text(text)


def test_valid_unicode_text_is_sent(ex: Extractor, srv: TestServer) -> None:
    ex.extract(Person, "Ada Lovelace, née Byron, was 36 🎉")
    assert srv.request_count == 1


# -- schemas ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[1, 2], None, 7, (Person,), b"{}"])
def test_a_schema_of_the_wrong_kind_is_named(ex: Extractor, srv: TestServer, bad: Any) -> None:
    with pytest.raises(SchemaError, match="schema must be a pydantic model class"):
        ex.extract(bad, TEXT)
    assert srv.request_count == 0


def test_module_level_calls_check_the_text_before_choosing_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    # no key, no URL: a backend would be the embedded model; the bad text must be reported instead
    for name in ("CEREBRAS_API_KEY", "CEREBRAS_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EXTRACT_LOCAL_MODEL", "/nonexistent/model.gguf")
    with pytest.raises(InputError, match="text must be a str"):
        extract.extract(Person, None)
    with pytest.raises(InputError, match="offset 4"):
        asyncio.run(extract.aextract(Person, "Ada \udcff"))
    with pytest.raises(SchemaError, match="schema must be"):
        extract.extract([1, 2], TEXT)
