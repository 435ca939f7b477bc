"""How the API key travels from the driver to the workers without ever being plain text on the way.

The choice: the driver resolves the key (explicit `api_key=`, else its own environment, as `extract.resolve`
does), wraps it in a `SecretKey` and `ray.put`s it once; the actor pool's constructor receives only the
ObjectRef, and each worker calls `reveal()` when it builds its Extractor. A `SecretKey` holds the key XORed
with a random pad of the same length (a fresh pad per object), pickles as (masked bytes, pad), and its
repr/str are redacted, so the key's text appears nowhere Ray might show or store it: task and actor
arguments, the object store and spilled objects, logs, error messages, the dashboard, the dataset.

This guards against accidental disclosure, not against someone who can run code on the cluster (they can
read the pad as well, or the worker's memory): it is the same trust boundary as an environment variable.
A named key-holding actor was the other option; it adds an actor to every job and a remote call per worker
for no gain in secrecy, since its reply crosses the same object store.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["SecretKey"]


def _xor(data: bytes, pad: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(data, pad, strict=True))


class SecretKey:
    """An API key masked for transport; `reveal()` gives it back."""

    __slots__ = ("_masked", "_pad")

    def __init__(self, key: str) -> None:
        raw = key.encode("utf-8")
        self._pad = os.urandom(len(raw))
        self._masked = _xor(raw, self._pad)

    @classmethod
    def _from_parts(cls, masked: bytes, pad: bytes) -> SecretKey:
        obj = cls.__new__(cls)
        obj._masked = masked
        obj._pad = pad
        return obj

    def reveal(self) -> str:
        return _xor(self._masked, self._pad).decode("utf-8")

    def __reduce__(self) -> tuple[Any, tuple[bytes, bytes]]:
        return (SecretKey._from_parts, (self._masked, self._pad))

    def __repr__(self) -> str:
        return "SecretKey('***')"

    __str__ = __repr__
