"""The HTTP/1.1 layer: keep-alive, pipelining, gzip and chunked bodies, malformed input, concurrency."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from typing import Any

import httpx

from extract.testing import TestServer

BODY = {"model": "llama3.1-8b", "messages": [{"role": "user", "content": "Ada Lovelace"}]}


def raw_request(payload: bytes, *, headers: str = "", path: str = "/v1/chat/completions") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
    return (head + headers + "\r\n").encode() + payload


def read_response(sock: socket.socket, buffer: bytearray) -> tuple[int, dict[str, str], bytes]:
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head")
        buffer += chunk
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers["content-length"])
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    buffer[:] = rest[length:]
    return int(lines[0].split(" ")[1]), headers, rest[:length]


def connect(server: TestServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def test_keep_alive_serves_many_requests_on_one_connection(server: TestServer) -> None:
    payload = json.dumps(BODY).encode()
    buffer = bytearray()
    with connect(server) as sock:
        for _ in range(3):
            sock.sendall(raw_request(payload))
            status, headers, _ = read_response(sock, buffer)
            assert status == 200 and headers["connection"] == "keep-alive"
    assert server.request_count == 3


def test_pipelined_requests_are_answered_in_order(server: TestServer) -> None:
    bodies = [dict(BODY, model=m) for m in ("llama3.1-8b", "gpt-oss-120b", "zai-glm-4.7")]
    buffer = bytearray()
    with connect(server) as sock:
        sock.sendall(b"".join(raw_request(json.dumps(b).encode()) for b in bodies))
        models = [json.loads(read_response(sock, buffer)[2])["model"] for _ in bodies]
    assert models == [b["model"] for b in bodies]


def test_connection_close_is_honoured(server: TestServer) -> None:
    buffer = bytearray()
    with connect(server) as sock:
        sock.sendall(raw_request(json.dumps(BODY).encode(), headers="Connection: close\r\n"))
        status, headers, _ = read_response(sock, buffer)
        assert status == 200 and headers["connection"] == "close"
        assert sock.recv(1) == b""


def test_httpx_client_reuses_its_connection(server: TestServer) -> None:
    ports: set[int] = set()
    with httpx.Client(base_url=server.base_url) as client:
        for _ in range(5):
            response = client.post("/chat/completions", json=BODY)
            stream: Any = response.extensions["network_stream"]
            ports.add(stream.get_extra_info("client_addr")[1])
    assert len(ports) == 1


def test_gzip_request_bodies_are_accepted(server: TestServer) -> None:
    payload = gzip.compress(json.dumps(BODY).encode())
    response = httpx.post(
        server.base_url + "/chat/completions",
        content=payload,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 200
    assert server.requests[0]["model"] == "llama3.1-8b"
    assert server.requests[0].headers["content-encoding"] == "gzip"


def test_broken_gzip_is_400(server: TestServer) -> None:
    response = httpx.post(
        server.base_url + "/chat/completions",
        content=b"not gzip at all",
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 400


def test_unsupported_content_encoding_is_415(server: TestServer) -> None:
    response = httpx.post(
        server.base_url + "/chat/completions", content=b"{}", headers={"content-encoding": "br"}
    )
    assert response.status_code == 415


def test_chunked_request_bodies_are_accepted(server: TestServer) -> None:
    payload = json.dumps(BODY).encode()

    def pieces() -> Any:
        yield payload[:10]
        yield payload[10:]

    response = httpx.post(server.base_url + "/chat/completions", content=pieces())
    assert response.status_code == 200
    assert server.requests[0]["messages"] == BODY["messages"]


def test_malformed_request_line_is_400_and_closes(server: TestServer) -> None:
    buffer = bytearray()
    with connect(server) as sock:
        sock.sendall(b"NONSENSE\r\n\r\n")
        status, headers, _ = read_response(sock, buffer)
        assert status == 400 and headers["connection"] == "close"


def test_wrong_method_is_405(server: TestServer) -> None:
    assert httpx.get(server.base_url + "/chat/completions").status_code == 405


async def test_concurrent_requests_all_succeed(server: TestServer) -> None:
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=server.base_url, limits=limits) as client:
        bodies = [dict(BODY, messages=[{"role": "user", "content": f"Person {i}"}]) for i in range(200)]
        responses = await asyncio.gather(*[client.post("/chat/completions", json=b) for b in bodies])
    assert [r.status_code for r in responses] == [200] * 200
    assert server.request_count == 200
    assert sorted(r["messages"][0]["content"] for r in server.requests) == sorted(
        b["messages"][0]["content"] for b in bodies
    )


def test_http_1_0_closes_unless_asked_to_keep_alive(server: TestServer) -> None:
    payload = json.dumps(BODY).encode()
    head = f"POST /v1/chat/completions HTTP/1.0\r\nContent-Length: {len(payload)}\r\n"
    buffer = bytearray()
    with connect(server) as sock:
        sock.sendall((head + "\r\n").encode() + payload)
        assert read_response(sock, buffer)[1]["connection"] == "close"
        assert sock.recv(1) == b""
    with connect(server) as sock:
        sock.sendall((head + "Connection: keep-alive\r\n\r\n").encode() + payload)
        assert read_response(sock, buffer)[1]["connection"] == "keep-alive"


def test_expect_100_continue_is_answered_before_the_body(server: TestServer) -> None:
    payload = json.dumps(BODY).encode()
    head = (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
        f"Content-Length: {len(payload)}\r\nExpect: 100-continue\r\n\r\n"
    )
    with connect(server) as sock:
        sock.sendall(head.encode())
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim.startswith(b"HTTP/1.1 100 ")
        sock.sendall(payload)
        assert read_response(sock, bytearray())[0] == 200
