"""TestServer lifecycle and introspection, and `python -m extract.testing`."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from extract.errors import ConfigurationError
from extract.testing import Fault, TestServer

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": "llama3.1-8b", "messages": [{"role": "user", "content": "Ada Lovelace"}]}


def test_base_url_points_at_loopback_v1(server: TestServer) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", server.base_url)
    assert server.port > 0


def test_two_servers_get_different_ports() -> None:
    with TestServer() as a, TestServer() as b:
        assert a.port != b.port


def test_stopped_server_refuses_connections() -> None:
    with TestServer() as srv:
        url = srv.base_url
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/models")
    with pytest.raises(RuntimeError, match="not running"):
        _ = srv.base_url


def test_server_can_restart_after_stop() -> None:
    srv = TestServer()
    with srv:
        assert httpx.get(srv.base_url + "/tcp_warming").status_code == 200
    with srv:
        assert httpx.get(srv.base_url + "/tcp_warming").status_code == 200


def test_busy_port_is_a_clear_error(server: TestServer) -> None:
    with pytest.raises(RuntimeError, match="could not listen"):
        TestServer(port=server.port).start()


async def test_async_context_manager() -> None:
    async with TestServer() as srv, httpx.AsyncClient() as client:
        response = await client.post(srv.base_url + "/chat/completions", json=BODY)
        assert response.status_code == 200
        assert srv.request_count == 1


def test_requests_are_recorded_in_order_without_authorization() -> None:
    with TestServer(api_key="sk-test-recording") as srv:
        headers = {"Authorization": "Bearer sk-test-recording", "X-Trace": "t1"}
        for model in ("llama3.1-8b", "gpt-oss-120b"):
            httpx.post(srv.base_url + "/chat/completions", json=dict(BODY, model=model), headers=headers)
        recorded = srv.requests
    assert [r["model"] for r in recorded] == ["llama3.1-8b", "gpt-oss-120b"]
    assert recorded[0].headers["x-trace"] == "t1"
    assert "authorization" not in recorded[0].headers
    assert recorded[0].path == "/v1/chat/completions"
    assert b"sk-test-recording" not in recorded[0].raw


def test_reset_forgets_requests_counters_and_faults(server: TestServer) -> None:
    server.script("rate_limited", "drop")
    assert httpx.post(server.base_url + "/chat/completions", json=BODY).status_code == 429
    server.reset()
    assert (server.request_count, server.count_429, server.pending_faults, server.requests) == (0, 0, 0, [])
    assert httpx.post(server.base_url + "/chat/completions", json=BODY).status_code == 200


def test_record_false_keeps_counting() -> None:
    with TestServer(record=False) as srv:
        httpx.post(srv.base_url + "/chat/completions", json=BODY)
        assert srv.request_count == 1 and srv.requests == []


def test_introspection_is_thread_safe(server: TestServer) -> None:
    server.script(*[Fault.rate_limited()] * 20)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with httpx.Client(base_url=server.base_url) as client:
                for _ in range(10):
                    client.post("/chat/completions", json=BODY)
                    _ = server.requests, server.count_429
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert server.request_count == 60 and len(server.requests) == 60
    assert server.count_429 == 20


def test_unknown_setting_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        TestServer(latencyy=1)
    with pytest.raises(ConfigurationError, match="flavor"):
        TestServer(flavor="vllm")
    with pytest.raises(ConfigurationError, match="invalid_rate"):
        TestServer(invalid_rate=2)


def test_command_line_prints_base_url_first_and_stops_on_sigterm() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "extract.testing", "--port", "0", "--latency-ms", "1", "--rpm", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", base_url), base_url
        assert httpx.post(base_url + "/chat/completions", json=BODY).status_code == 200
        assert httpx.post(base_url + "/chat/completions", json=BODY).status_code == 429
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr


def test_module_docstring_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    import textwrap

    import extract.testing

    doc = extract.testing.__doc__ or ""
    example = textwrap.dedent(doc.split("::\n", 1)[1].split("\nFrom a shell", 1)[0])
    exec(compile(example, "extract.testing docstring", "exec"), {})
    assert '{"name":"Ada"}' in capsys.readouterr().out


def test_a_bug_in_the_server_is_a_logged_500(server: TestServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from extract.testing._app import App

    async def broken(self: App, request: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(App, "route", broken)
    response = httpx.get(server.base_url + "/models")
    assert response.status_code == 500
    assert "KeyError" in response.json()["error"]["message"]


def test_command_line_rejects_bad_settings_with_usage_error() -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "extract.testing", "--invalid-rate", "1.5"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert "invalid_rate must be between 0 and 1" in proc.stderr
    assert proc.stdout == ""


def test_command_line_wire_options() -> None:
    from extract.testing.__main__ import _parser, _server

    args = _parser().parse_args(
        ["--accept-encodings", "gzip", "--context-window", "llama3.1-8b=100", "--service-tiers", "priority",
         "--queue-ms", "250", "--no-prompt-cache"]
    )  # fmt: skip
    settings = _server(args).settings
    assert settings.encodings == frozenset({"gzip"})
    assert dict(settings.context_windows) == {"llama3.1-8b": 100}
    assert settings.service_tiers == frozenset({"priority"}) and settings.queue_ms == 250
    assert settings.prompt_cache is False
    assert _server(_parser().parse_args(["--accept-encodings"])).settings.encodings == frozenset()
    assert _server(_parser().parse_args([])).settings.encodings == frozenset({"gzip", "msgpack"})
    with pytest.raises(ConfigurationError, match="MODEL=TOKENS"):
        _server(_parser().parse_args(["--context-window", "llama3.1-8b"]))
