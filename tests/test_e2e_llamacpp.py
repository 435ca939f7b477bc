"""End to end against llama.cpp's real OpenAI-compatible server (`python -m llama_cpp.server`).

A counting proxy on 127.0.0.1 sits between the Extractor and the server, so the test sees exactly which
requests went out and what came back: the first strict json_schema request is refused with llama.cpp's
HTTP 500, the library demotes to json_object with the schema (which llama.cpp enforces with a grammar),
and the same Extractor never tries json_schema against that server again.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from extract.errors import ConfigurationError

_SKIP_REASON = None
_GGUF: Path | None = None
if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llama_cpp.server") is None:
    _SKIP_REASON = 'llama-cpp-python[server] is not installed (pip install "extract-llm[local]")'
else:
    try:
        from extract._local._find import find_model

        _GGUF = find_model()
    except ConfigurationError as exc:
        _SKIP_REASON = f"no local model: {exc}"

pytestmark = pytest.mark.skipif(_SKIP_REASON is not None, reason=_SKIP_REASON or "")

READY_TIMEOUT_S = 120.0

CONTACT = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "company": {"type": "string"},
        "city": {"type": "string"},
    },
    "required": ["name", "company", "city"],
    "additionalProperties": False,
}
TEXTS = [
    "Hello! My name is Maria Lopez and I work at Northwind Traders, based in Lisbon.",
    "Hi, this is Kenji Sato from Blue Harbor Logistics in Osaka. Please send the invoice to me.",
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Proxy(ThreadingHTTPServer):
    """Forwards every request to the upstream server and records (path, response_format, status)."""

    daemon_threads = True

    def __init__(self, upstream_port: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream_port = upstream_port
        self.records: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _Proxy

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: pytest shows the assertions, not an access log."""

    def _forward(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        upstream = http.client.HTTPConnection("127.0.0.1", self.server.upstream_port, timeout=300)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "connection"}}
        upstream.request(self.command, self.path, body=body or None, headers=headers)
        reply = upstream.getresponse()
        payload = reply.read()
        upstream.close()
        sent = json.loads(body) if body else None
        with self.server.lock:
            self.server.records.append(
                {
                    "path": self.path,
                    "response_format": sent.get("response_format") if isinstance(sent, dict) else None,
                    "status": reply.status,
                    "reply": payload,
                }
            )
        self.send_response(reply.status)
        self.send_header("content-type", reply.getheader("content-type") or "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _forward
    do_POST = _forward


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real llama.cpp server on a free loopback port; yields its base URL."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(_GGUF),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "2048",
                "--n_threads",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(
                    f"llama_cpp.server exited with {process.returncode}:\n{log_path.read_text()[-3000:]}"
                )
            try:
                if httpx.get(base_url + "/models", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama_cpp.server not ready after {READY_TIMEOUT_S:.0f}s:\n{log_path.read_text()[-3000:]}"
                )
            time.sleep(0.25)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture
def proxy(llama_server: str) -> Iterator[_Proxy]:
    upstream_port = int(llama_server.rsplit(":", 1)[1].split("/", 1)[0])
    server = _Proxy(upstream_port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _model_id(base_url: str) -> str:
    listed = httpx.get(base_url + "/models", timeout=10.0).json()
    model_id: str = listed["data"][0]["id"]
    return model_id


def _chat_records(proxy: _Proxy) -> list[dict[str, Any]]:
    with proxy.lock:
        return [r for r in proxy.records if r["path"].endswith("/chat/completions")]


def test_demotes_from_json_schema_to_json_object_with_schema_once(proxy: _Proxy) -> None:
    from extract.core import Extractor

    with Extractor(base_url=proxy.base_url, api_key="none", model=_model_id(proxy.base_url)) as extractor:
        first = extractor.extract(CONTACT, TEXTS[0], full=True, temperature=0, max_completion_tokens=120)
        jsonschema.validate(first.value, CONTACT)
        assert first.mode == "json_object_schema"

        sent = _chat_records(proxy)
        assert len(sent) >= 2
        refused, answered = sent[0], sent[1]
        assert refused["response_format"]["type"] == "json_schema"
        assert refused["status"] == 500
        assert b"Input should be 'text' or 'json_object'" in refused["reply"]
        assert answered["status"] == 200
        assert answered["response_format"]["type"] == "json_object"
        # The schema travels in the request, where llama.cpp turns it into a grammar.
        assert answered["response_format"]["schema"]["required"] == ["name", "company", "city"]
        assert all(r["response_format"]["type"] == "json_object" for r in sent[1:])

        before = len(sent)
        second = extractor.extract(CONTACT, TEXTS[1], full=True, temperature=0, max_completion_tokens=120)
        jsonschema.validate(second.value, CONTACT)
        later = _chat_records(proxy)[before:]
        # Remembered per Extractor: no second refusal, json_object + schema straight away.
        assert len(later) == len(second.attempts) >= 1
        assert [r["response_format"]["type"] for r in later] == ["json_object"] * len(later)
        assert all(r["status"] == 200 for r in later)


async def test_async_extraction_against_the_real_server(proxy: _Proxy) -> None:
    from extract.core import Extractor

    async with Extractor(
        base_url=proxy.base_url, api_key="none", model=_model_id(proxy.base_url)
    ) as extractor:
        value = await extractor.aextract(CONTACT, TEXTS[0], temperature=0, max_completion_tokens=120)
    jsonschema.validate(value, CONTACT)
    statuses = [(r["response_format"]["type"], r["status"]) for r in _chat_records(proxy)]
    assert statuses[0] == ("json_schema", 500)
    assert statuses[1:] and all(s == ("json_object", 200) for s in statuses[1:])
