"""Documents in whatever shape callers have them, read lazily: strings, (id, text) pairs, {"id", "text"} dicts,
from a sync or an async iterable. Nothing here lists the input, so memory does not grow with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from extract._batch._outcome import DocId
from extract.errors import ConfigurationError

__all__ = ["Doc", "as_doc", "iter_docs"]


@dataclass(frozen=True, slots=True)
class Doc:
    """One input document; `problem` says why it cannot be sent (it then gets an error outcome)."""

    index: int
    id: DocId
    text: str
    problem: str | None = None


def _valid_id(value: Any) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def as_doc(item: Any, index: int) -> Doc:
    """Normalise one input item; a malformed item becomes a Doc with a `problem`, never an exception."""
    if isinstance(item, str):
        return Doc(index, index, item)
    if isinstance(item, Mapping):
        doc_id = item.get("id", index)
        text = item.get("text")
        where = f"document {index} (a dict)"
    elif isinstance(item, (tuple, list)) and len(item) == 2:
        doc_id, text = item
        where = f"document {index} (an (id, text) pair)"
    else:
        return Doc(
            index,
            index,
            "",
            f"document {index} is a {type(item).__name__}; expected a string, an (id, text) pair or a "
            '{"id": ..., "text": ...} dict',
        )
    if not _valid_id(doc_id):
        return Doc(index, index, "", f"{where} has id {doc_id!r}; ids must be strings or integers")
    if not isinstance(text, str):
        got = "no 'text'" if text is None else f"a {type(text).__name__} as text"
        return Doc(index, doc_id, "", f"{where} with id {doc_id!r} has {got}; expected a string")
    return Doc(index, doc_id, text)


async def iter_docs(documents: Iterable[Any] | AsyncIterable[Any]) -> AsyncIterator[Doc]:
    """Pull documents one at a time, only when the scheduler has room for them."""
    if isinstance(documents, (str, bytes, Mapping)):
        raise ConfigurationError(
            f"documents must be an iterable of documents, not a single {type(documents).__name__}; "
            "wrap it in a list, or call extract() for one text"
        )
    index = 0
    if isinstance(documents, AsyncIterable):
        async for item in documents:
            yield as_doc(item, index)
            index += 1
        return
    if not isinstance(documents, Iterable):
        raise ConfigurationError(
            f"documents must be an iterable (a list, a generator, a file's lines...), not "
            f"{type(documents).__name__}"
        )
    for item in documents:
        yield as_doc(item, index)
        index += 1
