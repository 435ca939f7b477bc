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
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

import orjson

from extract import modes
from extract._engine.drive import drive_async, drive_sync
from extract._engine.features import feature_params, reasoning_reserve, service_fields
from extract._engine.inputs import (
    check_extra_body,
    check_options,
    check_params,
    check_schema_argument,
    check_text,
)
from extract._engine.loop import DEFAULT_RESERVED_COMPLETION, FIELD_REFUSED, Job, Prepared, run
from extract.documents import (
    BYTES_PER_TOKEN,
    CHUNK_CONCURRENCY,
    MIN_CHUNK_TOKENS,
    ChunkOptions,
    ChunkTask,
    DocumentPlan,
    check_chunk_options,
    check_policies,
    chunk_schema,
    drive_document_async,
    drive_document_sync,
    estimate_tokens,
    plan_chunks,
    run_document,
    uses_policy,
)
from extract.errors import ConfigurationError, ContextLengthError, redact
from extract.providers import PROVIDERS, REQUEST_FIELDS, ModelRow, Resolved, error_fields, resolve
from extract.results import Attempt, Result, Usage
from extract.transports import (
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_MAX_WAIT_S,
    HttpTransport,
    PayloadPolicy,
    RetryPolicy,
    Transport,
    WireResponse,
    check_payload,
)

if TYPE_CHECKING:
    from extract.evidence import Grounding
    from extract.ratelimit import Limiter
    from extract.schema import CompiledSchema
    from extract.schema._profiles import Profile
    from extract.streaming import AsyncPartialStream, PartialStream

__all__ = ["Attempt", "Extractor", "Result", "Usage", "aextract", "astream", "extract", "stream"]

logger = logging.getLogger("extract")

_local_logged = threading.Event()
_CACHE_LIMIT = 1024
# What Extractor.base_url says when the model runs in-process (the embedded provider's name).
_IN_PROCESS = next(p.name for p in PROVIDERS.values() if p.embedded)

# Keyword options of each entry point besides the request fields. The fields the engine sets itself stay
# in the valid set so that check_params can say why they cannot be passed.
_EXTRACTOR_OPTIONS = frozenset(
    {
        "base_url",
        "api_key",
        "model",
        "provider",
        "timeout",
        "max_attempts",
        "max_retries",
        "token_budget",
        "limiter",
        "transport",
        "headers",
        "extra_body",
        "max_response_bytes",
        "max_server_wait",
        "queue_threshold",
        "payload",
    }
)
_CALL_OPTIONS = frozenset(
    {
        "instructions",
        "full",
        "model",
        "max_attempts",
        "token_budget",
        "extra_body",
        "evidence",
        "require_grounding",
    }
) | frozenset({"chunking", "chunk_tokens", "overlap_tokens", "on_chunk_error"})  # documents/
_PARAMS = REQUEST_FIELDS - {"model"}


def _open(
    resolved: Resolved, headers: Mapping[str, str] | None, max_response_bytes: int
) -> tuple[Transport, str | None]:
    """The transport a resolution needs, and the model it brings (the embedded model names its own)."""
    if resolved.transport is not None:
        return resolved.transport, None
    if resolved.base_url is None:
        from extract.local import local_transport

        local, model = local_transport()
        if not _local_logged.is_set():
            _local_logged.set()
            logger.info("no CEREBRAS_API_KEY and no base_url: running on the embedded local model %s", model)
        return local, model
    transport = HttpTransport(
        resolved.base_url,
        resolved.api_key,
        headers=headers,
        max_response_bytes=max_response_bytes,
        provider=resolved.provider.name,
    )
    return transport, None


# tokens for the chat framing of the two messages and the document tags, beyond their text
_FRAMING_TOKENS = 32


@dataclass(frozen=True, slots=True)
class _Document:
    text: str
    plan: DocumentPlan


