"""extract itself, configured like the peers: Cerebras profile, loopback base URL, same instructions."""

from __future__ import annotations

from typing import Any

from benchmarks._harness import Unavailable
from benchmarks.peers._model import API_KEY, MODEL_NAME, SYSTEM, Invoice
from benchmarks.peers._protocol import Peer

DEFAULT_MAX_ATTEMPTS = 3
"""Extractor's documented default `max_attempts` (docs/ARCHITECTURE.md)."""


def make(base_url: str, *, max_attempts: int | None = None, model: type[Any] = Invoice) -> Peer:
    try:
        from extract.core import Extractor
    except (ImportError, SyntaxError) as exc:  # the engine is being written alongside the benchmarks
        raise Unavailable(f"extract.core is not importable ({type(exc).__name__}: {exc})") from exc
    attempts = DEFAULT_MAX_ATTEMPTS if max_attempts is None else max_attempts
    extractor = Extractor(
        base_url=base_url, api_key=API_KEY, model=MODEL_NAME, provider="cerebras", max_attempts=attempts
    )

    def run(text: str) -> Any:
        return extractor.extract(model, text, instructions=SYSTEM)

    async def arun(text: str) -> Any:
        return await extractor.aextract(model, text, instructions=SYSTEM)

    return Peer(
        name="extract",
        how="Extractor(provider='cerebras'), strict json_schema",
        attempts=f"{attempts} (max_attempts={attempts})",
        run=run,
        arun=arun,
        close=extractor.close,
        aclose=extractor.aclose,
    )
