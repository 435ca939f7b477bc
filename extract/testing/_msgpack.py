"""MessagePack for JSON-shaped values, in pure Python, so the test server needs no msgpack package.

Only the types a JSON body can hold are accepted: nil, booleans, integers (64-bit), floats, UTF-8 strings,
arrays and maps with string keys. Binary and extension values, non-string map keys, truncated input and
trailing bytes are errors (`MsgpackError`), which the server answers with the provider's 400.
"""

from __future__ import annotations

import struct
from typing import Any

__all__ = ["MsgpackError", "packb", "unpackb"]

_MAX_DEPTH = 512


class MsgpackError(ValueError):
    """The bytes are not one well-formed MessagePack value of a JSON type."""


def unpackb(data: bytes) -> Any:
    """Decode exactly one value from `data`."""
    reader = _Reader(data)
    value = reader.value(0)
    if reader.pos != len(data):
        raise MsgpackError(f"{len(data) - reader.pos} trailing bytes after the MessagePack value")
    return value


class _Reader:
    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise MsgpackError("truncated MessagePack data")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))[0]

    def text(self, n: int) -> str:
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MsgpackError("a MessagePack string is not valid UTF-8") from exc

    def value(self, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise MsgpackError(f"MessagePack nesting deeper than {_MAX_DEPTH}")
        tag = self.take(1)[0]
        if tag <= 0x7F:
            return tag
        if tag >= 0xE0:
            return tag - 0x100
        if 0x80 <= tag <= 0x8F:
            return self.map(tag & 0x0F, depth)
        if 0x90 <= tag <= 0x9F:
            return self.array(tag & 0x0F, depth)
        if 0xA0 <= tag <= 0xBF:
            return self.text(tag & 0x1F)
        simple = _SIMPLE.get(tag)
        if simple is not None:
            return simple[0]
        if tag in _NUMBERS:
            return self.unpack(_NUMBERS[tag])
        if tag in (0xD9, 0xDA, 0xDB):
            return self.text(self.unpack(_LENGTHS[tag]))
        if tag in (0xDC, 0xDD):
            return self.array(self.unpack(_LENGTHS[tag]), depth)
        if tag in (0xDE, 0xDF):
            return self.map(self.unpack(_LENGTHS[tag]), depth)
        if tag in (0xC4, 0xC5, 0xC6):
            raise MsgpackError("MessagePack binary values have no JSON equivalent")
        if tag in (0xC7, 0xC8, 0xC9) or 0xD4 <= tag <= 0xD8:
            raise MsgpackError("MessagePack extension types have no JSON equivalent")
        raise MsgpackError(f"byte 0x{tag:02x} is not a MessagePack format")

    def array(self, n: int, depth: int) -> list[Any]:
        if n > len(self.data) - self.pos:
            raise MsgpackError("truncated MessagePack data")
        return [self.value(depth + 1) for _ in range(n)]

    def map(self, n: int, depth: int) -> dict[str, Any]:
        if 2 * n > len(self.data) - self.pos:
            raise MsgpackError("truncated MessagePack data")
        out: dict[str, Any] = {}
        for _ in range(n):
            key = self.value(depth + 1)
            if not isinstance(key, str):
                raise MsgpackError("MessagePack map keys must be strings to stand for a JSON object")
            out[key] = self.value(depth + 1)
        return out


_SIMPLE: dict[int, tuple[Any]] = {0xC0: (None,), 0xC2: (False,), 0xC3: (True,)}
_NUMBERS = {
    0xCA: ">f",
    0xCB: ">d",
    0xCC: ">B",
    0xCD: ">H",
    0xCE: ">I",
    0xCF: ">Q",
    0xD0: ">b",
    0xD1: ">h",
    0xD2: ">i",
    0xD3: ">q",
}
_LENGTHS = {0xD9: ">B", 0xDA: ">H", 0xDB: ">I", 0xDC: ">H", 0xDD: ">I", 0xDE: ">H", 0xDF: ">I"}


def packb(value: Any) -> bytes:
    """Encode a JSON-shaped value (used by tests and examples to build msgpack request bodies)."""
    out = bytearray()
    _pack(value, out, 0)
    return bytes(out)


def _pack(value: Any, out: bytearray, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise MsgpackError(f"value nested deeper than {_MAX_DEPTH}")
    if value is None:
        out.append(0xC0)
    elif value is True:
        out.append(0xC3)
    elif value is False:
        out.append(0xC2)
    elif isinstance(value, int):
        _pack_int(value, out)
    elif isinstance(value, float):
        out.append(0xCB)
        out += struct.pack(">d", value)
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        n = len(raw)
        if n < 32:
            out.append(0xA0 | n)
        elif n < 0x100:
            out += bytes((0xD9, n))
        elif n < 0x10000:
            out.append(0xDA)
            out += struct.pack(">H", n)
        else:
            out.append(0xDB)
            out += struct.pack(">I", n)
        out += raw
    elif isinstance(value, (list, tuple)):
        _pack_length(len(value), out, 0x90, 0xDC)
        for item in value:
            _pack(item, out, depth + 1)
    elif isinstance(value, dict):
        _pack_length(len(value), out, 0x80, 0xDE)
        for key, item in value.items():
            if not isinstance(key, str):
                raise MsgpackError(f"map keys must be strings, got {type(key).__name__}")
            _pack(key, out, depth + 1)
            _pack(item, out, depth + 1)
    else:
        raise MsgpackError(f"cannot encode {type(value).__name__} as MessagePack")


def _pack_length(n: int, out: bytearray, fix: int, wide: int) -> None:
    if n < 16:
        out.append(fix | n)
    elif n < 0x10000:
        out.append(wide)
        out += struct.pack(">H", n)
    else:
        out.append(wide + 1)
        out += struct.pack(">I", n)


def _pack_int(n: int, out: bytearray) -> None:
    if 0 <= n <= 0x7F:
        out.append(n)
    elif -32 <= n < 0:
        out.append(n + 0x100)
    elif 0 <= n < 2**64:
        out.append(0xCF)
        out += struct.pack(">Q", n)
    elif -(2**63) <= n < 0:
        out.append(0xD3)
        out += struct.pack(">q", n)
    else:
        raise MsgpackError(f"integer {n} does not fit in 64 bits")
