"""The Celery fan-out in one process: planning, keys, accounts and re-runs.

Shards run eagerly (``task_always_eager``) against a real Redis (state) and the emulator, so
what is checked here is the fan-out's logic; tests/integration/test_celery_fanout.py runs it
across real worker processes with a real broker.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from suprsend_async import Suprsend
from suprsend_async.celery import (
    Fanout,
    JobAccount,
    JobPlan,
    ShardAccount,
    _entries,
    _Store,
    _SucceededWriter,
    idempotency_key,
    plan_jsonl,
    plan_loader,
    plan_records,
)
from suprsend_async.emulator import Emulator
from tests.redis_server import redis_client, redis_url

__all__ = ["redis_client", "redis_url"]  # fixtures, used by name


def record(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "workflow": "fanout-test",
        "recipients": [{"distinct_id": f"user-{i}", "$email": f"user-{i}@example.com"}],
        "data": {"record_id": i, **extra},
    }


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def fanout(
    redis_client: redis.Redis, redis_url: str, suprsend_emulator: Emulator
) -> Iterator[Fanout]:
    app = Celery("fanout-unit", broker="memory://", backend="cache+memory://")
    app.conf.task_always_eager = True
    made: list[Suprsend] = []

    def factory() -> Suprsend:
        client = suprsend_emulator.sync_client(max_retries=0)
        made.append(client)
        return client

    f = Fanout(app, factory, state_url=redis_url, max_retries=2, loaders={"range": load_range})
    yield f
    f._on_process_shutdown()
    for client in made:
        client.close()


# -- keys and planning ----------------------------------------------------------------------


def test_idempotency_key_is_job_and_identity_and_fits_the_service_limit() -> None:
    assert idempotency_key("job-1", "17") == "job-1/17"
    assert idempotency_key("job-1", "17") == idempotency_key("job-1", "17")
    assert idempotency_key("job-1", "17") != idempotency_key("job-2", "17")
    long = idempotency_key("job-1", "k:" + "x" * 400)
    assert len(long) <= 255 and long.startswith("job-1/sha256:")
    assert long == idempotency_key("job-1", "k:" + "x" * 400)
    assert long != idempotency_key("job-1", "k:" + "x" * 401)


@pytest.mark.parametrize("job_id", ["", " job", "job id", "-job", "j" * 129, 7])
def test_job_ids_that_would_make_bad_keys_are_refused(job_id: Any) -> None:
    with pytest.raises(ValueError, match="job_id"):
        plan_records(job_id, [record(1)])


def test_shard_size_and_loader_name_are_checked() -> None:
    with pytest.raises(ValueError, match="records_per_shard"):
        plan_records("job", [record(1)], records_per_shard=0)
    with pytest.raises(ValueError, match="records_per_shard"):
        plan_records("job", [record(1)], records_per_shard=True)
    with pytest.raises(ValueError, match="loader"):
        plan_loader("job", "not a loader", [{}])
    with pytest.raises(ValueError, match="loader"):
        plan_loader("job", "pkg.module:function", [{}])


def test_plan_jsonl_cuts_byte_ranges_at_line_boundaries(tmp_path: Path) -> None:
    lines = [json.dumps(record(i)) for i in range(10)]
    lines.insert(4, "")  # a blank line keeps its number and is not a record
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    plan = plan_jsonl("job", path, records_per_shard=3)
    assert plan.total == 10 and len(plan) == 4
    assert [s["count"] for s in plan.shards] == [3, 3, 3, 1]
    assert plan.shards[0]["start"] == 0 and plan.shards[-1]["end"] == path.stat().st_size
    for before, after in zip(plan.shards, plan.shards[1:], strict=False):
        assert before["end"] == after["start"]
    identities = [e.identity for s in plan.shards for e in _entries(s)]
    assert identities == ["0", "1", "2", "3", "5", "6", "7", "8", "9", "10"]
    ids = [e.record["data"]["record_id"] for s in plan.shards for e in _entries(s)]
    assert ids == list(range(10))


def test_plan_jsonl_of_whole_shards_and_of_nothing(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [json.dumps(record(i)) for i in range(4)])
    assert [s["count"] for s in plan_jsonl("job", path, records_per_shard=2).shards] == [2, 2]
    empty = write_jsonl(tmp_path / "empty.jsonl", ["", "  "])
    assert plan_jsonl("job", empty) == JobPlan("job", (), 0)


def test_plan_records_carries_records_and_positions() -> None:
    plan = plan_records("job", (record(i) for i in range(5)), records_per_shard=2)
    assert plan.total == 5 and [s["count"] for s in plan.shards] == [2, 2, 1]
    assert [e.identity for s in plan.shards for e in _entries(s)] == ["0", "1", "2", "3", "4"]
    json.dumps(plan.shards)  # what travels in a task message


def test_business_key_identities_and_records_that_cannot_be_sent(tmp_path: Path) -> None:
    lines = [
        json.dumps(record(1, order="a")),
        "{not json",
        "[1, 2]",
        json.dumps(record(2)),  # no order
        json.dumps(record(3, order={"nested": 1})),
    ]
    path = write_jsonl(tmp_path / "in.jsonl", lines)
    (shard,) = plan_jsonl("job", path, key_from="data.order").shards
    entries = _entries(shard)
    assert entries[0].identity == "k:a" and entries[0].error is None
    assert "line 2: not valid JSON" in (entries[1].error or "")
    assert "expected a JSON object, got list" in (entries[2].error or "")
    assert "data.order is missing" in (entries[3].error or "")
    assert "data.order is missing or not a value" in (entries[4].error or "")


def test_unknown_shard_source_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown shard source"):
        _entries({"source": "ftp", "job": "j", "shard": 0})


# -- running jobs ---------------------------------------------------------------------------


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


LOADED: list[Mapping[str, Any]] = []


def load_range(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """A user loader: the records with ids in [start, stop)."""
    LOADED.append(spec)
    if spec.get("explode"):
        raise RuntimeError("database is down")
    for i in range(spec["start"], spec["stop"]):
        yield record(i)


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
    fanout._store().begin(plan)
    redis_client.hset(fanout._store().key("loop", "deliveries"), "0", fanout.max_deliveries)
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
    store = fanout._store()
    first = store.begin(plan)
    second = store.begin(plan)  # re-submitted while the first run's shard was still going
    assert second == first + 1
    late = fanout.run_shard({**plan.shards[0], "run": first})
    assert late["succeeded"] == 3  # it did its work, and says so in its own result
    assert fanout.job("runs").account() is None  # but the current run has no account yet
    fanout.run_shard({**plan.shards[0], "run": second})
    account = fanout.job("runs").account()
    assert account is not None and (account.succeeded, account.skipped) == (3, 3)


def test_legacy_records_go_to_the_legacy_endpoint(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    legacy = {
        "name": "welcome",
        "template": "welcome-mail",
        "notification_category": "transactional",
        "users": [{"distinct_id": "u1", "$email": ["u1@example.com"]}],
    }
    plan = fanout.plan_records("old", [legacy], legacy=True)
    assert fanout.submit(plan).result(timeout=60).succeeded == 1
    (trigger,) = suprsend_emulator.triggers
    assert trigger.api == "legacy" and trigger.idempotency_key == "old/0"


def test_empty_plan_finishes_at_once(fanout: Fanout) -> None:
    job = fanout.submit(fanout.plan_records("empty", []))
    account = job.result(timeout=1)
    assert (account.total, account.status, account.shards) == (0, "success", [])
    assert job.tasks is None


# -- watching jobs --------------------------------------------------------------------------


def test_progress_and_result_of_a_job_still_running(fanout: Fanout) -> None:
    plan = plan_loader("slow", "range", [{}, {}])
    store = fanout._store()
    store.begin(plan)
    store.start("slow", 1, "host:42")
    job = fanout.job("slow")
    progress = job.progress()
    assert (progress.shards, progress.shards_done, progress.total) == (2, 0, None)
    assert progress.running == {1: "host:42"} and progress.fraction is None
    assert not progress.finished
    assert job.account() is None
    with pytest.raises(TimeoutError, match="not finished"):
        job.result(timeout=0.05, interval=0.01)
    with pytest.raises(ValueError, match="no plan"):
        job.rerun()
    assert repr(job) == "Job('slow')"


def test_unknown_jobs_are_a_lookup_error(fanout: Fanout) -> None:
    with pytest.raises(LookupError):
        fanout.job("never").progress()
    with pytest.raises(LookupError):
        fanout.job("never").account()


def test_accounts_add_up() -> None:
    def shard(n: int, **counts: int) -> ShardAccount:
        base: dict[str, Any] = {"total": 10, "succeeded": 10, "failed": 0, "unknown": 0}
        base |= {"not_sent": 0, "sent": 10, "skipped": 0, **counts}
        return ShardAccount(shard=n, deliveries=1, worker="h:1", **base)

    failed = {"identity": "3", "state": "unknown"}
    parts = [
        shard(1, succeeded=0, unknown=10),
        shard(0, succeeded=7, failed=2, not_sent=1),
    ]
    parts[0].failed_records.append(failed)
    account = JobAccount.add_up("j", parts)
    assert (account.status, account.total, account.succeeded, account.failure) == (
        "partial",
        20,
        7,
        13,
    )
    assert [s.shard for s in account.shards] == [0, 1]
    assert account.failed_records == [dict(failed, shard=1)]
    none = JobAccount.add_up("j", [shard(0, succeeded=0, failed=10)])
    assert none.status == "fail"
    assert ShardAccount.from_dict({**vars_of(parts[1]), "extra": 1}) == parts[1]


def vars_of(account: ShardAccount) -> dict[str, Any]:
    return {name: getattr(account, name) for name in ShardAccount.__dataclass_fields__}


def test_job_plan_length() -> None:
    assert len(JobPlan("j", ({}, {}), 2)) == 2


# -- per-process resources ------------------------------------------------------------------


def test_state_url_defaults_to_a_redis_of_the_app(redis_url: str) -> None:
    app = Celery("a", broker="memory://", backend=redis_url)
    assert Fanout(app, task_name="t.a").state_url == redis_url
    app = Celery("b", broker=redis_url, backend="cache+memory://")
    assert Fanout(app, task_name="t.b").state_url == redis_url
    with pytest.raises(ValueError, match="state_url"):
        Fanout(Celery("c", broker="memory://", backend="cache+memory://"), task_name="t.c")


def test_one_client_per_process_made_at_start_and_closed_at_shutdown(fanout: Fanout) -> None:
    fanout._on_process_init()
    client = fanout.client()
    assert fanout.client() is client
    fanout._client_pid = -1  # as if this process had been forked from the one that made it
    assert fanout.client() is not client
    fresh = fanout.client()
    fanout._on_process_shutdown()
    with pytest.raises(Exception, match="closed"):
        fresh.workflows.trigger(record(1))
    fanout._on_process_shutdown()  # nothing left to close
    assert fanout._client is None


def test_a_client_that_cannot_be_made_at_start_is_logged_and_tried_per_shard(
    redis_url: str, redis_client: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    app = Celery("noenv", broker="memory://", backend="cache+memory://")
    app.conf.task_always_eager = True
    f = Fanout(app, state_url=redis_url, task_name="t.noenv", max_retries=0)
    f._on_process_init()  # no SUPRSEND_* variables: the default client cannot be made
    assert "could not make the client at process start" in caplog.text
    (shard,) = f.submit(f.plan_records("noenv", [record(1)])).result(timeout=10).shards
    assert "ConfigurationError" in (shard.error or "") and shard.not_sent == 1


def test_default_client_comes_from_the_environment(
    redis_url: str, suprsend_env: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = Celery("env", broker="memory://", backend="cache+memory://")
    f = Fanout(app, state_url=redis_url, task_name="t.env")
    client = f.client()
    try:
        assert client.base_url == suprsend_env.base_url
    finally:
        f._on_process_shutdown()


def test_state_writer_keeps_identities_until_redis_takes_them(
    redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("suprsend_async.celery._FLUSH_INTERVAL", 0.01)
    tries = threading.Semaphore(0)

    class Down(_Store):
        up = False

        def add_succeeded(self, job_id: str, identities: list[str]) -> None:
            if not self.up:
                tries.release()
                raise redis.ConnectionError("Redis is down")
            super().add_succeeded(job_id, identities)

    store = Down(redis_client, "p", 60)
    writer = _SucceededWriter(store, "job")
    writer.add("1")
    writer.add("2")
    assert tries.acquire(timeout=10) and tries.acquire(timeout=10)  # it tried, and kept going
    with pytest.raises(redis.ConnectionError):
        writer.close()
    assert writer._pending == ["1", "2"] and writer.written == 0
    store.up = True
    writer.flush()
    assert writer.written == 2 and writer._pending == []
    assert redis_client.smembers("p:{job}:done") == {b"1", b"2"}
    assert redis_client.ttl("p:{job}:done") > 0


def test_worker_pid_is_recorded_while_a_shard_runs(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    seen: list[dict[int, str]] = []
    plan = fanout.plan_records("where", [record(1)])
    fanout._store().begin(plan)
    real = fanout.client

    def spy() -> Suprsend:
        seen.append(fanout.job("where").progress().running)
        return real()

    fanout.client = spy  # type: ignore[method-assign]
    fanout.run_shard(plan.shards[0])
    assert seen == [{0: f"{os.uname().nodename}:{os.getpid()}"}]
    assert fanout.job("where").progress().running == {}
