"""Every record of a bulk is accounted for exactly once, wherever the run stops.

The invariant (``docs/behaviour.md``, "The account of a bulk"):

* every record taken ends in exactly one of ``succeeded``, ``failed``, ``not_sent``,
  ``unknown``, and the account does not change once the call has returned or raised;
* a ``not_sent`` record was never processed by the server; a ``succeeded`` one was;
* a later ``trigger()`` sends exactly the ``not_sent`` records (and, with
  ``resend_unknown=True``, the ``unknown`` ones), under their original keys;
* a record the server said it accepted is never sent again.

The servers are scripted (``tests/scripted_server.py``) and misbehave on purpose; runs are
cancelled at server events (headers read, body read, answer written), while requests wait for
a pool connection, the rate limiter or a back-off, and at random times. Each randomised run is
named by its seed; ``nox -s stress`` runs many more seeds (``SUPRSEND_ACCOUNTING_SEEDS``).
"""

from __future__ import annotations

import os
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import pytest
import pytest_asyncio

import suprsend_async._retry as retry_mod
from suprsend_async import AsyncBulkWorkflowTrigger, AsyncSuprsend, RecordOutcome, RetryPolicy

from ..conftest import KEY, SECRET
from ..scripted_server import STEPS, ScriptedServer

pytestmark = pytest.mark.integration

SEEDS = int(os.environ.get("SUPRSEND_ACCOUNTING_SEEDS", "60"))


def body(i: int) -> dict[str, Any]:
    return {"workflow": "wf", "recipients": [f"u{i}"], "data": {"i": i, "nested": {"v": i}}}


@pytest_asyncio.fixture
async def server() -> AsyncIterator[ScriptedServer]:
    srv = ScriptedServer()
    srv.url = await srv.start()  # type: ignore[attr-defined]
    yield srv
    await srv.stop()


def url(server: ScriptedServer) -> str:
    return server.url  # type: ignore[attr-defined,no-any-return]


def check_account(
    outcomes: list[RecordOutcome],
    server: ScriptedServer,
    n: int,
    succeeded_before: Counter[str] | None = None,
) -> None:
    """The invariant; ``succeeded_before``: the server's receipts of the keys the SDK had
    reported succeeded at an earlier point (none may be sent again)."""
    assert [o.index for o in outcomes] == list(range(n))
    for o in outcomes:
        key = o.idempotency_key
        assert key is not None
        assert o.state in ("succeeded", "failed", "not_sent", "unknown")
        if o.state == "not_sent":
            assert key not in server.processed, o
        if o.state == "succeeded":
            assert key in server.processed, o
        if o.state == "failed":
            assert key not in server.processed, o
    assert all(count == 1 for count in server.processed.values())
    for key, count in (succeeded_before or Counter()).items():
        assert server.received[key] == count, f"{key} sent again after it succeeded"


def succeeded(outcomes: list[RecordOutcome], server: ScriptedServer) -> Counter[str]:
    keys = [o.idempotency_key for o in outcomes if o.success and o.idempotency_key]
    return Counter({key: server.received[key] for key in keys})


@pytest.mark.asyncio
async def test_records_waiting_for_a_connection_stay_not_sent(server: ScriptedServer) -> None:
    server.delay = lambda n: 0.3
    scope = anyio.CancelScope()
    server.hook = lambda event, n: scope.cancel() if (event, n) == ("received", 0) else None
    limits = httpx.Limits(max_connections=1)
    async with AsyncSuprsend(KEY, SECRET, url(server), limits=limits, max_retries=0) as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[body(i) for i in range(800)])
        with scope:
            await bulk.trigger(concurrency=8)
        first = bulk.result()
        assert sum(server.received.values()) == 100
        assert (first.unknown, first.not_sent, first.success) == (100, 700, 0)
        check_account(first.outcomes or [], server, 800)
        # A later trigger sends exactly the 700 never sent, under their keys.
        server.hook = None
        server.delay = lambda n: 0.0
        before = Counter(server.received)
        again = await bulk.trigger()
        sent = Counter(server.received) - before
        not_sent = {o.idempotency_key for o in first.outcomes or [] if o.state == "not_sent"}
        done = succeeded(again.outcomes or [], server)
        assert set(sent) == not_sent and all(c == 1 for c in sent.values())
        assert (again.success, again.unknown, again.not_sent) == (700, 100, 0)
        # The unknown ones are resent under their keys: the server had processed them, so
        # nothing is processed twice.
        final = await bulk.trigger(resend_unknown=True)
        assert final.success == 800
        check_account(final.outcomes or [], server, 800, done)


