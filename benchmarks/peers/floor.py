"""The floor: the least a client can do. httpx + orjson + pydantic, no retries, no checks.

Hand-written here so that every other system's overhead has something honest to be compared with:
build one request body, post it, parse the reply, validate it. No schema transform at call time (the
wire schema is built once), no re-ask, no error mapping.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from benchmarks.peers._model import API_KEY, MODEL_NAME, SYSTEM, Invoice
from benchmarks.peers._protocol import Peer


def _strict(node: Any) -> Any:
    """pydantic's schema made strict by hand, once: every object closed, every property required."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items() if k not in {"title", "default"}}
        if out.get("type") == "object" and "properties" in out:
            out["additionalProperties"] = False
            out["required"] = list(out["properties"])
        if "$ref" in out and len(out) > 1:
            out = {"$ref": out["$ref"]}
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


def make(base_url: str, *, max_attempts: int | None = None) -> Peer:
    del max_attempts  # the floor never retries
    url = f"{base_url}/chat/completions"
    headers = {"authorization": f"Bearer {API_KEY}", "content-type": "application/json"}
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "Invoice", "strict": True, "schema": _strict(Invoice.model_json_schema())},
    }
    client = httpx.Client(timeout=60.0)
    aclient = httpx.AsyncClient(timeout=60.0)

    def body(text: str) -> bytes:
        return orjson.dumps(
            {
                "model": MODEL_NAME,
                "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
                "response_format": response_format,
            }
        )

    def read(raw: bytes) -> Invoice:
        content = orjson.loads(raw)["choices"][0]["message"]["content"]
        return Invoice.model_validate_json(content)

    def run(text: str) -> Invoice:
        return read(client.post(url, content=body(text), headers=headers).content)

    async def arun(text: str) -> Invoice:
        return read((await aclient.post(url, content=body(text), headers=headers)).content)

    async def aclose() -> None:
        await aclient.aclose()

    return Peer(
        name="floor",
        how="httpx + orjson + pydantic, hand-written; strict json_schema; no retries",
        attempts="1",
        run=run,
        arun=arun,
        close=client.close,
        aclose=aclose,
    )
