"""Every code sample of the user guide, as written there, against the emulator.

Only the import lines are changed (``from suprsend_async import ...``: the guide's workflow
samples begin ``from suprsend import Event`` and ``from suprsend import WorkflowTriggerRequest``,
and those lines run here with only the package name changed), placeholders are filled with real
values, and the client is given the emulator's ``base_url``. Two slips of the guide are corrected:
its first sample writes JSON's ``true`` where Python needs ``True``, and its samples use
``Suprsend`` without importing it.
"""

from __future__ import annotations

import pytest

from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


@pytest.fixture
def ws(suprsend_emulator: Emulator) -> tuple[str, str, str]:
    cfg = suprsend_emulator.config
    return cfg.workspace_key, cfg.workspace_secret, suprsend_emulator.base_url


def test_payload_schema_sample(ws: tuple[str, str, str], suprsend_emulator: Emulator) -> None:
    key, secret, base_url = ws
    from suprsend_async import Suprsend  # the guide leaves this import out

    # isort: off
    from suprsend_async import Event  # noqa: F401 - the guide's own lines
    from suprsend_async import WorkflowTriggerRequest
    # isort: on

    supr_client = Suprsend(key, secret, base_url=base_url)

    # Prepare workflow payload
    w1 = WorkflowTriggerRequest(
        body={
            "workflow": "invoice_reminder",
            "actor": {
                "distinct_id": "0fxxx8f74-xxxx-41c5-8752-xxxcb6911fb08",
                "name": "actor_1",
                "$skip_create": True,
            },
            "recipients": [
                # notify user
                {
                    "distinct_id": "0gxxx9f14-xxxx-23c5-1902-xxxcb6912ab09",
                    "$email": ["abc@example.com"],
                    "name": "recipient_1",
                    "$preferred_language": "en",
                    "$timezone": "America/New_York",
                    "$skip_create": True,
                },
                # notify object
                {"object_type": "teams", "id": "finance", "$skip_create": True},
            ],
            "data": {
                "first_name": "User",
                "invoice_amount": "$5000",
                "invoice_id": "Invoice-1234",
            },
        },
        tenant_id="tenant_id1",
        idempotency_key="invoice-1234-reminder",
    )

    # Trigger workflow
    response = supr_client.workflows.trigger(w1)
    print(response)
    assert response["success"] is True and response["status_code"] == 202
    supr_client.close()
    assert suprsend_emulator.triggers[0].idempotency_key == "invoice-1234-reminder"


def test_anonymous_user_sample(ws: tuple[str, str, str]) -> None:
    key, secret, base_url = ws
    from suprsend_async import Suprsend  # the guide leaves this import out

    # isort: off
    from suprsend_async import Event  # noqa: F401 - the guide's own lines
    from suprsend_async import WorkflowTriggerRequest
    # isort: on

    supr_client = Suprsend(key, secret, base_url=base_url)

    # Prepare workflow payload
    w1 = WorkflowTriggerRequest(
        body={
            "workflow": "invoice_reminder",
            "actor": {"is_transient": True, "name": "actor_1"},
            "recipients": [
                {"is_transient": True, "$email": ["abc@example.com"], "name": "recipient_1"}
            ],
            "data": {"first_name": "User", "invoice_amount": "$5000", "invoice_id": "Invoice-1234"},
        },
        tenant_id="tenant_id1",
        idempotency_key="anon-invoice-1234",
    )

    # Trigger workflow
    response = supr_client.workflows.trigger(w1)
    print(response)
    assert response.success
    supr_client.close()


def test_multi_tenant_sample(ws: tuple[str, str, str], suprsend_emulator: Emulator) -> None:
    key, secret, base_url = ws
    from suprsend_async import Suprsend  # the guide leaves this import out

    # isort: off
    from suprsend_async import Event  # noqa: F401 - the guide's own lines
    from suprsend_async import WorkflowTriggerRequest
    # isort: on

    supr_client = Suprsend(key, secret, base_url=base_url)

    # Prepare workflow payload
    w1 = WorkflowTriggerRequest(
        body={"workflow": "new_comment", "recipients": ["id1", "id2"]},
        tenant_id="tenant_id1",
        idempotency_key="comment-77",
    )

    # Trigger workflow
    response = supr_client.workflows.trigger(w1)
    print(response)
    assert response.success
    assert suprsend_emulator.triggers[0].tenant_id == "tenant_id1"
    supr_client.close()


def test_bulk_trigger_sample(ws: tuple[str, str, str], suprsend_emulator: Emulator) -> None:
    key, secret, base_url = ws
    from suprsend_async import Suprsend  # the guide leaves this import out

    # isort: off
    from suprsend_async import Event  # noqa: F401 - the guide's own lines
    from suprsend_async import WorkflowTriggerRequest
    # isort: on

    supr_client = Suprsend(key, secret, base_url=base_url)

    # Workflow: 1
    w1 = WorkflowTriggerRequest(
        body={"workflow": "new_comment", "recipients": ["id1"]},
        tenant_id="tenant_id1",
        idempotency_key="bulk-sample-1",
    )

    # Workflow: 2
    w2 = WorkflowTriggerRequest(body={"workflow": "new_comment", "recipients": ["id2"]})
    # ...... Add as many Workflow records as required.

    bulk_ins = supr_client.workflows.bulk_trigger_instance()

    bulk_ins.append(w1, w2)

    # Trigger workflow
    response = bulk_ins.trigger()
    print(response)
    assert (response.status, response.total, response.success, response.failure) == (
        "success",
        2,
        2,
        0,
    )
    assert response.warnings == [] and response.failed_records == []
    supr_client.close()
    assert len(suprsend_emulator.triggers) == 2


