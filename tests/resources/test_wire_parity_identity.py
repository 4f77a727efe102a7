"""Bulk user edits: the identity events the official SDK 0.20.0 sends, and its results.

``users.get_bulk_edit_instance()`` and ``bulk_users.new_instance()`` (with the legacy
``user.get_instance`` builder) are run with the official SDK, our async client and our sync
facade against the recording server; the requests (``POST event/``, arrays of at most 400
events) are compared without what is stamped per send (``$insert_id``, ``$time``,
``$ss_sdk_version``), and the results field by field for the same answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import suprsend

from suprsend_async import AsyncSuprsend, Suprsend

from .recording_server import Answer, RecordedRequest, RecordingServer, verify_hmac
from .test_wire_parity import KEY, SECRET, _server, server  # noqa: F401  (fixtures)

STAMPS = ("$insert_id", "$time")
Build = Callable[[Any], Any]


def _edits(client: Any, n: int, legacy: bool) -> list[Any]:
    out = []
    for i in range(n):
        if legacy:
            e = client.user.get_instance(f"u-{i}")
        else:
            e = client.users.get_edit_instance(f"u-{i}", "t1" if i % 3 == 0 else None)
        e.add_email(f"u{i}@example.com")
        e.set({"name": "Ünï", "n": i})
        e.append("tags", "vip")
        e.set_timezone("Europe/Paris")
        out.append(e)
    return out


def _run(client: Any, n: int, legacy: bool) -> Any:
    bulk = client.bulk_users.new_instance() if legacy else client.users.get_bulk_edit_instance()
    bulk.append(*_edits(client, n, legacy))
    return bulk.save()


def _unstamped(event: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(event["$insert_id"], str) and isinstance(event["$time"], int)
    assert set(event["properties"]) == {"$ss_sdk_version"}
    return {**{k: v for k, v in event.items() if k not in STAMPS}, "properties": {}}


def _events(requests: list[RecordedRequest]) -> tuple[list[int], list[dict[str, Any]]]:
    """Request sizes (sorted: ours go out concurrently) and every event, by distinct_id."""
    sizes, events = [], []
    for request in requests:
        verify_hmac(request, KEY, SECRET)
        assert (request.method, request.path) == ("POST", "/event/")
        body = request.json()
        assert isinstance(body, list)
        sizes.append(len(body))
        events += [_unstamped(e) for e in body]
    return sorted(sizes), sorted(events, key=lambda e: e["distinct_id"])


def _official(base_url: str, n: int, legacy: bool) -> Any:
    return _run(suprsend.Suprsend(KEY, SECRET, base_url=base_url), n, legacy)


async def _async(base_url: str, n: int, legacy: bool) -> Any:
    async with AsyncSuprsend(KEY, SECRET, base_url=base_url, max_retries=0) as client:
        return await _run(client, n, legacy)


def _sync(base_url: str, n: int, legacy: bool) -> Any:
    with Suprsend(KEY, SECRET, base_url=base_url, max_retries=0) as client:
        return _run(client, n, legacy)


def _summary(result: Any) -> dict[str, Any]:
    get = result.__getitem__ if isinstance(result, dict) else lambda k: getattr(result, k)
    failed = [(f["code"], _unstamped(f["record"])["distinct_id"]) for f in get("failed_records")]
    return {
        "status": get("status"),
        "total": get("total"),
        "success": get("success"),
        "failure": get("failure"),
        "failed": sorted(failed, key=lambda t: t[1]),
    }


ANSWERS = {
    "accepted": Answer(202, {"status": "success"}),
    "refused": Answer(400, {"status": "fail", "message": "bad events"}),
}


@pytest.mark.parametrize("legacy", [False, True], ids=["bulk-edit", "legacy-bulk"])
@pytest.mark.parametrize("answer", list(ANSWERS))
@pytest.mark.parametrize("n", [3, 901])
async def test_bulk_edits_send_and_answer_as_the_official(
    server: RecordingServer,  # noqa: F811
    legacy: bool,
    answer: str,
    n: int,
) -> None:
    given = ANSWERS[answer]
    server.answer = lambda _request: given
    theirs_result = await asyncio.to_thread(_official, server.base_url, n, legacy)
    theirs = _events(server.take())
    assert theirs[0] == ([n] if n <= 400 else [101, 400, 400])
    for runner in ("async", "sync"):
        if runner == "async":
            ours_result = await _async(server.base_url, n, legacy)
        else:
            ours_result = await asyncio.to_thread(_sync, server.base_url, n, legacy)
        assert _events(server.take()) == theirs, runner
        theirs_summary = {**_summary(theirs_result.__dict__)}
        assert _summary(ours_result) == theirs_summary, runner


async def test_an_edit_too_big_or_invalid_fails_alone(server: RecordingServer) -> None:  # noqa: F811
    server.answer = lambda _request: Answer(202, {"status": "success"})
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        bulk = client.users.get_bulk_edit_instance()
        ok, big, bad, empty = (client.users.get_edit_instance(f"u{i}") for i in range(4))
        ok.set("a", 1)
        big.set("blob", "x" * 11_000)
        bad.add_sms("5555")
        bulk.append(ok, big, bad, empty, {"distinct_id": "u5"})
        result = await bulk.save()
    assert (result.total, result.success, result.failure) == (5, 1, 4)
    errors = {f.index: (f.code, f.error) for f in result.failed_records}
    assert errors[1][0] == 400 and "over 10 KiB" in errors[1][1]
    assert errors[2][0] == 400 and errors[2][1].startswith("add_sms:")
    assert "no operation" in errors[3][1] and "takes UserEdit" in errors[4][1]
    assert result.failed_records[0].record["distinct_id"] == "u1"  # as the official shows it
    (request,) = server.take()
    assert [e["distinct_id"] for e in request.json()] == ["u0"]


async def test_events_are_chunked_by_size_too(server: RecordingServer) -> None:  # noqa: F811
    """800 KiB a request: events of about 9 KiB go about 90 to a request, not 400."""
    server.answer = lambda _request: Answer(202, {"status": "success"})
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        edits = []
        for i in range(200):
            edit = client.users.get_edit_instance(f"u{i}")
            edit.set("blob", "x" * 9000)
            edits.append(edit)
        result = await client.users.bulk_edit(edits)
    assert result.success == 200
    bodies = [r.body for r in server.take()]
    assert all(len(b) <= 800 * 1024 for b in bodies) and len(bodies) == 3


def test_the_legacy_builder_saves_as_the_official(server: RecordingServer) -> None:  # noqa: F811
    server.answer = lambda _request: Answer(400, {"status": "fail", "message": "no"})

    def build(client: Any) -> Any:
        user = client.user.get_instance("  u-1 ")
        user.add_email("a@example.com")
        user.set_preferred_language("fr")
        user.unset("old")
        return user.save()

    theirs = build(suprsend.Suprsend(KEY, SECRET, base_url=server.base_url))
    (their_request,) = server.take()
    with Suprsend(KEY, SECRET, base_url=server.base_url) as client:
        ours = build(client)
    (our_request,) = server.take()
    assert _unstamped(our_request.json()) == _unstamped(their_request.json())
    assert (ours["success"], ours["status"], ours["status_code"]) == (False, "fail", 400)
    assert (theirs["success"], theirs["status"], theirs["status_code"]) == (False, "fail", 400)
    assert "no" in ours["message"]
