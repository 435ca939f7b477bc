"""Small raw-socket HTTP servers on 127.0.0.1 that misbehave on purpose (endless bodies, slow drips,
slowloris headers, echoed keys), for the hostile-transport tests and benchmark.

Each server runs one handler per connection in a daemon thread; the handler gets the socket and the
request bytes already read (headers and a Content-Length body) and writes whatever it likes.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType

import orjson

Handler = Callable[[socket.socket, bytes], None]

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-raw",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": '{"name": "Ada"}'},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }
)


def read_request(conn: socket.socket) -> bytes:
    """The request's head and its Content-Length body (enough to answer; no keep-alive)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(rest) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        rest += chunk
    return head + b"\r\n\r\n" + rest


def response(status: int, body: bytes, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {"Content-Type": "application/json"}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class RawServer:
    """`with RawServer(handler) as server: server.base_url` -> ``http://127.0.0.1:PORT/v1``."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.stopped = threading.Event()
        self.requests: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stopped.set()
        self._sock.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        try:
            request = read_request(conn)
            self.requests.append(request)
            self._handler(conn, request)
        except OSError:
            pass  # the client hung up: that is what most of these servers wait for
        finally:
            conn.close()


def endless(conn: socket.socket, request: bytes, *, chunk: int = 65536) -> None:
    """A 200 whose body never ends (no Content-Length, no chunking: read until close)."""
    conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{"x": "')
    block = b"a" * chunk
    while True:
        conn.sendall(block)


def chunked_endless(conn: socket.socket, request: bytes, *, chunk: int = 65536) -> None:
    """A 200 with Transfer-Encoding: chunked whose chunks never end."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
    block = f"{chunk:x}\r\n".encode() + b"a" * chunk + b"\r\n"
    while True:
        conn.sendall(block)


def huge_length(conn: socket.socket, request: bytes) -> None:
    """A Content-Length of 10 GB, then a trickle of the body (a client must refuse before reading)."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n")
    while True:
        conn.sendall(b"a" * 1024)
        time.sleep(0.05)


def drip(conn: socket.socket, request: bytes, *, every: float = 0.25) -> None:
    """A valid completion, sent one byte every `every` seconds (each read is quick; the whole is not)."""
    for byte in response(200, COMPLETION):
        conn.sendall(bytes([byte]))
        time.sleep(every)


def slowloris(conn: socket.socket, request: bytes, *, every: float = 0.25) -> None:
    """Headers that never end: one byte of a fresh header line every `every` seconds."""
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    while True:
        for byte in b"X-Padding: a\r\n":
            conn.sendall(bytes([byte]))
            time.sleep(every)


def fixed(status: int, body: bytes, headers: dict[str, str] | None = None) -> Handler:
    """Always the same answer."""
    raw = response(status, body, headers)

    def handler(conn: socket.socket, request: bytes) -> None:
        conn.sendall(raw)

    return handler
