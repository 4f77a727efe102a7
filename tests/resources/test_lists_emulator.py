"""Subscriber lists, broadcasts, messages and cancelled runs against the emulator.

The official SDK 0.20.0 runs a list's life against it (the emulator answers as the API
does); ours does the same async and sync, walks messages by cursor, changes their status and
cancels runs that are not yet due.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
import suprsend

from suprsend_async import AsyncSuprsend, NotFoundError, SubscriberListBroadcast, Suprsend
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration

BROADCAST = {"template": "weekly-digest", "notification_category": "promotional", "data": {}}


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _client(emu: Emulator) -> AsyncSuprsend:
    return AsyncSuprsend(emu.config.workspace_key, emu.config.workspace_secret, emu.base_url)


def _official_life(emu: Emulator, list_id: str, key: str) -> dict[str, Any]:
    client = suprsend.Suprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )
    lists = client.subscriber_lists
    created = lists.create({"list_id": list_id, "list_name": "Weekly readers"})
    assert created["list_id"] == list_id and created["subscribers_count"] == 0
    lists.add(list_id, ["u1", "u2", "u3"])
    assert lists.get(list_id)["subscribers_count"] == 3
    item = suprsend.SubscriberListBroadcast({**BROADCAST, "list_id": list_id}, idempotency_key=key)
    sent = lists.broadcast(item)
    assert sent["success"] and sent["status_code"] == 202, sent
    draft = lists.start_sync(list_id)
    assert draft["status"] == "draft" and draft["subscribers_count"] == 0
    lists.add_to_version(list_id, draft["version_id"], ["u4", "u5"])
    assert lists.get_version(list_id, draft["version_id"])["subscribers_count"] == 2
    assert lists.get(list_id)["subscribers_count"] == 3  # the live list is untouched
    finished = lists.finish_sync(list_id, draft["version_id"])
    assert finished["status"] == "active" and finished["version_id"] is None
    delivered = client.messages.list({"idempotency_key": key, "limit": 100})
    return {"list": lists.get(list_id), "messages": delivered["results"]}


@pytest.mark.asyncio
async def test_the_official_sdk_runs_a_list_life(suprsend_emulator: Emulator) -> None:
    list_id, key = _id("readers"), _id("key")
    got = await asyncio.to_thread(_official_life, suprsend_emulator, list_id, key)
    assert got["list"]["subscribers_count"] == 2
    assert sorted(m["recipient"]["distinct_id"] for m in got["messages"]) == ["u1", "u2", "u3"]
    assert {m["status"] for m in got["messages"]} == {"delivered"}


@pytest.mark.asyncio
async def test_messages_are_walked_by_cursor_and_updated(suprsend_emulator: Emulator) -> None:
    list_id, key = _id("walk"), _id("key")
    async with _client(suprsend_emulator) as client:
        await client.subscriber_lists.create({"list_id": list_id})
        await client.subscriber_lists.add(list_id, [f"u{i}" for i in range(5)])
        item = SubscriberListBroadcast({**BROADCAST, "list_id": list_id}, idempotency_key=key)
        assert (await client.subscriber_lists.broadcast(item)).success
        # The same key again is skipped: no second run.
        assert (await client.subscriber_lists.broadcast(item)).success
        walked = [m async for m in client.messages.list({"idempotency_key": key, "limit": 2})]
        assert len(walked) == 5
        ids = [m["message_id"] for m in walked]
        result = await client.messages.bulk_update(
            [{"message_id": ids[0], "action": "read"}, {"message_id": "nope", "action": "seen"}]
        )
        assert [r["status_code"] for r in result["records"]] == [202, 404]
        read = await client.messages.list({"idempotency_key": key, "status": ["read"]})
        assert [m["message_id"] for m in read["results"]] == [ids[0]]
        await client.subscriber_lists.delete(list_id)
        with pytest.raises(NotFoundError):
            await client.subscriber_lists.get(list_id)


@pytest.mark.asyncio
async def test_a_delayed_broadcast_cancelled_in_time_is_never_delivered(
    suprsend_emulator: Emulator,
) -> None:
    list_id, key, later = _id("delayed"), _id("key"), _id("key")
    async with _client(suprsend_emulator) as client:
        await client.subscriber_lists.create({"list_id": list_id})
        await client.subscriber_lists.add(list_id, ["u1", "u2"])
        body = {**BROADCAST, "list_id": list_id, "delay": "1h"}
        await client.subscriber_lists.broadcast(SubscriberListBroadcast(body, key))
        await client.subscriber_lists.broadcast(SubscriberListBroadcast(body, later))
        cancelled = await client.runs.cancel_broadcast(idempotency_key=key)
        assert len(cancelled["execution_ids"]) == 1
        again = await client.runs.cancel_broadcast(idempotency_key=key)
        assert again["execution_ids"] == []
        assert (await client.messages.list({"idempotency_key": key}))["results"] == []
        store = suprsend_emulator.state.management.runs.runs
        runs = {r["idempotency_key"]: r for r in store if r["list_id"] == list_id}
        assert runs[key]["status"] == "cancelled"
        assert runs[later]["status"] == "scheduled"
        # Fall due: the one not cancelled is delivered, the cancelled one never.
        runs[later]["due"] = 0
        store.upsert(runs[later]["execution_id"], runs[later])
        assert len((await client.messages.list({"idempotency_key": later}))["results"]) == 2
        assert (await client.messages.list({"idempotency_key": key}))["results"] == []


def test_a_delayed_legacy_workflow_can_be_cancelled_sync(suprsend_emulator: Emulator) -> None:
    key = _id("key")
    emu = suprsend_emulator
    with Suprsend(emu.config.workspace_key, emu.config.workspace_secret, emu.base_url) as client:
        workflow = {
            "name": "reminder",
            "template": "reminder",
            "notification_category": "transactional",
            "users": [{"distinct_id": "u1"}],
            "delay": 3600,
        }
        from suprsend_async import Workflow

        assert client.trigger_workflow(Workflow(workflow, idempotency_key=key)).success
        result = client.runs.cancel_workflow(idempotency_key=key)
        assert len(result["execution_ids"]) == 1
        assert client.messages.list({"idempotency_key": key})["results"] == []
