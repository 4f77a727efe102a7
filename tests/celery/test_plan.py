"""Planning jobs into shards, reading shards, keys and accounts (no Redis, no network)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from suprsend_async.celery import (
    JobAccount,
    JobPlan,
    ShardAccount,
    idempotency_key,
    plan_jsonl,
    plan_loader,
    plan_records,
)
from suprsend_async.celery._entries import entries as _entries

from .support import record, write_jsonl


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
