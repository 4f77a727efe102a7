"""Reading answers: any body gives JSON, its text, or None, never an exception."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from suprsend_async._responses import parse_body

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
