"""A loopback server that speaks the Cerebras inference API, for testing pipelines offline.

Chat completions and text completions (`/v1/completions`), logprobs, gzip and msgpack request bodies,
reasoning models and `reasoning_effort`, a prompt cache, predicted outputs, service tiers, per-model context
windows and `time_info`, as the provider's pages describe them (see `ServerSettings` for the knobs). An
optional `TokenLatency` makes a completion take time per token (prompt, cached prompt, generated, predicted).

It answers every structured request with deterministic JSON that is valid for the schema it was sent, rejects
requests the way the provider does (strict-schema violations, unknown models, bad keys), enforces rate limits,
and misbehaves on cue::

    import httpx
    from extract.testing import Fault, TestServer

    with TestServer(api_key="sk-test", latency=0.01) as server:
        server.script(Fault.server_error(503), "invalid_json")    # the next two requests misbehave
        headers = {"Authorization": "Bearer sk-test"}
        body = {
            "model": "llama3.1-8b",
            "messages": [{"role": "user", "content": "Ada Lovelace, born 1815"}],
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "person",
                    "strict": True,
                    "schema": {
                        "type": "object",
                        "properties": {"name": {"type": "string"}},
                        "required": ["name"],
                        "additionalProperties": False,
                    },
                },
            },
        }
        url = server.base_url + "/chat/completions"
        assert httpx.post(url, json=body, headers=headers).status_code == 503
        assert httpx.post(url, json=body, headers=headers).json()["choices"][0]["message"]["content"] != ""
        reply = httpx.post(url, json=body, headers=headers).json()
        print(reply["choices"][0]["message"]["content"])      # {"name":"Ada"}
        print(server.request_count, server.requests[0]["model"])

From a shell (benchmarks run it in its own process; the base URL is the first line printed)::

    python -m extract.testing --port 8089 --latency-ms 50 --rpm 600 --invalid-rate 0.3 --seed 7
"""

from __future__ import annotations

from extract.testing._app import LoggedRequest, RecordedRequest, ServerSettings
from extract.testing._faults import FAULT_NAMES, Fault
from extract.testing._generate import generate
from extract.testing._latency import TokenLatency
from extract.testing._server import TestServer
from extract.testing._wire import DEFAULT_MODELS

__all__ = [
    "DEFAULT_MODELS",
    "FAULT_NAMES",
    "Fault",
    "LoggedRequest",
    "RecordedRequest",
    "ServerSettings",
    "TestServer",
    "TokenLatency",
    "generate",
]
