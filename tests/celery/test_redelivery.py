"""A shard delivered twice, a job submitted twice: the account says what was really sent.

Each delivery's account is merged with the shard's other deliveries in the same run: a record
that succeeded is counted once, as sent if any delivery of the run sent it; any other record
has the best state a delivery gave it.
"""

from __future__ import annotations

import pytest
import redis

from suprsend_async.celery import Fanout
from suprsend_async.emulator import Emulator

from .support import record


def _run_of(fanout: Fanout, job_id: str) -> int:
    raw = fanout._state().redis.get(fanout._state().key(job_id, "run"))
    assert raw is not None
    return int(raw)


def test_a_shard_delivered_again_after_it_finished(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    plan = fanout.plan_records("again", [record(i) for i in range(250)], records_per_shard=100)
    job = fanout.submit(plan)
    assert job.result(timeout=60).sent == 250
    run = _run_of(fanout, "again")
    # The broker hands shard 0 out again (its acknowledgement was lost): nothing is left to
    # send, and the shard's account still says the run sent its 100 records.
    data = fanout.run_shard({**plan.shards[0], "run": run})
    assert (data["sent"], data["skipped"], data["succeeded"], data["deliveries"]) == (
        100,
        0,
        100,
        2,
    )
    account = job.result(timeout=60)
    assert (account.total, account.succeeded, account.sent, account.skipped) == (250, 250, 250, 0)
    assert account.shards[0].deliveries == 2
    assert suprsend_emulator.accepted_by_key == {f"again/{i}": 1 for i in range(250)}


def test_a_redelivery_settles_what_the_first_delivery_left_unknown(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    plan = fanout.plan_records("lost", [record(i) for i in range(300)], records_per_shard=300)
    suprsend_emulator.set_faults(drop_next=1)  # the first request's answer is lost
    first = fanout.submit(plan).result(timeout=60)
    assert (first.unknown, first.sent) == (100, 300)
    assert {r["state"] for r in first.failed_records} == {"unknown"}
    data = fanout.run_shard({**plan.shards[0], "run": _run_of(fanout, "lost")})
    # The second delivery resent only the 100 unknown records (the service skipped them);
    # the shard's account is the run's: every record sent, every one succeeded.
    account = fanout.job("lost").account()
    assert account is not None
    assert (account.succeeded, account.unknown, account.sent, account.skipped) == (300, 0, 300, 0)
    assert account.failed_records == [] and data["failed_records"] == []
    assert suprsend_emulator.stats["duplicates_skipped"] == 100
    assert set(suprsend_emulator.accepted_by_key.values()) == {1}


def test_a_job_submitted_twice_while_it_runs_is_one_run(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    plan = fanout.plan_records("twice", [record(i) for i in range(200)], records_per_shard=100)
    state = fanout._state()
    first = state.begin(plan)
    second = state.begin(plan)  # submitted again before any shard finished: the same run
    assert second == first
    # Both submissions' tasks run: each shard is delivered twice.
    for spec in [*plan.shards, *plan.shards]:
        fanout.run_shard({**spec, "run": second})
    account = fanout.job("twice").account()
    assert account is not None
    assert (account.succeeded, account.sent, account.skipped) == (200, 200, 0)
    assert [s.deliveries for s in account.shards] == [2, 2]
    assert set(suprsend_emulator.accepted_by_key.values()) == {1}
    # Once the run has finished, submitting again is a rerun: nothing is sent, all skipped.
    again = fanout.submit(plan).result(timeout=60)
    assert (again.succeeded, again.sent, again.skipped) == (200, 0, 200)


@pytest.mark.parametrize("order", ["failed first", "unknown first"])
def test_the_best_state_of_a_record_wins(
    fanout: Fanout, redis_client: redis.Redis, order: str
) -> None:
    plan = fanout.plan_records("best", [record(0), record(1)])
    state = fanout._state()
    run = state.begin(plan)
    base = {"shard": 0, "total": 2, "deliveries": 1, "worker": "w", "warnings": [], "error": None}
    worse = {"0": "failed", "1": "not_sent"}
    better = {"0": "unknown", "1": "failed"}
    failed = [{"identity": i, "idempotency_key": f"best/{i}", "code": None, "error": "x"}
              for i in ("0", "1")]  # fmt: skip
    for states in [worse, better] if order == "failed first" else [better, worse]:
        merged = state.merge("best", 0, run, ["0", "1"], states, {**base, "failed_records": failed})
    assert merged is not None
    assert (merged["unknown"], merged["failed"], merged["not_sent"]) == (1, 1, 0)
    assert [r["state"] for r in merged["failed_records"]] == ["unknown", "failed"]
    assert merged["failed_records"][0]["idempotency_key"] == "best/0"
    # A success (in the journal) beats every other state.
    journal = state.journal("best")
    journal.record("0", "succeeded")
    journal.flush()
    merged = state.merge(
        "best", 0, run, ["0", "1"], {"0": "failed"}, {**base, "failed_records": failed}
    )
    assert merged is not None and (merged["succeeded"], merged["unknown"]) == (1, 0)
    assert [r["identity"] for r in merged["failed_records"]] == ["1"]
