"""Bulk accounting at the edges: failing callbacks and sources, appends during a trigger,
cancellation before anything left, in-memory attachments whose memory is reused."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import respx

import suprsend_async._retry as retry_mod
from suprsend_async import AsyncSuprsend, RecordOutcome, WorkflowTriggerRequest

from ..conftest import bulk_answer, trigger_body


@pytest.mark.asyncio
async def test_failing_on_outcome_does_not_break_the_account(
    api: respx.MockRouter, client: AsyncSuprsend, caplog: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    seen: list[int] = []

    def flaky(outcome: RecordOutcome) -> None:
        seen.append(outcome.index)
        raise RuntimeError("the caller's database is down")

    result = await client.workflows.bulk_trigger(
        [trigger_body(i) for i in range(250)], on_outcome=flaky
    )
    assert (result.total, result.success, result.failure) == (250, 250, 0)
    assert sorted(seen) == list(range(250))
    assert any("flaky raised RuntimeError" in w for w in result.warnings)
    assert any("250 times" in w for w in result.warnings)


@pytest.mark.asyncio
async def test_failing_on_progress_is_contained(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(120)])

    def boom(_: object) -> None:
        raise ValueError("progress bar broke")

    result = await bulk.trigger(on_progress=boom)
    assert result.success == 120 and any("progress bar broke" in w for w in result.warnings)


@pytest.mark.asyncio
async def test_failing_source_sends_what_it_gave_then_raises(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    outcomes: list[RecordOutcome] = []

    def source() -> Iterator[dict[str, Any]]:
        for i in range(700):
            yield trigger_body(i)
        raise OSError("the export file was truncated")

    with pytest.raises(OSError, match="truncated") as info:
        await client.workflows.bulk_trigger(source(), on_outcome=outcomes.append)
    assert sorted(o.index for o in outcomes) == list(range(700))
    assert all(o.success for o in outcomes)
    assert sum(len(json.loads(c.request.content)) for c in route.calls) == 700
    assert any("after 700 records" in note for note in info.value.__notes__)


@pytest.mark.asyncio
async def test_failing_async_source(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    outcomes: list[RecordOutcome] = []

    async def source() -> Any:
        for i in range(90):
            yield trigger_body(i)
        raise ValueError("bad row")

    with pytest.raises(ValueError, match="bad row"):
        await client.workflows.bulk_trigger(source(), on_outcome=outcomes.append)
    assert len(outcomes) == 90


@pytest.mark.asyncio
async def test_key_function_that_raises_fails_its_record_only(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    records = [trigger_body(i) for i in range(150)]
    records[120] = {"workflow": "wf", "recipients": ["u"], "data": None}

    result = await client.workflows.bulk_trigger(
        records, idempotency_key_from=lambda b: f"k-{b['data']['rid']}"
    )
    assert (result.total, result.success, result.failure) == (150, 149, 1)
    failed = result.failed_records[0]
    assert failed.index == 120 and "idempotency_key_from: raised TypeError" in failed.error


@pytest.mark.asyncio
async def test_records_appended_during_trigger_are_sent_next_time(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    release = anyio.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return bulk_answer()(request)

    route = api.post("trigger/").mock(side_effect=slow)
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(3)])
    async with anyio.create_task_group() as tg:
        tg.start_soon(bulk.trigger)
        await anyio.sleep(0.05)
        bulk.append(trigger_body(99))  # while the first trigger() is waiting for its answer
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
