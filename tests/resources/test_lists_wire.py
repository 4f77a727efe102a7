"""Subscriber lists, broadcasts, messages and run cancellation on the recording server.

What the table of ``test_wire_parity`` cannot hold: a broadcast (its body carries a fresh
``$insert_id`` and ``$time``), the checks made before anything is sent, a bulk update in
chunks, and the cancel calls no official SDK has.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import suprsend

from suprsend_async import (
    AsyncSuprsend,
    NotFoundError,
    SubscriberListBroadcast,
    Suprsend,
    SuprsendValidationError,
)

from .recording_server import Answer, RecordedRequest, RecordingServer, verify_hmac, wire_view
from .test_wire_parity import KEY, SECRET, _server, server  # noqa: F401  (fixtures)

BODY = {
    "list_id": "news_1",
    "template": "weekly-digest",
    "notification_category": "promotional",
    "channels": ["email", "inbox"],
    "delay": "1d2h",
    "trigger_at": "2030-08-27T20:14:51.643Z",
    "data": {"name": "Ünïcødé 🚀", "n": [1, None, True]},
}
STAMPS = ("$insert_id", "$time")


def _without(body: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k not in keys}


def _official_broadcast(base_url: str, attachment: Path | None) -> dict[str, Any]:
    client = suprsend.Suprsend(KEY, SECRET, base_url=base_url)
    item = suprsend.SubscriberListBroadcast(
        json.loads(json.dumps(BODY)), idempotency_key="key-1", tenant_id="acme"
    )
    if attachment is not None:
        item.add_attachment(str(attachment))
    result: dict[str, Any] = client.subscriber_lists.broadcast(item)
    return result


def _ours(attachment: Path | None) -> SubscriberListBroadcast:
    item = SubscriberListBroadcast(BODY, idempotency_key="key-1", tenant_id="acme")
    if attachment is not None:
        item.add_attachment(str(attachment))
    return item


@pytest.mark.parametrize("with_file", [False, True])
async def test_broadcast_sends_what_the_official_sends(
    server: RecordingServer,  # noqa: F811
    tmp_path: Path,
    with_file: bool,
) -> None:
    server.answer = lambda _r: Answer(202, {"message": "Accepted - OK"})
    attachment = None
    if with_file:
        attachment = tmp_path / "report.pdf"
        attachment.write_bytes(b"%PDF-1.4 \x00\xff" * 50)
    theirs_result = await asyncio.to_thread(_official_broadcast, server.base_url, attachment)
    theirs = server.take_one()
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        ours_async = await client.subscriber_lists.broadcast(_ours(attachment))
    with Suprsend(KEY, SECRET, base_url=server.base_url) as sync_client:
        ours_sync = await asyncio.to_thread(
            sync_client.subscriber_lists.broadcast, _ours(attachment)
        )
    for request, result in zip(server.take(), (ours_async, ours_sync), strict=True):
        assert (request.method, request.target) == ("POST", f"/{KEY}/broadcast/")
        verify_hmac(request, KEY, SECRET)
        body = request.json()
        assert len(body["$insert_id"]) == 36 and body["$time"] > 1640995200000
        assert _without(body, *STAMPS) == _without(theirs.json(), *STAMPS)
        assert wire_view(request).content_type == wire_view(theirs).content_type
        for key in ("success", "status", "status_code", "message"):
            assert result[key] == theirs_result[key]
    assert BODY["data"] == {"name": "Ünïcødé 🚀", "n": [1, None, True]}  # never changed


async def test_broadcast_keeps_one_key_and_insert_id_on_retries(
    server: RecordingServer,  # noqa: F811
) -> None:
    answers = iter([Answer(503, {"message": "busy"}), Answer(202, "Accepted - OK")])
    server.answer = lambda _r: next(answers)
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url, max_retries=2) as client:
        result = await client.subscriber_lists.broadcast(dict(BODY))
    first, second = server.take()
    assert result.success and result.attempts == 2
    assert first.json()["$idempotency_key"] == second.json()["$idempotency_key"]
    assert first.json()["$insert_id"] == second.json()["$insert_id"]
    assert result.idempotency_key == first.json()["$idempotency_key"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"delay": "1x"}, "delay"),
        ({"delay": -5}, "delay"),
        ({"delay": None}, "delay"),
        ({"trigger_at": "next tuesday"}, "trigger_at"),
        ({"channels": ["fax"]}, "channels[0]"),
        ({"data": "x"}, "data"),
        ({"list_id": "a/b"}, "list_id"),
        ({"list_id": "x" * 65}, "list_id"),
        ({"template": ""}, "template"),
        ({"notification_category": None}, "notification_category"),
    ],
)
async def test_a_bad_broadcast_is_refused_before_sending(
    server: RecordingServer,  # noqa: F811
    change: dict[str, Any],
    field: str,
) -> None:
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        with pytest.raises(SuprsendValidationError, match=field.replace("[", r"\[")):
            await client.subscriber_lists.broadcast({**BODY, **change})
    assert server.take() == []


async def test_seconds_delay_and_datetime_pass(server: RecordingServer) -> None:  # noqa: F811
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        result = await client.subscriber_lists.broadcast({**BODY, "delay": 30})
    assert result.success and server.take_one().json()["delay"] == 30


async def test_a_broadcast_over_800_kib_with_attachments_is_refused(
    server: RecordingServer,  # noqa: F811
) -> None:
    item = SubscriberListBroadcast(BODY)
    item.add_attachment_bytes(b"x" * (700 * 1024), "big.bin")
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        with pytest.raises(SuprsendValidationError, match=r"800 KiB.*big\.bin"):
            await client.subscriber_lists.broadcast(item)
    assert server.take() == []


async def test_empty_member_lists_send_nothing(server: RecordingServer) -> None:  # noqa: F811
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        assert await client.subscriber_lists.add("l1", []) == {"success": True}
        assert await client.subscriber_lists.remove_from_version("l1", "v1", []) == {
            "success": True
        }
        with pytest.raises(SuprsendValidationError, match=r"distinct_ids\[1\]"):
            await client.subscriber_lists.add("l1", ["u1", ""])
        with pytest.raises(SuprsendValidationError, match="distinct_ids"):
            await client.subscriber_lists.add("l1", "u1")
        with pytest.raises(SuprsendValidationError, match="version_id"):
            await client.subscriber_lists.finish_sync("l1", " ")
    assert server.take() == []


def _records(request: RecordedRequest) -> Answer:
    messages = request.json()["messages"]
    if messages[0]["message_id"] == "m1000":
        return Answer(404, {"message": "gone"})
    return Answer(
        202, {"records": [{"message_id": m["message_id"], "status_code": 202} for m in messages]}
    )


async def test_bulk_update_is_sent_1000_at_a_time_and_accounts_for_each(
    server: RecordingServer,  # noqa: F811
) -> None:
    server.answer = _records
    updates = [{"message_id": f"m{i}", "action": "seen"} for i in range(2500)]
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        result = await client.messages.bulk_update(updates)
    sizes = [len(r.json()["messages"]) for r in server.take()]
    assert sizes == [1000, 1000, 500]
    records = result["records"]
    assert [r["message_id"] for r in records] == [u["message_id"] for u in updates]
    assert {r["status_code"] for r in records[1000:2000]} == {404}
    assert records[1000]["error"]["type"] == "NotFoundError"
    assert {r["status_code"] for r in records[:1000] + records[2000:]} == {202}


async def test_bulk_update_of_one_request_raises_as_the_official(
    server: RecordingServer,  # noqa: F811
) -> None:
    server.answer = lambda _r: Answer(404, {"message": "gone"})
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        with pytest.raises(NotFoundError):
            await client.messages.bulk_update([{"message_id": "m1000", "action": "read"}])
        server.take()
        with pytest.raises(SuprsendValidationError) as caught:
            await client.messages.bulk_update(
                [{"message_id": "a", "action": "seen"}, {"message_id": "a", "action": "eaten"}]
            )
    assert "messages[1].message_id" in str(caught.value)
    assert "messages[1].action" in str(caught.value)
    assert server.take() == []


@pytest.mark.parametrize(
    ("call", "kwargs", "path", "body"),
    [
        (
            "cancel_workflow",
            {"idempotency_key": "k-1", "recipients": ("u1", "ü")},
            "/v1/workflow_run/cancel/",
            {"idempotency_key": "k-1", "recipients": ["u1", "ü"]},
        ),
        (
            "cancel_broadcast",
            {"idempotency_key": "k-2", "list_id": "news", "tenant_id": None},
            "/v1/broadcast_run/cancel/",
            {"idempotency_key": "k-2", "list_id": "news"},
        ),
    ],
)
@pytest.mark.parametrize("auth", ["hmac", "api_key"])
async def test_cancel_runs_as_the_reference_documents(
    server: RecordingServer,  # noqa: F811
    call: str,
    kwargs: dict[str, Any],
    path: str,
    body: dict[str, Any],
    auth: str,
) -> None:
    server.answer = lambda _r: Answer(200, {"execution_ids": ["dsl_1"]})
    if auth == "hmac":
        client = AsyncSuprsend(KEY, SECRET, base_url=server.base_url)
    else:
        client = AsyncSuprsend.with_workspace_api_key("uid", "key", base_url=server.base_url)
    async with client:
        result = await getattr(client.runs, call)(**kwargs)
        with pytest.raises(SuprsendValidationError, match="at least one filter"):
            await getattr(client.runs, call)()
    request = server.take_one()
    assert (request.method, request.target, request.json()) == ("POST", path, body)
    assert result == {"execution_ids": ["dsl_1"]}
    if auth == "hmac":
        verify_hmac(request, KEY, SECRET)
    else:
        assert request.header("Authorization") == "Bearer key"
