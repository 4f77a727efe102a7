"""The bulk engine: chunking, concurrency, per-record results, retries, streaming, cancelling."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st

from suprsend_async import (
    AsyncSuprsend,
    BulkProgress,
    RecordOutcome,
    Workflow,
    WorkflowTriggerRequest,
)
from suprsend_async._bulk._plan import ChunkPlanner, plan_chunks
from suprsend_async._bulk._plan import Item as _Item
from suprsend_async._requests import PreparedRecord

from ..conftest import BASE, KEY, SECRET, bulk_answer, trigger_body


def item(i: int, size: int) -> _Item:
    return _Item(i, PreparedRecord("trigger", {}, b"", size, None))


# -- the planner (pure) ----------------------------------------------------------------


def test_planner_by_count() -> None:
    chunks = list(plan_chunks(item(i, 300) for i in range(250)))
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert [it.index for c in chunks for it in c] == list(range(250))


def test_planner_by_size() -> None:
    # 300 KiB records: two fit in 800 KiB, a third would not.
    chunks = list(plan_chunks(item(i, 300 * 1024) for i in range(5)))
    assert [len(c) for c in chunks] == [2, 2, 1]


def test_planner_mixed_and_exact_fit() -> None:
    sizes = [400 * 1024, 400 * 1024, 1, 100 * 1024] + [1000] * 150
    chunks = list(plan_chunks(item(i, s) for i, s in enumerate(sizes)))
    assert [len(c) for c in chunks] == [2, 100, 52]
    for c in chunks:
        assert len(c) <= 100 and sum(it.prepared.size for it in c) <= 800 * 1024


def test_planner_add_and_flush() -> None:
    planner = ChunkPlanner(max_records=3)
    a, b, c, d = (item(i, 5) for i in range(4))
    assert planner.add(a) == [] and planner.add(b) == []
    assert planner.add(c) == [[a, b, c]]
    assert planner.add(d) == []
    assert planner.flush() == [d]
    assert planner.flush() is None


def test_planner_one_record_chunks_never_merge() -> None:
    chunks = list(plan_chunks((item(i, 10) for i in range(3)), max_records=1))
    assert [len(c) for c in chunks] == [1, 1, 1]
    big = list(plan_chunks((item(i, 700) for i in range(3)), max_records=1, max_bytes=1000))
    assert [len(c) for c in big] == [1, 1, 1]


def bounded(i: int, exact: int, in_strings: int) -> _Item:
    """A record whose size is a bound ``in_strings`` above its exact size (as on the fast
    path, where commas and colons inside strings are counted as separators)."""
    content = b'"' + b"," * in_strings + b'"'
    return _Item(i, PreparedRecord("trigger", {}, content, exact + in_strings, None, None, False))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 400), st.integers(0, 300)), max_size=40),
    st.integers(1, 6),
)
def test_planner_with_bounds_makes_the_exact_chunks(
    records: list[tuple[int, int]], max_records: int
) -> None:
    limits = {"max_records": max_records, "max_bytes": 1000}
    exact = list(plan_chunks((item(i, e) for i, (e, _) in enumerate(records)), **limits))
    bounds = list(plan_chunks((bounded(i, e, x) for i, (e, x) in enumerate(records)), **limits))
    assert [[it.index for it in c] for c in bounds] == [[it.index for it in c] for c in exact]


def test_planner_measures_only_when_bounds_do_not_fit() -> None:
    small = [bounded(i, 100, 10) for i in range(5)]
    assert list(plan_chunks(small, max_bytes=1000)) == [small]
    assert not any(it.prepared.size_is_exact for it in small)  # never measured
    near = [bounded(i, 300, 100) for i in range(3)]  # bounds 1200 > 1000, exact 900
    assert list(plan_chunks(near, max_bytes=1000)) == [near]
    assert all(it.prepared.size_is_exact for it in near)


def test_a_record_over_the_limit_by_its_bound_only_is_accepted() -> None:
    # Commas inside a string make the bound twice the exact size.
    text = "," * (500 * 1024)
    prepared = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"], "data": {"t": text}})
    record = prepared.prepare(auto_idempotency_key=False)
    assert record.size_is_exact
    assert record.size == len(json.dumps(record.body, ensure_ascii=False).encode()) + 200


# -- the instance API ------------------------------------------------------------------


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
async def test_partial_207_keeps_per_record_detail(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    def per_record(rec: dict[str, Any], i: int) -> dict[str, Any]:
        if rec["data"]["rid"] % 3 == 0:
            return {
                "status": "error",
                "status_code": 400,
                "error": {"message": f"bad {rec['data']['rid']}", "type": "x"},
            }
        return {"status": "success", "status_code": 202, "message_id": f"m{rec['data']['rid']}"}

    api.post("trigger/").mock(side_effect=bulk_answer(per_record))
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(9)])
    result = await bulk.trigger()
    assert (result.status, result.success, result.failure) == ("partial", 6, 3)
    assert [(f.index, f.code, f.error) for f in result.failed_records] == [
        (0, 400, "bad 0"),
        (3, 400, "bad 3"),
        (6, 400, "bad 6"),
    ]
    assert result.outcomes is not None
    assert [o.message_id for o in result.outcomes if o.success] == [
        "m1",
        "m2",
        "m4",
        "m5",
        "m7",
        "m8",
    ]


@pytest.mark.asyncio
async def test_all_failed_is_fail(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").respond(401, json={"status": "fail", "message": "bad signature"})
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(120)])
    result = await bulk.trigger()
    assert (result.status, result.failure) == ("fail", 120)
    assert {(f.code, f.error) for f in result.failed_records} == {(401, "bad signature")}


@pytest.mark.asyncio
async def test_per_record_transient_errors_retried_alone(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    seen: dict[int, int] = {}

    def per_record(rec: dict[str, Any], i: int) -> dict[str, Any]:
        rid = rec["data"]["rid"]
        seen[rid] = seen.get(rid, 0) + 1
        if rid in (2, 5) and seen[rid] == 1:
            return {"status": "error", "status_code": 503, "error": {"message": "busy"}}
        return {"status": "success", "status_code": 202, "message_id": f"m{rid}-{seen[rid]}"}

    route = api.post("trigger/").mock(side_effect=bulk_answer(per_record))
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(8)])
    result = await bulk.trigger()
    assert result.success == 8
    assert route.call_count == 2
    second = json.loads(route.calls[1].request.content)
    assert [r["data"]["rid"] for r in second] == [2, 5]
    first_keys = {
        r["data"]["rid"]: r["$idempotency_key"] for r in json.loads(route.calls[0].request.content)
    }
    assert all(r["$idempotency_key"] == first_keys[r["data"]["rid"]] for r in second)
    assert result.outcomes is not None and result.outcomes[2].attempts == 2


@pytest.mark.asyncio
async def test_per_record_transient_errors_give_up(api: respx.MockRouter) -> None:
    api.post("trigger/").mock(
        side_effect=bulk_answer(
            lambda rec, i: {"status": "error", "status_code": 500, "error": {"message": "down"}}
        )
    )
    async with AsyncSuprsend(KEY, SECRET, BASE, max_retries=1) as c:
        bulk = c.workflows.bulk_trigger_instance()
        bulk.append(*[trigger_body(i) for i in range(3)])
        result = await bulk.trigger()
    assert result.failure == 3 and {f.code for f in result.failed_records} == {500}
    assert api.calls.call_count == 2


@pytest.mark.asyncio
async def test_lost_answer_retried_with_same_keys(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    processed: dict[str, int] = {}

    def answer(request: httpx.Request) -> httpx.Response:
        for rec in json.loads(request.content):
            processed[rec["$idempotency_key"]] = processed.get(rec["$idempotency_key"], 0) + 1
        if len(processed) and sum(processed.values()) == 100:
            raise httpx.RemoteProtocolError("server closed the connection after processing")
        return bulk_answer()(request)

    route = api.post("trigger/").mock(side_effect=answer)
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(100)])
    result = await bulk.trigger()
    assert result.success == 100 and route.call_count == 2
    assert len(processed) == 100  # the same 100 keys both times
    assert set(processed.values()) == {2}


@pytest.mark.asyncio
async def test_whole_request_failure_reported_per_record(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    api.post("trigger/").mock(side_effect=httpx.ConnectError("refused"))
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(150)])
    result = await bulk.trigger()
    assert result.failure == 150 and result.status == "fail"
    assert {(f.code, f.error_type) for f in result.failed_records} == {(None, "connection")}
    assert all("Traceback" not in f.error for f in result.failed_records)


@pytest.mark.parametrize(
    ("response", "warning"),
    [
        (httpx.Response(207, text="not json"), "was not a JSON object"),
        (httpx.Response(200, json="Accepted"), "was not a JSON object"),
        (httpx.Response(207, json={"status": "success"}), "had no 'records' list"),
        (
            httpx.Response(207, json={"records": [{"status": "success"}]}),
            "listed 1 records for 3 sent",
        ),
        (httpx.Response(207, content=b""), "was not a JSON object"),
    ],
)
@pytest.mark.asyncio
async def test_malformed_2xx_never_raises(
    api: respx.MockRouter, client: AsyncSuprsend, response: httpx.Response, warning: str
) -> None:
    api.post("trigger/").mock(return_value=response)
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(3)])
    result = await bulk.trigger()
    assert result.total == 3 and result.success + result.failure == 3
    assert len(result.warnings) == 1 and warning in result.warnings[0]


@pytest.mark.asyncio
async def test_record_entries_without_status(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    records = [
        {"status_code": 202},
        {"status_code": 404, "message": "no such workflow"},
        {"status": "error"},
    ]
    api.post("trigger/").respond(207, json={"records": records})
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(3)])
    result = await bulk.trigger()
    assert result.success == 1
    assert [(f.index, f.code, f.error) for f in result.failed_records] == [
        (1, 404, "no such workflow"),
        (2, None, "the service gave no reason (record status 'error')"),
    ]


@pytest.mark.asyncio
async def test_entries_that_are_not_objects_make_the_request_unknown(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    records = ["weird", {"status": "success", "status_code": 202}]
    api.post("trigger/").respond(207, json={"records": records})
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(2)])
    result = await bulk.trigger()
    assert (result.success, result.unknown) == (0, 2)
    assert "not objects" in result.warnings[0]


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

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 2:
            await anyio.sleep(30)
        return bulk_answer()(request)

    api.post("trigger/").mock(side_effect=answer)
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(1000)])
    with anyio.move_on_after(0.5):
        await bulk.trigger(concurrency=2)
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


# -- streaming -------------------------------------------------------------------------


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
async def test_idempotency_keys_derived_from_a_field(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    route = api.post("trigger/").mock(side_effect=bulk_answer())
    records = [
        {**trigger_body(i), "data": {"rid": i, "order": {"id": f"ord-{i}"}}} for i in range(3)
    ]
    records.append(trigger_body(3))
    result = await client.workflows.bulk_trigger(records, idempotency_key_from="data.order.id")
    sent = json.loads(route.calls.last.request.content)
    assert [r["$idempotency_key"] for r in sent] == ["ord-0", "ord-1", "ord-2"]
    assert result.failure == 1 and "data.order.id: is missing" in result.failed_records[0].error
    await client.workflows.bulk_trigger(
        records[:2], idempotency_key_from=lambda b: f"x-{b['data']['rid']}"
    )
    assert [r["$idempotency_key"] for r in json.loads(route.calls.last.request.content)] == [
        "x-0",
        "x-1",
    ]
    r2 = await client.workflows.bulk_trigger([trigger_body(1)], idempotency_key_from=lambda b: None)
    assert r2.failure == 1


@pytest.mark.asyncio
async def test_concurrency_is_bounded(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    in_flight = 0
    peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.01)
        in_flight -= 1
        return bulk_answer()(request)

    api.post("trigger/").mock(side_effect=answer)
    result = await client.workflows.bulk_trigger(
        [trigger_body(i) for i in range(2000)], concurrency=5
    )
    # Never above the bound; on a loaded machine preparing may not keep all five busy.
    assert result.success == 2000 and 1 < peak <= 5
    with pytest.raises(ValueError, match="concurrency"):
        await client.workflows.bulk_trigger([], concurrency=0)


@pytest.mark.asyncio
async def test_rate_limit_spaces_requests(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    started = anyio.current_time()
    await client.workflows.bulk_trigger(
        [trigger_body(i) for i in range(300)], max_records_per_second=1000
    )
    # 300 records at 1000/s: the third request may start no sooner than 0.2 s in.
    assert anyio.current_time() - started >= 0.19
    with pytest.raises(ValueError, match="max_records_per_second"):
        await client.workflows.bulk_trigger([trigger_body(1)], max_records_per_second=-1)


@pytest.mark.asyncio
async def test_429_pauses_every_worker(
    api: respx.MockRouter, client: AsyncSuprsend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import suprsend_async._retry as retry_mod

    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)
    started = anyio.current_time()
    times: list[float] = []
    first = True

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal first
        times.append(anyio.current_time() - started)
        if first:
            first = False
            return httpx.Response(429, headers={"Retry-After": "0.3"})
        await anyio.sleep(0.01)
        return bulk_answer()(request)

    api.post("trigger/").mock(side_effect=answer)
    paused_at: list[float] = []
    from suprsend_async._retry import SharedBackoff

    real_pause = SharedBackoff.pause

    def pause(self: SharedBackoff, seconds: float) -> None:
        paused_at.append(anyio.current_time() - started)
        real_pause(self, seconds)

    monkeypatch.setattr(SharedBackoff, "pause", pause)
    result = await client.workflows.bulk_trigger(
        [trigger_body(i) for i in range(2000)], concurrency=4
    )
    assert result.success == 2000
    # Once the client had read the 429, each of the other three workers could still have one
    # request past the gate already; after those, nothing went out from any worker until the
    # advised 0.3 s had passed. Without the shared pause they would go on sending at once.
    assert len(paused_at) == 1
    after = [t for t in times if t > paused_at[0]]
    in_time = [t for t in after if t < paused_at[0] + 0.29]
    assert len(in_time) <= 3, (paused_at, times[:8])
    assert len(after) - len(in_time) > 15


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


@pytest.mark.asyncio
async def test_long_retry_after_keeps_each_records_own_status(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    """A 207 whose Retry-After is above the cap: no retry, and each record keeps the status
    and message the server gave it (a 503 is not reported as a 429)."""
    route = api.post("trigger/").respond(
        207,
        headers={"Retry-After": "3600"},
        json={
            "status": "success",
            "records": [
                {"status": "success", "status_code": 202, "message_id": "m0"},
                {"status": "error", "status_code": 503, "error": {"message": "db down"}},
                {"status": "error", "status_code": 429, "error": {"message": "slow down"}},
            ],
        },
    )
    bulk = client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(3)])
    result = await bulk.trigger()
    assert route.call_count == 1
    assert result.success == 1
    assert [(f.index, f.state, f.code, f.error) for f in result.failed_records] == [
        (1, "failed", 503, "db down"),
        (2, "failed", 429, "slow down"),
    ]