def _refusal_text(response: WireResponse) -> str:
    """What a server said when it refused something: its error message, else the start of its body."""
    return error_fields(response.data).get("message") or response.body[:200].decode("utf-8", "replace")


class Extractor:
    """A reusable client: one pooled connection set, cached compiled schemas and prompts, and the
    memory of which output modes each (server, model) refused. Safe to share across threads and tasks.

    Provider features are request fields checked against the model's row before anything is sent:
    `reasoning_effort` / `reasoning_format`, `logprobs` / `top_logprobs`, `service_tier`,
    `prompt_cache_key` (derived per schema and instructions where the row takes it) and `prediction`;
    `queue_threshold` (milliseconds, with service_tier "flex" or "auto") is the provider's header.
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
        limiter: Limiter | None = None,
        transport: Transport | None = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_server_wait: float = DEFAULT_MAX_WAIT_S,
        queue_threshold: int | None = None,
        payload: str = "auto",
        **params: Any,
    ) -> None:
        check_options(params, _EXTRACTOR_OPTIONS | _PARAMS, "Extractor()")
        if max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {max_attempts}")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be 0 or more, got {max_retries}")
        if timeout <= 0:
            raise ConfigurationError(f"timeout must be positive seconds, got {timeout}")
        check_params(params)
        self.payload = check_payload(payload)
        self._extra_body = check_extra_body(extra_body)
        resolved = resolve(
            provider=provider, base_url=base_url, api_key=api_key, model=model, transport=transport
        )
        if queue_threshold is not None:
            # a header on every request (flex/auto tiers only): checked against the default model's row
            row = resolved.provider.row(resolved.model or "*")
            _, queue_headers = service_fields(row, params.get("service_tier"), queue_threshold)
            headers = {**(headers or {}), **queue_headers}
        self._transport, own_model = _open(resolved, headers, max_response_bytes)
        self._base_url = resolved.base_url or (_IN_PROCESS if resolved.in_process else resolved.provider.name)
        self._api_key = resolved.api_key
        chosen = resolved.model or own_model
        if chosen is None:
            raise ConfigurationError(
                f"no model given for {self._base_url}: pass model='...' (the name the server lists at /v1/models)"
            )
        self.in_process = resolved.in_process  # the embedded model answers (no server, no key)
        self.record = resolved.provider
        self.provider = resolved.provider.name
        self.model = chosen
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.token_budget = token_budget
        self.limiter = limiter
        self._retry = RetryPolicy(max_retries=max_retries, max_server_wait=max_server_wait)
        self._params = dict(params)
        feature_params(
            self.record.row(chosen), self._params, {}
        )  # a feature the model refuses fails here, early
        self._demoted: dict[tuple[str, str], set[str]] = {}
        self._payloads: dict[tuple[str, str], PayloadPolicy] = {}
        self._rows: dict[str, ModelRow] = {}
        self._warned: set[tuple[str, str, str]] = set()
        self._compiled: dict[tuple[Any, str], CompiledSchema] = {}
        self._prepared: dict[tuple[int, str, str | None], tuple[CompiledSchema, Prepared]] = {}
        self._lock = threading.Lock()
        # long documents (extract/documents/): context windows servers named when refusing, per (server,
        # model), and each compiled schema's chunk variant (required relaxed), keyed by id like _prepared
        self._windows: dict[tuple[str, str], int] = {}
        # the embedded model answers one request at a time: chunks queued behind each other would spend
        # their timeout waiting, so they go one by one
        self._chunk_concurrency = 1 if self.record.embedded else CHUNK_CONCURRENCY
        self._chunk_schemas: dict[int, tuple[CompiledSchema, CompiledSchema]] = {}

    @property
    def base_url(self) -> str:
        return self._base_url

    def __repr__(self) -> str:
        key = "'***'" if self._api_key else "None"
        return f"Extractor(base_url={self._base_url!r}, model={self.model!r}, provider={self.provider!r}, api_key={key})"

    # -- per-call preparation (cached) ---------------------------------------------------------------

    @property
    def profile(self) -> Profile:
        """The strict-schema profile schemas are compiled for (the provider record's)."""
        return self.record.profile

    def _row(self, model: str) -> ModelRow:
        row = self._rows.get(model)
        if row is None:
            row = self._rows[model] = self.record.row(model)
        return row

    def _compile(self, schema: Any, profile: Profile | str) -> CompiledSchema:
        try:
            key: tuple[Any, str] | None = (schema, profile if isinstance(profile, str) else profile.name)
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

    def _prepare(self, compiled: CompiledSchema, instructions: str | None, mode: str) -> Prepared:
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

    def _first_warning(self, key: tuple[str, str, str]) -> bool:
        """True once per key: a refusal is worth one warning per Extractor, not one per request."""
        with self._lock:
            if key in self._warned:
                return False
            self._warned.add(key)
            return True

    def _on_demote(self, model: str, mode: str, response: WireResponse) -> None:
        if not self._first_warning((self._base_url, model, mode)):
            return
        said = _refusal_text(response)
        logger.warning(
            "%s refused output mode %s for model %s (HTTP %d: %s); using the next mode for this Extractor",
            self._base_url,
            mode,
            model,
            response.status_code,
            redact(said, self._api_key),
        )

    def _payload(self, model: str, row: ModelRow) -> PayloadPolicy | None:
        """How bodies for `model` are encoded, with the encodings this server refused so far; None: JSON."""
        if self.payload == "json" or not row.encodings:
            return None
        key = (self._base_url, model)
        policy = self._payloads.get(key)
        if policy is None:
            with self._lock:
                policy = self._payloads.setdefault(key, PayloadPolicy(self.payload, row.encodings))
        return policy

    def _on_encoding_refused(self, model: str, encoding: str, response: WireResponse) -> None:
        if not self._first_warning((self._base_url, model, f"payload:{encoding}")):
            return
        said = _refusal_text(response)
        logger.warning(
            "%s refused %s request bodies for model %s (HTTP %d: %s); resent as plain JSON, and %s is not "
            "used again for this Extractor (pass payload='json' to skip the attempt)",
            self._base_url,
            encoding,
            model,
            response.status_code,
            redact(said, self._api_key),
            encoding,
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
        extra_body: Mapping[str, Any] | None = None,
        evidence: bool = False,
        require_grounding: bool = False,
    ) -> Job:
        check_options(params, _CALL_OPTIONS | _PARAMS, "extract()")
        check_params(params)
        check_schema_argument(schema)
        check_text(text)
        extra = {**self._extra_body, **check_extra_body(extra_body)} if extra_body else self._extra_body
        use_model = model or self.model
        row = self._row(use_model)
        compiled = self._compile(schema, self.record.profile)
        merged = {**self._params, **params} if params else self._params
        if "max_tokens" in merged and row.max_tokens_field != "max_tokens":
            merged = dict(merged)
            merged.setdefault(row.max_tokens_field, merged.pop("max_tokens"))
        featured = feature_params(
            row, merged, compiled.wire_schema, instructions, default_effort=row.reasoning_effort
        )
        if evidence:
            _source_text(text)  # before anything is sent
            featured = _evidence_fields(row, featured, compiled.user_schema)
        with self._lock:
            demoted = self._demoted.setdefault((self._base_url, use_model), set())
            refused = {m[len(FIELD_REFUSED) :] for m in demoted if m.startswith(FIELD_REFUSED)}
        # what the row added on the caller's behalf may be dropped if a server refuses it (never the caller's)
        optional = frozenset(k for k in featured if k not in merged)
        merged = {k: v for k, v in featured.items() if not (k in optional and k in refused)}
        return Job(
            compiled=compiled,
            source=text,
            instructions=instructions,
            model=use_model,
            provider=self.record,
            row=row,
            params=merged,
            extra_body=extra,
            prepare=lambda mode: self._prepare(compiled, instructions, mode),
            demoted=demoted,
            on_demote=lambda mode, response: self._on_demote(use_model, mode, response),
            retry=self._retry,
            max_attempts=self.max_attempts if max_attempts is None else max(1, max_attempts),
            token_budget=self.token_budget if token_budget is None else token_budget,
            limiter=self.limiter,
            secrets=(self._api_key,),
            optional=optional,
            payload=self._payload(use_model, row),
            on_encoding_refused=lambda encoding, response: self._on_encoding_refused(
                use_model, encoding, response
            ),
            ground=_grounding(compiled, text) if require_grounding else None,
        )

    # -- long documents (extract/documents/) ------------------------------------------------------------

    def _document(
        self,
        job: Job,
        text: str | Sequence[Mapping[str, Any]],
        options: ChunkOptions,
        call: tuple[Any, ...],
        refusal: ContextLengthError | None,
        evidence: bool = False,
    ) -> tuple[_Document, Callable[[ChunkTask], Job]] | None:
        """The chunked run of `text`, or None when it goes whole (fits, or is a list of messages).

        Called before the first request with the window the record gives or a server named earlier, and
        again when a whole-text request was refused as too long (whose limit is then remembered)."""
        if not isinstance(text, str) or (refusal is not None and options.chunking == "off"):
            return None
        key = (self._base_url, job.model)
        if refusal is not None and refusal.limit is not None:
            with self._lock:
                self._windows[key] = refusal.limit
        window = self._windows.get(key, job.row.context_window)
        if window is None and options.chunk_tokens is None and refusal is None:
            return None  # nothing known: send it whole and learn from a refusal
        wanted = job.params.get(job.row.max_tokens_field)
        reserve = (
            wanted
            if isinstance(wanted, int)
            else DEFAULT_RESERVED_COMPLETION
            + reasoning_reserve(job.row.reasoning, job.params.get("reasoning_effort"))
        )
        size = estimate_tokens(text)
        mode = modes.plan_modes(job.row, job.compiled.strict, job.demoted)[0]
        overhead = -(-job.prepare(mode).chars // BYTES_PER_TOKEN) + _FRAMING_TOKENS
        sizes = plan_chunks(size, overhead, reserve, window, options, job.model)
        if sizes is None:
            if refusal is None:
                return None  # it fits: the short path, nothing compiled or split
            # refused although the estimate fits: split by the named limit (in halves when none was named)
            room = window - overhead - reserve if window is not None else size // 2
            if min(room, size // 2) < MIN_CHUNK_TOKENS:
                return None  # too short to gain from splitting: the refusal stands
            sizes = (min(room, size // 2), min(options.overlap_tokens or room // 10, room // 4))
        pair = self._chunk_schemas.get(id(job.compiled))
        if pair is None or pair[0] is not job.compiled:
            check_policies(job.compiled.user_schema)
            from extract.schema import compile_schema

            relaxed = compile_schema(chunk_schema(job.compiled.user_schema), provider=self.record.profile)
            if len(self._chunk_schemas) >= _CACHE_LIMIT:
                self._chunk_schemas.clear()
            pair = self._chunk_schemas[id(job.compiled)] = (job.compiled, relaxed)
        instructions, model, max_attempts, token_budget, params, extra_body, grounded = call
        # a highest_confidence merge, and evidence (each merged leaf's confidence from its chunk's reply),
        # need each chunk's logprobs (where the model row returns them)
        scored = evidence or uses_policy(job.compiled.user_schema, "highest_confidence")

        def chunk_job(task: ChunkTask) -> Job:
            # require_grounding holds per chunk (a value must appear in its chunk); evidence is collected
            # once on the merged value against the whole text
            return self._job(
                pair[1], task.text, instructions, model, max_attempts, token_budget, params, extra_body,
                scored, grounded,
            )  # fmt: skip

        # the chunk schema is a little larger than the user's: size the chunks by its prompt
        probe = chunk_job(ChunkTask(0, 0, ""))
        extra = -(-probe.prepare(mode).chars // BYTES_PER_TOKEN) + _FRAMING_TOKENS - overhead
        overhead += max(extra, 0)
        sizes = (max(sizes[0] - max(extra, 0), MIN_CHUNK_TOKENS), sizes[1])

        def budget(limit: int | None, current: int) -> int:
            if limit is None:
                return current // 2
            with self._lock:
                self._windows[key] = limit
            return limit - overhead - reserve  # too small to split by: the chunk is recorded as failed

        compiled = job.compiled
        plan = DocumentPlan(
            chunk_tokens=sizes[0],
            overlap_tokens=sizes[1],
            on_chunk_error=options.on_chunk_error,
            user_schema=compiled.user_schema,
            model=job.model,
            budget=budget,
            finish=compiled.validator.validate_value,
            confidence=_chunk_confidence(pair[1]) if scored else None,
            evidence=_merged_evidence(compiled, text) if evidence else None,
        )
        return _Document(text, plan), chunk_job

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
        extra_body: Mapping[str, Any] | None = None,
        chunking: str = "auto",
        chunk_tokens: int | None = None,
        overlap_tokens: int | None = None,
        on_chunk_error: str = "keep",
        evidence: bool = False,
        require_grounding: bool = False,
        **params: Any,
    ) -> Any:
        """The validated value (a model instance for pydantic schemas), or the whole Result with full=True.

        `params` are request fields (temperature, seed, max_completion_tokens, ...); a name extract does
        not know is an UnknownOptionError: provider fields go in `extra_body`, merged into the body.

        A text longer than the model's context window (the provider record's, or the one a server named
        when it refused a request as too long, remembered per server and model) is split into chunks of
        `chunk_tokens` (default: what the window leaves) sharing `overlap_tokens`, each extracted in full,
        and the values merged by the schema (extract/documents/); the Result then tells the chunk story.
        `chunking="off"` makes such a text an InputError; `on_chunk_error="raise"` makes a failed chunk a
        DocumentIncomplete (an ExtractionFailed carrying the partial Result) instead of complete=False.
        max_attempts and token_budget then apply to each chunk.

        `evidence=True` fills `Result.evidence` (spans, alignment and, where the model row returns
        logprobs, confidence per leaf); `require_grounding=True` re-asks when a string or number does not
        appear in the text (fields marked `"derived": true` in the schema are exempt) and, once the
        attempts are spent, returns the best grounded reply with what is still not in the text removed
        (listed in `Result.dropped`); only a required, non-nullable value it cannot remove fails. Both
        need `text` as a string.
        """
        options = check_chunk_options(chunking, chunk_tokens, overlap_tokens, on_chunk_error)
        job = self._job(
            schema, text, instructions, model, max_attempts, token_budget, params, extra_body,
            evidence, require_grounding,
        )  # fmt: skip
        call = (instructions, model, max_attempts, token_budget, params, extra_body, require_grounding)
        document = self._document(job, text, options, call, None, evidence)
        if document is None:
            try:
                result = drive_sync(run(job), self._transport, self.timeout)
            except ContextLengthError as refusal:
                document = self._document(job, text, options, call, refusal, evidence)
                if document is None:
                    raise
        if document is not None:
            plan, chunk_job = document
            result = drive_document_sync(
                run_document(plan.text, plan.plan),
                lambda task: drive_sync(run(chunk_job(task)), self._transport, self.timeout),
                self._chunk_concurrency,
            )
        if evidence:
            result = _with_evidence(result, job, chunked=document is not None)
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
        extra_body: Mapping[str, Any] | None = None,
        chunking: str = "auto",
        chunk_tokens: int | None = None,
        overlap_tokens: int | None = None,
        on_chunk_error: str = "keep",
        evidence: bool = False,
        require_grounding: bool = False,
        **params: Any,
    ) -> Any:
        """Async twin of `extract`."""
        options = check_chunk_options(chunking, chunk_tokens, overlap_tokens, on_chunk_error)
        job = self._job(
            schema, text, instructions, model, max_attempts, token_budget, params, extra_body,
            evidence, require_grounding,
        )  # fmt: skip
        call = (instructions, model, max_attempts, token_budget, params, extra_body, require_grounding)
        document = self._document(job, text, options, call, None, evidence)
        if document is None:
            try:
                result = await drive_async(run(job), self._transport, self.timeout)
            except ContextLengthError as refusal:
                document = self._document(job, text, options, call, refusal, evidence)
                if document is None:
                    raise
        if document is not None:
            plan, chunk_job = document
            result = await drive_document_async(
                run_document(plan.text, plan.plan),
                lambda task: drive_async(run(chunk_job(task)), self._transport, self.timeout),
                self._chunk_concurrency,
            )
        if evidence:
            result = _with_evidence(result, job, chunked=document is not None)
        return result if full else result.value

    def stream(self, schema: Any, text: str | Sequence[Mapping[str, Any]], **options: Any) -> PartialStream:
        """Partial values while the reply arrives, then the validated value (see `extract.stream`)."""
        return _extractor_stream(self, schema, text, **options)

    def astream(
        self, schema: Any, text: str | Sequence[Mapping[str, Any]], **options: Any
    ) -> AsyncPartialStream:
        """Async twin of `stream` (iterate with `async for`)."""
        return _extractor_astream(self, schema, text, **options)

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


# -- evidence (extract.evidence, loaded only when asked for) ---------------------------------------------


def _evidence_fields(row: ModelRow, featured: dict[str, Any], user_schema: dict[str, Any]) -> dict[str, Any]:
    """logprobs where the model row says it returns them (and top_logprobs when the schema has enum or
    boolean values to score: 2 for booleans, up to 5 for enums; 1 at least where the server sends
    logprobs only with top_logprobs, as llama-cpp-python's does); added on the caller's behalf, so a server that refuses them gets the
    request again without them."""
    if row.logprobs is not True or featured.get("logprobs") is False:
        return featured
    from extract.evidence import choice_width

    out = dict(featured)
    out.setdefault("logprobs", True)
    width = choice_width(user_schema) or (1 if row.logprobs_need_top else 0)
    if width:
        out.setdefault("top_logprobs", width)
    return out


def _source_text(text: str | Sequence[Mapping[str, Any]]) -> str:
    if not isinstance(text, str):
        raise ConfigurationError(
            "evidence= and require_grounding= need the document as a string (spans are offsets into it); "
            "pass text=... instead of a message list"
        )
    return text


def _grounding(compiled: CompiledSchema, text: str | Sequence[Mapping[str, Any]]) -> Grounding:
    from extract.evidence import Grounding

    return Grounding(compiled, _source_text(text))


def _chunk_confidence(compiled: CompiledSchema) -> Callable[[ChunkTask, Result], dict[str, float]]:
    """Per-leaf probabilities of a chunk's reply, for the highest_confidence merge (none without logprobs)."""

    def scores(task: ChunkTask, result: Result) -> dict[str, float]:
        last = result.attempts[-1] if result.attempts else None
        if last is None or not last.logprobs:
            return {}
        from extract.evidence import collect

        found = collect(compiled, task.text, last.content, result.value, last.logprobs)
        return {path: ev.confidence for path, ev in found.items() if ev.confidence is not None}

    return scores


def _merged_evidence(compiled: CompiledSchema, text: Any) -> Callable[[Any, Mapping[str, float]], Any]:
    """A chunked document's evidence: spans and alignment against the whole text, and each leaf's
    confidence from the chunk reply the merge took it from (see extract.documents._merge)."""
    from extract.evidence import collect

    source = _source_text(text)
    return lambda value, scores: collect(compiled, source, None, value, None, confidences=scores)


def _with_evidence(result: Result, job: Job, *, chunked: bool = False) -> Result:
    """Evidence for the value against the caller's whole text (a chunked document's came with its merge)."""
    from dataclasses import replace

    from extract.evidence import collect

    source = _source_text(job.source)
    if chunked and result.evidence is not None:
        return replace(result, source=source)
    last = result.attempts[result.reply]
    if job.ground is not None and not chunked and (result.dropped or result.reply != -1):
        # require_grounding settled the value: some leaves may not be what the base reply wrote
        settled = job.ground.evidence(last.content, result.value, last.logprobs)
        return replace(result, evidence=settled, source=source)
    found = collect(
        job.compiled,
        source,
        None if chunked else last.content,
        result.value,
        None if chunked else last.logprobs,
    )
    return replace(result, evidence=found, source=source)


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
    "queue_threshold",
    "payload",
)
_MODULE_OPTIONS = frozenset(_CONFIG_KEYS) | _CALL_OPTIONS | _PARAMS
_ENV_NAMES = tuple(
    name for record in PROVIDERS.values() for name in (record.key_env, record.base_url_env) if name
)
_defaults: dict[tuple[Any, ...], Extractor] = {}
_defaults_lock = threading.Lock()


def _default_extractor(model: str | None, options: dict[str, Any]) -> Extractor:
    """The shared Extractor for this configuration (and the current environment), built on first use."""
    config = {k: options.pop(k) for k in _CONFIG_KEYS if k in options}
    if "queue_threshold" in config and "service_tier" in options:
        config["service_tier"] = options["service_tier"]  # the threshold header is checked against the tier
    config["model"] = model
    key = (
        tuple((k, _freeze(config[k])) for k in sorted(config)),
        # every provider variable resolve() reads, keys hashed: the key itself is not kept in the table
        tuple(hash(os.environ.get(name)) for name in _ENV_NAMES),
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
    check_options(options, _MODULE_OPTIONS, "extract()")
    check_schema_argument(schema)
    check_text(text)  # before a default backend is chosen: a bad text is the error to report
    return _default_extractor(model, options).extract(schema, text, model=model, **options)


async def aextract(
    schema: Any, text: str | Sequence[Mapping[str, Any]], model: str | None = None, **options: Any
) -> Any:
    """Async twin of `extract`; works across successive asyncio.run calls (one client per event loop)."""
    check_options(options, _MODULE_OPTIONS, "aextract()")
    check_schema_argument(schema)
    check_text(text)  # before a default backend is chosen: a bad text is the error to report
    return await _default_extractor(model, options).aextract(schema, text, model=model, **options)


# -- streaming (partial values while the reply arrives; see extract.streaming) -----------------------------


def _stream_job(
    extractor: Extractor, schema: Any, text: str | Sequence[Mapping[str, Any]], kwargs: dict[str, Any]
) -> tuple[Job, _Document | None, Callable[[ChunkTask], Job] | None]:
    """The job `Extractor.extract` would run, asking for a streamed reply in the modes the row streams;
    and, for a text longer than the model's context window, its chunked run (see extract/documents/)."""
    params = dict(kwargs)
    if params.pop("evidence", False):
        raise ConfigurationError(
            "evidence=True is not computed for streams; use extract(..., full=True, evidence=True)"
        )
    require_grounding = bool(params.pop("require_grounding", False))
    chunking = check_chunk_options(
        params.pop("chunking", "auto"),
        params.pop("chunk_tokens", None),
        params.pop("overlap_tokens", None),
        params.pop("on_chunk_error", "keep"),
    )
    instructions = params.pop("instructions", None)
    model = params.pop("model", None)
    max_attempts = params.pop("max_attempts", None)
    token_budget = params.pop("token_budget", None)
    extra_body = params.pop("extra_body", None)
    job = extractor._job(
        schema, text, instructions, model, max_attempts, token_budget, params, extra_body,
        False, require_grounding,
    )  # fmt: skip
    call = (instructions, model, max_attempts, token_budget, params, extra_body, require_grounding)
    document = extractor._document(job, text, chunking, call, None)
    job.stream = True
    job.optional = job.optional | {"stream"}  # a server that refuses to stream a mode gets it unstreamed
    if document is None:
        return job, None, None
    return job, document[0], document[1]


def _extractor_stream(
    self: Extractor, schema: Any, text: str | Sequence[Mapping[str, Any]], **options: Any
) -> PartialStream:
    """Partial values of `schema` as the reply arrives, then the validated value (what `extract` returns)
    as the last item; `.attempt` says which reply an item came from, `.result` is the Result at the end.
    Options are those of `extract` (without `full`; `evidence=True` is refused). A text longer than the
    model's context window is extracted in chunks and merged: it yields its value once, at the end. See
    `extract.streaming._iterators` for what a partial holds."""
    from extract._engine.streaming import Progress, stream_sync
    from extract.streaming import PartialStream

    check_options(options, _CALL_OPTIONS - {"full"} | _PARAMS, "stream()")
    job, plan, chunk_job = _stream_job(self, schema, text, options)
    progress = Progress(job.compiled)
    if plan is None or chunk_job is None:
        return PartialStream(stream_sync(run(job), self._transport, self.timeout, progress), progress)
    split, make = plan, chunk_job

    def chunked() -> Iterator[Any]:
        progress.result = drive_document_sync(
            run_document(split.text, split.plan),
            lambda task: drive_sync(run(make(task)), self._transport, self.timeout),
            self._chunk_concurrency,
        )
        yield from ()

    return PartialStream(chunked(), progress)


def _extractor_astream(
    self: Extractor, schema: Any, text: str | Sequence[Mapping[str, Any]], **options: Any
) -> AsyncPartialStream:
    """Async twin of `Extractor.stream` (iterate with `async for`)."""
    from extract._engine.streaming import Progress, stream_async
    from extract.streaming import AsyncPartialStream

    check_options(options, _CALL_OPTIONS - {"full"} | _PARAMS, "astream()")
    job, plan, chunk_job = _stream_job(self, schema, text, options)
    progress = Progress(job.compiled)
    if plan is None or chunk_job is None:
        return AsyncPartialStream(stream_async(run(job), self._transport, self.timeout, progress), progress)
    split, make = plan, chunk_job

    async def chunked() -> AsyncIterator[Any]:
        progress.result = await drive_document_async(
            run_document(split.text, split.plan),
            lambda task: drive_async(run(make(task)), self._transport, self.timeout),
            self._chunk_concurrency,
        )
        return
        yield  # an async generator that yields nothing: the value comes from progress.result

    return AsyncPartialStream(chunked(), progress)


def stream(
    schema: Any, text: str | Sequence[Mapping[str, Any]], model: str | None = None, **options: Any
) -> PartialStream:
    """Stream `schema` from `text` with the shared default Extractor: partial values, then the value."""
    check_options(options, _MODULE_OPTIONS - {"full"}, "stream()")
    check_schema_argument(schema)
    check_text(text)
    return _extractor_stream(_default_extractor(model, options), schema, text, model=model, **options)


def astream(
    schema: Any, text: str | Sequence[Mapping[str, Any]], model: str | None = None, **options: Any
) -> AsyncPartialStream:
    """Async twin of `stream` (iterate with `async for`)."""
    check_options(options, _MODULE_OPTIONS - {"full"}, "astream()")
    check_schema_argument(schema)
    check_text(text)
    return _extractor_astream(_default_extractor(model, options), schema, text, model=model, **options)
