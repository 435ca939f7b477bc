"""resolve(): which provider record, model row, URL and key a configuration means. No I/O.

Every entry point (Extractor, the CLI, extract_frame, batch) resolves through here, so the backend
choice and the key policy are decided once:

- an explicit transport: the caller's provider, else the one the transport names (`transport.provider`),
  else generic;
- else an explicit base_url or api_key, or a provider key / base URL in the environment: HTTP, with the
  record the caller named or the one that owns the URL's host;
- else the embedded model (`base_url` None): the caller's record or `local`.

A key from the environment only ever goes to the provider that owns it: a URL on one of its hosts, its
default URL or the URL in its base-URL variable (`Provider.owns_url`), never to another base_url.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from extract.errors import ConfigurationError
from extract.providers._data import DEFAULT_PROVIDER, PROVIDERS
from extract.providers._records import ModelRow, Provider
from extract.transports.http import check_base_url

if TYPE_CHECKING:
    from extract.transports import Transport

__all__ = ["Resolved", "get_provider", "provider_for_url", "resolve"]

_GENERIC = PROVIDERS["generic"]
_EMBEDDED = next(p for p in PROVIDERS.values() if p.embedded)
# Accepted for compatibility: base_url="local" meant "the embedded model" before providers were records.
_EMBEDDED_ALIAS = "local"


@dataclass(frozen=True, slots=True)
class Resolved:
    """What a configuration resolved to. `base_url` is None when the model runs in-process (or behind a
    caller's transport that has no URL); `model` is None when neither the caller nor the record names
    one (the caller must then ask for it)."""

    provider: Provider
    row: ModelRow
    model: str | None
    base_url: str | None
    api_key: str | None = field(repr=False)
    transport: Transport | None = None

    @property
    def in_process(self) -> bool:
        """True when the embedded model must be started (no transport given and no URL to call)."""
        return self.transport is None and self.base_url is None


def get_provider(name: str) -> Provider:
    """The record called `name`, or ConfigurationError listing the valid names."""
    found = PROVIDERS.get(name) if isinstance(name, str) else None
    if found is None:
        raise ConfigurationError(
            f"unknown provider {name!r}; use one of: {', '.join(PROVIDERS)} "
            "(or leave it out to guess from the base URL)"
        )
    return found


def provider_for_url(base_url: str, environ: Mapping[str, str] | None = None) -> Provider:
    """The record that owns `base_url` (its host, default URL or base-URL variable); else generic."""
    env = os.environ if environ is None else environ
    for record in PROVIDERS.values():
        if record.owns_host(base_url):
            return record
    for record in PROVIDERS.values():
        if record.owns_url(base_url, env):
            return record
    return _GENERIC


def _env_key(base_url: str, env: Mapping[str, str]) -> str | None:
    """The environment key of the provider that owns `base_url`, if any (the key policy)."""
    for record in PROVIDERS.values():
        if record.key_env and record.owns_url(base_url, env):
            return env.get(record.key_env) or None
    return None


def resolve(
    *,
    provider: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    model: str | None = None,
    transport: Transport | None = None,
    environ: Mapping[str, str] | None = None,
) -> Resolved:
    """Resolve a configuration (see the module docstring); `environ` defaults to os.environ."""
    env = os.environ if environ is None else environ
    named = get_provider(provider) if provider is not None else None
    if base_url == _EMBEDDED_ALIAS:
        named, base_url = named or _EMBEDDED, None

    if transport is not None:
        hinted = getattr(transport, "provider", None)
        record = named or (PROVIDERS.get(hinted) if isinstance(hinted, str) else None) or _GENERIC
        own_name = getattr(transport, "model_name", None)
        chosen = model or record.default_model or (own_name if isinstance(own_name, str) else None)
        return Resolved(record, record.row(chosen or ""), chosen, base_url, api_key, transport)

    if base_url is None and named is not None and named.embedded:
        return Resolved(named, named.row(model or ""), model, None, None)

    # whose environment variables apply: the named provider's when it has some, else the default's
    home = named if named is not None and (named.key_env or named.base_url_env) else DEFAULT_PROVIDER
    env_key = env.get(home.key_env) or None if home.key_env else None
    env_base = env.get(home.base_url_env) or None if home.base_url_env else None
    if base_url is None:
        if api_key is None and env_key is None and env_base is None:
            record = named or _EMBEDDED
            return Resolved(record, record.row(model or ""), model, None, None)
        base_url = env_base or home.default_base_url
        if base_url is None:
            raise ConfigurationError(f"provider {home.name!r} has no default URL: pass base_url=")
    base_url = check_base_url(base_url)
    if api_key is None:
        api_key = _env_key(base_url, env)
    record = named or provider_for_url(base_url, env)
    chosen = model or record.default_model
    return Resolved(record, record.row(chosen or ""), chosen, base_url, api_key)
