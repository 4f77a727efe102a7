"""Hooks, OpenTelemetry spans and metrics, and attempt logs, against loopback servers."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from suprsend_async import (
    AsyncSuprsend,
    AttemptEnd,
    AttemptStart,
    BulkProgress,
    Hooks,
    RetryInfo,
    Suprsend,
)
from suprsend_async._observe import Observer

from ..conftest import KEY, SECRET
from ..scripted_server import ScriptedServer, Step

pytestmark = pytest.mark.integration

BODY = {"workflow": "wf", "recipients": ["u"]}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.url = await srv.start()  # type: ignore[attr-defined]
    yield srv
    await srv.stop()


def url(server: ScriptedServer) -> str:
    return server.url  # type: ignore[attr-defined,no-any-return]


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def metric_points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


@pytest.mark.asyncio
async def test_span_tree_of_a_bulk_that_met_a_429_and_a_lost_answer(
    server: ScriptedServer, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    reader = InMemoryMetricReader()
    steps: dict[int, Step] = {0: "whole_429", 1: "lost_after"}
    server.script = lambda n: steps.get(n, "ok")
    async with AsyncSuprsend(
        KEY,
        SECRET,
        url(server),
        max_retries=3,
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    ) as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[{**BODY, "data": {"i": i}} for i in range(40)])
        result = await bulk.trigger()
    assert result.success == 40
    finished: list[ReadableSpan] = list(exporter.get_finished_spans())
    [call] = [s for s in finished if s.name == "suprsend.bulk"]
    attempts = sorted((s for s in finished if s.name == "POST"), key=lambda s: s.start_time or 0)
    assert [s.parent.span_id if s.parent else None for s in attempts] == [call.context.span_id] * 3
    first, second, third = (dict(s.attributes or {}) for s in attempts)
    assert first["http.response.status_code"] == 429 and first["error.type"] == "429"
    assert "http.request.resend_count" not in first
    assert second["error.type"] == "connection" and second["http.request.resend_count"] == 1
    assert third["http.response.status_code"] == 207 and third["http.request.resend_count"] == 2
    assert first["url.full"] == url(server) + "trigger/" and first["suprsend.records"] == 40
    assert first["http.request.method"] == "POST"
    ended = dict(call.attributes or {})
    assert ended["suprsend.records.succeeded"] == 40 and ended["suprsend.records.unknown"] == 0
    assert ended["suprsend.requests"] == 3 and ended["suprsend.kind"] == "trigger"
    # Metrics: records by outcome, a duration per attempt, retries by reason.
    points = metric_points(reader)
    records = {dict(p.attributes)["suprsend.outcome"]: p.value for p in points["suprsend.records"]}
    assert records == {"succeeded": 40}
    retries = {dict(p.attributes)["suprsend.reason"]: p.value for p in points["suprsend.retries"]}
    assert retries == {"429": 1, "connection": 1}
    assert sum(p.count for p in points["suprsend.attempt.duration"]) == 3


@pytest.mark.asyncio
async def test_single_trigger_span_and_metrics(
    server: ScriptedServer, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    reader = InMemoryMetricReader()
    server.script = lambda n: "whole_400"
    async with AsyncSuprsend(
        KEY,
        SECRET,
        url(server),
        tracer_provider=provider,
        meter_provider=MeterProvider(metric_readers=[reader]),
    ) as client:
        result = await client.workflows.trigger(BODY)
    assert result.status_code == 400
    by_name = {s.name: s for s in exporter.get_finished_spans()}
    call = dict(by_name["suprsend.trigger"].attributes or {})
    assert call["suprsend.workflow"] == "wf" and call["suprsend.outcome"] == "failed"
    attempt = dict(by_name["POST"].attributes or {})
    assert attempt["suprsend.idempotency_key"] == result.idempotency_key
    records = metric_points(reader)["suprsend.records"]
    assert [(dict(p.attributes)["suprsend.outcome"], p.value) for p in records] == [("failed", 1)]


@pytest.mark.asyncio
async def test_hooks_see_attempts_retries_and_progress(server: ScriptedServer) -> None:
    steps: dict[int, Step] = {0: "whole_503"}
    server.script = lambda n: steps.get(n, "ok")
    seen: list[Any] = []

    async def after(end: AttemptEnd) -> None:  # async hooks are awaited
        seen.append(end)

    hooks = Hooks(
        before_attempt=seen.append,
        after_attempt=after,
        on_retry=seen.append,
        on_bulk_progress=seen.append,
    )
    async with AsyncSuprsend(KEY, SECRET, url(server), hooks=hooks) as client:
        result = await client.workflows.trigger(BODY)
        starts = [s for s in seen if isinstance(s, AttemptStart)]
        ends = [s for s in seen if isinstance(s, AttemptEnd)]
        retries = [s for s in seen if isinstance(s, RetryInfo)]
        assert [s.attempt for s in starts] == [1, 2]
        assert {s.idempotency_key for s in starts} == {result.idempotency_key}
        assert starts[0].url == url(server) + "trigger/"
        assert [e.status_code for e in ends] == [503, 202]
        assert all(e.elapsed >= 0 for e in ends)
        assert [(r.reason, r.attempt) for r in retries] == [("503", 1)]
        seen.clear()
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[{**BODY, "data": {"i": i}} for i in range(150)])
        await bulk.trigger()
        progress = [p for p in seen if isinstance(p, BulkProgress)]
        assert len(progress) == 2 and max(p.done for p in progress) == 150
        assert {s.bulk for s in seen if isinstance(s, AttemptStart)} == {True}
        # with_options can set other hooks on the same pool
        other: list[Any] = []
        quiet = client.with_options(hooks=Hooks(before_attempt=other.append))
        await quiet.workflows.trigger(BODY)
        assert len(other) == 1


@pytest.mark.asyncio
async def test_hooks_that_raise_never_stop_a_send(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(value: Any) -> None:
        raise RuntimeError("hook bug")

    async def aboom(value: Any) -> None:
        raise RuntimeError("async hook bug")

    server.script = lambda n: "whole_503" if n == 0 else "ok"
    hooks = Hooks(before_attempt=boom, after_attempt=aboom, on_retry=boom, on_bulk_progress=aboom)
    with caplog.at_level(logging.ERROR, logger="suprsend_async"):
        async with AsyncSuprsend(KEY, SECRET, url(server), hooks=hooks) as client:
            assert (await client.workflows.trigger(BODY)).success
            bulk = client.workflows.bulk_trigger_instance()
            bulk.append(BODY, BODY)
            assert (await bulk.trigger()).success == 2
            assert (await client.workflows.trigger(BODY)).success
    logged = [r for r in caplog.records if "hook raised" in r.getMessage()]
    assert len(logged) == 4  # once per hook, not once per call


def test_sync_facade_takes_hooks(server_url_sync: str) -> None:
    seen: list[Any] = []
    with Suprsend(KEY, SECRET, server_url_sync, hooks=Hooks(after_attempt=seen.append)) as c:
        c.workflows.trigger(BODY)
    assert len(seen) == 1 and seen[0].status_code == 202


@pytest.fixture
def server_url_sync() -> Any:
    from suprsend_async.emulator import Emulator

    with Emulator(workspace_key=KEY, workspace_secret=SECRET) as emulator:
        yield emulator.base_url


@pytest.mark.asyncio
async def test_attempt_logs_carry_request_id_and_key(
    server: ScriptedServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="suprsend_async"):
        async with AsyncSuprsend(KEY, SECRET, url(server)) as client:
            result = await client.workflows.trigger(BODY)
    [line] = [r for r in caplog.records if r.getMessage().startswith("POST /trigger/")]
    assert line.suprsend_idempotency_key == result.idempotency_key  # type: ignore[attr-defined]
    assert line.suprsend_attempt == 1  # type: ignore[attr-defined]
    assert line.suprsend_status_code == 202  # type: ignore[attr-defined]
    assert hasattr(line, "suprsend_request_id")
    assert SECRET not in caplog.text and "Authorization" not in caplog.text


@pytest.mark.asyncio
async def test_global_httpx_instrumentation_sees_the_sdks_transport(
    server: ScriptedServer, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    provider, exporter = spans
    instrumentor = HTTPXClientInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        async with AsyncSuprsend(KEY, SECRET, url(server)) as client:
            assert (await client.workflows.trigger(BODY)).success
    finally:
        instrumentor.uninstrument()
    http_spans = [s for s in exporter.get_finished_spans() if s.name == "POST"]
    # One from httpx's instrumentation of the SDK's transport (the SDK's own tracer here
    # uses the global provider, a no-op).
    assert len(http_spans) == 1
    assert dict(http_spans[0].attributes or {}).get("http.status_code") == 202


def test_without_opentelemetry_nothing_watches(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "opentelemetry" or name.startswith("opentelemetry."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails: not installed
    assert not Observer(None).active
    assert Observer(Hooks(on_retry=print)).active


@pytest.mark.asyncio
async def test_no_span_is_built_when_no_provider_records(
    server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API is installed (as in most applications) but no SDK is set up: a span or a
    # measurement would be built only to be dropped, so none is.
    from opentelemetry import trace

    built: list[str] = []

    def spy(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        built.append(name)
        raise AssertionError("a span was built with no provider set up")

    monkeypatch.setattr(trace.ProxyTracer, "start_as_current_span", spy)
    async with AsyncSuprsend(KEY, SECRET, url(server)) as client:
        assert not client._core.observer.active
        assert (await client.workflows.trigger(BODY)).success
        result = await client.workflows.bulk_trigger([BODY] * 3)
        assert result.success == 3
    assert built == []


@pytest.mark.asyncio
async def test_a_global_provider_set_after_the_client_is_seen(
    server: ScriptedServer,
    spans: tuple[TracerProvider, InMemorySpanExporter],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from opentelemetry import trace

    provider, exporter = spans
    async with AsyncSuprsend(KEY, SECRET, url(server)) as client:
        assert (await client.workflows.trigger(BODY)).success
        assert exporter.get_finished_spans() == ()
        # What trace.set_tracer_provider does, undone after the test (it can be done once
        # per process).
        monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
        assert client._core.observer.active
        assert (await client.workflows.trigger(BODY)).success
    names = [s.name for s in exporter.get_finished_spans()]
    assert "POST" in names
