"""Bulk user edits against the emulator: applied to its users, and accounted exactly once.

The official SDK's bulk and ours leave the emulator's users the same. Under faults (answers
lost after processing, 5xx before it) every edit of an import is accounted exactly once, and
none is applied twice: each event keeps its ``$insert_id`` on every retry and resend, and the
emulator skips one it has applied. The import's size is ``SUPRSEND_IDENTITY_IMPORT_N``
(10,000 by default; 100,000 was run once locally, see the project's report).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import suprsend

from suprsend_async import AsyncSuprsend, RecordOutcome, UserEdit
from suprsend_async.emulator import Emulator, Faults

pytestmark = pytest.mark.integration

N = int(os.environ.get("SUPRSEND_IDENTITY_IMPORT_N", "10000"))


def _client(emu: Emulator, **options: Any) -> AsyncSuprsend:
    key, secret = emu.config.workspace_key, emu.config.workspace_secret
    return AsyncSuprsend(key, secret, emu.base_url, **options)


def _users(emu: Emulator) -> dict[str, dict[str, Any]]:
    return {u["distinct_id"]: u for u in emu.state.management.users.users}


def _edit_of(client: Any, i: int, legacy: bool = False) -> Any:
    edit = client.user.get_instance(f"u{i}") if legacy else client.users.get_edit_instance(f"u{i}")
    edit.add_email(f"u{i}@example.com")
    edit.set("i", i)
    edit.increment("imports", 1)  # applied twice, it would read 2
    return edit


def _official_bulk(emu: Emulator, n: int) -> Any:
    client = suprsend.Suprsend(
        emu.config.workspace_key, emu.config.workspace_secret, base_url=emu.base_url
    )
    bulk = client.users.get_bulk_edit_instance()
    bulk.append(*(_edit_of(client, i) for i in range(n)))
    return bulk.save()


def _view(users: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {
        k: (u["properties"], [e["value"] for e in u["$email"]]) for k, u in sorted(users.items())
    }


async def test_the_official_bulk_and_ours_leave_the_same_users() -> None:
    async with Emulator() as emu:
        theirs = await asyncio.to_thread(_official_bulk, emu, 450)
        assert (theirs.status, theirs.total, theirs.success) == ("success", 450, 450)
        their_users = _view(_users(emu))
        emu.state.management.reset()
        async with _client(emu) as client:
            bulk = client.bulk_users.new_instance()
            bulk.append(*(_edit_of(client, i, legacy=True) for i in range(450)))
            ours = await bulk.save()
        assert (ours.status, ours.total, ours.success, ours.requests) == ("success", 450, 450, 2)
        assert _view(_users(emu)) == their_users
        assert their_users["u7"] == ({"i": 7, "imports": 1}, ["u7@example.com"])


async def test_a_legacy_subscriber_saves_into_the_emulator() -> None:
    async with Emulator() as emu, _client(emu) as client:
        user = client.user.get_instance("ada")
        user.add_sms("+15555550123")
        user.set_timezone("Europe/Paris")
        saved = await user.save()
        assert (saved["success"], saved["status_code"]) == (True, 202)
        profile = await client.users.get("ada")
        assert profile["$timezone"] == "Europe/Paris"
        assert [e["value"] for e in profile["$sms"]] == ["+15555550123"]


def _edits(client: AsyncSuprsend, indices: Iterator[int] | range) -> Iterator[UserEdit]:
    for i in indices:
        yield _edit_of(client, i)


async def test_an_import_under_faults_accounts_for_every_user_once() -> None:
    """5% of answers lost after processing, 10% 5xx: exactly one outcome per edit, none applied
    twice; resending what did not succeed (under the same ``$insert_id``) completes it."""
    faults = Faults(rate_5xx=0.10, rate_drop=0.05, seed=1)
    started = time.monotonic()
    # No retries in the first pass: lost answers stay unknown and 5xx stay failed, so the
    # rerun resends events the emulator has applied already (and must skip).
    async with Emulator(faults=faults) as emu, _client(emu, max_retries=0) as client:
        seen: Counter[int] = Counter()
        states: dict[int, str] = {}

        def on_outcome(outcome: RecordOutcome) -> None:
            seen[outcome.index] += 1
            states[outcome.index] = outcome.state

        summary = await client.users.bulk_edit(
            _edits(client, range(N)),
            idempotency_key_from="distinct_id",  # the same $insert_id on a rerun
            on_outcome=on_outcome,
            keep_failed_records=False,
        )
        assert set(seen) == set(range(N)) and set(seen.values()) == {1}
        assert summary.total == N and summary.success + summary.failure == N
        counts = Counter(states.values())
        assert counts["succeeded"] == summary.success
        assert counts["unknown"] > 0 and counts["failed"] > 0
        stats = emu.state.stats
        assert stats["injected_drop"] > 0 and stats["injected_5xx"] > 0
        users = _users(emu)
        assert all(u["properties"]["imports"] == 1 for u in users.values())
        assert all(f"u{i}" in users for i, s in states.items() if s == "succeeded")

        again = [i for i, s in states.items() if s != "succeeded"]
        emu.state.set_faults(Faults())
        rerun = await client.users.bulk_edit(
            _edits(client, iter(again)), idempotency_key_from="distinct_id"
        )
        assert (rerun.total, rerun.success) == (len(again), len(again))
    users = _users(emu)
    assert len(users) == N
    assert all(u["properties"] == {"i": int(k[1:]), "imports": 1} for k, u in users.items())
    print(
        f"\n{N:,} users under faults: {counts} first, {len(again)} resent;"
        f" {stats['injected_drop']} answers lost, {stats['injected_5xx']} 5xx;"
        f" {time.monotonic() - started:.1f} s"
    )


async def test_a_cancelled_save_keeps_a_true_account_and_a_later_save_completes_it() -> None:
    """Cancelled after the first answer: every edit has one state, none applied twice; the
    next ``save(resend_unknown=True)`` sends the rest."""
    async with Emulator(faults=Faults(latency_ms=30)) as emu, _client(emu) as client:
        bulk = client.users.get_bulk_edit_instance()
        bulk.append(*(_edit_of(client, i) for i in range(4000)))
        answered = asyncio.Event()

        def on_progress(_progress: Any) -> None:
            answered.set()

        task = asyncio.create_task(bulk.save(concurrency=2, on_progress=on_progress))
        await answered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        first = Counter(o.state for o in bulk.outcomes)
        assert sum(first.values()) == 4000 and first["succeeded"] >= 400
        assert first["not_sent"] > 0
        result = await bulk.save(resend_unknown=True)
        assert (result.total, result.success) == (4000, 4000)
    users = _users(emu)
    assert len(users) == 4000 and all(u["properties"]["imports"] == 1 for u in users.values())


def test_a_tenant_scoped_identity_event_reads_back_at_its_tenant(
    suprsend_emulator: Emulator,
) -> None:
    with suprsend_emulator.sync_client() as client:
        client.tenants.upsert("acme", {"tenant_name": "Acme"})
        client.users.upsert("ada", {})
        edit = client.users.get_edit_instance("ada", tenant_id="Acme")
        edit.set("plan", "pro")
        assert client.users.async_edit(edit)["success"] is True
        assert client.users.get_for_tenant("ada", "acme")["properties"]["plan"] == "pro"
