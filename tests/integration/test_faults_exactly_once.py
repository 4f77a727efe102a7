"""Chaos: 503s, 429s, dropped connections and per-record 5xx at once.

CI runs a small size; ``nox -s stress`` sets SUPRSEND_CHAOS_RECORDS=20000 (and 2,000 singles).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from suprsend_async import Event, WorkflowTriggerRequest
from suprsend_async.emulator import Emulator, Faults

pytestmark = pytest.mark.integration

RECORDS = int(os.environ.get("SUPRSEND_CHAOS_RECORDS", "2000"))
SINGLES = max(RECORDS // 10, 50)

CHAOS = Faults(
    rate_5xx=0.10, rate_429=0.10, retry_after=0.01, rate_drop=0.05, rate_record_5xx=0.02, seed=2026
)


def body(i: int) -> dict[str, Any]:
    return {"workflow": "chaos", "recipients": [f"user-{i}"], "data": {"record_id": i}}


async def run_chaos(emu: Emulator, max_retries: int) -> tuple[Any, list[Any]]:
    emu.set_faults(CHAOS)
    async with emu.client(max_retries=max_retries) as client:
        bulk = await client.workflows.bulk_trigger(body(i) for i in range(RECORDS))
        singles = await asyncio.gather(
            *(
                client.workflows.trigger(WorkflowTriggerRequest(body(RECORDS + i)))
                for i in range(SINGLES)
            )
        )
    emu.set_faults()
    return bulk, list(singles)


@pytest.mark.asyncio
async def test_generous_budget_loses_nothing_and_duplicates_nothing(
    suprsend_emulator: Emulator,
) -> None:
    emu = suprsend_emulator
    bulk, singles = await run_chaos(emu, max_retries=8)
    assert (bulk.total, bulk.success, bulk.failure) == (RECORDS, RECORDS, 0)
    assert all(s.success for s in singles)
    by_record = emu.accepted_by_record
    assert sorted(by_record) == list(range(RECORDS + SINGLES))  # nothing lost
    assert set(by_record.values()) == {1}  # nothing processed twice
    assert set(emu.accepted_by_key.values()) == {1}
    stats = emu.stats
    for fault in ("injected_5xx", "injected_429", "injected_drop", "injected_record_5xx"):
        assert stats[fault] > 0, fault
    assert stats["duplicates_skipped"] > 0  # dropped answers were retried and recognised


@pytest.mark.asyncio
async def test_default_budget_accounts_for_every_record(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    bulk, singles = await run_chaos(emu, max_retries=2)
    assert bulk.total == RECORDS
    assert bulk.success + bulk.failure == RECORDS
    failed = {f.record["data"]["record_id"] for f in bulk.failed_records}
    assert len(failed) == bulk.failure  # each failure reported once
    by_record = emu.accepted_by_record
    # Every record reported successful was processed, exactly once.
    succeeded = set(range(RECORDS)) - failed
    assert all(by_record.get(i) == 1 for i in succeeded)
    # None was processed twice, failed or not (a failed one may have been processed once, when
    # its last answer was lost).
    assert max(by_record.values()) == 1
    for i, result in enumerate(singles):
        rid = RECORDS + i
        if result.success:
            assert by_record.get(rid) == 1
        else:
            assert result.status_code in (None, 429, 503) and by_record.get(rid, 0) <= 1


async def run_event_chaos(emu: Emulator, max_retries: int) -> tuple[Any, list[Any]]:
    emu.set_faults(CHAOS)
    async with emu.client(max_retries=max_retries) as client:
        bulk = await client.bulk_events.bulk_trigger(
            Event(f"user-{i}", "chaos_event", {"record_id": i}) for i in range(RECORDS)
        )
        singles = await asyncio.gather(
            *(
                client.track_event(Event(f"user-{i}", "chaos_event", {"record_id": i}))
                for i in range(RECORDS, RECORDS + SINGLES)
            )
        )
    emu.set_faults()
    return bulk, list(singles)


@pytest.mark.asyncio
async def test_events_under_chaos_counted_exactly_once(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    bulk, singles = await run_event_chaos(emu, max_retries=8)
    assert (bulk.total, bulk.success, bulk.failure) == (RECORDS, RECORDS, 0)
    assert all(s.success for s in singles)
    by_record = emu.accepted_by_record
    assert sorted(by_record) == list(range(RECORDS + SINGLES))  # no event lost
    assert set(by_record.values()) == {1}  # none processed twice
    assert set(emu.accepted_by_key.values()) == {1}
    assert len(emu.events) == RECORDS + SINGLES and emu.triggers == []
    # An event keeps its $insert_id through its retries: one per event, never two.
    assert len({e.insert_id for e in emu.events}) == RECORDS + SINGLES
    stats = emu.stats
    for fault in ("injected_5xx", "injected_429", "injected_drop", "injected_record_5xx"):
        assert stats[fault] > 0, fault
    assert stats["event_duplicates_skipped"] > 0  # dropped answers were retried and recognised
    assert stats["events_accepted"] == RECORDS + SINGLES


@pytest.mark.asyncio
async def test_events_default_budget_account_for_every_event(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    bulk, _ = await run_event_chaos(emu, max_retries=2)
    assert bulk.total == RECORDS and bulk.success + bulk.failure == RECORDS
    failed = {f.index for f in bulk.failed_records}
    assert len(failed) == bulk.failure  # each failure reported once
    by_record = emu.accepted_by_record
    # Every event reported successful was processed, exactly once; none was processed twice
    # (a failed one may have been processed once, when its last answer was lost).
    assert all(by_record.get(i) == 1 for i in set(range(RECORDS)) - failed)
    assert max(by_record.values()) == 1
