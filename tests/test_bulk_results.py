"""Results are read-only mappings of the official SDK's keys, and serialise with to_dict()."""

from __future__ import annotations

import json
from collections.abc import Mapping

import pytest

from suprsend_async import BulkResponse, FailedRecord, TriggerResponse, WorkflowTriggerRequest
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


@pytest.mark.asyncio
async def test_a_trigger_result_is_a_mapping(suprsend_emulator: Emulator) -> None:
    async with suprsend_emulator.client() as client:
        result = await client.workflows.trigger(
            WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
        )
    assert isinstance(result, Mapping) and isinstance(result, TriggerResponse)
    message_id = suprsend_emulator.triggers[0].message_id
    raw = {"status": "success", "message_id": message_id}
    expected = {
        "success": True,
        "status": "success",
        "status_code": 202,
        "message": message_id,
        "raw_response": raw,
    }
    assert dict(result.items()) == expected == dict(result) == result.to_dict()
    assert list(result.values()) == list(expected.values())
    assert len(result) == 5 and list(result) == list(expected)
    assert result.get("headers") is None and "headers" not in result
    assert json.loads(json.dumps(result.to_dict())) == expected
    assert json.loads(json.dumps(dict(result))) == expected


@pytest.mark.asyncio
async def test_a_bulk_result_serialises_with_its_failed_records(
    suprsend_emulator: Emulator,
) -> None:
    async with suprsend_emulator.client() as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append({"workflow": "w", "recipients": ["u"]}, {"workflow": "w", "recipients": []})
        result = await bulk.trigger()
    assert isinstance(result, Mapping) and isinstance(result, BulkResponse)
    data = json.loads(json.dumps(result.to_dict()))
    assert list(data) == ["status", "total", "success", "failure", "failed_records", "warnings"]
    assert (data["status"], data["total"], data["success"], data["failure"]) == (
        "partial",
        2,
        1,
        1,
    )
    [failed] = data["failed_records"]
    assert failed["code"] == 400 and failed["record"]["recipients"] == []
    assert "recipients" in failed["error"]
    assert dict(result.items())["total"] == 2 and len(result) == 6
    record = result.failed_records[0]
    assert isinstance(record, FailedRecord) and isinstance(record, Mapping)
    assert dict(record) == {"record": record.record, "error": record.error, "code": 400}
    # Equality and hashing stay what they were: results of a bulk are compared by identity.
    assert result == result and result != result.to_dict()
    assert {record: 1}[record] == 1
