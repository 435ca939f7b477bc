"""instructor over the OpenAI SDK pointed at the loopback server.

Mode: JSON_SCHEMA by default (response_format json_schema, which a Cerebras-like server accepts);
TOOLS forces a function call with `tool_choice`, which Cerebras has refused on some models.
"""

from __future__ import annotations

from typing import Any

from benchmarks._harness import Unavailable
from benchmarks.peers._model import API_KEY, MODEL_NAME, SYSTEM, Invoice
from benchmarks.peers._protocol import Peer

DEFAULT_MAX_RETRIES = 3
"""instructor's default `max_retries` for `create` (retries after the first attempt)."""


def make(
    base_url: str, *, max_attempts: int | None = None, mode: str = "JSON_SCHEMA", model: type[Any] = Invoice
) -> Peer:
    try:
        import instructor
        import openai
    except ImportError as exc:
        raise Unavailable("instructor is not installed (pip install -e '.[bench]')") from exc
    retries = DEFAULT_MAX_RETRIES if max_attempts is None else max_attempts - 1
    imode = instructor.Mode[mode]
    raw = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    araw = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    client = instructor.from_openai(raw, mode=imode)
    aclient = instructor.from_openai(araw, mode=imode)

    def messages(text: str) -> list[Any]:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]

    def run(text: str) -> Any:
        return client.chat.completions.create(
            model=MODEL_NAME, messages=messages(text), response_model=model, max_retries=retries
        )

    async def arun(text: str) -> Any:
        return await aclient.chat.completions.create(
            model=MODEL_NAME, messages=messages(text), response_model=model, max_retries=retries
        )

    async def aclose() -> None:
        await araw.close()

    return Peer(
        name="instructor",
        how=f"from_openai, Mode.{mode}",
        attempts=f"{retries + 1} (max_retries={retries})",
        run=run,
        arun=arun,
        close=raw.close,
        aclose=aclose,
    )
