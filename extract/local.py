"""The embedded llama.cpp model behind the Transport protocol: extraction with no key and no server.

Chat-completions bodies are answered in-process with `llama_cpp.Llama.create_chat_completion`. A
json_schema response_format becomes json_object + schema, which llama.cpp enforces with a grammar, so
both schema-carrying modes end in schema-shaped output. The model loads on first use, once per
process, and answers one request at a time (a llama.cpp context is not reentrant; two threads would
only share the same cores anyway).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from extract._local._find import find_model, missing_local_message, model_name
from extract._local._grammar import Grammar, choose_grammar
from extract._local._wire import LocalRequestError, error_body, llama_kwargs, logprobs_width, response_body
from extract.errors import APIConnectionError, APITimeoutError, ConfigurationError
from extract.transports import StreamStart, Transport, WireRequest, WireResponse

if TYPE_CHECKING:
    from extract._local._logprobs import TokenLog

__all__ = ["DEFAULT_N_CTX", "LocalTransport", "local_transport"]

# SmolLM2 was trained on 8192 tokens; 4096 holds a few pages of text plus the schema and the reply, at
# half the KV-cache memory.
DEFAULT_N_CTX = 4096

_JSON_HEADERS = {"content-type": "application/json"}

_LOAD_LOCK = threading.Lock()
# One generation at a time per process: every LocalTransport shares the cached models below.
_CALL_LOCK = threading.Lock()
_MODELS: dict[tuple[Path, int, int], _Model] = {}
# Grammars by schema text: building and checking one costs milliseconds, a batch reuses one schema.
_GRAMMARS: dict[str, Grammar] = {}
_GRAMMARS_LOCK = threading.Lock()
_MAX_GRAMMARS = 64

logger = logging.getLogger("extract")


class _Stopped(Exception):
    """Raised between two generated tokens once the request's deadline has passed or its caller left."""


class _Model:
    """A loaded Llama plus the stop conditions of the request it is answering, and its token log.

    llama.cpp offers no way to stop a chat completion from outside, so the token generator is wrapped:
    between two tokens it checks the deadline and the caller's cancellation, and raises, which unwinds
    create_chat_completion cleanly. When the request asked for logprobs, the same wrapper hands each
    token, with the logits row it was just sampled from, to `log` (see extract._local._logprobs).
    """

    def __init__(self, llama: Any) -> None:
        self.llama = llama
        self.deadline = float("inf")
        self.cancelled: threading.Event | None = None
        self.log: TokenLog | None = None
        generate: Callable[..., Iterator[int]] = llama.generate

        def generate_until_stopped(*args: Any, **kwargs: Any) -> Iterator[int]:
            for token in generate(*args, **kwargs):
                if time.monotonic() > self.deadline or (
                    self.cancelled is not None and self.cancelled.is_set()
                ):
                    raise _Stopped
                if self.log is not None:
                    self.log.add(token, self._last_logits())
                yield token

        llama.generate = generate_until_stopped

    def _last_logits(self) -> Any:
        """The logits of the last decoded position, which the sampler has just read: a view, not a copy."""
        import llama_cpp
        import numpy as np

        row = llama_cpp.llama_get_logits_ith(self.llama._ctx.ctx, -1)
        return np.ctypeslib.as_array(row, shape=(self.llama.n_vocab(),))

    def start_log(self, width: int | None) -> TokenLog | None:
        """A fresh token log for the request about to run (None: it asked for no logprobs)."""
        if width is None:
            self.log = None
        else:
            from extract._local._logprobs import TokenLog

            llama = self.llama
            self.log = TokenLog(width, lambda token: bytes(llama.detokenize([token])))
        return self.log


def _acquire(deadline: float, cancelled: threading.Event | None) -> bool:
    """Wait for the model's turn until the deadline; give up early when an async caller was cancelled."""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0 or (cancelled is not None and cancelled.is_set()):
            return False
        if _CALL_LOCK.acquire(timeout=min(remaining, 0.05 if cancelled is not None else remaining)):
            return True


