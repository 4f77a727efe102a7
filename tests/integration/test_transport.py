"""The sharded transport: connections stay within the budget and every shard is released."""

from __future__ import annotations

import ssl

import anyio
import httpx
import pytest

from suprsend_async import AsyncSuprsend
from suprsend_async._transport import ShardedTransport
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


async def test_concurrent_triggers_balance_and_release(suprsend_emulator: Emulator) -> None:
    limits = httpx.Limits(max_connections=12, max_keepalive_connections=6)
    async with suprsend_emulator.client(limits=limits) as client:
        transport = client._pool.http._transport
        assert isinstance(transport, ShardedTransport)
        assert transport.shard_count == 12
        results: list[bool] = []

        async def one(i: int) -> None:
            r = await client.workflows.trigger({"workflow": "w", "recipients": [f"u{i}"]})
            results.append(r.success)

        async with anyio.create_task_group() as tg:
            for i in range(300):
                tg.start_soon(one, i)
        assert results.count(True) == 300
        assert transport._busy == [0] * len(transport._shards)
        # Each shard kept at most its share of connections, and within the keep-alive budget.
        for shard in transport._shards:
            assert len(shard._pool.connections) <= 1
        assert sum(len(shard._pool.connections) for shard in transport._shards) <= 6
    assert len(suprsend_emulator.triggers) == 300


async def test_failed_requests_release_their_shard() -> None:
    async with AsyncSuprsend("k", "s", "http://127.0.0.1:9/", max_retries=0) as client:
        transport = client._pool.http._transport
        assert isinstance(transport, ShardedTransport)
        result = await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        assert result.error_type == "connection"
        assert set(transport._busy) == {0}


def test_shard_sizes_follow_the_limits() -> None:
    t = ShardedTransport(limits=httpx.Limits(max_connections=10), verify=False, per_shard=4)
    assert t.shard_count == 3
    one = ShardedTransport(limits=httpx.Limits(max_connections=1), verify=False)
    assert one.shard_count == 1
    unbounded = ShardedTransport(limits=httpx.Limits(max_connections=None), verify=False)
    assert unbounded.shard_count == 100
    # The keep-alive budget is split exactly too, even when it is smaller than the shards.
    kept = ShardedTransport(
        limits=httpx.Limits(max_connections=10, max_keepalive_connections=4), verify=False
    )
    assert sum(limit.max_keepalive_connections or 0 for limit in kept._limits) == 4


async def test_shards_open_as_concurrency_needs_them(suprsend_emulator: Emulator) -> None:
    async with suprsend_emulator.client() as client:
        transport = client._pool.http._transport
        assert isinstance(transport, ShardedTransport)
        assert transport.shard_count == 100  # the budget of 100 connections, at most
        assert await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        assert len(transport._shards) == 1
        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(client.workflows.trigger, {"workflow": "w", "recipients": [f"u{i}"]})
        assert 2 <= len(transport._shards) <= 17  # no more than were in flight at once
        assert set(transport._busy) == {0}


async def test_an_http_client_loads_no_ca_files_and_refuses_https(
    suprsend_emulator: Emulator,
) -> None:
    async with suprsend_emulator.client() as client:
        transport = client._pool.http._transport
        assert isinstance(transport, ShardedTransport)
        assert await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        setting = transport._setting
        assert isinstance(setting, ssl.SSLContext)
        assert setting.get_ca_certs() == [] and setting.verify_mode == ssl.CERT_REQUIRED
        with pytest.raises(httpx.UnsupportedProtocol, match="http:// base URL"):
            await transport.handle_async_request(httpx.Request("POST", "https://example.com/"))
