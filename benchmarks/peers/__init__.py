"""Adapters that put each system under test behind one small interface (`Peer`).

Peers are imported only here, never from `extract/`; each adapter raises `Unavailable` when its
package is missing so the benchmarks skip it with a reason.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from benchmarks.peers import extract_peer, floor, instructor_peer, openai_sdk, pydantic_ai_peer
from benchmarks.peers._model import Invoice, InvoiceNT, document
from benchmarks.peers._protocol import Peer

Factory = Callable[..., Peer]

FACTORIES: dict[str, Factory] = {
    "floor": floor.make,
    "extract": extract_peer.make,
    "openai-sdk": openai_sdk.make,
    # The same invoice without pydantic's `title` keywords, which a Cerebras-like strict mode refuses.
    "openai-sdk-untitled": partial(openai_sdk.make, model=InvoiceNT),
    "instructor": instructor_peer.make,
    "pydantic-ai": pydantic_ai_peer.make,
}

__all__ = ["FACTORIES", "Invoice", "InvoiceNT", "Peer", "document", "make"]


def make(name: str, base_url: str, **options: Any) -> Peer:
    return FACTORIES[name](base_url, **options)
