"""A conservative token count for text whose tokenizer we do not have. Pure.

BPE tokenizers (Llama, GPT, Qwen) spend about one token per 4 characters of English prose, fewer
characters per token on digits, code and punctuation, and about one token per character of CJK text.
Counting one token per 3 UTF-8 bytes covers all three: ASCII text gets 1/3 token per character
(more than the ~1/4 a tokenizer spends), a 3-byte CJK character gets one. It overestimates on purpose:
a chunk that is too small costs a request, a chunk that is too large costs a refusal. Should a server
still refuse, the limit it names is remembered and the text is split again, smaller.
"""

from __future__ import annotations

__all__ = ["BYTES_PER_TOKEN", "estimate_tokens", "max_chars"]

BYTES_PER_TOKEN = 3


def estimate_tokens(text: str) -> int:
    """Tokens `text` may cost: ceil(UTF-8 bytes / 3), never zero for non-empty text."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    return -(-size // BYTES_PER_TOKEN)


def max_chars(tokens: int) -> int:
    """The most characters `tokens` can hold under `estimate_tokens` (every character is at least a byte)."""
    return max(tokens, 0) * BYTES_PER_TOKEN
