"""The OpenAI SDK's own structured output: `client.chat.completions.parse(response_format=Model)`.

The SDK builds a strict schema from the pydantic model (its `to_strict_json_schema`), sends it as
`json_schema` with `strict: true`, and validates the reply. It never re-asks: one attempt.
"""

from __future__ import annotations

from typing import Any

from benchmarks._harness import Unavailable
from benchmarks.peers._model import API_KEY, MODEL_NAME, SYSTEM, Invoice
from benchmarks.peers._protocol import Peer


def make(base_url: str, *, max_attempts: int | None = None, model: type[Any] = Invoice) -> Peer:
    try:
        import openai
    except ImportError as exc:
        raise Unavailable("openai is not installed (pip install -e '.[bench]')") from exc
    del max_attempts  # parse() has no re-ask; HTTP retries are transport-level only
    client = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    aclient = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)

    def messages(text: str) -> list[Any]:
        return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]

    def run(text: str) -> Any:
        completion = client.chat.completions.parse(
            model=MODEL_NAME, messages=messages(text), response_format=model
        )
        parsed = completion.choices[0].message.parsed
        if parsed is None:
            raise ValueError(f"no parsed value: {completion.choices[0].message.content!r}")
        return parsed

    async def arun(text: str) -> Any:
        completion = await aclient.chat.completions.parse(
            model=MODEL_NAME, messages=messages(text), response_format=model
        )
        parsed = completion.choices[0].message.parsed
        if parsed is None:
            raise ValueError(f"no parsed value: {completion.choices[0].message.content!r}")
        return parsed

    return Peer(
        name="openai-sdk" if model is Invoice else "openai-sdk-untitled",
        how=f"chat.completions.parse, strict json_schema ({model.__name__})",
        attempts="1 (no re-ask)",
        run=run,
        arun=arun,
        close=client.close,
        aclose=aclient.close,
    )
