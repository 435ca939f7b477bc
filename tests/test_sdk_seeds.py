"""The seed pages' own example code, run unchanged through the official SDK against the test server.

The code blocks are read from /work/shared/reference/seeds/*.txt at test time (skipped when absent), run with
CEREBRAS_BASE_URL pointing at a TestServer and a fake key, and the SDK must parse every reply. Each request is
then replayed over plain HTTP and its JSON compared with the example response printed under the code on the
seed page: every key of the example must be in our reply, at every level.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from extract.testing import TestServer

sdk = pytest.importorskip("cerebras.cloud.sdk", reason="the official SDK is a dev extra (cerebras-cloud-sdk)")

SEEDS = Path("/work/shared/reference/seeds")
KEY = "csk-fake-key-for-tests"
_START = re.compile(r"^(from cerebras|import os)", re.MULTILINE)


def seed_examples() -> list[tuple[str, str, Any]]:
    """(file name, code, example response) for every distinct code block of the seed pages."""
    found: list[tuple[str, str, Any]] = []
    seen: set[str] = set()
    for path in sorted(SEEDS.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        consumed = 0
        for start in _START.finditer(text):
            if start.start() < consumed:
                continue  # a line inside the block just read
            lines = text[start.start() :].splitlines()
            block: list[str] = []
            for line in lines:
                block.append(line)
                if line.startswith("print("):
                    break
            else:
                continue
            code = "\n".join(block)
            consumed = start.start() + len(code)
            if code in seen or not code.lstrip().startswith(("from cerebras", "import os")):
                continue
            if "from cerebras" not in code or "client" not in code:
                continue
            seen.add(code)
            after = text.index(code, start.start()) + len(code)
            brace = text.find("{", after)
            example, _ = json.JSONDecoder().raw_decode(text, brace)
            found.append((path.name, code, example))
    return found


EXAMPLES = seed_examples() if SEEDS.is_dir() else []


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestServer]:
    with TestServer(api_key=KEY) as server:
        monkeypatch.setenv("CEREBRAS_API_KEY", KEY)
        monkeypatch.setenv("CEREBRAS_BASE_URL", server.base_url.removesuffix("/v1"))
        yield server


def missing_keys(example: Any, ours: Any, path: str = "") -> list[str]:
    """Keys of the seed's example response that our reply lacks (lists: compared on their first item)."""
    out: list[str] = []
    if path.endswith(".top_logprobs"):
        return out  # keyed by tokens, not a structure
    if isinstance(example, dict) and isinstance(ours, dict):
        for key, value in example.items():
            if key not in ours:
                out.append(f"{path}.{key}")
            elif value is not None and ours[key] is not None:
                out.extend(missing_keys(value, ours[key], f"{path}.{key}"))
    elif isinstance(example, list) and isinstance(ours, list) and example and ours:
        out.extend(missing_keys(example[0], ours[0], f"{path}[0]"))
    return out


def test_the_seed_pages_hold_the_examples_this_file_runs() -> None:
    if not EXAMPLES:
        pytest.skip(f"no seed pages at {SEEDS}")
    calls = " ".join(code for _, code, _ in EXAMPLES)
    for fragment in ('model="gpt-oss-120b"', 'model="llama3.1-8b"', "completions.create(", "logprobs=5"):
        assert fragment in calls