@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.asyncio
async def test_cancelled_stream_reports_every_record_it_read(
    server: ScriptedServer, kind: str
) -> None:
    server.delay = lambda n: 0.05
    scope = anyio.CancelScope()
    server.hook = lambda event, n: scope.cancel() if (event, n) == ("received", 6) else None
    consumed = 0

    def sync_source() -> Iterator[dict[str, Any]]:
        nonlocal consumed
        for i in range(20_000):
            consumed += 1
            yield body(i)

    async def async_source() -> AsyncIterator[dict[str, Any]]:
        for record in sync_source():
            yield record

    seen: list[RecordOutcome] = []
    async with AsyncSuprsend(KEY, SECRET, url(server), max_retries=0) as client:
        with scope:
            await client.workflows.bulk_trigger(
                sync_source() if kind == "sync" else async_source(),
                concurrency=2,
                on_outcome=seen.append,
            )
    assert scope.cancelled_caught
    assert consumed > 700  # records were read ahead of the dispatcher
    assert sorted(o.index for o in seen) == list(range(consumed))
    read_ahead = [o for o in seen if o.state == "not_sent" and o.idempotency_key is None]
    assert read_ahead, "records read but never prepared are reported too"
    for o in seen:
        if o.state == "unknown":  # what a resend needs: the record as sent, and its key
            assert o.idempotency_key and o.record["$idempotency_key"] == o.idempotency_key


@pytest.mark.asyncio
async def test_cancelling_a_stream_does_not_wait_for_a_blocked_source(
    server: ScriptedServer,
) -> None:
    release = threading.Event()
    returned_first = threading.Event()

    def source() -> Iterator[dict[str, Any]]:
        yield from (body(i) for i in range(300))
        # Blocks until the test lets go: after the cancelled call returned, or, if the SDK
        # waited for this thread, when the watchdog below gives up.
        release.wait(20)

    def watchdog() -> None:
        if not returned_first.wait(10):
            release.set()

    threading.Thread(target=watchdog, daemon=True).start()
    seen: list[RecordOutcome] = []
    async with AsyncSuprsend(KEY, SECRET, url(server), max_retries=0) as client:
        with anyio.move_on_after(0.5):
            await client.workflows.bulk_trigger(source(), on_outcome=seen.append)
        returned_first.set()
        assert not release.is_set(), "the cancelled call waited for the blocked source"
        release.set()
    assert sorted(o.index for o in seen) == list(range(300))
    # The first 256 went out; the rest were read while the source was still producing.
    assert {o.state for o in seen} == {"succeeded", "not_sent"}


@pytest.mark.asyncio
async def test_unmatched_answers_settle_records_as_unknown(server: ScriptedServer) -> None:
    server.script = lambda n: "mismatch"
    async with AsyncSuprsend(KEY, SECRET, url(server), max_retries=0) as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[body(i) for i in range(10)])
        result = await bulk.trigger()
        assert (result.success, result.unknown) == (0, 10)
        assert "listed 9 records for 10 sent" in result.warnings[0]
        server.script = lambda n: "ok"
        again = await bulk.trigger(resend_unknown=True)
        assert again.success == 10


@pytest.mark.asyncio
async def test_reported_records_are_snapshots_of_what_was_sent(server: ScriptedServer) -> None:
    server.script = lambda n: "whole_400"
    records = [body(i) for i in range(3)]
    async with AsyncSuprsend(KEY, SECRET, url(server), max_retries=0) as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*records)
        result = await bulk.trigger()
    records[0]["data"]["nested"]["v"] = "changed"
    records[0]["data"]["new"] = True
    failed = result.failed_records[0]
    assert failed.record["data"] == {"i": 0, "nested": {"v": 0}}
    assert failed.record["$idempotency_key"] == failed.idempotency_key


