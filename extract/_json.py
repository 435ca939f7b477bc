"""JSON text -> Python value with every number kept exact: the one loader for model replies.

orjson is the fast path, but it has no exact form for integers beyond 64 bits, and the JSON grammar
allows literals outside the range of a double (``1e400``). Text that holds such a literal (a run of 19
or more digits, or an exponent of three or more digits: a cheap C-speed test that may also fire inside
strings, which only costs the slower path) is parsed by the json module instead, with these rules:

- An integer literal (no fraction, no exponent) is a Python ``int`` of any size, never a float.
- A literal with a fraction or an exponent is a Python ``float``, rounded to the nearest double, as every
  mainstream JSON parser does (RFC 8259 section 6 names IEEE 754 doubles as the interoperable range).
  Write integers as digits: ``1e25`` is the double nearest 10**25, not the integer.
- A float literal beyond the double range (``1e400``), or a nonzero one that would round to zero
  (``1e-400``), has no faithful Python value: :class:`InexactNumber`, never ``inf`` or ``0.0``.
- ``NaN`` / ``Infinity`` are not JSON and are refused, as orjson refuses them.
- An integer of more than the interpreter's digit limit (4,300 by default) is refused, not rounded.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import orjson

__all__ = ["InexactNumber", "dumps", "loads"]

# Literals orjson cannot carry exactly: > 18 digits in a row (beyond int64 / uint64 or beyond a double's
# 17 significant digits) or an exponent of 3+ digits (beyond the double range, or underflow to zero).
_RISKY = re.compile(r"[\deE](?:(?<=\d)\d{18}|(?<=[eE])[+-]?\d{3})")  # one class first: faster
_RISKY_BYTES = re.compile(rb"[\deE](?:(?<=\d)\d{18}|(?<=[eE])[+-]?\d{3})")
_SHOWN = 40  # characters of an offending literal quoted in a message


class InexactNumber(json.JSONDecodeError):
    """A JSON number with no faithful Python value (out of the double range, or underflowing to zero)."""

    def __init__(self, literal: str, doc: str, pos: int) -> None:
        shown = literal if len(literal) <= _SHOWN else literal[: _SHOWN - 1] + "…"
        super().__init__(
            f"the number {shown} is outside the range of a 64-bit float (about ±1.8e308, smallest "
            "nonzero ±5e-324)",
            doc,
            pos,
        )
        self.literal = literal


def loads(data: str | bytes | bytearray) -> Any:
    """Parse JSON text exactly; raises ``json.JSONDecodeError`` (orjson's subclass or
    :class:`InexactNumber`) for anything that is not one JSON value with faithful numbers."""
    risky = _RISKY_BYTES.search(data) if isinstance(data, (bytes, bytearray)) else _RISKY.search(data)
    if risky is None:
        return orjson.loads(data)
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError(f"the text is not UTF-8 ({exc.reason})", "", exc.start) from None
    try:
        return json.loads(text, parse_float=lambda s: _exact_float(s, text), parse_constant=_refuse)
    except _Refused as exc:
        raise json.JSONDecodeError(
            f"{exc.args[0]} is not a JSON value", text, text.find(exc.args[0])
        ) from None
    except RecursionError:
        raise json.JSONDecodeError("the JSON is nested too deeply to parse", text, 0) from None
    except ValueError as exc:  # the json module's digit limit for int() conversion
        if isinstance(exc, json.JSONDecodeError):
            raise
        raise json.JSONDecodeError(f"an integer is too long to read exactly ({exc})", text, 0) from None


class _Refused(ValueError):
    pass


def _refuse(name: str) -> Any:
    raise _Refused(name)


def _exact_float(literal: str, doc: str) -> float:
    value = float(literal)
    if math.isinf(value) or (
        value == 0.0 and any(c in "123456789" for c in literal.split("e")[0].split("E")[0])
    ):
        raise InexactNumber(literal, doc, max(doc.find(literal), 0))
    return value


def dumps(value: Any, option: int = 0) -> bytes:
    """orjson's bytes, or the json module's when an integer is beyond 64 bits (orjson refuses those, so a
    value `loads` returned can always be written back). Honours OPT_INDENT_2, OPT_APPEND_NEWLINE,
    OPT_SORT_KEYS and OPT_NON_STR_KEYS on the fallback path; raises TypeError for non-JSON values."""
    try:
        return orjson.dumps(value, option=option)
    except TypeError as exc:
        if "64-bit" not in str(exc) and "Integer" not in str(exc):
            raise
    try:
        text = json.dumps(
            value,
            ensure_ascii=False,
            allow_nan=False,
            indent=2 if option & orjson.OPT_INDENT_2 else None,
            separators=(",", ": ") if option & orjson.OPT_INDENT_2 else (",", ":"),
            sort_keys=bool(option & orjson.OPT_SORT_KEYS),
        )
    except ValueError as exc:
        raise TypeError(f"not JSON-serialisable: {exc}") from None
    newline = "\n" if option & orjson.OPT_APPEND_NEWLINE else ""
    return (text + newline).encode()
