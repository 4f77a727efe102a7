"""Objects' lives against the emulator: the official SDK 0.20.0, ours, and the fan-out of a
trigger to an object (the object, each subscriber, preferences applied)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from suprsend import Suprsend as OfficialSuprsend
from suprsend import WorkflowTriggerRequest
from suprsend.exception import SuprsendAPIException

from suprsend_async import AsyncSuprsend, BadRequestError, NotFoundError
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


def official(emu: Emulator) -> OfficialSuprsend:
    return OfficialSuprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )


def ours(emu: Emulator) -> AsyncSuprsend:
    return AsyncSuprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )


def set_workflow_category(emu: Emulator, workflow: str, category: str | None) -> None:
    url = emu.base_url + "_emulator/workflows"
    answer = httpx.put(url, json={workflow: {"category": category}})
    assert answer.status_code == 200, answer.text


def fanout_of(emu: Emulator, message_id: str) -> list[dict[str, Any]]:
    (record,) = [t for t in emu.triggers if t.message_id == message_id]
    return list(record.fanout)


def who(entry: dict[str, Any]) -> str:
    ref = entry["recipient"]
    return ref.get("distinct_id") or f"{ref['object_type']}/{ref['id']}"


def test_an_objects_life_through_the_official_sdk(suprsend_emulator: Emulator) -> None:
    """Upsert, subscribe 250 users, page the subscriptions, a category preference, a trigger
    to the object, then delete: all with the official SDK 0.20.0, 100 recipients a call."""
    client = official(suprsend_emulator)
    objects = client.objects
    made = objects.upsert("teams", "finance", {"$email": ["fin@example.com"], "name": "Finance"})
    assert made["properties"] == {"name": "Finance"} and made["subscriptions_count"] == 0
    ids = [f"user-{i:03d}" for i in range(250)]
    for start in range(0, 250, 100):
        chunk = {"recipients": ids[start : start + 100], "properties": {"role": "member"}}
        assert len(objects.create_subscriptions("teams", "finance", chunk)["results"]) == len(
            chunk["recipients"]
        )
    with pytest.raises(SuprsendAPIException):
        objects.create_subscriptions("teams", "finance", {"recipients": ids[:101]})
    seen: list[str] = []
    options: dict[str, Any] = {"limit": 100}
    while True:
        page = objects.get_subscriptions("teams", "finance", options)
        seen += [s["user"]["distinct_id"] for s in page["results"]]
        if not page["meta"]["has_next"]:
            break
        options = {"limit": 100, "after": page["meta"]["after"]}
    assert seen == ids and objects.get("teams", "finance")["subscriptions_count"] == 250

    out = objects.update_category_preference("teams", "finance", "order-updates",
                                             {"preference": "opt_out"})  # fmt: skip
    assert out["preference"] == "opt_out"
    assert objects.get_category_preference("teams", "finance", "order-updates")["preference"] == (
        "opt_out"
    )
    set_workflow_category(suprsend_emulator, "invoice-due", "order-updates")
    answer = client.workflows.trigger(
        WorkflowTriggerRequest(
            {"workflow": "invoice-due", "recipients": [{"object_type": "teams", "id": "finance"}]}
        )
    )
    assert answer["success"] is True
    entries = list(suprsend_emulator.triggers[-1].fanout)
    assert who(entries[0]) == "teams/finance" and entries[0]["status"] == "suppressed"
    assert [who(e) for e in entries[1:]] == ids
    assert {e["status"] for e in entries[1:]} == {"delivered"}

    assert objects.delete("teams", "finance")["success"] is True
    with pytest.raises(SuprsendAPIException):
        objects.get("teams", "finance")


async def test_a_trigger_to_an_object_reaches_it_and_each_subscriber(
    suprsend_emulator: Emulator,
) -> None:
    """Three subscribers, one opted out of the workflow's category: the object and two
    subscribers delivered, one suppressed with the reason; a child object's own subscribers
    are not reached (one level deep)."""
    set_workflow_category(suprsend_emulator, "invoice-due", "order-updates")
    async with ours(suprsend_emulator) as client:
        await client.objects.upsert("teams", "finance", {"$slack": {"incoming_webhook": {
            "url": "https://hooks.slack.com/services/T/B/X"}}})  # fmt: skip
        await client.users.upsert("ann", {"$email": "ann@example.com"})
        await client.users.upsert("bob", {"$sms": "+15555550123", "$email": "bob@example.com"})
        await client.users.update_category_preference("bob", "order-updates",
                                                      {"preference": "opt_out"})  # fmt: skip
        await client.objects.upsert("teams", "audit", {"$email": "audit@example.com"})
        await client.objects.create_subscriptions("teams", "audit", {"recipients": ["zed"]})
        await client.objects.create_subscriptions(
            "teams", "finance",
            {"recipients": ["ann", "bob", {"object_type": "teams", "id": "audit"}],
             "properties": {"role": "approver"}},
        )  # fmt: skip
        result = await client.workflows.trigger(
            {"workflow": "invoice-due", "recipients": [{"object_type": "teams", "id": "finance"}]}
        )
    assert result.success
    entries = fanout_of(suprsend_emulator, result.message_id or "")
    assert [(who(e), e["status"]) for e in entries] == [
        ("teams/finance", "delivered"),
        ("ann", "delivered"),
        ("bob", "suppressed"),
        ("teams/audit", "delivered"),
    ]
    bob = entries[2]
    assert bob["reason"] == "opted out of category 'order-updates'"
    assert bob["via"] == {"object_type": "teams", "id": "finance"}
    assert bob["subscription"] == {"role": "approver"} and bob["category"] == "order-updates"
    assert entries[0]["channels"] == ["slack"] and entries[1]["channels"] == ["email"]
    assert entries[0]["via"] is None
    delivered = [e for e in entries if e["status"] == "delivered" and e["via"]]
    assert [who(e) for e in delivered] == ["ann", "teams/audit"]  # two deliveries to subscribers
    async with httpx.AsyncClient() as http:
        listed = (await http.get(suprsend_emulator.base_url + "_emulator/triggers")).json()
    assert any(t["fanout"] == entries for t in listed["triggers"])


async def test_our_client_pages_chunks_and_edits_against_the_emulator(
    suprsend_emulator: Emulator,
) -> None:
    async with ours(suprsend_emulator) as client:
        objects = client.objects
        ids = [f"u{i}" for i in range(250)]
        await objects.upsert("teams", "ops", {"name": "Ops"})
        result = await objects.create_subscriptions("teams", "ops", {"recipients": ids})
        assert (result["total"], result["succeeded"], result["chunks"]) == (250, 250, 3)
        pages = objects.get_subscriptions("teams", "ops", {"limit": 40})
        subs = [s["user"]["distinct_id"] async for s in pages]
        assert sorted(subs) == sorted(ids)
        edit = objects.get_edit_instance("teams", "ops")
        edit.add_email("ops@example.com")
        edit.set("tier", 2)
        edited = await objects.edit(edit)
        assert edited["$email"][0]["value"] == "ops@example.com"
        assert edited["properties"] == {"name": "Ops", "tier": 2}
        listed = [o["id"] async for o in objects.list("teams")]
        assert listed == ["ops"]
        gone = await objects.delete_subscriptions("teams", "ops", {"recipients": ids[:150]})
        assert gone["succeeded"] == 150
        assert (await objects.get("teams", "ops"))["subscriptions_count"] == 100
        await objects.bulk_delete("teams", {"object_ids": ["ops"]})
        with pytest.raises(NotFoundError):
            await objects.get("teams", "ops")
        with pytest.raises(BadRequestError):
            await objects.update_category_preference("teams", "nope", "newsletter", {})
