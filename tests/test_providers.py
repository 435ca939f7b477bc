"""Provider records, resolve(), the key policy and the error signatures (pure, plus one real-HTTP check)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from extract.core import Extractor
from extract.errors import AuthenticationError, ConfigurationError
from extract.local import LocalTransport
from extract.providers import (
    MODES,
    PROVIDERS,
    REQUEST_FIELDS,
    ModelRow,
    Provider,
    get_provider,
    parse_context_overflow,
    provider_for_url,
    resolve,
)
from extract.schema._profiles import Profile
from extract.testing import TestServer

ROOT = Path(__file__).resolve().parent.parent
NO_ENV: dict[str, str] = {}


# -- the records -------------------------------------------------------------------------------------


def test_every_provider_has_its_record() -> None:
    assert set(PROVIDERS) == {"cerebras", "openai", "llamacpp", "local", "generic"}


@pytest.mark.parametrize("record", list(PROVIDERS.values()), ids=list(PROVIDERS))
def test_records_are_immutable_typed_data(record: Provider) -> None:
    assert isinstance(record.profile, Profile)  # the object, not a name
    assert record.rows[-1].pattern == "*"  # a catch-all row, so any model name works
    for row in record.rows:
        assert isinstance(row, ModelRow)
        assert set(row.modes) <= set(MODES) and row.modes[-1] == "prompt"
        # None: not known (the generic row); a default effort must be one the row takes
        assert set(row.reasoning_efforts or ()) <= {"none", "minimal", "low", "medium", "high"}
        assert row.reasoning_effort is None or row.reasoning_effort in (row.reasoning_efforts or ())
        assert row.encodings <= {"gzip", "msgpack"}
        assert not row.reasoning_efforts or row.reasoning
        assert row.request_fields <= REQUEST_FIELDS
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.name = "x"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.rows[0].modes = ()  # type: ignore[misc]


def test_rows_pick_the_most_specific_pattern() -> None:
    cerebras = PROVIDERS["cerebras"]
    big = cerebras.row("gpt-oss-120b")
    assert big.reasoning and big.reasoning_efforts == ("low", "medium", "high")
    assert big.predicted_outputs and big.logprobs and "gzip" in big.encodings
    assert cerebras.row("llama3.1-8b").context_window == 8192 and not cerebras.row("llama3.1-8b").reasoning
    assert cerebras.row("zai-glm-4.7").reasoning
    assert not cerebras.row("qwen-3-235b-a22b-instruct-2507").reasoning
    assert cerebras.row("gemma-4-31b").pattern == "*"  # an unknown model gets the provider's defaults
    assert PROVIDERS["openai"].row("o3-mini").reasoning and PROVIDERS["openai"].row("gpt-5-nano").reasoning
    assert not PROVIDERS["openai"].row("gpt-4o").reasoning
    assert PROVIDERS["llamacpp"].row("anything").max_tokens_field == "max_tokens"
    assert PROVIDERS["local"].row("x").retry_timeouts is False
    assert PROVIDERS["generic"].row("x").modes[0] == "json_schema"
    assert not PROVIDERS["generic"].row("x").encodings  # nothing assumed of an unknown server


def test_profiles_are_the_schema_compilers() -> None:
    from extract.schema._profiles import CEREBRAS, LLAMACPP, OPENAI

    assert PROVIDERS["cerebras"].profile is CEREBRAS and PROVIDERS["openai"].profile is OPENAI
    assert PROVIDERS["local"].profile is LLAMACPP and PROVIDERS["generic"].profile is CEREBRAS


def test_unknown_provider_names_list_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError, match=r"'foo'.*cerebras, openai, llamacpp, local, generic"):
        get_provider("foo")
    with pytest.raises(ConfigurationError, match="unknown provider 'foo'"):
        Extractor(base_url="http://127.0.0.1:9/v1", model="m", provider="foo")


# -- hosts and the key policy ----------------------------------------------------------------------


def test_hosts_match_on_a_dot_boundary() -> None:
    assert provider_for_url("https://api.cerebras.ai/v1", NO_ENV).name == "cerebras"
    assert provider_for_url("https://api.openai.com/v1", NO_ENV).name == "openai"
    assert provider_for_url("http://127.0.0.1:8000/v1", NO_ENV).name == "generic"
    assert provider_for_url("https://evilcerebras.ai.example.com/v1", NO_ENV).name == "generic"
    assert provider_for_url("https://notcerebras.ai/v1", NO_ENV).name == "generic"


def test_environment_key_goes_only_to_its_provider() -> None:
    env = {"CEREBRAS_API_KEY": "sk-cb", "OPENAI_API_KEY": "sk-oa"}
    assert resolve(environ=env).api_key == "sk-cb"
    assert resolve(environ=env).base_url == "https://api.cerebras.ai/v1"
    assert resolve(base_url="https://eu.api.cerebras.ai/v1", environ=env).api_key == "sk-cb"
    assert resolve(base_url="https://api.openai.com/v1", environ=env).api_key == "sk-oa"
    for elsewhere in ("http://127.0.0.1:9/v1", "https://evilcerebras.ai.example.com/v1"):
        got = resolve(base_url=elsewhere, provider="cerebras", model="m", environ=env)
        assert got.api_key is None and got.provider.name == "cerebras"
    # the environment's base URL is Cerebras' too: the key follows it there (a proxy, a test server)
    redirected = {**env, "CEREBRAS_BASE_URL": "http://127.0.0.1:9/v1"}
    got = resolve(environ=redirected)
    assert (got.base_url, got.api_key, got.provider.name) == ("http://127.0.0.1:9/v1", "sk-cb", "cerebras")
    assert resolve(base_url="http://127.0.0.1:10/v1", model="m", environ=redirected).api_key is None


def test_key_never_in_the_repr() -> None:
    got = resolve(environ={"CEREBRAS_API_KEY": "sk-secret-123"})
    assert "sk-secret-123" not in repr(got)


def test_backend_choice() -> None:
    embedded = resolve(environ=NO_ENV)
    assert embedded.in_process and embedded.provider.name == "local" and embedded.api_key is None
    assert resolve(provider="local", environ={"CEREBRAS_API_KEY": "k"}).in_process
    assert resolve(base_url="local", environ=NO_ENV).provider.name == "local"  # the old sentinel still works
    given_key = resolve(api_key="sk-mine", environ=NO_ENV)
    assert given_key.base_url == "https://api.cerebras.ai/v1" and given_key.model == "gpt-oss-120b"
    generic = resolve(base_url="http://127.0.0.1:9/v1", environ=NO_ENV)
    assert generic.provider.name == "generic" and generic.model is None
    for bad in (
        "127.0.0.1:9/v1",
        "http://[::1/v1",
        "http://h:99999/v1",
        "http://h:x/v1",
        "http://a b/v1",
        "ftp://h",
    ):
        with pytest.raises(ConfigurationError, match="expected an absolute http"):
            resolve(base_url=bad, model="m", environ=NO_ENV)
        with pytest.raises(ConfigurationError, match="expected an absolute http"):
            Extractor(base_url=bad, model="m")


def test_transports_carry_their_provider(tmp_path: Path) -> None:
    class Named:
        provider = "llamacpp"

    assert resolve(transport=Named(), model="m", environ=NO_ENV).provider.name == "llamacpp"  # type: ignore[arg-type]
    assert resolve(transport=Named(), provider="openai", model="m").provider.name == "openai"  # type: ignore[arg-type]
    assert resolve(transport=object(), model="m").provider.name == "generic"  # type: ignore[arg-type]
    local = LocalTransport(tmp_path / "tiny.gguf")  # nothing loads until a request
    got = resolve(transport=local)
    assert got.provider.name == "local" and got.model == local.model_name and got.row.retry_timeouts is False


# -- error signatures ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "data", "raw", "expected"),
    [
        (400, {"message": "x", "param": "response_format", "code": "wrong_api_format"}, b"", True),
        (422, {"message": "response_format json_schema is not supported"}, b"", True),
        (400, {"message": "json_schema: 'pattern' is not supported", "param": "response_format"}, b"", True),
        (
            400,
            {"message": "temperature too high", "param": "temperature", "code": "wrong_api_format"},
            b"",
            False,
        ),
        (400, {"message": "max_tokens and max_completion_tokens both set"}, b"", False),
        (500, {"detail": "x"}, b"... Input should be 'text' or 'json_object' ...", True),
        (500, {"error": {"message": "boom"}}, b"boom", False),
        (401, {"message": "response_format"}, b"", False),
    ],
)
def test_mode_refusals(status: int, data: Any, raw: bytes, expected: bool) -> None:
    assert PROVIDERS["generic"].refuses_mode(status, data, raw or orjson.dumps(data)) is expected


def test_cerebras_context_error_is_parsed() -> None:
    data = {
        "message": "Please reduce the length of the messages or completion. Current length is 42328 while "
        "limit is 40000",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    found = PROVIDERS["cerebras"].context_overflow(400, data, orjson.dumps(data))
    assert found is not None and (found.length, found.limit, found.excess) == (42328, 40000, 2328)
    assert not PROVIDERS["cerebras"].refuses_mode(400, data, orjson.dumps(data))
    other = {"message": "temperature must be <= 2", "param": "temperature"}
    assert PROVIDERS["cerebras"].context_overflow(400, other, orjson.dumps(other)) is None
    assert PROVIDERS["cerebras"].context_overflow(429, data, orjson.dumps(data)) is None


@pytest.mark.parametrize(
    ("message", "length", "limit"),
    [
        ("Current length is 42328 while limit is 40000", 42328, 40000),
        (
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 "
            "tokens. Please reduce the length of the messages.",
            9000,
            8192,
        ),
        ("Requested tokens (5000) exceed context window of 4096", 5000, 4096),
        ("the prompt is too long", None, None),
    ],
)
def test_context_overflow_parser(message: str, length: int | None, limit: int | None) -> None:
    found = parse_context_overflow(message)
    assert (found.length, found.limit) == (length, limit)


@given(st.integers(0, 10**9), st.integers(0, 10**9), st.text(max_size=40))
def test_context_parser_reads_back_any_numbers(length: int, limit: int, noise: str) -> None:
    message = f"{noise} Please reduce it. Current length is {length} while limit is {limit}"
    found = parse_context_overflow(message[-2000:])
    assert (found.length, found.limit) == (length, limit)


# -- resolution over real HTTP -----------------------------------------------------------------------


def test_named_cerebras_on_another_host_gets_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CEREBRAS_API_KEY", "sk-env-key")
    monkeypatch.delenv("CEREBRAS_BASE_URL", raising=False)
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    # the server would accept the environment's key: a 401 proves it was not sent
    with TestServer(api_key="sk-env-key") as srv:
        named = Extractor(base_url=srv.base_url, model="llama3.1-8b", provider="cerebras")
        with named as ex, pytest.raises(AuthenticationError):
            ex.extract(schema, "a is x")
        monkeypatch.setenv("CEREBRAS_BASE_URL", srv.base_url)
        with Extractor(model="llama3.1-8b") as ex:  # where CEREBRAS_BASE_URL points, the key goes
            assert ex.provider == "cerebras"
            assert ex.extract(schema, "a is x") is not None


# -- engine code names no provider ---------------------------------------------------------------------

_ENGINE = [
    ROOT / "extract" / "core.py",
    ROOT / "extract" / "modes.py",
    *(ROOT / "extract" / "_engine").glob("*.py"),
]


@pytest.mark.parametrize("path", _ENGINE, ids=lambda p: p.name)
def test_no_provider_names_in_engine_code(path: Path) -> None:
    source = path.read_text(encoding="utf-8")
    names = "|".join(re.escape(name) for name in PROVIDERS)
    found = re.findall(rf"""["']({names})["']""", source)
    assert not found, f"{path.name} compares provider names {found}: ask the provider record instead"


def test_an_extractor_on_the_local_transport_uses_the_local_row(tmp_path: Path) -> None:
    local = LocalTransport(tmp_path / "tiny.gguf")  # nothing loads until a request
    ex = Extractor(transport=local)
    assert ex.provider == "local" and ex.model == local.model_name and not ex.in_process
    assert ex._row(ex.model).retry_timeouts is False and ex._row(ex.model).modes[0] == "json_object_schema"


def test_cli_refuses_an_unknown_provider(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from extract.cli import main

    monkeypatch.delenv("CEREBRAS_API_KEY", raising=False)
    schema = tmp_path / "s.json"
    schema.write_text('{"type": "object", "properties": {"a": {"type": "string"}}}', encoding="utf-8")
    for argv in (
        ["--provider", "foo", "schema", str(schema)],
        ["--provider", "foo", "run", str(schema), "-"],
    ):
        code = main(argv)
        err = capsys.readouterr().err
        assert code != 0 and "unknown provider 'foo'" in err and "cerebras, openai" in err, err


def test_context_too_long_is_its_own_error_over_http() -> None:
    from extract.errors import BadRequestError, ContextLengthError
    from extract.testing import Fault

    body = {
        "message": "Please reduce the length of the messages or completion. Current length is 42328 while "
        "limit is 40000",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
    with (
        TestServer() as srv,
        Extractor(base_url=srv.base_url, model="llama3.1-8b", provider="cerebras") as ex,
    ):
        srv.script(Fault.http_error(400, body))
        with pytest.raises(ContextLengthError) as info:
            ex.extract({"type": "object", "properties": {"a": {"type": "string"}}}, "a is x")
        assert srv.request_count == 1  # not retried, not demoted
    error = info.value
    assert isinstance(error, BadRequestError) and (error.length, error.limit) == (42328, 40000)
    assert "42328 tokens; the limit is 40000" in str(error) and "split" in str(error)
    assert error.code == "context_length_exceeded"