LEGACY_BODY = {
    "name": "workflow_name",
    "template": "template_slug",
    "notification_category": "transactional",  # notification category transactional/promotional/system
    "delay": "15m",  # time delay after which the first notification will be sent
    "trigger_at": "2026-12-01T10:00:00.643Z",  # to trigger scheduled notifications
    "users": [
        {
            "distinct_id": "distinct_id",  # unique identifier of the user
            "$channels": ["email"],
            "$email": ["user@example.com"],
            "$whatsapp": ["+15555555555"],
            "$sms": ["+15555555555"],
            "$androidpush": [
                {"token": "__android_push_token__", "provider": "fcm", "device_id": ""}
            ],
            "$iospush": [{"token": "__ios_push_token__", "provider": "apns", "device_id": ""}],
            "$slack": {"channel": "CXXXXXXXX", "access_token": "xoxb-XXXXXX"},
            "$ms_teams": {
                "tenant_id": "c1981ab2-9aaf-xxxx-xxxx",
                "service_url": "https://smba.trafficmanager.net/amer",
                "user_id": "29:1nsLcmJ2RKtYH6Cxxxx-xxxx",
            },
        }
    ],
    # delivery instruction [optional]. how should notifications be sent, and whats the success metric
    "delivery": {
        "smart": True,
        "success": "seen",
        "time_to_live": "1h",
        "mandatory_channels": ["email"],
    },
    # data can be any json / serializable python-dictionary
    "data": {
        "key": "value",
        "nested_key": {
            "nested_key1": "some_value_1",
            "nested_key2": {"nested_key3": "some_value_3"},
        },
    },
}


def test_dynamic_workflow_sample(ws: tuple[str, str, str], suprsend_emulator: Emulator) -> None:
    key, secret, base_url = ws
    from suprsend_async import Suprsend, Workflow

    supr_client = Suprsend(key, secret, base_url=base_url)
    # Prepare Workflow body
    workflow_body = dict(LEGACY_BODY)
    wf = Workflow(body=workflow_body, idempotency_key="__uniq_request_id__", brand_id="default")
    # Trigger workflow
    response = supr_client.trigger_workflow(wf)
    print(response)
    # Every key the official SDK's legacy result has, and raw_response (None: not JSON).
    assert response == {
        "success": True,
        "status": "success",
        "status_code": 202,
        "message": "Accepted - OK",
        "raw_response": None,
    }
    supr_client.close()
    assert suprsend_emulator.triggers[0].api == "legacy"


def test_legacy_bulk_sample(ws: tuple[str, str, str], suprsend_emulator: Emulator) -> None:
    key, secret, base_url = ws
    from suprsend_async import Suprsend, Workflow

    supr_client = Suprsend(key, secret, base_url=base_url)
    bulk_ins = supr_client.bulk_workflows.new_instance()

    # one or more workflow instances
    workflow1 = Workflow(body=dict(LEGACY_BODY))  # body must be a proper workflow request json/dict
    workflow2 = Workflow(body=dict(LEGACY_BODY))  # body must be a proper workflow request json/dict

    # --- use .append on bulk instance to add one or more records
    bulk_ins.append(workflow1)
    bulk_ins.append(workflow2)
    # OR
    bulk_ins.append(workflow1, workflow2)

    # -------
    response = bulk_ins.trigger()

    print(response)
    assert (response.status, response.total, response.success) == ("success", 4, 4)
    supr_client.close()
    assert len(suprsend_emulator.triggers) == 4


@pytest.mark.asyncio
async def test_async_twin_of_the_first_sample(ws: tuple[str, str, str]) -> None:
    key, secret, base_url = ws
    from suprsend_async import AsyncSuprsend, WorkflowTriggerRequest

    async with AsyncSuprsend(key, secret, base_url=base_url) as supr_client:
        w1 = WorkflowTriggerRequest(
            body={"workflow": "new_comment", "recipients": ["id1"], "data": {"doc": "x"}},
            tenant_id="tenant_id1",
        )
        response = await supr_client.workflows.trigger(w1)
    assert response.success


def test_attachment_sample(
    ws: tuple[str, str, str], suprsend_emulator: Emulator, tmp_path: object
) -> None:
    key, secret, base_url = ws
    from pathlib import Path

    billing = Path(str(tmp_path)) / "billing.pdf"
    billing.write_bytes(b"%PDF-1.4 invoice")
    from suprsend_async import Suprsend, Workflow

    supr_client = Suprsend(key, secret, base_url=base_url)
    workflow_body = dict(LEGACY_BODY)
    wf_instance = Workflow(body=workflow_body)

    # this snippet can be used to add attachment to workflow
    file_path = str(billing)
    wf_instance.add_attachment(file_path)
    response = supr_client.trigger_workflow(wf_instance)
    supr_client.close()
    assert response.success
    info = suprsend_emulator.triggers[0].attachments[0]
    assert (info.filename, info.content_type, info.size) == ("billing.pdf", "application/pdf", 16)
