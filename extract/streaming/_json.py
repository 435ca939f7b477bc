"""An incremental JSON parser: text arrives in pieces, each character is read once, and the value built so
far can be taken at any time.

Why hand-written: re-parsing the whole buffer on every piece (pydantic-core's `from_json(allow_partial=
True)`, jiter's partial mode) costs O(n) per piece and O(n^2) per reply; `benchmarks/bench_stream.py`
measures both. Here tokens are found with one compiled regex, strings are decoded by the C string scanner
of the standard library, and containers are built in place, so a reply costs O(total bytes).

What a snapshot holds (`IncrementalJson.snapshot`): every complete value, every open object with the
members completed so far (an open object with none is left out), and every open array with its finished
items. A string, number or literal is present only once it is complete: a partial value never holds a
half-written scalar, so nothing downstream sees "12" for 123 or "pen" for "pending".
"""

from __future__ import annotations

import re
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import Any

from extract._json import loads as exact_loads

__all__ = ["IncrementalJson", "JsonStreamError"]

# One token after optional whitespace: a structural character, a string's opening quote, or a scalar that
# is known to be complete (a number must be followed by a character that cannot continue it).
_TOKEN = re.compile(
    r"""[ \t\n\r]*(?:
        (?P<punct>[{}\[\],:])
      | (?P<quote>")
      | (?P<number>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)(?=[ \t\n\r,\]}])
      | (?P<literal>true|false|null)
    )""",
    re.VERBOSE,
)
_SPACE = re.compile(r"[ \t\n\r]*")
_LITERALS: dict[str, Any] = {"true": True, "false": False, "null": None}
_MISSING = object()


class JsonStreamError(ValueError):
    """The text cannot be the beginning of one JSON value (the reply is not JSON; judged at the end)."""


