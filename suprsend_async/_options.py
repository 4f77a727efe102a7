"""The client's options, declared once.

`CallOptions` are the settings a derived client may change (``with_options``);
`ClientOptions` adds what only a new client can choose (its pool, its observers). The
constructor, ``with_workspace_api_key``, ``with_options`` and the sync facade all take them as
``**options: Unpack[...]``, and `resolve` turns them into a core's settings and a pool's
parameters in one place: a new option is one line in a TypedDict and one in `resolve`.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, TypedDict

import httpx

from ._observe import Hooks
from ._retry import RetryPolicy
from ._types import NotGiven

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_ANSWER_BYTES",
    "AppInfo",
    "CallOptions",
    "ClientOptions",
    "PoolOptions",
    "Resolved",
    "as_timeout",
    "check_options",
    "resolve",
]

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50)
DEFAULT_MAX_ANSWER_BYTES = 4 * 1024 * 1024
"""Answers are read up to 4 MiB once decoded (a bulk answer of 100 records is about 10 KiB)."""


def as_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    """A timeout in seconds (``None``: no limit) or an ``httpx.Timeout`` as it is."""
    return timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)


class AppInfo(TypedDict, total=False):
    """Your application, named in every request's ``User-Agent`` (as the official SDK's
    ``app_info``): ``{"name": "billing", "version": "2.3.1"}``."""

    name: str
    version: str | None


class CallOptions(TypedDict, total=False):
    """Settings of a client that a derived client (``with_options``) may replace.

    * ``timeout``: seconds, or an ``httpx.Timeout`` (default 30 s read, 5 s connect; with an
      ``http_client``, that client's own); ``None`` means no limit. It also caps each attempt
      as a whole, from connecting to the answer's last byte;
    * ``max_retries``: retries of a transient failure (default 2; 0 turns retries off);
    * ``retry_policy``: a `RetryPolicy` that tunes the waits;
    * ``deadline``: seconds a whole call may take, retries and waits included (default none);
    * ``hooks``: a `Hooks` of callbacks before and after each attempt, on each retry and
      on bulk progress.
    """

    timeout: float | httpx.Timeout | NotGiven | None
    max_retries: int | None
    retry_policy: RetryPolicy | None
    deadline: float | NotGiven | None
    hooks: Hooks | None


class ClientOptions(CallOptions, total=False):
    """Every option of a new client: the `CallOptions` and these.

    * ``http_client``: an ``httpx.AsyncClient`` of yours to send through; never closed by the SDK;
    * ``limits``: pool limits of the SDK's own HTTP client (default 100 connections);
    * ``verify``: ``True`` (default), ``False``, a CA bundle path or an ``ssl.SSLContext``;
    * ``auto_idempotency_keys``: generate a key for every trigger without one (default true);
    * ``log_bodies``: log request bodies at DEBUG level (default false: they hold personal data);
    * ``max_answer_bytes``: the most of an answer that is read, once decoded (default 4 MiB);
    * ``tracer_provider`` / ``meter_provider``: OpenTelemetry providers (default: the global
      ones, when ``opentelemetry-api`` is installed);
    * ``debug``: log every attempt at DEBUG on the ``suprsend_async`` logger, with a handler
      to stderr if that logger has none (as ``SUPRSEND_LOG=debug`` does); never the root
      logger, never bodies (``log_bodies`` is separate);
    * ``app_info``: your application, ``{"name": ..., "version": ...}``, named in the
      ``User-Agent`` (as the official SDK's ``app_info``).
    """

    http_client: httpx.AsyncClient | None
    limits: httpx.Limits
    verify: bool | str | ssl.SSLContext
    auto_idempotency_keys: bool
    log_bodies: bool
    max_answer_bytes: int
    tracer_provider: Any
    meter_provider: Any
    debug: bool
    app_info: AppInfo | None


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """What a new connection pool is built from."""

    http_client: httpx.AsyncClient | None
    limits: httpx.Limits
    verify: bool | str | ssl.SSLContext


@dataclass(frozen=True, slots=True)
class Resolved:
    """A client's options with every default filled in."""

    timeout: httpx.Timeout | None
    """``None``: keep what there is (a derived client), or the default (a new one)."""
    retry: RetryPolicy | None
    deadline: float | NotGiven | None
    hooks: Hooks | None
    pool: PoolOptions
    auto_idempotency_keys: bool
    log_bodies: bool
    max_answer_bytes: int
    tracer_provider: Any
    meter_provider: Any
    debug: bool
    app_info: AppInfo | None


def check_options(options: Mapping[str, Any], allowed: type, owner: str) -> None:
    """Raise ``TypeError`` naming any option ``allowed`` (a TypedDict) does not declare, as
    a signature would: ``Suprsend.__init__() got an unexpected keyword argument 'max_retry'``."""
    unknown = sorted(set(options) - set(allowed.__annotations__))
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")


def resolve(options: ClientOptions, base_retry: RetryPolicy | None = None) -> Resolved:
    """Options as given (any subset) into settings with the defaults filled in."""
    retry = options.get("retry_policy") or base_retry
    max_retries = options.get("max_retries")
    if max_retries is not None:
        retry = replace(retry or RetryPolicy(), max_retries=max_retries)
    timeout = options.get("timeout", NotGiven())
    return Resolved(
        timeout=None if isinstance(timeout, NotGiven) else as_timeout(timeout),
        retry=retry,
        deadline=options.get("deadline", NotGiven()),
        hooks=options.get("hooks"),
        pool=PoolOptions(
            options.get("http_client"),
            options.get("limits", DEFAULT_LIMITS),
            options.get("verify", True),
        ),
        auto_idempotency_keys=options.get("auto_idempotency_keys", True),
        log_bodies=options.get("log_bodies", False),
        max_answer_bytes=options.get("max_answer_bytes", DEFAULT_MAX_ANSWER_BYTES),
        tracer_provider=options.get("tracer_provider"),
        meter_provider=options.get("meter_provider"),
        debug=options.get("debug", False),
        app_info=options.get("app_info"),
    )
