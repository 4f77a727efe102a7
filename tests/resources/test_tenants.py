"""``client.tenants`` and ``client.brands`` against the emulator, async and sync: a tenant's
life, pages walked lazily, typed errors, and the retry rule by method."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
import respx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from suprsend_async import (
    APIConnectionError,
    AsyncPage,
    AsyncSuprsend,
    AttemptStart,
    Hooks,
    NotFoundError,
    ServerError,
    Suprsend,
    SuprsendValidationError,
    SyncPage,
)
from suprsend_async.emulator import Emulator
from suprsend_async.resources._base import APIResource

from ..conftest import BASE, KEY, SECRET

pytestmark = pytest.mark.integration


def _counting() -> tuple[Hooks, list[AttemptStart]]:
    seen: list[AttemptStart] = []
    return Hooks(before_attempt=seen.append), seen


def _async_client(emu: Emulator, **options: Any) -> AsyncSuprsend:
    return AsyncSuprsend(
        emu.config.workspace_key, emu.config.workspace_secret, emu.base_url, **options
    )


async def _fresh_tenants(client: AsyncSuprsend, n: int) -> None:
    async for tenant in client.tenants.list(limit=100):
        await client.tenants.delete(tenant["tenant_id"])
    for i in range(n):
        await client.tenants.upsert(f"t{i}", {"tenant_name": f"Tenant {i}"})


@pytest.mark.asyncio
async def test_async_for_walks_every_page_lazily(suprsend_emulator: Emulator) -> None:
    hooks, seen = _counting()
    async with _async_client(suprsend_emulator, hooks=hooks) as client:
        await _fresh_tenants(client, 5)
        seen.clear()
        ids = [t["tenant_id"] async for t in client.tenants.list(limit=2)]
        assert ids == ["t0", "t1", "t2", "t3", "t4"]
        assert len(seen) == 3 and {s.method for s in seen} == {"GET"}
        # Awaited, it is one page: a dict like the official SDK's answer.
        seen.clear()
        page = await client.tenants.list(limit=2, offset=4)
        assert isinstance(page, AsyncPage) and len(seen) == 1
        assert [t["tenant_id"] for t in page["results"]] == ["t4"]
        assert page.meta["count"] == 5 and not page.has_next_page()
        # Reading stops early: no request for pages nobody asked for.
        seen.clear()
        async for tenant in client.tenants.list(limit=2):
            assert tenant["tenant_id"] == "t0"
            break
        assert len(seen) == 1


@pytest.mark.asyncio
async def test_a_tenants_life(suprsend_emulator: Emulator) -> None:
    async with _async_client(suprsend_emulator) as client:
        saved = await client.tenants.upsert("acme-eu", {"tenant_name": "Acme", "logo": None})
        assert saved["tenant_id"] == "acme-eu" or saved.status_code in (200, 201)
        got = await client.tenants.get("acme-eu")
        assert got["tenant_name"] == "Acme" and got.status_code == 200
        categories = await client.tenants.list_preference_categories("acme-eu")
        slug = categories["results"][0]["category"]
        changed = await client.tenants.update_preference_category(
            "acme-eu", slug, {"preference": "opt_out"}
        )
        assert changed["preference"] == "opt_out"
        again = await client.tenants.get_preference_category("acme-eu", slug)
        assert again["preference"] == "opt_out"
        assert await client.tenants.delete("acme-eu") == {"success": True, "status_code": 204}
        with pytest.raises(NotFoundError) as info:
            await client.tenants.get("acme-eu")
        assert info.value.status_code == 404 and "suprsend.tenants.get" in str(info.value)


def test_the_sync_facade_pages_and_reads(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    with Suprsend(emu.config.workspace_key, emu.config.workspace_secret, emu.base_url) as client:
        for tenant in list(client.tenants.list(limit=100)):
            client.tenants.delete(tenant["tenant_id"])
        for i in range(5):
            client.tenants.upsert(f"s{i}", {"tenant_name": f"S {i}"})
        page = client.tenants.list(limit=2)
        assert isinstance(page, SyncPage) and len(page["results"]) == 2
        assert dict(page)["meta"]["count"] == 5 and page.has_next_page()
        assert [t["tenant_id"] for t in page] == [f"s{i}" for i in range(5)]
        client.brands.upsert("b1", {"brand_name": "B"})
        assert client.brands.get("b1")["brand_name"] == "B"
        assert "b1" in [b["brand_id"] for b in client.brands.list(limit=1000)]


@pytest.mark.asyncio
async def test_bad_arguments_are_refused_before_sending(api: respx.MockRouter) -> None:
    async with AsyncSuprsend(KEY, SECRET, BASE) as client:
        calls: list[tuple[Callable[[], Awaitable[Any]], str]] = [
            (lambda: client.tenants.get("  "), "tenant_id"),
            (lambda: client.tenants.get(7), "tenant_id"),  # type: ignore[arg-type]
            (lambda: client.tenants.upsert("t", {"x": {1, 2}}), "tenant_payload"),
            (lambda: client.tenants.update_preference_category("t", "", {}), "category"),
        ]
        for call, field in calls:
            with pytest.raises(SuprsendValidationError, match=field):
                await call()
        for limit, offset, field in [(0, 0, "limit"), (1001, 0, "limit"), (5, -1, "offset")]:
            with pytest.raises(SuprsendValidationError, match=field):
                client.tenants.list(limit=limit, offset=offset)
    assert api.calls.call_count == 0


# -- the retry rule by method ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_idempotent_calls_are_retried_like_triggers(api: respx.MockRouter) -> None:
    route = api.get("v1/tenant/t1/")
    route.side_effect = [httpx.Response(503), httpx.Response(200, json={"tenant_id": "t1"})]
    patch = api.patch("v1/tenant/t1/preference/category/c/")
    patch.side_effect = [httpx.Response(502), httpx.Response(200, json={"category": "c"})]
    async with AsyncSuprsend(KEY, SECRET, BASE) as client:
        assert (await client.tenants.get("t1"))["tenant_id"] == "t1"
        assert await client.tenants.update_preference_category("t1", "c", {}) == {"category": "c"}
    assert (route.call_count, patch.call_count) == (2, 2)


class _Edits(APIResource):
    """A call that is not idempotent (as an edit with ``$append`` is)."""

    _namespace = "tests"

    async def append(self) -> Any:
        return await self._call("append", "PATCH", "v1/thing/", body={"$append": 1})


@pytest.mark.asyncio
async def test_a_call_that_is_not_idempotent_is_retried_only_when_surely_unsent(
    api: respx.MockRouter,
) -> None:
    route = api.patch("v1/thing/")
    async with AsyncSuprsend(KEY, SECRET, BASE) as client:
        edits = _Edits(client._pipe)
        route.side_effect = [httpx.Response(503), httpx.Response(200, json={})]
        with pytest.raises(ServerError):
            await edits.append()
        assert route.call_count == 1  # a 5xx may come after the edit was applied
        route.reset()
        route.side_effect = [httpx.Response(429), httpx.Response(200, json={"ok": 1})]
        assert await edits.append() == {"ok": 1}  # a 429 was refused unread: safe to resend
        assert route.call_count == 2
        route.reset()
        # The rule holds on later attempts too: a 5xx after a 429 is not resent.
        route.side_effect = [httpx.Response(429), httpx.Response(503), httpx.Response(200)]
        with pytest.raises(ServerError):
            await edits.append()
        assert route.call_count == 2
        route.reset()
        route.side_effect = [httpx.ReadTimeout("lost"), httpx.Response(200, json={})]
        with pytest.raises(APIConnectionError):
            await edits.append()  # the answer was lost after sending: not resent
        assert route.call_count == 1


@pytest.mark.asyncio
async def test_a_call_that_never_left_is_retried_even_when_not_idempotent() -> None:
    # Nothing listens on the port: the connection is refused before a byte is written.
    attempts: list[AttemptStart] = []
    async with AsyncSuprsend(
        KEY, SECRET, "http://127.0.0.1:9/", hooks=Hooks(before_attempt=attempts.append)
    ) as client:
        with pytest.raises(APIConnectionError):
            await _Edits(client._pipe).append()
    assert len(attempts) == 3  # the first and its two retries


@pytest.mark.asyncio
async def test_spans_are_named_after_the_method(api: respx.MockRouter) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    api.post("v1/tenant/t1/").respond(201, json={"tenant_id": "t1"})
    api.get("v1/brand/").respond(200, json={"meta": {"count": 0}, "results": []})
    async with AsyncSuprsend(KEY, SECRET, BASE, tracer_provider=provider) as client:
        await client.tenants.upsert("t1", {})
        await client.brands.list()
    names = [s.name for s in exporter.get_finished_spans()]
    assert "suprsend.tenants.upsert" in names and "suprsend.brands.list" in names


@pytest.mark.asyncio
async def test_a_deadline_bounds_a_call(api: respx.MockRouter) -> None:
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return httpx.Response(200, json={})

    api.get("v1/tenant/t1/").mock(side_effect=slow)
    async with AsyncSuprsend(KEY, SECRET, BASE, deadline=0.2) as client:
        with pytest.raises(APIConnectionError, match="deadline"):
            await client.tenants.get("t1")