class IncrementalJson:
    """Feed text with `feed`; `snapshot()` is the partial value (see the module docstring), `done` says
    the top-level value is complete, `error` holds why the text stopped being JSON (then feeding stops)."""

    __slots__ = ("_buf", "_key", "_pos", "_stack", "done", "error", "root")

    def __init__(self) -> None:
        self._buf = ""
        self._pos = 0
        # open containers: [container, pending key for objects (or _MISSING), expecting ("value"|"key"|"sep")]
        self._stack: list[list[Any]] = []
        self._key: Any = _MISSING
        self.root: Any = _MISSING
        self.done = False
        self.error: str | None = None

    def feed(self, text: str) -> bool:
        """Read `text`; True when at least one value was completed (a structural boundary passed)."""
        if self.done or self.error is not None or not text:
            return False
        buf = self._buf[self._pos :] + text if self._pos else self._buf + text
        self._pos = 0
        try:
            changed = self._run(buf)
        except JsonStreamError as exc:
            self.error = str(exc)
            return False
        return changed

    def finish(self) -> None:
        """The text is over: a trailing number (nothing after it to end it) is read now."""
        if self.done or self.error is not None or self._pos >= len(self._buf):
            return
        tail = self._buf[self._pos :].strip()
        if tail and not self._stack and self.root is _MISSING:
            try:
                self._complete(exact_loads(tail))
            except ValueError:
                self.error = "the reply is not JSON"

    def _run(self, buf: str) -> bool:
        pos = 0
        end = len(buf)
        changed = False
        match = _TOKEN.match
        stack = self._stack
        while pos < end:
            if self.done:
                rest = _SPACE.match(buf, pos)
                pos = rest.end() if rest else pos
                if pos < end:
                    raise JsonStreamError(f"text after the JSON value at offset {pos}")
                break
            m = match(buf, pos)
            if m is None:
                if len(buf) - pos > 64 and not buf[pos:].strip()[:1].isalnum():
                    raise JsonStreamError(f"unexpected {buf[pos : pos + 20]!r}")
                break  # an incomplete token: wait for more text
            kind = m.lastgroup
            if kind == "quote":
                start = m.end()
                if buf.find('"', start) == -1:
                    pos = m.start()
                    break  # the string is still arriving (no closing quote yet): wait, no exception raised
                try:
                    value, after = scanstring(buf, start, True)
                except ValueError:
                    if '"' in buf[start:] and buf.find("\n", start) != -1:
                        raise JsonStreamError("a string holds a raw control character") from None
                    pos = m.start()
                    break  # unterminated: wait
                pos = after
                if stack and stack[-1][2] == "key":
                    self._key = value
                    stack[-1][2] = "colon"
                else:
                    self._value(value)
                    changed = True
                continue
            token = m.group(kind)  # type: ignore[arg-type]
            pos = m.end()
            if kind == "punct":
                changed = self._punct(token) or changed
            elif kind == "number":
                self._value(exact_loads(token))
                changed = True
            else:
                self._value(_LITERALS[token])
                changed = True
        self._buf = buf
        self._pos = pos
        return changed

    def _value(self, value: Any) -> None:
        stack = self._stack
        if not stack:
            if self.root is not _MISSING:
                raise JsonStreamError("a second value after the first")
            self._complete(value)
            return
        frame = stack[-1]
        if frame[2] != "value":
            raise JsonStreamError("a value where a key or separator was expected")
        container = frame[0]
        if isinstance(container, dict):
            container[self._key] = value
            self._key = _MISSING
        else:
            container.append(value)
        frame[2] = "sep"

    def _complete(self, value: Any) -> None:
        self.root = value
        self.done = True

    def _punct(self, token: str) -> bool:
        stack = self._stack
        if token == "{" or token == "[":
            container: Any = {} if token == "{" else []
            if stack:
                frame = stack[-1]
                if frame[2] != "value":
                    raise JsonStreamError(f"{token!r} where a key or separator was expected")
                parent = frame[0]
                if isinstance(parent, dict):
                    frame[1] = self._key
                    self._key = _MISSING
                frame[2] = "open"
            elif self.root is not _MISSING:
                raise JsonStreamError("a second value after the first")
            stack.append([container, _MISSING, "key" if token == "{" else "value"])
            return False
        if not stack:
            raise JsonStreamError(f"unexpected {token!r}")
        frame = stack[-1]
        state = frame[2]
        container = frame[0]
        if token == ",":
            if state != "sep":
                raise JsonStreamError("unexpected ','")
            frame[2] = "key" if isinstance(container, dict) else "value"
            return False
        if token == ":":
            if state != "colon":
                raise JsonStreamError("unexpected ':'")
            frame[2] = "value"
            return False
        closing_object = token == "}"
        if closing_object != isinstance(container, dict):
            raise JsonStreamError(f"unexpected {token!r}")
        if state not in ("sep", "key" if closing_object else "value") or (
            state in ("key", "value") and container
        ):
            raise JsonStreamError(f"unexpected {token!r}")
        stack.pop()
        if not stack:
            self._complete(container)
            return True
        parent_frame = stack[-1]
        parent = parent_frame[0]
        if isinstance(parent, dict):
            parent[parent_frame[1]] = container
            parent_frame[1] = _MISSING
        else:
            parent.append(container)
        parent_frame[2] = "sep"
        return True

    def snapshot(self) -> Any:
        """The value so far (None before anything is complete): complete values are shared, open
        containers copied, so a snapshot is never changed by later feeding."""
        if self.done:
            return self.root
        stack = self._stack
        if not stack:
            return None
        child: Any = _MISSING
        for depth in range(len(stack) - 1, -1, -1):
            container = stack[depth][0]
            if isinstance(container, dict):
                copy: Any = dict(container)
                if child is not _MISSING:
                    copy[stack[depth][1]] = child
                if not copy:
                    child = _MISSING
                    continue
            else:
                copy = list(container)  # an open item is left out: arrays show finished items only
            child = copy
        return None if child is _MISSING else child
