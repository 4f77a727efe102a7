"""Adding, removing and replacing list members at scale, against the emulator.

The size of the replace is ``SUPRSEND_LIST_SCALE`` (20,000 by default; run it with 1,000,000
to see a million members replaced in flat memory).
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from suprsend_async import (
    AsyncSuprsend,
    BulkProgress,
    ListReplaceError,
    RecordOutcome,
    SubscriberListBroadcast,
)
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration

SCALE = int(os.environ.get("SUPRSEND_LIST_SCALE", "20000"))


def _client(emu: Emulator) -> AsyncSuprsend:
    return AsyncSuprsend(emu.config.workspace_key, emu.config.workspace_secret, emu.base_url)


def _members(emu: Emulator, list_id: str) -> list[str] | None:
    return emu.state.management.lists.members(list_id)


def _drafts(emu: Emulator) -> int:
    return emu.state.management.lists.versions.count()


def _exists(path: str) -> bool:
    return Path(path).exists()


def ids(prefix: str, n: int) -> Iterator[str]:
    return (f"{prefix}-{i}" for i in range(n))


async def _new_list(client: AsyncSuprsend, members: list[str]) -> str:
    list_id = f"l-{uuid.uuid4().hex[:10]}"
    await client.subscriber_lists.create({"list_id": list_id})
    if members:
        await client.subscriber_lists.add(list_id, members)
    return list_id


@pytest.mark.asyncio
async def test_a_list_that_fits_one_request_is_the_official_call(
    suprsend_emulator: Emulator,
) -> None:
    async with _client(suprsend_emulator) as client:
        list_id = await _new_list(client, [])
        result = await client.subscriber_lists.add(list_id, ["u1", "u2"])
        assert result == {"success": True} and result.account.success == 2
        assert result.account.requests == 1
        removed = await client.subscriber_lists.remove(list_id, ("u1",))
        assert removed == {"success": True}
    assert _members(suprsend_emulator, list_id) == ["u2"]


@pytest.mark.asyncio
async def test_any_iterable_is_chunked_and_every_id_is_accounted_for(
    suprsend_emulator: Emulator,
) -> None:
    seen: list[RecordOutcome] = []
    progress: list[BulkProgress] = []
    source = [*ids("a", 12_000), "", 7, *ids("b", 13_000)]  # two invalid ids among 25,002

    async def stream() -> AsyncIterator[object]:
        for item in source:
            yield item

    async with _client(suprsend_emulator) as client:
        list_id = await _new_list(client, [])
        result = await client.subscriber_lists.add(
            list_id,
            stream(),  # type: ignore[arg-type]  # invalid ids on purpose
            on_outcome=seen.append,
            on_progress=progress.append,
        )
        account = result.account
        assert result["success"] is False
        assert (account.total, account.success, account.failure) == (25_002, 25_000, 2)
        assert account.requests == 3  # 10,000 ids a request, cut by position in the input
        assert [f.index for f in account.failed_records] == [12_000, 12_001]
        assert account.failed_records[1].error == "distinct_ids[12001]: must be a string, not int"
        assert sorted(o.index for o in seen) == list(range(25_002))
        assert progress[-1].done == 25_002
        members = _members(suprsend_emulator, list_id)
        assert members is not None and len(members) == 25_000

        gone = await client.subscriber_lists.remove(list_id, ids("a", 12_000))
        assert gone["success"] and gone.account.success == 12_000
    assert _members(suprsend_emulator, list_id) == list(ids("b", 13_000))


@pytest.mark.asyncio
async def test_refused_chunks_fail_their_ids_without_raising(suprsend_emulator: Emulator) -> None:
    async with _client(suprsend_emulator) as client:
        result = await client.subscriber_lists.add("no-such-list", ids("u", 15_000))
    account = result.account
    assert not result["success"] and account.failure == 15_000 and account.status == "fail"
    assert {f.code for f in account.failed_records} == {404}


@pytest.mark.asyncio
async def test_lost_answers_are_retried_since_adding_twice_is_harmless(
    suprsend_emulator: Emulator,
) -> None:
    async with _client(suprsend_emulator) as client:
        list_id = await _new_list(client, [])
        suprsend_emulator.set_faults(drop_next=2)
        result = await client.subscriber_lists.add(list_id, ids("u", 30_000), concurrency=1)
    assert result["success"] and result.account.success == 30_000
    assert result.account.requests == 5  # three chunks, two of them sent twice
    assert len(_members(suprsend_emulator, list_id) or []) == 30_000


@pytest.mark.asyncio
async def test_a_cancelled_add_accounts_for_every_id_taken(suprsend_emulator: Emulator) -> None:
    seen: dict[str, int] = {}
    progress: list[BulkProgress] = []
    taken = 0

    def note(outcome: RecordOutcome) -> None:
        seen[outcome.state] = seen.get(outcome.state, 0) + 1

    def source() -> Iterator[str]:
        nonlocal taken
        for distinct_id in ids("u", 50_000):
            taken += 1
            yield distinct_id

    async with _client(suprsend_emulator) as client:
        list_id = await _new_list(client, [])
        suprsend_emulator.set_faults(latency_ms=300)
        task = asyncio.ensure_future(
            client.subscriber_lists.add(
                list_id, source(), concurrency=2, on_outcome=note, on_progress=progress.append
            )
        )
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    # Every id taken from the source, exactly once: the two requests in flight may have
    # landed; the rest (queued, or read ahead) never went out.
    assert sum(seen.values()) == taken
    unknown = seen.get("unknown", 0)
    assert unknown in (10_000, 20_000) and "succeeded" not in seen
    # Progress tells the states apart: a stopped call's ids are unknown or not sent, not failed.
    assert progress and all(p.failed == 0 for p in progress)
    assert progress[-1].unknown == unknown and progress[-1].finished < progress[-1].done
    assert seen.get("not_sent") == taken - unknown


@pytest.mark.asyncio
async def test_replace_swaps_the_members_in_flat_memory(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    async with _client(emu) as client:
        list_id = await _new_list(client, ["old-1", "old-2"])
        tracemalloc.start()
        try:
            result = await client.subscriber_lists.replace(list_id, ids("new", SCALE))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert result["subscribers_count"] == SCALE and result["status"] == "active"
    account = result.account
    assert (account.total, account.success, account.failure) == (SCALE, SCALE, 0)
    members = _members(emu, list_id)
    assert members is not None and members[:1] == ["new-0"] and len(members) == SCALE
    assert _drafts(emu) == 0
    print(f"replace of {SCALE:,}: peak traced {peak / 2**20:.1f} MiB (client and emulator)")


@pytest.mark.asyncio
async def test_a_failed_replace_leaves_the_list_as_it_was(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    async with _client(emu) as client:
        list_id = await _new_list(client, ["old-1", "old-2"])
        with pytest.raises(ListReplaceError) as caught:
            await client.subscriber_lists.replace(list_id, [*ids("n", 15_000), " "])
    assert caught.value.account is not None and caught.value.account.failure == 1
    assert "list is unchanged" in str(caught.value)
    assert _members(emu, list_id) == ["old-1", "old-2"] and _drafts(emu) == 0


@pytest.mark.asyncio
async def test_a_cancelled_replace_resumes_from_its_journal(
    suprsend_emulator: Emulator, tmp_path: Path
) -> None:
    emu = suprsend_emulator
    journal = str(tmp_path / "replace.journal")
    new = max(SCALE, 30_000)
    async with _client(emu) as client:
        list_id = await _new_list(client, ["old-1", "old-2"])
        emu.set_faults(latency_ms=100)
        stop = asyncio.Event()

        def halfway(p: BulkProgress) -> None:
            if p.succeeded >= new // 3:
                stop.set()

        task = asyncio.ensure_future(
            client.subscriber_lists.replace(
                list_id, ids("n", new), journal=journal, concurrency=1, on_progress=halfway
            )
        )
        await stop.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert _members(emu, list_id) == ["old-1", "old-2"]  # the live list is as it was
        assert _drafts(emu) == 1 and _exists(journal)
        emu.set_faults()
        done = await client.subscriber_lists.replace(list_id, ids("n", new), journal=journal)
    assert done["subscribers_count"] == new and done.account.success == new
    assert done.account.requests < -(-new // 10_000)  # the chunks already in the draft were skipped
    assert _members(emu, list_id) == list(ids("n", new))
    assert _drafts(emu) == 0 and not _exists(journal)


@pytest.mark.asyncio
async def test_a_broadcast_reaches_every_member_added_at_scale(suprsend_emulator: Emulator) -> None:
    async with _client(suprsend_emulator) as client:
        list_id = await _new_list(client, [])
        await client.subscriber_lists.add(list_id, ids("u", 12_000))
        body = {"list_id": list_id, "template": "t1", "notification_category": "promotional"}
        sent = await client.subscriber_lists.broadcast(SubscriberListBroadcast(body))
    assert sent.success


@pytest.mark.asyncio
async def test_the_inbox_page_shows_a_row_per_member_a_broadcast_reached(
    suprsend_emulator: Emulator,
) -> None:
    from suprsend_async.emulator._inbox_rows import InboxQuery

    async with _client(suprsend_emulator) as client:
        list_id = await _new_list(client, ["m1", "m2", "m3"])
        body = {"list_id": list_id, "template": "digest", "notification_category": "promotional"}
        sent = await client.subscriber_lists.broadcast(SubscriberListBroadcast(body))
        assert sent.success
        page = suprsend_emulator.state.inbox.query(InboxQuery(), limit=50)
        later = SubscriberListBroadcast({**body, "delay": "1h"}, idempotency_key="later")
        await client.subscriber_lists.broadcast(later)
        after = suprsend_emulator.state.inbox.query(InboxQuery(), limit=50)
    rows = [r for r in page["items"] if r["api"] == "broadcast"]
    reached = sorted(d for r in rows for d in r["distinct_ids"])
    assert reached == ["m1", "m2", "m3"]  # the request's row has no recipients of its own
    assert {r["name"] for r in rows} == {"digest"} and len(rows) == 4
    assert after["total"] == page["total"] + 1  # a held broadcast reached nobody yet
