"""Per-token logprobs for the embedded model, read from one row of logits per generated token.

llama-cpp-python returns chat logprobs only from a model loaded with `logits_all=True`, which keeps a
float32 row of the whole vocabulary for every position of the context (n_ctx x n_vocab, ~800 MB at 4096
x 49,152) and sorts the vocabulary in Python for each token. The row the sampler has just read is all a
token's logprob needs: when a token comes out of the generator, the context still holds the logits it was
sampled from, so its log-softmax gives the chosen token's logprob and the `top_logprobs` alternatives.
Nothing here runs unless the request asked for logprobs.

The logprobs are the model's own distribution (the raw logits), before the grammar, the penalties and the
temperature shape the sampling, as llama.cpp's server and the OpenAI API report them.

Entries come out in the provider's wire shape (`choices[0].logprobs.content`), with plain floats and the
token's UTF-8 `bytes`, cut so that their bytes end to end are exactly the reply's content.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["TokenLog"]

# Logits this close to the top one: where the top alternatives are looked for first (a few hundred of
# the vocabulary's 49k in SmolLM2's replies).
_NEAR = 8.0


class TokenLog:
    """The logprobs of one generation's tokens, in order, handed out as wire entries as the reply grows.

    `piece` gives a token id's bytes (special tokens: none). `add` is called once per sampled token with
    the logits it was sampled from; `take` returns the entries not returned before whose bytes lie within
    the first `upto` bytes of the reply (with `final`, the token crossing `upto` is cut there, and tokens
    past it, such as the end-of-generation token, are dropped).
    """

    def __init__(self, width: int, piece: Callable[[int], bytes]) -> None:
        self.width = width
        self._piece = piece
        self._pieces: dict[int, bytes] = {}
        # (token bytes, logprob, [(alternative id, logprob), ...]) per sampled token
        self._tokens: list[tuple[bytes, float, list[tuple[int, float]]]] = []
        self._given = 0  # tokens already handed out
        self._offset = 0  # bytes of the reply those tokens cover
        self._work: npt.NDArray[np.float32] | None = None  # one row of scratch, reused for every token

    def _bytes(self, token: int) -> bytes:
        found = self._pieces.get(token)
        if found is None:
            found = self._pieces[token] = self._piece(token)
        return found

    def add(self, token: int, logits: npt.NDArray[np.float32]) -> None:
        """Record a sampled token from the logits row it was sampled from (read, never written)."""
        peak = float(logits.max())
        if self._work is None or self._work.shape != logits.shape:
            self._work = np.empty_like(logits, dtype=np.float32)
        work = self._work
        np.subtract(logits, np.float32(peak), out=work)
        np.exp(work, out=work)
        # numpy sums float32 pairwise: a relative error ~1e-7 over the whole vocabulary
        log_total = peak + math.log(float(work.sum()))
        top: list[tuple[int, float]] = []
        if self.width:
            k = min(self.width, logits.shape[0])
            # the top k are found among the few logits near the peak when there are k of them there
            near = np.flatnonzero(logits >= peak - _NEAR)
            if len(near) >= k:
                ids = near[np.argpartition(logits[near], -k)[-k:]]
            else:
                ids = np.argpartition(logits, -k)[-k:]
            ids = ids[np.argsort(-logits[ids], kind="stable")]
            top = [(int(i), float(logits[i]) - log_total) for i in ids]
        self._tokens.append((self._bytes(token), float(logits[token]) - log_total, top))

    def _entry(self, raw: bytes, logprob: float, top: list[tuple[int, float]]) -> dict[str, Any]:
        alternatives = []
        for token, alt_logprob in top:
            piece = self._bytes(token)
            alternatives.append(
                {
                    "token": piece.decode("utf-8", errors="replace"),
                    "logprob": alt_logprob,
                    "bytes": list(piece),
                }
            )
        return {
            "token": raw.decode("utf-8", errors="replace"),
            "logprob": logprob,
            "bytes": list(raw),
            "top_logprobs": alternatives,
        }

    def take(self, upto: int, *, final: bool = False) -> list[dict[str, Any]]:
        """Wire entries for the tokens within the reply's first `upto` bytes, not handed out before."""
        out: list[dict[str, Any]] = []
        # a token must start inside the span: one with no bytes at its end (end of generation) waits
        while self._given < len(self._tokens) and self._offset < upto:
            raw, logprob, top = self._tokens[self._given]
            end = self._offset + len(raw)
            if end > upto:
                if not final:
                    break
                raw = raw[: upto - self._offset]
                end = upto
            out.append(self._entry(raw, logprob, top))
            self._given += 1
            self._offset = end
        if final:
            self._given = len(self._tokens)
        return out
