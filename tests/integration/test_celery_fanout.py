"""100,000 records fanned out over three real Celery workers on a real Redis; one is killed.

The worker processes are ``celery worker`` subprocesses (prefork, one pool process each) that
send to the emulator running in this process. Mid-shard, the pool process running a shard is
killed with SIGKILL: its message is handed back to the broker (``reject_on_worker_lost``) and
another process runs the shard again. The emulator runs in its normal mode, the one that keeps
idempotency keys (fast mode does not), so it can show that every record was processed once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from suprsend_async.celery import Fanout
from suprsend_async.emulator import Emulator
from tests.redis_server import redis_client, redis_url

__all__ = ["redis_client", "redis_url"]  # fixtures, used by name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDS = int(os.environ.get("SUPRSEND_FANOUT_RECORDS", "100000"))
PER_SHARD = max(RECORDS // 25, 1)
WORKERS = 3


@pytest.fixture
def workers(
    redis_url: str, redis_client: redis.Redis, suprsend_emulator: Emulator, tmp_path: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "FANOUT_TEST_REDIS_URL": redis_url,
        "SUPRSEND_WORKSPACE_KEY": suprsend_emulator.config.workspace_key,
        "SUPRSEND_WORKSPACE_SECRET": suprsend_emulator.config.workspace_secret,
        "SUPRSEND_BASE_URL": suprsend_emulator.base_url,
        "PYTHONPATH": str(ROOT),
    }
    log = (tmp_path / "workers.log").open("wb")  # a file: an unread pipe could fill and block
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "tests.integration.celery_app",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=WARNING",
                "--hostname",
                f"fanout{i}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for i in range(WORKERS)
    ]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # warm shutdown
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
                proc.kill()
                proc.wait()
        log.close()


def test_a_worker_killed_mid_shard_leaves_every_record_processed_once(
    workers: list[subprocess.Popen[bytes]],
    redis_url: str,
    suprsend_emulator: Emulator,
    tmp_path: Path,
) -> None:
    source = tmp_path / "recipients.jsonl"
    with source.open("w") as out:
        for i in range(RECORDS):
            body = {
                "workflow": "newsletter",
                "recipients": [{"distinct_id": f"user-{i}", "$email": f"user-{i}@example.com"}],
                "data": {"record_id": i},
            }
            out.write(json.dumps(body) + "\n")

    producer = Fanout(Celery("producer", broker=redis_url, backend=redis_url), lambda: None)  # type: ignore[arg-type,return-value]
    plan = producer.plan_jsonl("newsletter-2026-12", source, records_per_shard=PER_SHARD)
    assert plan.total == RECORDS and len(plan) == 25
    job = producer.submit(plan)

    # Wait until some shard is part-way through, then kill the process running it.
    accepted = suprsend_emulator.state.accepted_by_key  # read live (plain dict reads)
    victim: tuple[int, int, int] | None = None
    deadline = time.monotonic() + 180
    while victim is None:
        assert time.monotonic() < deadline, "no shard was seen running part-way"
        for shard, where in job.progress().running.items():
            spec = plan.shards[shard]
            first, count = spec["first"], spec["count"]
            sent = sum(
                1
                for line in range(first, first + count)
                if f"newsletter-2026-12/{line}" in accepted
            )
            if 0 < sent < count // 2:
                pid = int(where.rsplit(":", 1)[1])
                os.kill(pid, signal.SIGKILL)
                victim = (shard, pid, sent)
                break
        time.sleep(0.02)
    shard, pid, sent_before_kill = victim

    account = job.result(timeout=300)

    # The job's account: every record, once, and it agrees with the emulator.
    assert (account.status, account.total, account.succeeded) == ("success", RECORDS, RECORDS)
    assert account.failure == 0 and account.failed_records == []
    stats = suprsend_emulator.stats
    keys = suprsend_emulator.accepted_by_key
    assert len(keys) == RECORDS and set(keys.values()) == {1}
    assert set(keys) == {f"newsletter-2026-12/{i}" for i in range(RECORDS)}
    assert stats["records_accepted"] == RECORDS == account.succeeded
    assert len(suprsend_emulator.accepted_by_record) == RECORDS
    assert stats["records_received"] == stats["records_accepted"] + stats["duplicates_skipped"]
    # The killed shard ran again elsewhere; the records it had sent were not processed twice.
    killed = account.shards[shard]
    assert killed.deliveries >= 2 and not killed.worker.endswith(f":{pid}")
    assert killed.skipped > 0 or stats["duplicates_skipped"] > 0
    print(
        f"\nkilled pid {pid} in shard {shard} after {sent_before_kill} of"
        f" {plan.shards[shard]['count']} records; its re-delivery skipped {killed.skipped}"
        f" already recorded; the emulator skipped {stats['duplicates_skipped']} duplicates"
    )

    # A re-run of the finished job sends nothing: not one request.
    requests = stats["requests"]
    again = job.rerun().result(timeout=300)
    assert (again.total, again.succeeded, again.sent, again.skipped) == (
        RECORDS,
        RECORDS,
        0,
        RECORDS,
    )
    assert suprsend_emulator.stats["requests"] == requests
    assert all(proc.poll() is None for proc in workers)  # the workers themselves live on
