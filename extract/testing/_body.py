"""Request body encodings as the provider's pages describe them, decoded into a JSON value.

`Content-Type` is `application/json` (the default when absent) or `application/vnd.msgpack`;
`Content-Encoding: gzip` compresses either. Anything else is refused with 415, a body that does not decode
with 400, both in the provider's flat error shape. The pages name no exact error text for these; the codes
here are this server's choice (`unsupported_media_type`, and `wrong_api_format` as for other bad bodies).

Pure: headers and bytes in, a `Decoded` or an error `Reply` out.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from extract.testing._msgpack import MsgpackError, unpackb
from extract.testing._wire import Reply, client_error

__all__ = ["ENCODINGS", "Decoded", "decode_body", "encoding_name"]

# The optional encodings a server may accept; plain JSON is always accepted.
ENCODINGS = frozenset({"gzip", "msgpack"})
_JSON_TYPES = frozenset({"", "application/json"})
_MSGPACK_TYPES = frozenset({"application/vnd.msgpack"})
_MAX_INFLATED = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Decoded:
    """A decoded body: its JSON value (None when it failed to parse), how it arrived, and any error."""

    value: Any
    encoding: str  # "json" | "gzip" | "msgpack" | "msgpack+gzip" (the names clients use for the choice)
    content: bytes  # the body after Content-Encoding is undone (JSON text or msgpack bytes)
    error: Reply | None


def encoding_name(msgpack: bool, gzipped: bool) -> str:
    base = "msgpack" if msgpack else "json"
    if gzipped:
        return "msgpack+gzip" if msgpack else "gzip"
    return base


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def decode_body(headers: Mapping[str, str], raw: bytes, accepted: frozenset[str]) -> Decoded:
    """Undo Content-Encoding, then parse by Content-Type; `accepted` is a subset of ENCODINGS."""
    media = _media_type(headers)
    coding = headers.get("content-encoding", "").strip().lower()
    msgpack = media in _MSGPACK_TYPES
    gzipped = coding == "gzip"
    name = encoding_name(msgpack, gzipped)
    if coding not in ("", "identity", "gzip"):
        return Decoded(None, coding, raw, _unsupported("Content-Encoding", coding, "gzip"))
    if not msgpack and media not in _JSON_TYPES:
        return Decoded(
            None, media, raw, _unsupported("Content-Type", media, "application/json, application/vnd.msgpack")
        )
    for wanted, header, value in ((gzipped, "Content-Encoding", "gzip"), (msgpack, "Content-Type", media)):
        token = "gzip" if header == "Content-Encoding" else "msgpack"
        if wanted and token not in accepted:
            return Decoded(None, name, raw, _refused(header, value, accepted))
    content = raw
    if gzipped:
        try:
            content = _gunzip(raw)
        except (OSError, EOFError, zlib.error, ValueError) as exc:
            message = (
                f"The request body is not valid gzip ({exc}); send it compressed or drop Content-Encoding."
            )
            return Decoded(None, name, raw, client_error(400, message, code="wrong_api_format"))
    if msgpack:
        try:
            return Decoded(unpackb(content), name, content, None)
        except MsgpackError as exc:
            message = f"The request body is not valid MessagePack: {exc}."
            return Decoded(None, name, content, client_error(400, message, code="wrong_api_format"))
    try:
        return Decoded(orjson.loads(content), name, content, None)
    except orjson.JSONDecodeError:
        error = client_error(400, "The request body is not valid JSON.", code="wrong_api_format")
        return Decoded(None, name, content, error)


def _gunzip(raw: bytes) -> bytes:
    """gzip.decompress with a ceiling, so a small bomb cannot take the server's memory."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(raw, _MAX_INFLATED)
    if inflater.unconsumed_tail:
        raise ValueError(f"inflates to more than {_MAX_INFLATED} bytes")
    if not inflater.eof:
        raise EOFError("the gzip stream ends early")
    if inflater.unused_data:
        # Concatenated gzip members are valid gzip; decode the rest the slow, complete way.
        return out + gzip.decompress(inflater.unused_data)
    return out


def _unsupported(header: str, value: str, supported: str) -> Reply:
    return client_error(
        415,
        f"Unsupported {header} {value!r}. Supported values: {supported}.",
        param=header.lower(),
        code="unsupported_media_type",
    )


def _refused(header: str, value: str, accepted: frozenset[str]) -> Reply:
    allowed = ", ".join(sorted(accepted)) or "none (send plain JSON)"
    return client_error(
        415,
        f"This endpoint does not accept {header} {value!r}; accepted optional encodings: {allowed}.",
        param=header.lower(),
        code="unsupported_media_type",
    )
