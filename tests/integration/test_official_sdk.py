"""The emulator accepts the official suprsend-py-sdk's requests as the real service would."""

from __future__ import annotations

from typing import Any

import pytest
from suprsend import Event as OfficialEvent
from suprsend import Suprsend as OfficialSuprsend
from suprsend import Workflow as OfficialWorkflow
from suprsend import WorkflowTriggerRequest as OfficialRequest

from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


def test_official_sdk_single_bulk_and_legacy(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    client = OfficialSuprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )
    body: dict[str, Any] = {
        "workflow": "new_comment",
        "actor": {"distinct_id": "a1", "name": "actor_1"},
        "recipients": [
            {"distinct_id": "r1", "$email": ["abc@example.com"], "$timezone": "America/New_York"},
            {"object_type": "teams", "id": "finance"},
        ],
        "data": {"doc": "report"},
    }
    response = client.workflows.trigger(
        OfficialRequest(body=body, tenant_id="tenant_id1", idempotency_key="official-1")
    )
    assert response["success"] is True and response["status_code"] == 202

    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(
        *[OfficialRequest(body={"workflow": "w", "recipients": [f"u{i}"]}) for i in range(150)]
    )
    bulk_response = bulk.trigger()
    assert bulk_response.success == 150 and bulk_response.failure == 0

    legacy_body = {
        "name": "wf",
        "template": "tpl",
        "notification_category": "transactional",
        "delay": "1h",
        "users": [{"distinct_id": "u", "$email": ["u@example.com"]}],
    }
    legacy = client.trigger_workflow(OfficialWorkflow(body=dict(legacy_body), brand_id="default"))
    assert legacy["success"] is True
    lbulk = client.bulk_workflows.new_instance()
    lbulk.append(*[OfficialWorkflow(body=dict(legacy_body)) for _ in range(120)])
    assert lbulk.trigger().success == 120

    assert len(emu.triggers) == 1 + 150 + 1 + 120
    first = emu.triggers[0]
    assert (first.tenant_id, first.idempotency_key) == ("tenant_id1", "official-1")
    assert emu.stats["rejected_auth"] == emu.stats["rejected_invalid"] == 0


def test_official_sdk_api_key_auth() -> None:
    with Emulator(api_key="ak", workspace_uid="uid") as emu:
        client = OfficialSuprsend.with_workspace_api_key("uid", "ak", base_url=emu.base_url)
        response = client.workflows.trigger(
            OfficialRequest(body={"workflow": "w", "recipients": ["u"]})
        )
        assert response["success"] is True
        assert len(emu.triggers) == 1


def test_official_sdk_wrong_secret_refused(suprsend_emulator: Emulator) -> None:
    client = OfficialSuprsend(
        suprsend_emulator.config.workspace_key, "wrong", base_url=suprsend_emulator.base_url
    )
    response = client.workflows.trigger(
        OfficialRequest(body={"workflow": "w", "recipients": ["u"]})
    )
    assert response["success"] is False and response["status_code"] == 401


def test_official_sdk_events(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    client = OfficialSuprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )
    event = OfficialEvent(
        "u1",
        "product_purchased",
        {"first_name": "User", "items": [{"name": "tee", "qty": 2}]},
        idempotency_key="official-event-1",
        tenant_id="tenant_1",
        brand_id="brand_1",
    )
    response = client.track_event(event)
    assert response["success"] is True and response["status_code"] == 202
    assert response["message"] == emu.events[0].message_id

    bulk = client.bulk_events.new_instance()
    bulk.append(*[OfficialEvent(f"u{i}", "page_viewed", {"record_id": i}) for i in range(230)])
    bulk_response = bulk.trigger()
    assert bulk_response.success == 230 and bulk_response.failure == 0

    first = emu.events[0]
    assert (first.api, first.event, first.distinct_id) == ("event", "product_purchased", "u1")
    assert (first.tenant_id, first.brand_id, first.idempotency_key) == (
        "tenant_1",
        "brand_1",
        "official-event-1",
    )
    assert first.body["properties"]["$ss_sdk_version"].startswith("suprsend-py-sdk")
    assert len(emu.events) == 231 and emu.triggers == []
    assert {(e.api, e.bulk) for e in emu.events[1:]} == {("event", True)}
    assert emu.accepted_by_record == dict.fromkeys(range(230), 1)
    assert emu.stats["rejected_auth"] == emu.stats["rejected_invalid"] == 0


def test_official_sdk_events_with_api_key() -> None:
    with Emulator(api_key="ak", workspace_uid="uid_of_the_workspace_x") as emu:
        client = OfficialSuprsend.with_workspace_api_key(
            "uid_of_the_workspace_x", "ak", base_url=emu.base_url
        )
        assert client.track_event(OfficialEvent("u1", "signed_up"))["success"] is True
        bulk = client.bulk_events.new_instance()
        bulk.append(OfficialEvent("u2", "signed_up"), OfficialEvent("u3", "signed_up"))
        assert bulk.trigger().success == 2
        assert [e.body["env"] for e in emu.events] == ["uid_of_the_workspace_x"] * 3