def _default_threads() -> int:
    """All the CPUs this process may use but one.

    llama.cpp's threads meet at a busy-wait barrier after every operation, so when one of them is
    descheduled the others spin: with every core taken, any other busy process (the caller's own event
    loop, a test runner, a neighbour) made generation ~10x slower on a 2-core machine in our measurements,
    while leaving one core free cost at most 2x when the machine was idle.
    """
    # sched_getaffinity respects taskset/cgroup limits, unlike os.cpu_count.
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores - 1)


def _load(path: Path, n_ctx: int, n_threads: int | None) -> _Model:
    threads = n_threads or _default_threads()
    key = (path.resolve(), n_ctx, threads)
    with _LOAD_LOCK:
        model = _MODELS.get(key)
        if model is not None:
            return model
        try:
            from llama_cpp import Llama
        except (ImportError, OSError) as exc:
            raise ConfigurationError(
                missing_local_message(f"llama-cpp-python cannot be imported: {exc}")
            ) from exc
        try:
            llama = Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ConfigurationError(
                f"could not load the local model {path} ({exc}); check that it is a GGUF file llama.cpp "
                "supports, or unset EXTRACT_LOCAL_MODEL to use the bundled SmolLM2-135M"
            ) from exc
        model = _MODELS[key] = _Model(llama)
        return model


def _engine_accepts(llama: Any, text: str) -> bool:
    """Whether llama.cpp's own parser takes the grammar: it answers NULL (never crashes) on a bad one.

    The crash came later, from llama-cpp-python handing that NULL sampler to the chain; built and freed
    here, a refused grammar is only a False.
    """
    import llama_cpp

    sampler = llama_cpp.llama_sampler_init_grammar(llama._model.vocab, text.encode("utf-8"), b"root")
    if not sampler:
        return False
    llama_cpp.llama_sampler_free(sampler)
    return True


def _grammar_for(llama: Any, schema: dict[str, Any] | None) -> Grammar:
    """The grammar for one response_format schema, built once per schema text (see extract._local._grammar)."""
    from llama_cpp.llama_grammar import JSON_GBNF, json_schema_to_gbnf

    try:
        key: str | None = json.dumps(schema, sort_keys=True, default=str)
    except (ValueError, RecursionError):  # too deep (or cyclic) to serialise: built, never cached
        key = None
    with _GRAMMARS_LOCK:
        cached = _GRAMMARS.get(key) if key is not None else None
        if cached is not None:
            return cached
        grammar = choose_grammar(
            schema,
            convert=json_schema_to_gbnf,
            json_grammar=JSON_GBNF,
            accepts=lambda text: _engine_accepts(llama, text),
        )
        if key is not None:
            if len(_GRAMMARS) >= _MAX_GRAMMARS:
                _GRAMMARS.pop(next(iter(_GRAMMARS)))
            _GRAMMARS[key] = grammar
    if grammar.level != "schema" or grammar.notes:
        logger.info(
            "embedded model: grammar level %r for this schema (%s); the client still validates the full schema",
            grammar.level,
            "; ".join(grammar.notes) or "no notes",
        )
    return grammar


def _json_response(status_code: int, data: dict[str, Any]) -> WireResponse:
    return WireResponse(status_code, dict(_JSON_HEADERS), orjson.dumps(data), data)