@pytest.mark.parametrize("max_retries", [0, 2])
@pytest.mark.asyncio
async def test_a_record_the_server_may_hold_stays_unknown_through_a_long_429(
    server: ScriptedServer, max_retries: int
) -> None:
    """Round 1 is processed and its answer lost (unknown); round 2 gets a whole-request 429
    with an hour's Retry-After; the record stays unknown, and round 3 resends it."""
    async with AsyncSuprsend(KEY, SECRET, url(server), max_retries=max_retries) as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[body(i) for i in range(3)])
        server.script = lambda n: "lost_after"
        first = await bulk.trigger()
        assert first.unknown == 3 and len(server.processed) == 3
        server.script = lambda n: "whole_429_long"
        second = await bulk.trigger(resend_unknown=True)
        assert (second.unknown, second.not_sent, second.success) == (3, 0, 0)
        for o in second.outcomes or []:
            assert o.state == "unknown" and o.status_code == 429, o
            assert "earlier attempt may have been processed" in str(o.error), o.error
            assert "whole 429" in str(o.error), o.error  # the refusal is kept as the last error
        check_account(second.outcomes or [], server, 3)
        server.script = lambda n: "ok"
        before = Counter(server.received)
        third = await bulk.trigger(resend_unknown=True)
        assert sum((Counter(server.received) - before).values()) == 3  # round 3 resent them
        assert third.success == 3
        check_account(third.outcomes or [], server, 3)


@pytest.mark.asyncio
async def test_a_resend_cut_off_by_its_deadline_leaves_unknown_records_unknown(
    server: ScriptedServer,
) -> None:
    """Round 2 stops at its deadline with one chunk on the wire and one still queued: both
    were processed in round 1, so both stay unknown (the queued one is not ``not_sent``)."""
    async with AsyncSuprsend(KEY, SECRET, url(server), max_retries=0) as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[body(i) for i in range(150)])  # two requests: 100 and 50
        server.script = lambda n: "lost_after"
        first = await bulk.trigger()
        assert first.unknown == 150 and len(server.processed) == 150
        server.script = lambda n: "ok"
        server.delay = lambda n: 2.0
        second = await bulk.trigger(resend_unknown=True, concurrency=1, deadline=0.3)
        assert (second.unknown, second.not_sent, second.success) == (150, 0, 0)
        assert sum(server.received.values()) == 250  # the second request never went out
        check_account(second.outcomes or [], server, 150)
        server.delay = lambda n: 0.0
        third = await bulk.trigger(resend_unknown=True)
        assert third.success == 150
        check_account(third.outcomes or [], server, 150)


# -- randomised: cancel anywhere -------------------------------------------------------

MODES = ("none", "time", "headers", "received", "answered", "lost_after", "partial")


def hostile(server: ScriptedServer, rng: random.Random, scope: anyio.CancelScope) -> str:
    """Script the server for one round: random steps and delays, and a cancel at a random
    server event of this round (or a random deadline); returns the round's mode."""
    steps = [rng.choice(STEPS) for _ in range(rng.randint(1, 8))]
    delays = [rng.choice([0.0, 0.0, 0.002, 0.01, 0.03]) for _ in range(5)]
    first = server.requests  # request numbers go on across rounds
    server.script = lambda i: steps[(i - first) % len(steps)]
    server.delay = lambda i: delays[(i - first) % len(delays)]
    mode = rng.choice(MODES)
    at = first + rng.randint(0, 5)
    server.hook = None
    if mode not in ("none", "time"):
        server.hook = lambda event, i: scope.cancel() if (event, i) == (mode, at) else None
    if mode == "time":
        scope.deadline = anyio.current_time() + rng.uniform(0, 0.05)
    return f"steps={steps} mode={mode}@{at}"


def well_behaved(server: ScriptedServer) -> None:
    server.hook = None
    server.script = lambda i: "ok"
    server.delay = lambda i: 0.0


