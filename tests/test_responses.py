"""Reading answers: any body gives JSON, its text, or None, never an exception."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from suprsend_async import (
    TriggerResponse,
    WorkflowTriggerRequest,
)
from suprsend_async._responses import parse_body
from suprsend_async.emulator import Emulator

RECORDS = {"status": "success", "records": [{"status": "success", "message_id": "m1"}]}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (json.dumps(RECORDS).encode(), RECORDS),
        (json.dumps(RECORDS).encode("utf-16"), RECORDS),  # with its BOM: the json module's job
        (b"\xef\xbb\xbf" + json.dumps(RECORDS).encode(), RECORDS),
        (b'"Accepted - OK"', "Accepted - OK"),
        (
            b'{"big": 123456789012345678901234567890, "x": 1.5}',
            {"big": 123456789012345678901234567890, "x": 1.5},
        ),
        (b"<html>bad gateway</html>", "<html>bad gateway</html>"),
        (b"\xff\xfe\xfa not json", "\ufffd\ufffd\ufffd not json"),
        (b"", None),
    ],
)
def test_any_body_is_read(content: bytes, expected: Any) -> None:
    assert parse_body(httpx.Response(200, content=content)) == expected


@pytest.mark.integration
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


def test_trigger_response_equality_and_repr() -> None:
    a = TriggerResponse(True, "success", 202, "m", message_id="m")
    b = TriggerResponse(True, "success", 202, "m", message_id="m")
    assert a == b and a != TriggerResponse(False, "fail", 500, "x")
    assert a.__eq__(5) is NotImplemented
    r = repr(TriggerResponse(False, "fail", None, "t", error_type="timeout", retry_after=1.0))
    assert "error_type='timeout'" in r and "retry_after=1.0" in r
