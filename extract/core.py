"""extract() / aextract() / Extractor: one extraction, sync or async, over one shared engine.

    value = extract(Invoice, text)
    result = Extractor(base_url=..., api_key=..., model=...).extract(Invoice, text, full=True)

The logic lives in `extract._engine.loop.run`, a generator; `Extractor.extract` drives it with blocking
I/O and `Extractor.aextract` with the event loop, so both behave identically.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import orjson

from extract import modes
from extract._engine.drive import drive_async, drive_sync
from extract._engine.loop import Job, Prepared, run
from extract._engine.results import Attempt, Result, Usage
from extract.errors import ConfigurationError, redact
from extract.models import Capabilities, capabilities, default_model, provider_for
from extract.transports import (
    CEREBRAS_BASE_URL,
    HttpTransport,
    RetryPolicy,
    Transport,
    WireResponse,
    error_fields,
)

__all__ = ["Attempt", "Extractor", "Result", "Usage", "aextract", "extract"]

logger = logging.getLogger("extract")

# Request fields the engine owns; a caller passing them would silently fight it.
_RESERVED = frozenset({"messages", "response_format", "stream", "n"})
_local_logged = threading.Event()
_CACHE_LIMIT = 1024


def _resolve(
    base_url: str | None,
    api_key: str | None,
    transport: Transport | None,
    provider: str | None,
    headers: Mapping[str, str] | None = None,
) -> tuple[Transport, str, str | None, str, str | None]:
    """Pick the backend: (transport, base_url-or-"local", api_key, provider, default model)."""
    if transport is not None:
        # A transport may say which capability row fits it (LocalTransport: "local"); the caller's word wins.
        hinted = getattr(transport, "provider", None)
        chosen = provider or (hinted if isinstance(hinted, str) else "generic")
        return transport, base_url or chosen, api_key, chosen, None
    env_key = os.environ.get("CEREBRAS_API_KEY") or None
    env_base = os.environ.get("CEREBRAS_BASE_URL") or None
    if base_url is None and api_key is None and env_key is None:
        if env_base is None:
            from extract.local import local_transport

            local, model = local_transport()
            if not _local_logged.is_set():
                _local_logged.set()
                logger.info(
                    "no CEREBRAS_API_KEY and no base_url: running on the embedded local model %s", model
                )
            return local, "local", None, provider or "local", model
        base_url = env_base
    if base_url is None:
        base_url = env_base or CEREBRAS_BASE_URL
    if api_key is None:
        # The Cerebras key goes only to Cerebras (or where CEREBRAS_BASE_URL points), never to other servers.
        cerebras_hosts = {CEREBRAS_BASE_URL.rstrip("/"), (env_base or CEREBRAS_BASE_URL).rstrip("/")}
        if base_url.rstrip("/") in cerebras_hosts or provider_for(base_url) == "cerebras":
            api_key = env_key
    resolved_provider = provider or provider_for(base_url)
    if (
        resolved_provider == "generic"
        and env_base is not None
        and base_url.rstrip("/") == env_base.rstrip("/")
    ):
        resolved_provider = "cerebras"
    return (
        HttpTransport(base_url, api_key, headers=headers),
        base_url,
        api_key,
        resolved_provider,
        default_model(resolved_provider),
    )


class Extractor:
    """A reusable client: one pooled connection set, cached compiled schemas and prompts, and the
    memory of which output modes each (server, model) refused. Safe to share across threads and tasks.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        *,
        provider: str | None = None,
        timeout: float = 60.0,
        max_attempts: int = 3,
        max_retries: int = 2,
        token_budget: int | None = None,
        limiter: Any | None = None,
        transport: Transport | None = None,
        headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> None:
        if max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {max_attempts}")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be 0 or more, got {max_retries}")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive seconds, got {timeout}")
        _check_params(params)
        self._transport, self._base_url, self._api_key, self.provider, fallback = _resolve(
            base_url, api_key, transport, provider, headers
        )
        chosen = model or fallback
        if chosen is None:
            raise ConfigurationError(
                f"no model given for {self._base_url}: pass model='...' (the name the server lists at /v1/models)"
            )
        self.model = chosen
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.token_budget = token_budget
        self.limiter = limiter
        self._retry = RetryPolicy(max_retries=max_retries)
        self._params = dict(params)
        self._demoted: dict[tuple[str, str], set[str]] = {}
        self._capabilities: dict[str, Capabilities] = {}
        self._warned: set[tuple[str, str, str]] = set()
        self._compiled: dict[tuple[Any, str], Any] = {}
        self._prepared: dict[tuple[int, str, str | None], tuple[Any, Prepared]] = {}
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"Extractor(base_url={self._base_url!r}, model={self.model!r}, provider={self.provider!r}, api_key={key})"

    # -- per-call preparation (cached) ---------------------------------------------------------------

    def _caps(self, model: str) -> Capabilities:
        caps = self._capabilities.get(model)
        if caps is None:
            caps = self._capabilities[model] = capabilities(self.provider, model)
        return caps

    def _compile(self, schema: Any, profile: str) -> Any:
        try:
            key: tuple[Any, str] | None = (schema, profile)
            hash(key)
        except TypeError:
            key = None
        if key is not None:
            cached = self._compiled.get(key)
            if cached is not None:
                return cached
        from extract.schema import compile_schema

        compiled = compile_schema(schema, provider=profile)
        if key is not None:
            if len(self._compiled) >= _CACHE_LIMIT:
                self._compiled.clear()
            self._compiled[key] = compiled
        return compiled

    def _prepare(self, compiled: Any, instructions: str | None, mode: str) -> Prepared:
        key = (id(compiled), mode, instructions)
        entry = self._prepared.get(key)
        if entry is not None and entry[0] is compiled:
            return entry[1]
        fmt = modes.response_format(mode, compiled)
        note = modes.format_instructions(mode, compiled)
        system = modes.system_prompt(mode, compiled, instructions)
        chars = len(system) + (len(orjson.dumps(fmt)) if fmt is not None else 0)
        prepared = Prepared(mode, system, note, fmt, chars)
        if len(self._prepared) >= _CACHE_LIMIT:  # per-document instructions must not grow it forever
            self._prepared.clear()
        self._prepared[key] = (compiled, prepared)
        return prepared

    def _on_demote(self, model: str, mode: str, response: WireResponse) -> None:
        warn_key = (self._base_url, model, mode)
        with self._lock:
            if warn_key in self._warned:
                return
            self._warned.add(warn_key)
        said = error_fields(response.data).get("message") or response.body[:200].decode("utf-8", "replace")
        logger.warning(
            "%s refused output mode %s for model %s (HTTP %d: %s); using the next mode for this Extractor",
            self._base_url,
            mode,
            model,
            response.status_code,
            redact(said, self._api_key),
        )

    def _job(
        self,
        schema: Any,
        text: str | Sequence[Mapping[str, Any]],
        instructions: str | None,
        model: str | None,
        max_attempts: int | None,
        token_budget: int | None,
        params: dict[str, Any],
    ) -> Job:
        if not isinstance(text, str) and (
            isinstance(text, Mapping) or not all(isinstance(m, Mapping) for m in text)
        ):
            raise ConfigurationError(
                "text must be a string or a list of chat messages ({'role': ..., 'content': ...} dicts)"
            )
        _check_params(params)
        use_model = model or self.model
        caps = self._caps(use_model)
        compiled = self._compile(schema, caps.profile)
        merged = {**self._params, **params} if params else self._params
        if "max_tokens" in merged and caps.max_tokens_field != "max_tokens":
            merged = dict(merged)
            merged.setdefault(caps.max_tokens_field, merged.pop("max_tokens"))
        with self._lock:
            demoted = self._demoted.setdefault((self._base_url, use_model), set())
        return Job(
            compiled=compiled,
            source=text,
            instructions=instructions,
            model=use_model,
            caps=caps,
            params=merged,
            prepare=lambda mode: self._prepare(compiled, instructions, mode),
            demoted=demoted,
            on_demote=lambda mode, response: self._on_demote(use_model, mode, response),
            retry=self._retry,
            max_attempts=self.max_attempts if max_attempts is None else max(1, max_attempts),
            token_budget=self.token_budget if token_budget is None else token_budget,
            limiter=self.limiter,
            secrets=(self._api_key,),
        )

    # -- public ---------------------------------------------------------------------------------------

    def extract(
        self,
        schema: Any,
        text: str | Sequence[Mapping[str, Any]],
        *,
        instructions: str | None = None,
        full: bool = False,
        model: str | None = None,
        max_attempts: int | None = None,
        token_budget: int | None = None,
        **params: Any,
    ) -> Any:
        """The validated value (a model instance for pydantic schemas), or the whole Result with full=True."""
        job = self._job(schema, text, instructions, model, max_attempts, token_budget, params)
        result = drive_sync(run(job), self._transport, self.timeout)
        return result if full else result.value

    async def aextract(
        self,
        schema: Any,
        text: str | Sequence[Mapping[str, Any]],
        *,
        instructions: str | None = None,
        full: bool = False,
        model: str | None = None,
        max_attempts: int | None = None,
        token_budget: int | None = None,
        **params: Any,
    ) -> Any:
        """Async twin of `extract`."""
        job = self._job(schema, text, instructions, model, max_attempts, token_budget, params)
        result = await drive_async(run(job), self._transport, self.timeout)
        return result if full else result.value

    def close(self) -> None:
        self._transport.close()

    async def aclose(self) -> None:
        await self._transport.aclose()

    def __enter__(self) -> Extractor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aenter__(self) -> Extractor:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()