def check_resend_round(
    before: list[RecordOutcome], after: list[RecordOutcome], context: str
) -> None:
    """What may have reached the server stays so: ``unknown`` becomes ``succeeded`` or stays
    ``unknown``; final states do not change."""
    for old, new in zip(before, after, strict=True):
        if old.state == "unknown":
            assert new.state in ("succeeded", "unknown"), (context, old, new)
        elif old.state in ("succeeded", "failed"):
            assert (new.state, new.status_code) == (old.state, old.status_code), (context, new)


async def stream_once(
    c: AsyncSuprsend,
    server: ScriptedServer,
    records: list[dict[str, Any]],
    rng: random.Random,
    options: dict[str, Any],
) -> None:
    seen: list[RecordOutcome] = []
    scope = anyio.CancelScope()
    context = hostile(server, rng, scope)
    with scope:
        await c.workflows.bulk_trigger(iter(records), on_outcome=seen.append, **options)
    taken = sorted(seen, key=lambda o: o.index)
    # Records read but not prepared have no key yet: only the prepared are checked.
    assert [o.index for o in taken] == list(range(len(taken))), context
    for o in taken:
        if o.state == "succeeded":
            assert o.idempotency_key in server.processed, context
        if o.state == "not_sent" and o.idempotency_key:
            assert o.idempotency_key not in server.processed, context


@pytest.mark.parametrize("seed", range(SEEDS))
@pytest.mark.asyncio
async def test_account_holds_wherever_the_run_stops(
    seed: int, server: ScriptedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run and up to three resends, each against a hostile server and stopped
    anywhere; then a well-behaved server. After every round the account holds: nothing the
    server processed is reported failed or not sent, and nothing reported succeeded is sent
    again."""
    rng = random.Random(seed)
    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)  # real (short) back-offs
    n = rng.randint(1, 500)
    server.rng = random.Random(seed)
    policy = RetryPolicy(
        max_retries=rng.randint(0, 3), initial_delay=0.002, max_delay=0.02, max_retry_after=1
    )
    limits = httpx.Limits(max_connections=rng.choice([1, 2, 4, 100]))
    options: dict[str, Any] = {
        "concurrency": rng.choice([1, 2, 3, 8]),
        "max_records_per_second": rng.choice([None, None, 20_000.0]),
    }
    records = [body(i) for i in range(n)]
    async with AsyncSuprsend(KEY, SECRET, url(server), retry_policy=policy, limits=limits) as c:
        if rng.random() < 0.3:
            await stream_once(c, server, records, rng, options)
            return
        bulk = c.workflows.bulk_trigger_instance()
        bulk.append(*records)
        for round_ in range(1 + rng.randint(0, 3)):
            before = bulk.outcomes
            done = succeeded(before, server)
            resend_unknown = round_ > 0 and rng.random() < 0.8
            scope = anyio.CancelScope()
            context = f"seed={seed} n={n} round={round_} " + hostile(server, rng, scope)
            with scope:
                await bulk.trigger(resend_unknown=resend_unknown, **options)
            settled = [(o.state, o.status_code) for o in bulk.outcomes]
            await anyio.sleep(0.01)  # the account is final once the call has returned
            assert [(o.state, o.status_code) for o in bulk.outcomes] == settled, context
            check_account(bulk.outcomes, server, n, done)
            check_resend_round(before, bulk.outcomes, context)
        await resend_to_a_well_behaved_server(bulk, server, n, f"seed={seed} n={n}")


async def resend_to_a_well_behaved_server(
    bulk: AsyncBulkWorkflowTrigger, server: ScriptedServer, n: int, context: str
) -> None:
    """A re-trigger sends exactly what was not sent; with ``resend_unknown`` also the unknown;
    then every record is final."""
    well_behaved(server)
    for resend_unknown in (False, True):
        before = Counter(server.received)
        current = bulk.outcomes
        done = succeeded(current, server)
        wanted = {"not_sent", "unknown"} if resend_unknown else {"not_sent"}
        expected = {o.idempotency_key for o in current if o.state in wanted}
        result = await bulk.trigger(resend_unknown=resend_unknown)
        sent = Counter(server.received) - before
        assert set(sent) == expected, context
        check_account(result.outcomes or [], server, n, done)
        check_resend_round(current, bulk.outcomes, context)
    assert {o.state for o in bulk.outcomes} <= {"succeeded", "failed"}, context
