"""Bulk results: read-only mappings of the official SDK's keys, serialised with to_dict(), with
a short repr and no secret in them."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

import pytest
import respx

from suprsend_async import (
    AsyncSuprsend,
    BulkResponse,
    FailedRecord,
)
from suprsend_async.emulator import Emulator

from .conftest import BASE, bulk_answer, trigger_body


@pytest.mark.integration
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


@pytest.mark.asyncio
async def test_bulk_response_repr_and_dict_reads(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    api.post("trigger/").respond(400, json={"message": "no"})
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(5)])
    result = await bulk.trigger()
    text = repr(result)
    assert "+2 more" in text and "status='fail'" in text
    assert result["total"] == 5 and result["failed_records"][0]["code"] == 400
    assert result.to_dict()["failure"] == 5


PRIVATE_SECRET = "sEcReT-value-9f8e7d"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, every level: ours, httpx, httpcore
    return caplog


@pytest.mark.asyncio
async def test_bulk_results_and_logs_hold_no_secret(
    api: respx.MockRouter, everything_logged: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").mock(
        side_effect=bulk_answer(
            lambda r, i: {"status": "error", "status_code": 400, "error": {"message": "no"}}
        )
    )
    async with AsyncSuprsend("ws", PRIVATE_SECRET, BASE) as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[trigger_body(i) for i in range(3)], {"workflow": ""})
        result = await bulk.trigger()
    assert PRIVATE_SECRET not in repr(result) and PRIVATE_SECRET not in everything_logged.text
    assert all(PRIVATE_SECRET not in f.error for f in result.failed_records)
