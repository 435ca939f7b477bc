"""The checks a call's arguments pass before anything is sent. Pure.

A typo in an option must not travel to the server as a request field, a text the wire cannot carry must
fail here with its offset (not as a TypeError deep in the transport), and a schema of the wrong kind must
be named as such (not in the schema loader's internal words).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from extract.errors import ConfigurationError, InputError, SchemaError, UnknownOptionError

__all__ = ["check_options", "check_schema_argument", "check_text"]

# Request fields the engine owns; a caller passing them would silently fight it.
RESERVED = frozenset({"messages", "response_format", "stream", "n"})


def check_options(given: Iterable[str], valid: Iterable[str], where: str) -> None:
    """UnknownOptionError for the first name of `given` not in `valid`, with the closest valid name."""
    allowed = frozenset(valid)
    for name in given:
        if name in allowed:
            continue
        close = difflib.get_close_matches(name, sorted(allowed), n=1, cutoff=0.6)
        suggestion = close[0] if close else None
        hint = f" (did you mean {suggestion!r}?)" if suggestion else ""
        raise UnknownOptionError(
            f"{where} got an unknown option {name!r}{hint}. Valid options: {', '.join(sorted(allowed))}. "
            "Provider fields extract does not know go in extra_body={...}, merged into the request body.",
            option=name,
            suggestion=suggestion,
        )


def check_params(params: Mapping[str, Any]) -> None:
    """Request fields that cannot be passed (the engine sets them) or cannot be passed together."""
    clash = sorted(RESERVED.intersection(params))
    if clash:
        raise ConfigurationError(
            f"{', '.join(clash)} cannot be passed: extract builds the messages and response_format itself "
            "and reads one non-streamed reply (pass a list of messages as `text` to control the prompt)"
        )
    if "max_tokens" in params and "max_completion_tokens" in params:
        raise ConfigurationError(
            "pass max_completion_tokens or max_tokens, not both (the server rejects both)"
        )


def check_extra_body(extra_body: object) -> dict[str, Any]:
    """`extra_body` as a plain dict of string keys, or ConfigurationError."""
    if extra_body is None:
        return {}
    if not isinstance(extra_body, Mapping) or not all(isinstance(k, str) for k in extra_body):
        raise ConfigurationError(
            f"extra_body must be a dict of request fields (str keys), not {type(extra_body).__name__}"
        )
    return dict(extra_body)


def _check_str(text: str, where: str) -> None:
    if text.isascii():
        return
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(
            f"{where} has a lone surrogate {text[exc.start]!r} at offset {exc.start}, which cannot be sent "
            "as UTF-8: it usually comes from bytes decoded with errors='surrogateescape'. Decode the bytes "
            "with errors='replace' (or fix the source encoding) before extracting."
        ) from None


def check_text(text: object) -> None:
    """The text is a str (or a list of chat messages) that UTF-8 can carry; else InputError."""
    if isinstance(text, str):
        _check_str(text, "the text")
        return
    if (
        isinstance(text, Sequence)
        and not isinstance(text, (bytes, bytearray))
        and text
        and all(isinstance(m, Mapping) for m in text)
    ):
        for i, message in enumerate(text):
            content = message.get("content")
            if isinstance(content, str):
                _check_str(content, f"message {i}'s content")
        return
    kind = type(text).__name__
    fix = (
        " (decode it first: data.decode('utf-8', errors='replace'))"
        if isinstance(text, (bytes, bytearray))
        else ""
    )
    raise InputError(
        f"text must be a str (or a non-empty list of chat messages, {{'role': ..., 'content': ...}} dicts), "
        f"not {kind}{fix}"
    )


def check_schema_argument(schema: object) -> None:
    """The schema is a pydantic model class or type, a JSON Schema dict, a path, or a compiled schema."""
    if schema is None or isinstance(schema, (list, tuple, set, frozenset, int, float, bool, bytes)):
        raise SchemaError(
            f"schema must be a pydantic model class (or another type), a JSON Schema dict, a path to a "
            f".json file or a CompiledSchema, not {type(schema).__name__}: {schema!r:.80}"
        )
    if isinstance(schema, (str, os.PathLike)) and not str(os.fspath(schema)).strip():
        raise SchemaError("schema is an empty path; pass a .json file, a dict or a pydantic model class")
