"""Whether a document must be split, and into chunks of how many tokens. Pure.

A request is the system prompt and schema (the `overhead`), the document, and the completion the reply
may use (the `reserve`: max_completion_tokens when set, else the engine's default reservation). When
the estimate of all three exceeds the model's context window, the document is split into chunks of
`window - overhead - reserve` tokens (or the caller's `chunk_tokens`, if smaller); otherwise it goes
whole and pays nothing for this feature.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, cast

from extract.errors import ConfigurationError, InputError

__all__ = ["MIN_CHUNK_TOKENS", "ChunkOptions", "check_chunk_options", "chunk_budget", "plan_chunks"]

MIN_CHUNK_TOKENS = 64
DEFAULT_OVERLAP_SHARE = 10  # the default overlap is a tenth of a chunk ...
DEFAULT_OVERLAP_CAP = 400  # ... and at most this many tokens


@dataclass(frozen=True, slots=True)
class ChunkOptions:
    """The caller's chunking options, checked."""

    chunking: Literal["auto", "off"] = "auto"
    chunk_tokens: int | None = None
    overlap_tokens: int | None = None
    on_chunk_error: Literal["keep", "raise"] = "keep"


def _positive(name: str, value: object, low: int) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
        raise ConfigurationError(f"{name} must be an integer of at least {low}, got {value!r}")


def check_chunk_options(
    chunking: object, chunk_tokens: object, overlap_tokens: object, on_chunk_error: object
) -> ChunkOptions:
    if chunking not in ("auto", "off"):
        raise ConfigurationError(f"chunking must be 'auto' or 'off', got {chunking!r}")
    if on_chunk_error not in ("keep", "raise"):
        raise ConfigurationError(f"on_chunk_error must be 'keep' or 'raise', got {on_chunk_error!r}")
    _positive("chunk_tokens", chunk_tokens, MIN_CHUNK_TOKENS)
    _positive("overlap_tokens", overlap_tokens, 0)
    if (
        isinstance(chunk_tokens, int)
        and isinstance(overlap_tokens, int)
        and overlap_tokens > chunk_tokens // 2
    ):
        raise ConfigurationError(
            f"overlap_tokens ({overlap_tokens}) must be at most half of chunk_tokens ({chunk_tokens})"
        )
    return ChunkOptions(
        chunking,
        cast("int | None", chunk_tokens),
        cast("int | None", overlap_tokens),
        on_chunk_error,
    )


def chunk_budget(window: int, overhead: int, reserve: int, model: str) -> int:
    """Document tokens a request may carry in a `window`-token context; InputError when none fit."""
    room = window - overhead - reserve
    if room < MIN_CHUNK_TOKENS:
        raise InputError(
            f"{model}'s context window of {window} tokens leaves no room for the document: the prompt and "
            f"schema take about {overhead} tokens and {reserve} are reserved for the reply. Lower "
            "max_completion_tokens, shorten the instructions, or use a model with a larger window."
        )
    return room


def plan_chunks(
    text_tokens: int, overhead: int, reserve: int, window: int | None, options: ChunkOptions, model: str
) -> tuple[int, int] | None:
    """(chunk tokens, overlap tokens) when the document must be split, None when it goes whole: it fits,
    or nothing is known about the window, or the window leaves no room for any document (then splitting
    cannot help, and the request goes as it is: the server's refusal says why).

    With chunking="off", a document known not to fit is an InputError naming the sizes."""
    fits = window is None or text_tokens + overhead + reserve <= window
    if options.chunking == "off":
        if not fits:
            raise InputError(
                f"the document is about {text_tokens} tokens; with the prompt and schema (~{overhead}) and "
                f"the {reserve} reserved for the reply it exceeds {model}'s context window of {window} "
                "tokens, and chunking='off'. Pass chunking='auto' to split it, or shorten it."
            )
        return None
    wanted = options.chunk_tokens
    if fits and (wanted is None or text_tokens <= wanted):
        return None
    budget = wanted
    if window is not None:
        room = window - overhead - reserve
        if room < MIN_CHUNK_TOKENS:
            return None
        budget = room if budget is None else min(budget, room)
    if budget is None or text_tokens <= budget:
        return None
    overlap = options.overlap_tokens
    if overlap is None:
        overlap = min(budget // DEFAULT_OVERLAP_SHARE, DEFAULT_OVERLAP_CAP)
    return budget, min(overlap, budget // 2)
