"""What watches the SDK at work: hooks, OpenTelemetry spans and metrics, attempt logs.

Everything is reported from two places: each attempt (``_client._Pipe.attempt``) and each
retry (the one retry loop's ``on_retry``), plus each call's start and end (the call's
``operation``). An `Observer` is built per client; with no hooks and no OpenTelemetry
installed it is inactive and those places skip it after one attribute check.

Hooks may be plain or async callables. A hook that raises is logged (once per hook) and never
breaks a send.
"""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ._bulk_results import BulkProgress
from ._types import RequestKind
from ._version import __version__

__all__ = ["AttemptEnd", "AttemptStart", "Hooks", "Observer", "RetryInfo"]

logger = logging.getLogger("suprsend_async")


@dataclass(frozen=True, slots=True)
class AttemptStart:
    """An attempt about to go out. Never holds a secret or a body."""

    method: str
    url: str
    attempt: int
    """1 for the first attempt of a call (or of a bulk request), 2 for its first retry..."""
    kind: RequestKind
    """``"trigger"``, ``"legacy"`` (a dynamic workflow), ``"event"`` or ``"api"`` (a
    management call)."""
    bulk: bool
    records: int
    idempotency_key: str | None
    """The key of a single trigger or event; ``None`` for a bulk request."""


@dataclass(frozen=True, slots=True)
class AttemptEnd:
    """An attempt that ended: the answer's status and request id, or why none came."""

    start: AttemptStart
    status_code: int | None
    request_id: str | None
    elapsed: float
    """Seconds from the attempt's start to its end."""
    error_type: str | None
    """``None`` on success; ``"http"``, ``"timeout"`` or ``"connection"`` otherwise."""


