"""A deterministic tokenisation and made-up log probabilities, for the logprobs and predicted-output figures.

Tokens are GPT-like pieces: a word with its leading space, a run of up to three digits, a run of punctuation,
a run of whitespace. They always concatenate back to the text exactly. Log probabilities are drawn from a hash
of (seed, position, token), so the same reply always carries the same figures, and the probabilities at one
position sum to at most one (the sampled token is the most likely, the alternatives share the rest).

Usage figures elsewhere stay at four characters per token (`estimate_tokens`); these tokens are what logprobs
are reported over and what predictions are matched on.

Pure.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from extract.errors import ConfigurationError

__all__ = [
    "alternatives",
    "chat_logprobs",
    "matched_chars",
    "pinned_ranges",
    "text_logprobs",
    "token_logprob",
    "tokenize",
    "value_ranges",
]

_TOKEN = re.compile(r" ?[A-Za-z]{1,12}| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]{1,4}|\s{1,8}")
_VOCABULARY = (
    " the", " a", ",", ".", " and", " of", " to", " in", " is", " was", '"', ":", " }", "{", " I", " it",
    " that", " for", " on", " with", " as", " at", " by", "\n", " this", " not", " be", " or", " from", " an",
)  # fmt: skip


def tokenize(text: str) -> list[str]:
    """Split `text` into tokens whose concatenation is `text`."""
    return _TOKEN.findall(text)


def _unit(*parts: object) -> float:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def token_logprob(seed: int, index: int, token: str) -> float:
    """The sampled token's log probability: between -2.01 and -0.01, mostly close to zero."""
    return -0.01 - 2.0 * _unit(seed, index, token) ** 2


def alternatives(seed: int, index: int, token: str, k: int) -> list[tuple[str, float]]:
    """`k` other tokens for this position, most likely first, each less likely than the sampled token."""
    sampled = math.exp(token_logprob(seed, index, token))
    share = min(sampled, 1.0 - sampled)  # each alternative below the sampled token, all within what is left
    start = int(_unit(seed, index, "alternatives") * len(_VOCABULARY))
    picked: list[str] = []
    for offset in range(len(_VOCABULARY)):
        candidate = _VOCABULARY[(start + offset) % len(_VOCABULARY)]
        if candidate != token:
            picked.append(candidate)
        if len(picked) == k:
            break
    index_extra = 0
    while len(picked) < k:  # k beyond the vocabulary: numbered filler tokens
        index_extra += 1
        picked.append(f" t{index_extra}")
    return [(alt, math.log(share * 0.5 ** (rank + 1))) for rank, alt in enumerate(picked)]


def _bytes(token: str) -> list[int]:
    return list(token.encode("utf-8"))


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def value_ranges(content: str) -> dict[str, tuple[int, int]]:
    """JSONPath -> the characters of each value in compact JSON `content` (a string's between its quotes).

    The test server's own reading, independent of the library's: the value is written out again piece by
    piece, and the result must be `content` itself."""
    try:
        value = json.loads(content)
    except ValueError as exc:
        raise ConfigurationError(f"scripted logprobs need JSON content: {exc}") from None
    ranges: dict[str, tuple[int, int]] = {}
    pieces: list[str] = []
    length = 0

    def emit(text: str) -> None:
        nonlocal length
        pieces.append(text)
        length += len(text)

    def walk(node: Any, path: str) -> None:
        start = length
        if isinstance(node, dict):
            emit("{")
            for index, (key, item) in enumerate(node.items()):
                emit(("," if index else "") + _dump(key) + ":")
                walk(item, f"{path}.{key}" if _IDENTIFIER.match(key) else f"{path}[{_dump(key)}]")
            emit("}")
        elif isinstance(node, list):
            emit("[")
            for index, item in enumerate(node):
                emit("," if index else "")
                walk(item, f"{path}[{index}]")
            emit("]")
        else:
            emit(_dump(node))
        inner = 1 if isinstance(node, str) and len(node) > 0 else 0
        ranges[path] = (start + inner, length - inner)

    walk(value, "$")
    if "".join(pieces) != content:
        raise ConfigurationError(
            'scripted logprobs need compact JSON content, as json.dumps(value, separators=(",", ":"), '
            "ensure_ascii=False) writes it"
        )
    return ranges


def pinned_ranges(content: str, logprobs: Mapping[str, float]) -> list[tuple[int, int, float]]:
    """(start, end, logprob) for each scripted path, as character ranges of `content`."""
    ranges = value_ranges(content)
    return [(*ranges[path], logprob) for path, logprob in logprobs.items() if path in ranges]


def chat_logprobs(
    content: str,
    seed: int,
    top: int,
    pinned: Sequence[tuple[int, int, float]] = (),
    rivals: Mapping[int, Mapping[str, float]] | None = None,
) -> dict[str, Any]:
    """`choices[].logprobs` of a chat completion: one entry per token with `top` alternatives (sampled first).

    `pinned`: character ranges whose overlapping tokens get the given logprob instead of a made-up one;
    `rivals`: character offset -> the alternatives of the token covering it, instead of made-up ones."""
    entries: list[dict[str, Any]] = []
    position = 0
    for index, token in enumerate(tokenize(content)):
        logprob = token_logprob(seed, index, token)
        end = position + len(token)
        for start, stop, chosen in pinned:
            if start < end and position < stop:
                logprob = chosen
        given = next((r for at, r in (rivals or {}).items() if position <= at < end), None)
        position = end
        top_list: list[dict[str, Any]] = []
        if top > 0:
            top_list.append({"token": token, "logprob": logprob, "bytes": _bytes(token)})
            others = list(given.items()) if given is not None else alternatives(seed, index, token, top - 1)
            top_list.extend(
                {"token": alt, "logprob": lp, "bytes": _bytes(alt)} for alt, lp in others[: top - 1]
            )
        entries.append({"token": token, "logprob": logprob, "bytes": _bytes(token), "top_logprobs": top_list})
    return {"content": entries, "refusal": None}


def text_logprobs(tokens: list[str], offset: int, seed: int, top: int) -> dict[str, Any]:
    """`choices[].logprobs` of a text completion: parallel lists, and per position a dict of up to top+1 tokens.

    `offset` is where the completion starts in prompt + completion (text_offset counts from the prompt's start).
    """
    token_logprobs: list[float] = []
    top_logprobs: list[dict[str, float]] = []
    text_offset: list[int] = []
    position = offset
    for index, token in enumerate(tokens):
        logprob = token_logprob(seed, index, token)
        token_logprobs.append(logprob)
        text_offset.append(position)
        position += len(token)
        if top > 0:
            # the top `top` alternatives, plus the sampled token (which the provider always includes)
            ranked = [(token, logprob), *alternatives(seed, index, token, top)]
            top_logprobs.append(dict(ranked[:top]) | {token: logprob})
    return {
        "text_offset": text_offset,
        "token_logprobs": token_logprobs,
        "tokens": tokens,
        "top_logprobs": top_logprobs if top > 0 else None,
    }


def matched_chars(produced: str, predicted: str) -> int:
    """Characters of `produced` covered by tokens it shares, in order, with `predicted` (a token-level diff).

    A diff rather than a common prefix: a corrected re-ask changes a field in the middle, and the tokens after
    the change still match the prediction, as speculative decoding would accept them.
    """
    ours, theirs = tokenize(produced), tokenize(predicted)
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    return sum(len("".join(ours[b.a : b.a + b.size])) for b in matcher.get_matching_blocks())
