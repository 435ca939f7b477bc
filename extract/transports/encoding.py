"""Request body encodings: JSON, gzip, msgpack and msgpack+gzip, exactly as the provider's page describes
them (`Content-Type: application/vnd.msgpack`, `Content-Encoding: gzip`), and the pure choice of which one
to use for a body. Pure: no I/O; the caller keeps the memory of refusals.

Bytes on the wire matter for long documents (the provider reports up to ~98% less with gzip on a
50k-token chat), but compressing costs client CPU, so `auto` compresses only above a threshold measured by
`benchmarks/bench_payload.py`. The fastest available library is used for each step (measured by the same
benchmark); the C-backed ones are optional (`pip install extract-llm[fast]`) and the standard library's
zlib is the fallback. Measured there on 200 KB of English prose: isal's gzip saves 67% of the bytes for
+15-25% of one whole extraction's client CPU (loopback or HTTPS); deflate itself tops out near 72% on that
text (zlib level 9, ~15x the CPU), so no gzip level reaches 70% at a small CPU cost.

msgpack carries exactly what JSON would: the value the server decodes from the msgpack body is the one it
would decode from `orjson.dumps(body)`. A body holding anything outside the plain JSON data model (a
non-finite float, which orjson writes as null; a tuple, an enum, a datetime, a dataclass, a str subclass;
a non-str key) is first normalised through orjson, so it travels as JSON would render it, and what orjson
refuses (an integer outside 64 bits, a lone surrogate) raises orjson's own error for every encoding alike.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, Final, Literal, NamedTuple, cast, get_args

import orjson

from extract.errors import ConfigurationError

__all__ = [
    "ENCODINGS",
    "GZIP_THRESHOLD_BYTES",
    "MSGPACK_CONTENT_TYPE",
    "PAYLOAD_SETTINGS",
    "EncodedBody",
    "Encoding",
    "PayloadPolicy",
    "PayloadSetting",
    "check_payload",
    "choose_encoding",
    "decode_body",
    "encode_body",
    "gzip_backend",
    "is_encoding_refusal",
    "msgpack_backend",
]

Encoding = Literal["json", "gzip", "msgpack", "msgpack+gzip"]
PayloadSetting = Literal["auto", "json", "gzip", "msgpack", "msgpack+gzip"]
ENCODINGS: Final[tuple[Encoding, ...]] = get_args(Encoding)
PAYLOAD_SETTINGS: Final[tuple[PayloadSetting, ...]] = get_args(PayloadSetting)

JSON_CONTENT_TYPE: Final = "application/json"
MSGPACK_CONTENT_TYPE: Final = "application/vnd.msgpack"

# Smallest serialised body `auto` compresses, from benchmarks/bench_payload.py's sweep: the smallest chat
# body whose gzip saves at least one TCP segment (1460 bytes) was ~3.0 KB (rounded up to 512 bytes here);
# there gzip costs ~20 us, 2% of one extraction's client CPU, and the share stays under 4% up to 20 KB.
GZIP_THRESHOLD_BYTES: Final = 3072
# Per library, measured on chat bodies of real prose: isal's level 2 costs the same CPU as its level 1
# for ~1% more saved (level 3 doubles the CPU); zlib's level 1 is 4x cheaper than its default 6.
GZIP_LEVELS: Final[Mapping[str, int]] = MappingProxyType({"isal": 2, "zlib-ng": 1, "zlib": 1})
_GZIP_MODULES: Final = {"isal": "isal.isal_zlib", "zlib-ng": "zlib_ng.zlib_ng"}
_GZIP_WBITS: Final = 31  # zlib's way of asking for the gzip container (header + CRC32), not a raw stream


class EncodedBody(NamedTuple):
    """What goes on the wire: the body bytes and the headers that describe them."""

    content: bytes
    headers: Mapping[str, str]
    encoding: Encoding


_HEADERS: Final[Mapping[Encoding, Mapping[str, str]]] = MappingProxyType(
    {
        "json": MappingProxyType({"Content-Type": JSON_CONTENT_TYPE}),
        "gzip": MappingProxyType({"Content-Type": JSON_CONTENT_TYPE, "Content-Encoding": "gzip"}),
        "msgpack": MappingProxyType({"Content-Type": MSGPACK_CONTENT_TYPE}),
        "msgpack+gzip": MappingProxyType({"Content-Type": MSGPACK_CONTENT_TYPE, "Content-Encoding": "gzip"}),
    }
)


# ------------------------------------------------------------------------------------------- backends

Compress = Callable[[bytes], bytes]
Pack = Callable[[Any], bytes]
Unpack = Callable[[bytes], Any]


def _optional(module: str) -> ModuleType | None:
    """An optional accelerator, imported by name (so a missing one is a fallback, not an error)."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _stdlib_gzip(data: bytes) -> bytes:
    # compressobj, not compress(wbits=): the latter only exists from Python 3.11
    packer = zlib.compressobj(GZIP_LEVELS["zlib"], zlib.DEFLATED, _GZIP_WBITS)
    return packer.compress(data) + packer.flush()


