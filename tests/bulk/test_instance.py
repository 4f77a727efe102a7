"""Bulk instances and the streaming call: append (a snapshot, never raising), trigger once,
resend only what never left, stream with bounded read-ahead, cancel with a truthful account."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
import respx

import suprsend_async._retry as retry_mod
from suprsend_async import (
    AsyncSuprsend,
    BulkProgress,
    RecordOutcome,
    Workflow,
    WorkflowTriggerRequest,
)

from ..conftest import KEY, SECRET, bulk_answer, trigger_body

BODY = {"workflow": "w", "recipients": ["u"]}


@pytest.mark.asyncio
async def test_records_appended_during_trigger_are_sent_next_time(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    arrived = anyio.Event()
    release = anyio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        await release.wait()
        return bulk_answer()(request)

    route = api.post("trigger/").mock(side_effect=slow)
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(3)])
    async with anyio.create_task_group() as tg:
        tg.start_soon(bulk.trigger)
        with anyio.fail_after(60):  # the bound only keeps a broken run from hanging
            await arrived.wait()  # the first trigger() has sent and waits for its answer
        bulk.append(trigger_body(99))
        release.set()
    result = await bulk.trigger()
    assert (result.total, result.success) == (4, 4)
    assert [len(json.loads(c.request.content)) for c in route.calls] == [3, 1]


@pytest.mark.asyncio
async def test_bad_trigger_arguments_lose_nothing(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(5)])
    with pytest.raises(ValueError, match="concurrency"):
        await bulk.trigger(concurrency=0)
    with pytest.raises(ValueError, match="max_records_per_second"):
        await bulk.trigger(max_records_per_second=-1)
    assert (await bulk.trigger()).success == 5


@pytest.mark.asyncio
async def test_cancel_before_anything_left_means_not_sent(
    api: respx.MockRouter, client: AsyncSuprsend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    client._pool.backoff.pause(30)  # an earlier 429 asked every worker to hold off
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(3)])
    with anyio.move_on_after(0.2):
        await bulk.trigger()
    assert not route.called
    assert [o.state for o in bulk.outcomes] == ["not_sent"] * 3
    client._pool.backoff._until = 0.0
    assert (await bulk.trigger()).success == 3


@pytest.mark.asyncio
async def test_in_memory_attachments_never_cross_records(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    sent: dict[int, str] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        for rec in json.loads(request.content):
            sent[rec["data"]["rid"]] = rec["data"]["$attachments"][0]["data"]
        return bulk_answer()(request)

    api.post("trigger/").mock(side_effect=answer)

    def source() -> Iterator[WorkflowTriggerRequest]:
        for i in range(3000):
            req = WorkflowTriggerRequest(trigger_body(i))
            req.add_attachment_bytes(f"{i:08d}".encode(), "id.txt")  # same length, new object
            yield req

    result = await client.workflows.bulk_trigger(source())
    import base64

    assert result.success == 3000
    assert all(base64.b64decode(data) == f"{i:08d}".encode() for i, data in sent.items())


def test_append_from_many_threads() -> None:
    client = AsyncSuprsend("k", "s", "http://api.test/")
    bulk = client.workflows.bulk_trigger_instance()

    def add(start: int) -> None:
        for i in range(start, start + 200):
            bulk.append(trigger_body(i) if i % 10 else {"workflow": ""})

    threads = [threading.Thread(target=add, args=(n * 200,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    outcomes = bulk.outcomes
    assert len(outcomes) == 1600
    assert [o.index for o in outcomes] == list(range(1600))
    assert sum(o.state == "failed" for o in outcomes) == 160


@pytest.mark.asyncio
async def test_instance_sends_in_chunks_and_accounts(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    bulk = client.workflows.bulk_trigger_instance()
    bodies = [trigger_body(i) for i in range(250)]
    bulk.append(*[WorkflowTriggerRequest(b, tenant_id="t") for b in bodies[:10]])
    bulk.append(*bodies[10:])
    bodies[0]["workflow"] = "edited-after-append"  # snapshot: no effect
    result = await bulk.trigger()
    assert route.call_count == 3
    sizes = sorted(len(json.loads(c.request.content)) for c in route.calls)
    assert sizes == [50, 100, 100]
    assert (result.status, result.total, result.success, result.failure) == ("success", 250, 250, 0)
    assert result["status"] == "success" and result["failed_records"] == []
    sent = [rec for c in route.calls for rec in json.loads(c.request.content)]
    assert all(rec["workflow"] == "wf" for rec in sent)
    assert result.outcomes is not None
    assert [o.index for o in result.outcomes] == list(range(250))
    assert result.outcomes[7].message_id == "m-7" and result.outcomes[7].success
    assert "$idempotency_key" not in bodies[3]


@pytest.mark.asyncio
async def test_invalid_records_fail_alone(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(
        trigger_body(0),
        {"workflow": "w", "recipients": [{"$sms": "5"}]},
        trigger_body(2),
        {"workflow": "w", "recipients": ["u"], "data": {"blob": "x" * 900_000}},
        Workflow({"name": "x"}),
    )
    result = await bulk.trigger()
    assert route.call_count == 1
    assert len(json.loads(route.calls.last.request.content)) == 2
    assert (result.status, result.total, result.success, result.failure) == ("partial", 5, 2, 3)
    failed = {f.index: f for f in result.failed_records}
    assert failed[1].code == 400 and failed[1].error_type == "validation"
    assert "recipients[0].$sms[0]: must start with +<country code>" in failed[1].error
    assert failed[1]["record"] == {"workflow": "w", "recipients": [{"$sms": "5"}]}
    assert "apparent size" in failed[3].error and failed[3].code == 400
    assert "is sent with client.bulk_workflows" in failed[4].error


@pytest.mark.asyncio
async def test_trigger_twice_sends_nothing_twice(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(5)])
    first = await bulk.trigger()
    second = await bulk.trigger()
    assert route.call_count == 1
    assert (second.total, second.success) == (first.total, first.success) == (5, 5)
    bulk.append(trigger_body(99))
    third = await bulk.trigger()
    assert route.call_count == 2 and len(json.loads(route.calls.last.request.content)) == 1
    assert (third.total, third.success) == (6, 6)


@pytest.mark.asyncio
async def test_concurrent_triggers_of_one_instance(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(50)])
    results: list[Any] = []

    async def trigger() -> None:
        results.append(await bulk.trigger())

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(trigger)
    assert route.call_count == 1
    # The later calls waited for the first and report the same, finished account.
    assert [(r.total, r.success) for r in results] == [(50, 50)] * 3


@pytest.mark.asyncio
async def test_cancellation_leaves_truthful_account(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    calls = 0
    both_stalled = anyio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 2:  # the first two requests are answered, the next two never are
            if calls == 4:
                both_stalled.set()
            await anyio.sleep_forever()
        return bulk_answer()(request)

    api.post("trigger/").mock(side_effect=answer)
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(1000)])
    # Cancelled once both workers wait on an answer that will not come: a state, not a time.
    async with anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(bulk.trigger, concurrency=2))
        with anyio.fail_after(60):  # the bound only keeps a broken run from hanging
            await both_stalled.wait()
        tg.cancel_scope.cancel()
    result = bulk.result()
    assert result.total == 1000
    assert result.success == 200
    assert result.unknown == 200
    assert result.not_sent == 600
    assert result.success + result.failure == 1000
    # A later trigger sends only what never left, and nothing that may have been processed.
    api.post("trigger/").mock(side_effect=bulk_answer())
    again = await bulk.trigger()
    assert again.success == 800 and again.unknown == 200
    unknown = [f for f in again.failed_records if f.state == "unknown"]
    assert len(unknown) == 200 and "answer" in unknown[0].error


@pytest.mark.asyncio
async def test_legacy_bulk(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post(f"{KEY}/trigger/").respond(202, json={"status": "success"})
    bulk = client.bulk_workflows.new_instance()
    body = {
        "name": "wf",
        "template": "tpl",
        "notification_category": "promotional",
        "users": [{"distinct_id": "u"}],
    }
    bulk.append(
        *[Workflow(dict(body), brand_id="b") for _ in range(120)],
        WorkflowTriggerRequest(trigger_body()),
    )
    result = await bulk.trigger()
    assert route.call_count == 2
    assert (result.success, result.failure) == (120, 1)
    assert "is sent with client.workflows" in result.failed_records[0].error


@pytest.mark.asyncio
async def test_streaming_from_sync_generator_with_bounded_read_ahead(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    pulled = 0
    max_ahead = 0
    settled = 0
    release = anyio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return bulk_answer()(request)

    api.post("trigger/").mock(side_effect=answer)

    def source() -> Iterator[dict[str, Any]]:
        nonlocal pulled, max_ahead
        for i in range(5000):
            pulled += 1
            max_ahead = max(max_ahead, pulled - settled)
            yield trigger_body(i)

    def on_outcome(outcome: RecordOutcome) -> None:
        nonlocal settled
        settled += 1

    async def release_later() -> None:
        await anyio.sleep(0.2)
        release.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(release_later)
        result = await client.workflows.bulk_trigger(source(), concurrency=4, on_outcome=on_outcome)
    assert result.success == 5000 and result.outcomes is None and settled == 5000
    # 4 in flight + 4 buffered + 1 being filled, plus the read-ahead batches and the one being
    # prepared: never the whole source.
    from suprsend_async._bulk._dispatch import READ_AHEAD as _READ_AHEAD
    from suprsend_async._bulk._dispatch import SOURCE_BATCH as _SOURCE_BATCH

    assert max_ahead <= (4 + 4 + 1) * 100 + (_READ_AHEAD + 2) * _SOURCE_BATCH


@pytest.mark.asyncio
async def test_streaming_from_async_generator_with_progress(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    progress: list[BulkProgress] = []

    async def source() -> AsyncIterator[Any]:
        for i in range(450):
            yield WorkflowTriggerRequest(trigger_body(i)) if i % 2 else trigger_body(i)
        yield {"workflow": ""}

    result = await client.workflows.bulk_trigger(source(), on_progress=progress.append)
    assert (result.total, result.success, result.failure) == (451, 450, 1)
    assert result.failed_records[0].index == 450
    assert progress[-1].done == 451 and progress[-1].total is None
    dones = [p.done for p in progress]
    assert dones == sorted(dones)


@pytest.mark.asyncio
async def test_streaming_list_knows_its_total(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    progress: list[BulkProgress] = []
    await client.workflows.bulk_trigger(
        [trigger_body(i) for i in range(150)], on_progress=progress.append
    )
    assert progress[-1].total == 150 and progress[-1].fraction == 1.0


@pytest.mark.asyncio
async def test_legacy_streaming(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post(f"{KEY}/trigger/").respond(202, json={})
    body = {
        "name": "wf",
        "template": "tpl",
        "notification_category": "system",
        "users": [{"distinct_id": "u"}],
    }
    result = await client.bulk_workflows.bulk_trigger([body] * 5, keep_failed_records=False)
    assert result.success == 5


def nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


@pytest.mark.asyncio
async def test_bulk_append_never_raises_on_deep_or_cyclic_records() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["me"] = cyclic
    async with AsyncSuprsend(KEY, SECRET, "http://127.0.0.1:9/") as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(BODY, {**BODY, "data": nested(1000)}, {**BODY, "data": cyclic}, BODY)
        states = [(o.state, o.error_type) for o in bulk.outcomes]
    assert len(states) == 4
    assert states[1] == states[2] == ("failed", "validation")
    assert states[0] == states[3] == ("not_sent", None)
