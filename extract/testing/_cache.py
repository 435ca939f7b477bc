"""A simulated prompt cache: a prompt prefix seen recently is billed as cached, in whole blocks of 128 tokens.

Each block's key is a hash chained over every block before it (and the scope: model and prompt_cache_key), so a
block counts only when the whole prefix up to it matches, as in a provider's KV-cache. Memory is bounded: an
LRU of at most `capacity` block keys (16 bytes each). Tokens are four characters here, like every other usage
figure of the server. Not thread-safe; the server calls it under its lock.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from extract.errors import ConfigurationError

__all__ = ["BLOCK_TOKENS", "PromptCache"]

BLOCK_TOKENS = 128
_CHARS_PER_TOKEN = 4


class PromptCache:
    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ConfigurationError(f"prompt cache capacity must be >= 1 block, got {capacity!r}")
        self.capacity = capacity
        self._blocks: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._blocks)

    def clear(self) -> None:
        self._blocks.clear()

    def admit(self, scope: str, text: str, prompt_tokens: int) -> int:
        """Cached tokens for this prompt (its leading blocks already stored), then store all its blocks."""
        size = BLOCK_TOKENS * _CHARS_PER_TOKEN
        digest = hashlib.blake2b(scope.encode(), digest_size=16).digest()
        hits = 0
        missed = False
        for start in range(0, len(text) - size + 1, size):
            piece = text[start : start + size]
            digest = hashlib.blake2b(digest + piece.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            if not missed and digest in self._blocks:
                self._blocks.move_to_end(digest)
                hits += 1
                continue
            missed = True
            self._blocks[digest] = None
            if len(self._blocks) > self.capacity:
                self._blocks.popitem(last=False)
        return min(hits * BLOCK_TOKENS, prompt_tokens)