def _gzip_with(module: ModuleType, level: int) -> Compress:
    compress = module.compress

    def _compress(data: bytes) -> bytes:
        return cast("bytes", compress(data, level, wbits=_GZIP_WBITS))

    return _compress


def gzip_backend(name: str | None = None) -> tuple[str, Compress]:
    """The gzip compressor to use: `name` ("isal", "zlib-ng", "zlib") or, by default, the fastest one
    installed in the order the benchmark measured (isal, then zlib-ng, then the standard library)."""
    order = (name,) if name is not None else ("isal", "zlib-ng", "zlib")
    for candidate in order:
        if candidate == "zlib":
            return "zlib", _stdlib_gzip
        module = _optional(_GZIP_MODULES[candidate]) if candidate in _GZIP_MODULES else None
        if module is not None:
            return candidate, _gzip_with(module, GZIP_LEVELS[candidate])
    raise ConfigurationError(f"unknown or missing gzip backend {name!r}; use 'isal', 'zlib-ng' or 'zlib'")


def msgpack_backend(name: str | None = None) -> tuple[str, Pack, Unpack] | None:
    """The msgpack packer to use: `name` ("ormsgpack", "msgpack") or the fastest installed one; None when
    neither is installed (then msgpack encodings are not available and `choose_encoding` avoids them)."""
    order = (name,) if name is not None else ("ormsgpack", "msgpack")
    for candidate in order:
        module = _optional(candidate) if candidate in ("ormsgpack", "msgpack") else None
        if module is None:
            continue
        pack = cast("Pack", module.packb)
        unpackb = module.unpackb
        if candidate == "ormsgpack":
            return candidate, pack, cast("Unpack", unpackb)

        def _unpack(data: bytes, unpackb: Callable[..., Any] = unpackb) -> Any:
            return unpackb(data, raw=False, strict_map_key=True)

        return candidate, pack, _unpack
    if name is not None:
        raise ConfigurationError(f"unknown or missing msgpack backend {name!r}; use 'ormsgpack' or 'msgpack'")
    return None


_GZIP_NAME, _gzip = gzip_backend()
_MSGPACK = msgpack_backend()
MSGPACK_AVAILABLE: Final = _MSGPACK is not None


# ------------------------------------------------------------------------------------------- encoding

_MIN_INT: Final = -(2**63)
_MAX_INT: Final = 2**64 - 1


