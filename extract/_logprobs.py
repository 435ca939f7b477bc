"""Chat completions with per-token logprobs, decoded once into compact token records.

With logprobs a reply is mostly its token list (Invoice in benchmarks/bench_evidence.py: 34 KB, 148
tokens, each with a `bytes` list and two `top_logprobs` alternatives, ~1,040 lists and dicts). Decoded
as plain JSON, those containers cost the decode and then the garbage collector, which walks them on
every young collection until they die. Here the body is decoded in one pass with msgspec against the
shape of a chat completion: each token becomes a `Token` record the collector does not track, whose
`bytes` and `top_logprobs` stay raw JSON until someone reads them (the confidence code reads
`top_logprobs` only for a boolean or enum value's first token).

The result equals what `orjson.loads` gives, key for key, with each `choices[i].logprobs.content` entry a
`Token` that reads like the entry's dict (`entry["token"]`, `entry.get("bytes")`, `dict(entry)`, `==`).
Only a body of the known shape is decoded this way: an unknown field anywhere on the path to the tokens,
or a value of an unexpected type, makes `decode_reply` answer None and the caller decode the body as
plain JSON, so nothing a server sends is dropped. (One difference in kind remains: an integer beyond 64
bits in a free-form part of the body decodes as an int here and as a float in orjson.)

msgspec is imported with this module, which only a reply carrying logprobs or the evidence path loads:
`import extract` does not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from operator import attrgetter
from typing import Any, Final

import msgspec
import orjson
from msgspec import UNSET, Raw, UnsetType

__all__ = ["Token", "column", "decode_reply"]

_TOKEN_FIELDS: Final = ("id", "token", "logprob", "bytes", "top_logprobs")


class Token(msgspec.Struct, frozen=True, gc=False, eq=False, forbid_unknown_fields=True):
    """One entry of `logprobs.content`, read-only, reading like the dict it was on the wire: a missing
    field is missing (KeyError, `get` gives the default), `bytes` and `top_logprobs` are decoded from their
    raw JSON on each read. No field holds a container, so leaving it untracked by the collector is safe."""

    id: int | UnsetType | None = UNSET  # llama.cpp's server sends the token's id
    token: str | UnsetType | None = UNSET
    logprob: int | float | UnsetType | None = UNSET
    bytes: Raw | UnsetType = UNSET
    top_logprobs: Raw | UnsetType = UNSET

    def __getitem__(self, key: str) -> Any:
        value = getattr(self, key, UNSET) if key in _TOKEN_FIELDS else UNSET
        if value is UNSET:
            raise KeyError(key)
        return orjson.loads(memoryview(value)) if type(value) is Raw else value

    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, UNSET) if key in _TOKEN_FIELDS else UNSET
        if value is UNSET:
            return default
        return orjson.loads(memoryview(value)) if type(value) is Raw else value

    def keys(self) -> list[str]:
        return [key for key in _TOKEN_FIELDS if getattr(self, key) is not UNSET]

    def values(self) -> list[Any]:
        return [self[key] for key in self.keys()]

    def items(self) -> list[tuple[str, Any]]:
        return [(key, self[key]) for key in self.keys()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def __contains__(self, key: object) -> bool:
        return key in _TOKEN_FIELDS and getattr(self, str(key)) is not UNSET

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Token, Mapping)):
            return dict(self.items()) == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to dicts, so unhashable like them

    def __repr__(self) -> str:
        return repr(dict(self.items()))


Mapping.register(Token)


class _Logprobs(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    content: list[Token] | UnsetType | None = UNSET
    refusal: Any = UNSET


class _Choice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    index: Any = UNSET
    message: Any = UNSET
    finish_reason: Any = UNSET
    logprobs: _Logprobs | UnsetType | None = UNSET
    stop_reason: Any = UNSET  # vLLM
    reasoning_logprobs: Any = UNSET  # reasoning models (Cerebras)


class _Completion(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    id: Any = UNSET
    object: Any = UNSET
    created: Any = UNSET
    model: Any = UNSET
    system_fingerprint: Any = UNSET
    choices: list[_Choice] | UnsetType | None = UNSET
    usage: Any = UNSET
    time_info: Any = UNSET  # Cerebras
    service_tier: Any = UNSET  # OpenAI
    timings: Any = UNSET  # llama.cpp's server
    prompt_logprobs: Any = UNSET  # vLLM
    kv_transfer_params: Any = UNSET  # vLLM


_DECODER: Final = msgspec.json.Decoder(_Completion)


def _fields(record: msgspec.Struct) -> dict[str, Any]:
    return {name: value for name in record.__struct_fields__ if (value := getattr(record, name)) is not UNSET}


def decode_reply(content: bytes) -> dict[str, Any] | None:
    """The chat completion in `content` as `orjson.loads` would give it, with compact `Token` entries;
    None when the body is not JSON or not of the known shape (decode it as plain JSON then)."""
    try:
        completion = _DECODER.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    data = _fields(completion)
    choices = completion.choices
    if isinstance(choices, list):
        out: list[dict[str, Any]] = []
        for choice in choices:
            fields = _fields(choice)
            logprobs = choice.logprobs
            if isinstance(logprobs, _Logprobs):
                fields["logprobs"] = _fields(logprobs)
            out.append(fields)
        data["choices"] = out
    return data


_GETTERS: Final = {name: attrgetter(name) for name in _TOKEN_FIELDS}


def column(entries: Sequence[Mapping[str, Any]], name: str) -> list[Any]:
    """Each entry's `name` (None where it is missing or JSON null): at C speed when every entry is a
    `Token` holding it, one `get` per entry otherwise."""
    getter = _GETTERS.get(name)
    if (
        getter is not None
        and name not in ("bytes", "top_logprobs")
        and type(entries) is list
        and set(map(type, entries)) == {Token}
    ):
        values = list(map(getter, entries))
        if UNSET not in values:
            return values
    return [entry.get(name) for entry in entries]