class LocalTransport:
    """Answers chat-completions requests with an in-process llama.cpp model.

    `model_path` defaults to EXTRACT_LOCAL_MODEL, else the bundled SmolLM2-135M. Nothing is loaded until
    the first request; `close` is a no-op because the model is cached for the life of the process.
    `provider` names the record `resolve()` uses for it (modes, limits, no retry of a timeout).
    """

    provider = "local"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else find_model()
        self.model_name = model_name(self.model_path)
        self.n_ctx = n_ctx
        self.n_threads = n_threads

    def __repr__(self) -> str:
        return f"LocalTransport(model_path={str(self.model_path)!r}, n_ctx={self.n_ctx})"

    def load(self) -> None:
        """Load the model now rather than on the first request (to keep that latency out of a timing)."""
        _load(self.model_path, self.n_ctx, self.n_threads)

    def send(self, request: WireRequest, timeout: float) -> WireResponse:
        return self._send(request, timeout, None)

    async def asend(self, request: WireRequest, timeout: float) -> WireResponse:
        # Generation is CPU-bound C code that releases the GIL: a worker thread keeps the loop free. A
        # cancelled caller (Ctrl-C in a batch) stops its queued or running generation at the next token,
        # so the process does not wait for work nobody will read.
        cancelled = threading.Event()
        try:
            return await asyncio.to_thread(self._send, request, timeout, cancelled)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    def _ready(
        self,
        kwargs: dict[str, Any],
        deadline: float,
        cancelled: threading.Event | None,
        timeout: float,
        width: int | None,
    ) -> tuple[_Model, TokenLog | None]:
        """The loaded model, holding the one-at-a-time lock, with the request's schema as a checked grammar,
        its stop conditions set, and a token log when the request asked for logprobs (`width` alternatives).

        The grammar is built and checked here rather than by llama-cpp-python, which hands llama.cpp whatever
        its converter produced and crashes the process when the C parser refuses it."""
        model = _load(self.model_path, self.n_ctx, self.n_threads)
        response_format = kwargs.pop("response_format", None)
        if response_format is not None:
            grammar = _grammar_for(model.llama, response_format.get("schema"))
            if grammar.text is not None:
                from llama_cpp.llama_grammar import LlamaGrammar

                kwargs["grammar"] = LlamaGrammar.from_string(grammar.text, verbose=False)
        if not _acquire(deadline, cancelled):
            raise APITimeoutError(
                f"the embedded model was busy with other requests for {timeout:g}s; raise timeout= or send fewer "
                "requests at once (it answers one at a time)"
            )
        model.deadline, model.cancelled = deadline, cancelled
        try:
            return model, model.start_log(width)
        except BaseException:
            self._release(model)
            raise

    @staticmethod
    def _release(model: _Model) -> None:
        model.deadline, model.cancelled, model.log = float("inf"), None, None
        _CALL_LOCK.release()

    def _send(self, request: WireRequest, timeout: float, cancelled: threading.Event | None) -> WireResponse:
        deadline = time.monotonic() + timeout
        try:
            kwargs = llama_kwargs(request.body, model_name=self.model_name)
            width = logprobs_width(request.body)
        except LocalRequestError as exc:
            return _json_response(
                exc.status_code, error_body(exc.status_code, exc.message, param=exc.param, code=exc.code)
            )
        model, log = self._ready(kwargs, deadline, cancelled, timeout, width)
        try:
            begun = time.monotonic()
            result = model.llama.create_chat_completion(**kwargs)
            elapsed = time.monotonic() - begun
        except _Stopped:
            raise APITimeoutError(
                f"the embedded model did not finish within {timeout:g}s; raise timeout= or lower "
                "max_completion_tokens"
            ) from None
        except ValueError as exc:
            if "context window" in str(exc):
                message = f"{exc}; shorten the text or create LocalTransport(n_ctx=...) with a larger context"
                return _json_response(
                    400, error_body(400, message, param="messages", code="context_length_exceeded")
                )
            return _json_response(400, error_body(400, f"the embedded model refused the request: {exc}"))
        except RuntimeError as exc:
            return _json_response(500, error_body(500, f"the embedded model failed: {exc}"))
        finally:
            self._release(model)
        if log is not None:
            choice = result["choices"][0]
            content = choice["message"].get("content") or ""
            choice["logprobs"] = {"content": log.take(len(content.encode("utf-8")), final=True)}
        return _json_response(200, response_body(result, total_time=elapsed))

    # -- streaming: llama-cpp-python's own token stream, as the provider's server-sent events ------------

    def stream(self, request: WireRequest, timeout: float) -> Iterator[StreamStart | WireResponse | bytes]:
        """A StreamStart, then one `data:` event per generated piece and a final one with finish_reason
        and usage; or one WireResponse for a request refused before generating. The model is held (one
        generation at a time) until the stream ends or is closed."""
        return self._stream(request, timeout, None)

    async def astream(
        self, request: WireRequest, timeout: float
    ) -> AsyncIterator[StreamStart | WireResponse | bytes]:
        """Async twin of `stream`: each piece is awaited in a worker thread, so the loop stays free."""
        cancelled = threading.Event()
        parts = self._stream(request, timeout, cancelled)
        try:
            while True:
                part = await asyncio.to_thread(next, parts, None)
                if part is None:
                    return
                yield part
        except asyncio.CancelledError:
            cancelled.set()
            raise
        finally:
            cancelled.set()
            await asyncio.to_thread(parts.close)

    def _stream(
        self, request: WireRequest, timeout: float, cancelled: threading.Event | None
    ) -> Generator[StreamStart | WireResponse | bytes, None, None]:
        deadline = time.monotonic() + timeout
        body = {k: v for k, v in request.body.items() if k not in ("stream", "stream_options")}
        try:
            kwargs = llama_kwargs(body, model_name=self.model_name)
            width = logprobs_width(body)
        except LocalRequestError as exc:
            yield _json_response(
                exc.status_code, error_body(exc.status_code, exc.message, param=exc.param, code=exc.code)
            )
            return
        model, log = self._ready(kwargs, deadline, cancelled, timeout, width)
        try:
            begun = time.monotonic()
            chunks = iter(model.llama.create_chat_completion(stream=True, **kwargs))
            pieces = 0
            sent = 0  # content bytes streamed so far: a token's logprobs go out with its last byte
            finish: str | None = None
            try:
                first = next(chunks, None)
            except ValueError as exc:
                yield _json_response(400, error_body(400, f"the embedded model refused the request: {exc}"))
                return
            yield StreamStart(200, {"content-type": "text/event-stream"})
            chunk = first
            while chunk is not None:
                choice = chunk["choices"][0] if chunk.get("choices") else {}
                text = choice.get("delta", {}).get("content")
                if text:
                    pieces += 1
                    if log is not None:
                        sent += len(text.encode("utf-8"))
                        choice["logprobs"] = {"content": log.take(sent)}
                finish = choice.get("finish_reason") or finish
                yield b"data: " + orjson.dumps(chunk) + b"\n\n"
                chunk = next(chunks, None)
            elapsed = time.monotonic() - begun
            total = int(getattr(model.llama, "n_tokens", 0) or 0)
            usage = {
                "prompt_tokens": max(total - pieces, 0),
                "completion_tokens": pieces,
                "total_tokens": max(total, pieces),
            }
            end: dict[str, Any] = {"index": 0, "delta": {}, "finish_reason": finish}
            if log is not None:
                end["logprobs"] = {"content": log.take(sent, final=True)}
            last = {"choices": [end], "usage": usage}
            last["time_info"] = {"total_time": elapsed, "completion_time": elapsed}
            yield b"data: " + orjson.dumps(last) + b"\n\ndata: [DONE]\n\n"
        except _Stopped:
            raise APITimeoutError(
                f"the embedded model did not finish within {timeout:g}s; raise timeout= or lower "
                "max_completion_tokens"
            ) from None
        except RuntimeError as exc:
            raise APIConnectionError(f"the embedded model failed while streaming: {exc}") from None
        finally:
            self._release(model)

    def close(self) -> None:
        """Nothing to release: the model stays loaded for the next transport in this process."""

    async def aclose(self) -> None:
        """Nothing to release (see close)."""


def local_transport() -> tuple[Transport, str]:
    """The embedded backend and its model name, or ConfigurationError naming both ways to get a backend."""
    if importlib.util.find_spec("llama_cpp") is None:
        raise ConfigurationError(missing_local_message("llama-cpp-python is not installed"))
    transport = LocalTransport(find_model())
    return transport, transport.model_name