def _plain(value: object) -> bool:
    """Whether `value` is inside the plain JSON data model, where msgpack and orjson agree exactly."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return _MIN_INT <= cast("int", value) <= _MAX_INT
    if kind is float:
        number = cast("float", value)
        return number - number == 0.0  # False for nan and +-inf, which orjson writes as null
    if kind is list:
        return all(_plain(item) for item in cast("list[object]", value))
    if kind is dict:
        items = cast("dict[object, object]", value).items()
        return all(type(k) is str and _plain(v) for k, v in items)
    return False


def _msgpack(body: Mapping[str, Any]) -> bytes:
    if _MSGPACK is None:
        raise ConfigurationError(
            "msgpack request bodies need a msgpack library: pip install 'extract-llm[fast]' "
            "(or pass payload='json' / 'gzip')"
        )
    pack = _MSGPACK[1]
    if not _plain(body):
        body = orjson.loads(orjson.dumps(body))  # travel as JSON would render it
    try:
        return pack(body)
    except (TypeError, ValueError, OverflowError):
        # What _plain let through but the packer refused (a lone surrogate): JSON's verdict decides.
        return pack(orjson.loads(orjson.dumps(body)))


def encode_body(
    body: Mapping[str, Any], encoding: Encoding, *, json_bytes: bytes | None = None
) -> EncodedBody:
    """Serialise a request body for the wire. `json_bytes` (orjson.dumps(body)) may be passed when the caller
    already has it (to measure the size for `choose_encoding`), so the body is not serialised twice."""
    if encoding == "json" or encoding == "gzip":
        data = json_bytes if json_bytes is not None else orjson.dumps(body)
        content = data if encoding == "json" else _gzip(data)
    elif encoding == "msgpack" or encoding == "msgpack+gzip":
        data = _msgpack(body)
        content = data if encoding == "msgpack" else _gzip(data)
    else:
        raise ConfigurationError(f"unknown body encoding {encoding!r}; use one of {', '.join(ENCODINGS)}")
    return EncodedBody(content, _HEADERS[encoding], encoding)


def decode_body(content: bytes, headers: Mapping[str, str]) -> Any:
    """The inverse of `encode_body`, from the headers alone (header names in any case). For tests and for a
    server that must read what a client sent; raises ValueError on a body that does not match its headers."""
    lowered = {k.lower(): v.strip().lower() for k, v in headers.items()}
    coding = lowered.get("content-encoding", "identity")
    if coding == "gzip":
        try:
            content = zlib.decompress(content, wbits=_GZIP_WBITS)
        except zlib.error as exc:
            raise ValueError(f"the body is not valid gzip: {exc}") from None
    elif coding not in ("", "identity"):
        raise ValueError(f"unsupported Content-Encoding {coding!r}")
    media = lowered.get("content-type", JSON_CONTENT_TYPE).split(";", 1)[0].strip()
    if media == MSGPACK_CONTENT_TYPE:
        unpacker = msgpack_backend()
        if unpacker is None:
            raise ValueError("a msgpack body needs a msgpack library: pip install 'extract-llm[fast]'")
        try:
            return unpacker[2](content)
        except (
            ValueError,
            TypeError,
            OverflowError,
            RecursionError,
        ) as exc:  # msgpack's errors are ValueErrors
            raise ValueError(f"the body is not valid msgpack: {exc}") from None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not valid JSON: {exc}") from None


# ------------------------------------------------------------------------------------------- choosing

_GZIP_FAMILY: Final = frozenset({"gzip", "msgpack+gzip"})
_MSGPACK_FAMILY: Final = frozenset({"msgpack", "msgpack+gzip"})
# What to try instead of an encoding that may not be used, best first; JSON is always possible.
_FALLBACKS: Final[Mapping[Encoding, tuple[Encoding, ...]]] = MappingProxyType(
    {
        "json": ("json",),
        "gzip": ("gzip", "json"),
        "msgpack": ("msgpack", "json"),
        "msgpack+gzip": ("msgpack+gzip", "gzip", "msgpack", "json"),
    }
)


def _usable(encoding: Encoding, accepted: AbstractSet[str], refused: AbstractSet[str]) -> bool:
    """JSON always; otherwise listed as accepted (a combination also when both halves are) and neither the
    encoding nor a half of it was refused before (a refused gzip says nothing gzip-encoded will pass)."""
    if encoding == "json":
        return True
    if encoding in _MSGPACK_FAMILY and not MSGPACK_AVAILABLE:
        return False
    if encoding == "msgpack+gzip":
        listed = encoding in accepted or {"msgpack", "gzip"} <= accepted
        blocked = bool(refused & {"msgpack+gzip", "msgpack", "gzip"})
    else:
        listed = encoding in accepted
        blocked = encoding in refused
    return listed and not blocked


def check_payload(setting: object) -> PayloadSetting:
    """`setting` if it is a payload setting, else a ConfigurationError listing them."""
    if isinstance(setting, str) and setting in PAYLOAD_SETTINGS:
        return setting
    raise ConfigurationError(
        f"payload={setting!r} is not a payload setting; use one of {', '.join(PAYLOAD_SETTINGS)} "
        "('auto' gzips large bodies where the provider accepts it; 'json' never encodes)"
    )


def choose_encoding(
    setting: str,
    body_size: int,
    accepted: AbstractSet[str],
    refused: AbstractSet[str] = frozenset(),
    *,
    threshold: int = GZIP_THRESHOLD_BYTES,
) -> Encoding:
    """The encoding for one body of `body_size` JSON bytes under `Extractor(payload=setting)`.

    Never an encoding the provider record does not `accept` or the server `refused` before: an explicit
    choice that may not be used degrades to the closest one that may (msgpack+gzip -> gzip -> msgpack ->
    json). `auto` gzips JSON at `threshold` bytes and above. It never picks msgpack: measured on chat
    bodies it saves ~4% alone and ~1 point more than gzip under gzip, for the same CPU, which does not
    justify a less common body type and an optional dependency on the default path.
    """
    if setting == "auto":
        wanted: Encoding = "gzip" if body_size >= threshold else "json"
    elif setting in ENCODINGS:
        wanted = setting
    else:
        check_payload(setting)
    for candidate in _FALLBACKS[wanted]:
        if _usable(candidate, accepted, refused):
            return candidate
    return "json"


@dataclass(slots=True)
class PayloadPolicy:
    """How request bodies to one (server, model) are encoded: the caller's `setting`, the encodings the
    provider record's model row `accepted`, and those this server has `refused` so far.

    The transport asks `choose` per body; the engine calls `refuse` when a server turns an encoding down,
    so later bodies avoid it. `refused` is replaced whole, never mutated, so a thread reading it while
    another refuses sees one consistent set.
    """

    setting: PayloadSetting
    accepted: frozenset[str]
    refused: frozenset[str] = frozenset()

    def choose(self, body_size: int) -> Encoding:
        return choose_encoding(self.setting, body_size, self.accepted, self.refused)

    def refuse(self, encoding: str) -> bool:
        """Remember that the server refused `encoding`; True the first time (so the caller warns once)."""
        if encoding == "json" or encoding in self.refused:
            return False
        self.refused = self.refused | {encoding}
        return True


# ------------------------------------------------------------------------------------------- refusals

# Phrases of a server that did not understand the body's encoding: a 415's usual words, and what a server
# that ignores Content-Encoding / Content-Type says when it then parses gzip or msgpack bytes as JSON.
_REFUSAL_MARKERS: Final = (
    "content-type",
    "content type",
    "content-encoding",
    "content encoding",
    "media type",
    "unsupported media",
    "msgpack",
    "gzip",
    "decompress",
    "not valid json",
    "invalid json",
    "json decode",
    "jsondecodeerror",
    "expecting value",
    "utf-8",
)


def _text_of(body: object) -> str:
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body)[:4096].decode("utf-8", "replace")
    if isinstance(body, str):
        return body[:4096]
    if isinstance(body, Mapping):
        inner = body.get("error")
        fields: Mapping[Any, Any] = inner if isinstance(inner, Mapping) else body
        parts = [fields.get(k) for k in ("message", "code", "type", "param", "detail")]
        if isinstance(inner, str):
            parts.append(inner)
        return " ".join(str(p) for p in parts if p not in (None, ""))[:4096]
    return ""


def is_encoding_refusal(status_code: int, body: object) -> bool:
    """Whether a response refuses the request body's encoding (so sending it again as plain JSON is right).

    A 415 always; a 400 or 422 whose error names the encoding or says the body could not be read as JSON
    (what a server that ignores the headers answers). Only meaningful for a request sent gzip or msgpack:
    a wrong guess costs one JSON resend. `body` is the parsed error (dict), its raw bytes or text.
    """
    if status_code == 415:
        return True
    if status_code not in (400, 422):
        return False
    text = _text_of(body).lower()
    if "response_format" in text or "json_schema" in text:  # the output mode, not the body, was refused
        return False
    return any(marker in text for marker in _REFUSAL_MARKERS)