@dataclass(frozen=True, slots=True)
class RetryInfo:
    """A retry about to happen: why, after which attempt, and the wait before it."""

    kind: RequestKind
    attempt: int
    reason: str
    """``"timeout"``, ``"connection"`` or the status that asked for it (``"429"``, ``"503"``)."""
    wait: float


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks that see the SDK at work; each may be a plain or an async callable.

    * ``before_attempt(AttemptStart)``: method, URL, attempt number, idempotency key;
    * ``after_attempt(AttemptEnd)``: status, request id, elapsed time;
    * ``on_retry(RetryInfo)``: reason and wait;
    * ``on_bulk_progress(BulkProgress)``: after each bulk request, for every bulk call.

    A hook that raises is logged and ignored: it never breaks a send.
    """

    before_attempt: Callable[[AttemptStart], Any] | None = None
    after_attempt: Callable[[AttemptEnd], Any] | None = None
    on_retry: Callable[[RetryInfo], Any] | None = None
    on_bulk_progress: Callable[[BulkProgress], Any] | None = None


def _inert(provider: Any) -> bool:
    """Whether an OpenTelemetry provider records nothing: the API package's own providers
    (the proxy that stands in until an SDK is set up, and the no-op ones) are the only ones
    defined in it; every recording provider comes from an SDK."""
    module = type(provider).__module__
    return module.startswith(("opentelemetry.trace", "opentelemetry.metrics"))


class _Otel:
    """The OpenTelemetry instruments of one client (only built when the API is installed).

    With the API installed and no SDK set up (no provider given, none set globally), spans
    and measurements would be built only to be dropped: `tracing` and `metering` say
    whether anything records, asked afresh on each attempt, since an application may set a
    global provider after creating its clients.
    """

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        from opentelemetry import metrics, trace

        self.trace = trace
        self.metrics = metrics
        self._traces_given = tracer_provider is not None
        self._metrics_given = meter_provider is not None
        self.tracer = trace.get_tracer("suprsend_async", __version__, tracer_provider)
        meter = metrics.get_meter("suprsend_async", __version__, meter_provider)
        self.records = meter.create_counter(
            "suprsend.records", unit="{record}", description="Records sent, by outcome"
        )
        self.duration = meter.create_histogram(
            "suprsend.attempt.duration", unit="s", description="Duration of each HTTP attempt"
        )
        self.retries = meter.create_counter(
            "suprsend.retries", unit="{retry}", description="Retries, by reason"
        )

    def tracing(self) -> bool:
        """Whether a span built now would be recorded."""
        return self._traces_given or not _inert(self.trace.get_tracer_provider())

    def metering(self) -> bool:
        """Whether a measurement made now would be recorded."""
        return self._metrics_given or not _inert(self.metrics.get_meter_provider())

    def live(self) -> bool:
        return self.tracing() or self.metering()


def _load_otel(tracer_provider: Any, meter_provider: Any) -> _Otel | None:
    try:
        return _Otel(tracer_provider, meter_provider)
    except ImportError:
        return None


class Observer:
    """Hooks, OpenTelemetry and attempt logs of one client."""

    __slots__ = ("_failed", "_hooked", "hooks", "otel")

    def __init__(
        self,
        hooks: Hooks | None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        *,
        otel: _Otel | bool | None = True,
    ) -> None:
        self.hooks = hooks or Hooks()
        self._hooked = self.hooks != _NO_HOOKS
        self.otel = _load_otel(tracer_provider, meter_provider) if otel is True else otel or None
        self._failed: set[str] = set()

    def with_hooks(self, hooks: Hooks) -> Observer:
        """The same instruments with other hooks (for ``with_options``)."""
        return Observer(hooks, otel=self.otel or False)

    @property
    def active(self) -> bool:
        """Whether anything watches (else the report points cost one check): hooks, or an
        OpenTelemetry provider that records."""
        return self._hooked or (self.otel is not None and self.otel.live())

    async def _call(self, name: str, hook: Callable[[Any], Any] | None, value: Any) -> None:
        if hook is None:
            return
        try:
            result = hook(value)
            if inspect.isawaitable(result):
                await result
        except Exception:
            if name not in self._failed:
                self._failed.add(name)
                logger.exception("the %s hook raised; sending goes on (logged once)", name)

    # -- calls ------------------------------------------------------------------------------

    @contextmanager
    def call(self, name: str, attributes: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """A span around one call; the dict it yields collects attributes set at its end."""
        ending: dict[str, Any] = {}
        if self.otel is None or not self.otel.tracing():
            yield ending
            return
        with self.otel.tracer.start_as_current_span(name, attributes=attributes) as span:
            try:
                yield ending
            finally:
                span.set_attributes(ending)

    def outcomes(self, kind: RequestKind, counts: dict[str, int]) -> None:
        """Count a call's records by outcome."""
        if self.otel is None or not self.otel.metering():
            return
        for outcome, count in counts.items():
            if count:
                self.otel.records.add(count, {"suprsend.kind": kind, "suprsend.outcome": outcome})

    # -- attempts ---------------------------------------------------------------------------

    @contextmanager
    def attempt_span(self, start: AttemptStart, host: str, port: int | None) -> Iterator[Any]:
        """The client span of one HTTP attempt (OpenTelemetry's HTTP client conventions)."""
        if self.otel is None or not self.otel.tracing():
            yield None
            return
        attributes: dict[str, Any] = {
            "http.request.method": start.method,
            "url.full": start.url,
            "server.address": host,
            "suprsend.kind": start.kind,
            "suprsend.records": start.records,
        }
        if port is not None:
            attributes["server.port"] = port
        if start.attempt > 1:
            attributes["http.request.resend_count"] = start.attempt - 1
        if start.idempotency_key is not None:
            attributes["suprsend.idempotency_key"] = start.idempotency_key
        kind = self.otel.trace.SpanKind.CLIENT
        with self.otel.tracer.start_as_current_span(
            start.method, kind=kind, attributes=attributes
        ) as span:
            yield span

    async def before_attempt(self, start: AttemptStart) -> None:
        await self._call("before_attempt", self.hooks.before_attempt, start)

    async def after_attempt(self, end: AttemptEnd, span: Any) -> None:
        otel = self.otel
        if otel is not None:
            status = end.status_code
            attributes: dict[str, Any] = {"suprsend.kind": end.start.kind}
            if status is not None:
                attributes["http.response.status_code"] = status
            if end.error_type is not None:
                attributes["error.type"] = (
                    str(status) if end.error_type == "http" else end.error_type
                )
            if span is not None:
                if status is not None:
                    span.set_attribute("http.response.status_code", status)
                if end.error_type is not None:
                    span.set_attribute("error.type", attributes["error.type"])
                    span.set_status(otel.trace.StatusCode.ERROR)
                if end.request_id:
                    span.set_attribute("suprsend.request_id", end.request_id)
            if otel.metering():
                otel.duration.record(end.elapsed, attributes)
        await self._call("after_attempt", self.hooks.after_attempt, end)

    async def retried(self, info: RetryInfo) -> None:
        if self.otel is not None and self.otel.metering():
            self.otel.retries.add(1, {"suprsend.kind": info.kind, "suprsend.reason": info.reason})
        await self._call("on_retry", self.hooks.on_retry, info)

    async def bulk_progress(self, progress: BulkProgress) -> None:
        await self._call("on_bulk_progress", self.hooks.on_bulk_progress, progress)


_NO_HOOKS = Hooks()


def debug_logging_wanted(debug: bool) -> bool:
    """Whether a client turns on debug logging: ``debug=True``, or ``SUPRSEND_LOG=debug``."""
    return debug or os.environ.get("SUPRSEND_LOG", "").strip().lower() == "debug"


def enable_debug_logging() -> None:
    """The ``suprsend_async`` logger at DEBUG, with a stderr handler if it has none of its own.

    Only the SDK's logger is touched (never the root logger, never another library's); a
    handler is added once, so a second client asking again changes nothing. Bodies stay out
    unless a client also sets ``log_bodies``.
    """
    package = logging.getLogger("suprsend_async")
    package.setLevel(logging.DEBUG)
    if not any(getattr(h, "_suprsend_debug", False) for h in package.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        handler._suprsend_debug = True  # type: ignore[attr-defined]
        package.addHandler(handler)
