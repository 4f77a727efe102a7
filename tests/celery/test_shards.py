"""Running shards eagerly: each record once, re-runs, refusals, giving up, legacy records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis

from suprsend_async.celery import Fanout, ShardAccount, plan_loader
from suprsend_async.emulator import Emulator

from .support import LOADED, record, write_jsonl


def test_jsonl_job_sends_each_record_once_and_a_rerun_sends_nothing(
    fanout: Fanout, suprsend_emulator: Emulator, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [json.dumps(record(i)) for i in range(250)])
    plan = fanout.plan_jsonl("news-1", path, records_per_shard=100)
    job = fanout.submit(plan)
    account = job.result(timeout=60)
    assert (account.status, account.total, account.succeeded, account.sent) == (
        "success",
        250,
        250,
        250,
    )
    assert account.failure == 0 and account.failed_records == []
    assert [s.shard for s in account.shards] == [0, 1, 2]
    assert all(s.deliveries == 1 for s in account.shards)
    assert suprsend_emulator.accepted_by_key == {f"news-1/{i}": 1 for i in range(250)}
    # Each shard task's result is its account.
    assert [ShardAccount.from_dict(r) for r in job.tasks.get()] == account.shards
    progress = job.progress()
    assert progress.finished and progress.succeeded == 250 and progress.fraction == 1.0
    assert progress.running == {}

    requests = suprsend_emulator.stats["requests"]
    again = job.rerun().result(timeout=60)
    assert (again.total, again.succeeded, again.sent, again.skipped) == (250, 250, 0, 250)
    assert suprsend_emulator.stats["requests"] == requests  # not one request


def test_a_rerun_resends_only_what_did_not_succeed(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    records = [record(i) for i in range(300)]
    suprsend_emulator.set_faults(rate_record_5xx=0.3, seed=7)
    first = fanout.submit(fanout.plan_records("resume", records, records_per_shard=120))
    account = first.result(timeout=60)
    failed = account.failed
    assert account.status == "partial" and 0 < failed < 300
    assert account.succeeded + failed == 300
    assert {r["state"] for r in account.failed_records} == {"failed"}
    assert all(r["code"] == 503 for r in account.failed_records)
    assert all(r["idempotency_key"] == f"resume/{r['identity']}" for r in account.failed_records)

    suprsend_emulator.set_faults()
    again = first.rerun().result(timeout=60)
    assert (again.status, again.succeeded, again.sent, again.skipped) == (
        "success",
        300,
        failed,
        300 - failed,
    )
    accepted = suprsend_emulator.accepted_by_key
    assert accepted == {f"resume/{i}": 1 for i in range(300)}
    assert suprsend_emulator.stats["duplicates_skipped"] == 0


def test_bad_records_are_failed_records_and_the_account_adds_up(
    fanout: Fanout, suprsend_emulator: Emulator, tmp_path: Path
) -> None:
    lines = [json.dumps(record(i, order=f"o{i}")) for i in range(5)]
    invalid_body = {"workflow": "w", "recipients": [], "data": {"order": "bad"}}
    lines += ["{oops", json.dumps(invalid_body), json.dumps(record(9))]
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    job = fanout.submit(fanout.plan_jsonl("bad", path, key_from="data.order"))
    account = job.result(timeout=60)
    assert (account.total, account.succeeded, account.failed) == (8, 5, 3)
    assert account.succeeded + account.failure == account.total
    errors = {r["identity"]: r for r in account.failed_records}
    assert "not valid JSON" in errors["5"]["error"] and errors["5"]["code"] == 400
    assert "data.order is missing" in errors["7"]["error"]
    # Refused by the SDK's validation before sending: a field path, code 400.
    invalid = errors["k:bad"]
    assert invalid["code"] == 400 and "recipients" in invalid["error"]
    assert invalid["idempotency_key"] == "bad/k:bad"
    assert set(suprsend_emulator.accepted_by_key) == {f"bad/k:o{i}" for i in range(5)}


def test_failed_records_beyond_the_cap_are_counted_not_listed(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    fanout.max_failed_records = 2
    records = [{"workflow": "w", "recipients": []} for _ in range(5)]
    account = fanout.submit(fanout.plan_records("cap", records)).result(timeout=60)
    (shard,) = account.shards
    assert shard.failed == 5 and len(shard.failed_records) == 2
    assert "3 more records did not succeed" in shard.warnings[0]
    assert suprsend_emulator.stats["requests"] == 0


def test_loader_job_with_a_business_key(fanout: Fanout, suprsend_emulator: Emulator) -> None:
    specs = [{"start": 0, "stop": 40}, {"start": 40, "stop": 100}]
    plan = fanout.plan_loader("loaded", "range", specs, key_from="data.record_id")
    assert plan.total is None
    job = fanout.submit(plan)
    account = job.result(timeout=60)
    assert (account.total, account.succeeded) == (100, 100)
    assert job.progress().total == 100
    assert set(suprsend_emulator.accepted_by_key) == {f"loaded/k:{i}" for i in range(100)}


def test_loader_positions_without_a_business_key(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    plan = fanout.plan_loader("pos", "range", [{"start": 5, "stop": 8}])
    assert fanout.submit(plan).result(timeout=60).succeeded == 3
    assert set(suprsend_emulator.accepted_by_key) == {"pos/0.0", "pos/0.1", "pos/0.2"}


def test_only_registered_loaders_can_be_called(fanout: Fanout) -> None:
    with pytest.raises(ValueError, match=r"'os' is not registered \(known: \['range'\]\)"):
        fanout.plan_loader("job", "os", [{}])
    # A message naming another loader (another fanout's, or forged) runs nothing.
    plan = plan_loader("unregistered", "other", [{"start": 0, "stop": 2}])
    (shard,) = fanout.submit(plan).result(timeout=60).shards
    assert "LookupError: loader 'other' is not registered here" in (shard.error or "")


def test_a_shard_that_keeps_failing_gives_up_with_an_account(fanout: Fanout) -> None:
    LOADED.clear()
    plan = fanout.plan_loader("explode", "range", [{"explode": True, "start": 0, "stop": 1}])
    account = fanout.submit(plan).result(timeout=60)
    assert len(LOADED) == 3  # the first try and max_retries=2 retries
    (shard,) = account.shards
    assert shard.error is not None and "RuntimeError: database is down" in shard.error
    assert "after 3 attempt(s)" in shard.error
    assert (shard.total, shard.not_sent, account.status) == (0, 0, "success")


def test_a_shard_that_gives_up_counts_what_it_did_not_send(
    fanout: Fanout, suprsend_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("no route")

    monkeypatch.setattr(fanout, "client", broken)
    account = fanout.submit(fanout.plan_records("broken", [record(i) for i in range(4)]))
    result = account.result(timeout=60)
    assert (result.total, result.not_sent, result.status) == (4, 4, "fail")
    assert "OSError: no route" in (result.shards[0].error or "")


def test_a_shard_whose_file_is_gone_gives_up_with_its_records_not_sent(
    fanout: Fanout, tmp_path: Path
) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [json.dumps(record(i)) for i in range(3)])
    plan = fanout.plan_jsonl("gone", path)
    path.unlink()
    (shard,) = fanout.submit(plan).result(timeout=60).shards
    assert (shard.total, shard.not_sent, shard.deliveries) == (3, 3, 3)
    assert "FileNotFoundError" in (shard.error or "")


def test_a_shard_delivered_too_often_is_given_up(
    fanout: Fanout, redis_client: redis.Redis, suprsend_emulator: Emulator
) -> None:
    plan = fanout.plan_records("loop", [record(i) for i in range(3)])
    fanout._state().begin(plan)
    redis_client.hset(fanout._state().key("loop", "deliveries"), "0", fanout.max_deliveries)
    data = fanout.run_shard(plan.shards[0])
    assert data["error"] == (
        "the shard gave up after 11 attempt(s): delivered more than max_deliveries=10 times"
    )
    assert (data["not_sent"], data["deliveries"]) == (3, 11)
    assert suprsend_emulator.stats["requests"] == 0


def test_a_shard_of_an_earlier_run_does_not_write_into_the_current_one(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    plan = fanout.plan_records("runs", [record(i) for i in range(3)])
    state = fanout._state()
    first = state.begin(plan)
    fanout.run_shard({**plan.shards[0], "run": first})  # the first run finishes
    second = state.begin(plan)  # a rerun
    assert second == first + 1
    late = fanout.run_shard({**plan.shards[0], "run": first})  # redelivered after the rerun
    assert late["succeeded"] == 3  # it did its work, and says so in its own result
    assert fanout.job("runs").account() is None  # but the current run has no account yet
    fanout.run_shard({**plan.shards[0], "run": second})
    account = fanout.job("runs").account()
    assert account is not None and (account.succeeded, account.skipped, account.sent) == (3, 3, 0)


def test_legacy_records_go_to_the_legacy_endpoint(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    legacy = {
        "name": "welcome",
        "template": "welcome-mail",
        "notification_category": "transactional",
        "users": [{"distinct_id": "u1", "$email": ["u1@example.com"]}],
    }
    plan = fanout.plan_records("old", [legacy], kind="legacy")
    assert fanout.submit(plan).result(timeout=60).succeeded == 1
    (trigger,) = suprsend_emulator.triggers
    assert trigger.api == "legacy" and trigger.idempotency_key == "old/0"


def test_event_records_go_to_the_bulk_events_endpoint(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    events = [{"event": "order_shipped", "distinct_id": f"u{i}"} for i in range(3)]
    plan = fanout.plan_records("ev", events, kind="event")
    assert fanout.submit(plan).result(timeout=60).succeeded == 3
    assert suprsend_emulator.triggers == [] and len(suprsend_emulator.events) == 3
    assert set(suprsend_emulator.accepted_by_key) == {"ev/0", "ev/1", "ev/2"}


def test_a_shard_queued_by_an_earlier_version_keeps_its_legacy_flag(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    legacy = {
        "name": "welcome",
        "template": "welcome-mail",
        "notification_category": "transactional",
        "users": [{"distinct_id": "u1"}],
    }
    plan = fanout.plan_records("older", [legacy])
    (spec,) = plan.shards
    del spec["kind"]
    fanout._state().begin(plan)
    assert fanout.run_shard({**spec, "legacy": True})["succeeded"] == 1
    assert [t.api for t in suprsend_emulator.triggers] == ["legacy"]


def test_a_kind_that_is_no_record_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind 'api'"):
        plan_loader("job", "range", [{}], kind="api")


def test_empty_plan_finishes_at_once(fanout: Fanout) -> None:
    job = fanout.submit(fanout.plan_records("empty", []))
    account = job.result(timeout=1)
    assert (account.total, account.status, account.shards) == (0, "success", [])
    assert job.tasks is None
