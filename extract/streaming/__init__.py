"""Streaming: partial values of the user's type while a reply arrives (`extract.stream`/`astream`).

Pure pieces, no I/O: `ChatStream` reads the provider's server-sent events, `IncrementalJson` parses the
content once as it grows, `PartialDecoder` turns wire partials into the user's shape (with `partial_twin`
for pydantic models); the iterators the public functions return are in `_iterators`.
"""

from extract.streaming._iterators import AsyncPartialStream, PartialStream
from extract.streaming._json import IncrementalJson, JsonStreamError
from extract.streaming._partial import PartialDecoder
from extract.streaming._sse import ChatStream
from extract.streaming._twin import partial_twin

__all__ = [
    "AsyncPartialStream",
    "ChatStream",
    "IncrementalJson",
    "JsonStreamError",
    "PartialDecoder",
    "PartialStream",
    "partial_twin",
]