def _check_params(params: Mapping[str, Any]) -> None:
    clash = sorted(_RESERVED.intersection(params))
    if clash:
        raise ConfigurationError(
            f"{', '.join(clash)} cannot be passed: extract builds the messages and response_format itself "
            "and reads one non-streamed reply (pass a list of messages as `text` to control the prompt)"
        )
    if "max_tokens" in params and "max_completion_tokens" in params:
        raise ConfigurationError(
            "pass max_completion_tokens or max_tokens, not both (the server rejects both)"
        )


# -- module-level functions over a shared default Extractor ---------------------------------------------

_CONFIG_KEYS = (
    "base_url",
    "api_key",
    "provider",
    "timeout",
    "max_retries",
    "limiter",
    "transport",
    "headers",
)
_defaults: dict[tuple[Any, ...], Extractor] = {}
_defaults_lock = threading.Lock()


def _default_extractor(model: str | None, options: dict[str, Any]) -> Extractor:
    """The shared Extractor for this configuration (and the current environment), built on first use."""
    config = {k: options.pop(k) for k in _CONFIG_KEYS if k in options}
    config["model"] = model
    key = (
        tuple((k, _freeze(config[k])) for k in sorted(config)),
        hash(os.environ.get("CEREBRAS_API_KEY")),  # a hash: the key itself is not kept in the table
        os.environ.get("CEREBRAS_BASE_URL"),
    )
    extractor = _defaults.get(key)
    if extractor is None:
        with _defaults_lock:
            extractor = _defaults.get(key)
            if extractor is None:
                extractor = _defaults[key] = Extractor(**config)
    return extractor


def _freeze(value: Any) -> Any:
    """A hashable stand-in for an option value, so equal configurations share one Extractor."""
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in value.items()))
    try:
        hash(value)
    except TypeError:
        return ("id", id(value))
    return value


def extract(
    schema: Any, text: str | Sequence[Mapping[str, Any]], model: str | None = None, **options: Any
) -> Any:
    """Extract `schema` from `text` with the shared default Extractor (see Extractor for the options)."""
    return _default_extractor(model, options).extract(schema, text, model=model, **options)


async def aextract(
    schema: Any, text: str | Sequence[Mapping[str, Any]], model: str | None = None, **options: Any
) -> Any:
    """Async twin of `extract`; works across successive asyncio.run calls (one client per event loop)."""
    return await _default_extractor(model, options).aextract(schema, text, model=model, **options)
