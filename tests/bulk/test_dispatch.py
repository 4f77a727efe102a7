"""The dispatcher: records prepared (or refused), sources read, chunks sent by bounded workers
under a rate and a shared 429 pause, answers turned into per-record results and retries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import respx

import suprsend_async._retry as retry_mod
from suprsend_async import (
    AsyncSuprsend,
    RecordOutcome,
    Workflow,
    WorkflowTriggerRequest,
)
from suprsend_async._bulk._dispatch import Preparer
from suprsend_async._bulk._plan import Item

from ..conftest import BASE, KEY, SECRET, bulk_answer, trigger_body


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


LEGACY_BODY = {
    "name": "wf",
    "template": "tpl",
    "notification_category": "system",
    "users": [{"distinct_id": "u"}],
}


def test_the_preparer_refuses_a_request_of_another_kind_as_that_records_failure() -> None:
    warnings: list[str] = []
    triggers = Preparer(True, "trigger", warnings)
    refused = triggers.prepare(3, Workflow(dict(LEGACY_BODY)), None)
    assert isinstance(refused, RecordOutcome)
    assert (refused.index, refused.state, refused.status_code, refused.error_type) == (
        3,
        "failed",
        400,
        "validation",
    )
    assert refused.error is not None
    assert "client.workflows (bulk_trigger_instance, bulk_trigger) takes a" in refused.error
    assert "a Workflow is sent with client.bulk_workflows" in refused.error
    assert refused.record["name"] == "wf"  # the record is shown, so a person can find it
    events = Preparer(True, "event", warnings)
    wrong = events.prepare(0, WorkflowTriggerRequest(trigger_body(0)), None)
    assert isinstance(wrong, RecordOutcome) and wrong.state == "failed" and wrong.error
    assert "a WorkflowTriggerRequest is sent with client.workflows" in wrong.error
    # A request of the right class, and a plain body, are prepared as they are.
    for raw in (WorkflowTriggerRequest(trigger_body(4)), trigger_body(4)):
        item = triggers.prepare(4, raw, None)
        assert isinstance(item, Item) and item.index == 4
        assert json.loads(item.prepared.content)["data"] == {"rid": 4}
    assert warnings == []


def test_the_preparer_turns_a_callers_odd_object_into_its_failure() -> None:
    class Exploding(dict[str, object]):
        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("the caller's mapping broke")

        def keys(self) -> Any:
            raise RuntimeError("the caller's mapping broke")

    outcome = Preparer(True, "trigger", []).prepare(0, Exploding(workflow="w"), None)
    assert isinstance(outcome, RecordOutcome) and outcome.state == "failed"
    assert outcome.error and outcome.error.startswith("could not be prepared: RuntimeError")
