"""pydantic-ai with native structured output (NativeOutput), Cerebras provider profile, loopback server.

The Cerebras provider is given an AsyncOpenAI client aimed at the loopback server, so the request is
shaped exactly as pydantic-ai shapes it for Cerebras (OpenAIJsonSchemaTransformer, strict json_schema).
"""

from __future__ import annotations

from typing import Any

from benchmarks._harness import Unavailable
from benchmarks.peers._model import API_KEY, MODEL_NAME, SYSTEM, Invoice
from benchmarks.peers._protocol import Peer

DEFAULT_OUTPUT_RETRIES = 1
"""pydantic-ai's default output retries (after the first attempt)."""


def make(base_url: str, *, max_attempts: int | None = None, model: type[Any] = Invoice) -> Peer:
    try:
        import openai
        from pydantic_ai import Agent, NativeOutput
        from pydantic_ai.models.openai import OpenAIChatModel
        from pydantic_ai.providers.cerebras import CerebrasProvider
    except ImportError as exc:
        raise Unavailable("pydantic-ai-slim[openai] is not installed (pip install -e '.[bench]')") from exc
    retries = DEFAULT_OUTPUT_RETRIES if max_attempts is None else max_attempts - 1
    oai = openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    chat_model = OpenAIChatModel(MODEL_NAME, provider=CerebrasProvider(openai_client=oai))
    agent: Any = Agent(
        chat_model, output_type=NativeOutput(model), instructions=SYSTEM, retries={"output": retries}
    )

    def run(text: str) -> Any:
        return agent.run_sync(text).output

    async def arun(text: str) -> Any:
        return (await agent.run(text)).output

    def close() -> None:
        return None

    async def aclose() -> None:
        await oai.close()

    return Peer(
        name="pydantic-ai",
        how="Agent + NativeOutput, CerebrasProvider profile",
        attempts=f"{retries + 1} (output_retries={retries})",
        run=run,
        arun=arun,
        close=close,
        aclose=aclose,
    )