@pytest.mark.parametrize(
    ("name", "code", "example"), EXAMPLES, ids=[f"{n}:{i}" for i, (n, _, _) in enumerate(EXAMPLES)]
)
def test_seed_example_runs_unchanged_through_the_sdk(
    provider: TestServer, name: str, code: str, example: Any
) -> None:
    namespace: dict[str, Any] = {"__name__": "seed_example"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, name, "exec"), namespace)  # the provider's own example, unchanged
    assert printed.getvalue().strip()
    reply = namespace.get("chat_completion", namespace.get("completion"))
    assert type(reply).__module__.startswith("cerebras.cloud.sdk.types")  # parsed into the SDK's models
    assert reply.time_info is not None and reply.time_info.total_time is not None
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    choice = reply.choices[0]
    if example["object"] == "text_completion":
        logprobs = choice.logprobs
        assert logprobs is not None and logprobs.tokens and len(logprobs.top_logprobs) == len(logprobs.tokens)
        assert all(5 <= len(top) <= 6 for top in logprobs.top_logprobs)
        assert "".join(logprobs.tokens) == choice.text
        assert reply.usage.completion_tokens == len(logprobs.tokens)
    else:
        assert choice.message.content
        details = reply.usage.completion_tokens_details
        assert details is not None and details.reasoning_tokens is not None
        if reply.model == "gpt-oss-120b":
            assert choice.message.reasoning and details.reasoning_tokens > 0
    # the same request over plain HTTP: the reply carries every key of the seed's example response
    sent = provider.requests[-1]
    assert provider.request_log[-1].headers["content-type"] == "application/json"
    raw = httpx.post(
        provider.base_url.removesuffix("/v1") + sent.path,
        json=dict(sent),
        headers={"authorization": f"Bearer {KEY}"},
    ).json()
    assert missing_keys(example, raw) == []


def client() -> Any:
    return sdk.Cerebras(max_retries=0)


PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "born": {"type": "integer"}},
    "required": ["name", "born"],
    "additionalProperties": False,
}


def test_structured_request_through_the_sdk(provider: TestServer) -> None:
    reply = client().chat.completions.create(
        model="llama3.1-8b",
        messages=[{"role": "user", "content": "Ada Lovelace, born 1815."}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "strict": True, "schema": PERSON},
        },
    )
    value = json.loads(reply.choices[0].message.content)
    assert set(value) == {"name", "born"} and isinstance(value["born"], int)
    bad = {**PERSON, "properties": {"name": {"type": "string", "minLength": 1}}, "required": ["name"]}
    with pytest.raises(sdk.BadRequestError) as caught:
        client().chat.completions.create(
            model="llama3.1-8b",
            messages=[{"role": "user", "content": "Ada"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "p", "strict": True, "schema": bad},
            },
        )
    assert caught.value.status_code == 400 and "minLength" in str(caught.value)


def test_chat_logprobs_reasoning_and_tiers_through_the_sdk(provider: TestServer) -> None:
    reply = client().chat.completions.create(
        model="gpt-oss-120b",
        messages=[{"role": "user", "content": "Hello!"}],
        logprobs=True,
        top_logprobs=2,
        reasoning_effort="low",
        service_tier="auto",
        prediction={"type": "content", "content": "{}"},
    )
    choice = reply.choices[0]
    assert "".join(item.token for item in choice.logprobs.content) == choice.message.content
    assert len(choice.logprobs.content[0].top_logprobs) == 2
    details = reply.usage.completion_tokens_details
    assert details.reasoning_tokens == 64 and details.accepted_prediction_tokens == 1
    assert reply.service_tier == "auto" and reply.service_tier_used == "default"


def test_sdk_maps_the_provider_refusals(provider: TestServer) -> None:
    with pytest.raises(sdk.BadRequestError, match="Current length is"):
        client().completions.create(model="llama3.1-8b", prompt="word " * 140_000)
    provider.script("queue_exceeded")
    with pytest.raises(sdk.RateLimitError, match="high traffic"):
        client().chat.completions.create(model="llama3.1-8b", messages=[{"role": "user", "content": "Hi"}])


def test_sdk_streaming(provider: TestServer) -> None:
    chunks = list(
        client().chat.completions.create(
            model="gpt-oss-120b", messages=[{"role": "user", "content": "Hello!"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "{}"
    assert chunks[-1].usage is not None and chunks[-1].time_info is not None
    pieces = list(client().completions.create(model="llama3.1-8b", prompt="Once", stream=True))
    assert "".join(p.choices[0].text or "" for p in pieces if p.choices)
