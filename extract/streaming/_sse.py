"""Server-sent events of a streamed chat completion, read and put back together. Pure: no I/O.

The provider's format: `data: {chunk}` events (`object: chat.completion.chunk`), ended by `data: [DONE]`;
content in `choices[0].delta.content`, reasoning in `delta.reasoning` (or `reasoning_content`), kept
apart; `usage` and `time_info` only in the final chunk; an error may arrive as an event carrying `error`.
`ChatStream` turns the bytes into content deltas as they come and, at the end, into the same completion
body a non-streamed call returns, so the engine judges a streamed reply exactly like any other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["ChatStream"]


class ChatStream:
    """Feed raw bytes; each `feed` returns the content text that arrived. `completion()` is the reply as
    a chat.completion body; `error` is the error event the server sent, if any; `done` says [DONE] came."""

    __slots__ = (
        "_content",
        "_partial",
        "_reasoning",
        "_refusal",
        "done",
        "error",
        "events",
        "finish_reason",
        "logprobs",
        "meta",
        "time_info",
        "usage",
    )

    def __init__(self) -> None:
        self._partial = b""  # an event not yet terminated by a blank line
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self.logprobs: list[Any] = []
        self.finish_reason: str | None = None
        self.usage: Any = None
        self.time_info: Any = None
        self.meta: dict[str, Any] = {}
        self.error: Any = None
        self.done = False
        self.events = 0

    @property
    def content(self) -> str:
        return "".join(self._content)

    def feed(self, data: bytes) -> str:
        """Read bytes; return the content delta text they completed (empty when none)."""
        buf = self._partial + data if self._partial else data
        if b"\r" in buf:
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *events, self._partial = buf.split(b"\n\n")
        out: list[str] = []
        loads = orjson.loads
        for event in events:
            # The usual event, read inline (a function call per event is a good part of its cost): one
            # `data: {...}` line after the first chunk, a content delta alone, no usage, error or logprobs.
            if self.events and event[:7] == b"data: {" and b"\n" not in event:
                try:
                    chunk = loads(event[6:])
                except orjson.JSONDecodeError:
                    continue  # an unreadable event: the reply it leaves incomplete is judged at the end
                if type(chunk) is dict and "usage" not in chunk and "time_info" not in chunk:
                    choices = chunk.get("choices")
                    if type(choices) is list and choices and "error" not in chunk:
                        choice = choices[0]
                        delta = choice.get("delta") if type(choice) is dict else None
                        if (
                            type(delta) is dict
                            and len(delta) == 1
                            and choice.get("finish_reason") is None
                            and choice.get("logprobs") is None
                        ):
                            text = delta.get("content")
                            if type(text) is str:
                                self.events += 1
                                if text:
                                    self._content.append(text)
                                    out.append(text)
                                continue
                    if type(chunk) is dict:
                        self.events += 1
                        text = self._chunk(chunk)
                        if text:
                            out.append(text)
                        continue
            text = self._event(event)
            if text:
                out.append(text)
        return "".join(out)

    def close(self) -> str:
        """The bytes are over: an event left without its blank line is read too."""
        rest, self._partial = self._partial, b""
        return self._event(rest) if rest.strip() else ""

    def _event(self, event: bytes) -> str:
        if event.startswith(b"data: ") and b"\n" not in event:
            data = event[6:]  # the usual event: one data line
        else:
            payload = [
                line[6:] if line[5:6] == b" " else line[5:]  # one leading space is the separator
                for line in event.split(b"\n")
                if line.startswith(b"data:")
            ]
            if not payload:
                return ""  # comments (": keep-alive"), event names, ids
            data = b"\n".join(payload)
        if data[:1] == b"[" and data.strip() == b"[DONE]":
            self.done = True
            return ""
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return ""  # an unreadable event: the reply it leaves incomplete is judged at the end
        if type(chunk) is not dict:
            return ""
        result = self._chunk(chunk)
        self.events += 1
        return result

    def _chunk(self, chunk: dict[str, Any]) -> str:
        if not self.events or "usage" in chunk or "time_info" in chunk or "error" in chunk:
            self._outer(chunk)
        choices = chunk.get("choices")
        if type(choices) is not list or not choices:
            return ""
        choice = choices[0]
        if type(choice) is not dict:
            return ""
        finish = choice.get("finish_reason")
        if finish is not None and isinstance(finish, str):
            self.finish_reason = finish
        logprobs = choice.get("logprobs")
        if (
            logprobs is not None
            and isinstance(logprobs, Mapping)
            and isinstance(logprobs.get("content"), list)
        ):
            self.logprobs.extend(logprobs["content"])
        delta = choice.get("delta")
        if type(delta) is not dict:
            return ""
        content = delta.get("content")
        if len(delta) > 1 or content is None:
            reasoning = delta.get("reasoning") or delta.get("reasoning_content")
            if isinstance(reasoning, str):
                self._reasoning.append(reasoning)
            refusal = delta.get("refusal")
            if isinstance(refusal, str):
                self._refusal.append(refusal)
        if content and isinstance(content, str):
            self._content.append(content)
            return content
        return ""

    def _outer(self, chunk: dict[str, Any]) -> None:
        """The fields around `choices`: the error event, the chunk's identity, and the final usage."""
        if chunk.get("error"):
            self.error = chunk["error"]
        if not self.meta:
            self.meta = {k: chunk[k] for k in ("id", "created", "model", "system_fingerprint") if k in chunk}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        if chunk.get("time_info"):
            self.time_info = chunk["time_info"]

    def completion(self) -> dict[str, Any]:
        """The reply as a chat.completion body (what a non-streamed call returns)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.content}
        if self._reasoning:
            message["reasoning"] = "".join(self._reasoning)
        if self._refusal:
            message["refusal"] = "".join(self._refusal)
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": self.finish_reason}
        if self.logprobs:
            choice["logprobs"] = {"content": self.logprobs}
        body: dict[str, Any] = {**self.meta, "object": "chat.completion", "choices": [choice]}
        if self.usage is not None:
            body["usage"] = self.usage
        if self.time_info is not None:
            body["time_info"] = self.time_info
        return body
