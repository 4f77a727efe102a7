"""100,000 records fanned out over three real Celery workers on a real Redis; one is killed.

The worker processes are ``celery worker`` subprocesses (prefork, one pool process each) that
send to the emulator running in this process. Mid-shard, the pool process running a shard is
killed with SIGKILL: its message is handed back to the broker (``reject_on_worker_lost``) and
another process runs the shard again. A second test loses a whole worker (main process and
pool) at once, as when a machine goes: the broker's visibility timeout brings the shard back. The emulator runs in its normal mode, the one that keeps
idempotency keys (fast mode does not), so it can show that every record was processed once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from celery import Celery

from suprsend_async.celery import Fanout, Job, JobAccount, JobPlan
from suprsend_async.emulator import Emulator
from tests.redis_server import redis_client, redis_url

__all__ = ["redis_client", "redis_url"]  # fixtures, used by name

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RECORDS = int(os.environ.get("SUPRSEND_FANOUT_RECORDS", "100000"))
PER_SHARD = max(RECORDS // 25, 1)
WORKERS = 3


StartWorkers = Callable[..., list[subprocess.Popen[bytes]]]


@pytest.fixture
def start_workers(
    redis_url: str, redis_client: redis.Redis, suprsend_emulator: Emulator, tmp_path: Path
) -> Iterator[StartWorkers]:
    """Starts ``celery worker`` processes (prefork, one pool process each); stops them after."""
    procs: list[subprocess.Popen[bytes]] = []
    log = (tmp_path / "workers.log").open("wb")  # a file: an unread pipe could fill and block

    def start(count: int, visibility_timeout: int = 600) -> list[subprocess.Popen[bytes]]:
        env = {
            **os.environ,
            "FANOUT_TEST_REDIS_URL": redis_url,
            "FANOUT_TEST_VISIBILITY_TIMEOUT": str(visibility_timeout),
            "SUPRSEND_WORKSPACE_KEY": suprsend_emulator.config.workspace_key,
            "SUPRSEND_WORKSPACE_SECRET": suprsend_emulator.config.workspace_secret,
            "SUPRSEND_BASE_URL": suprsend_emulator.base_url,
            "PYTHONPATH": str(ROOT),
        }
        started = [
            subprocess.Popen(
                [
                    sys.executable, "-m", "celery", "-A", "tests.integration.celery_app",
                    "worker", "--pool=prefork", "--concurrency=1", "--loglevel=WARNING",
                    "--hostname", f"fanout{len(procs) + i}@%h",
                    "--without-gossip", "--without-mingle", "--without-heartbeat",
                ],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its own process group: a node can be lost whole
            )
            for i in range(count)
        ]  # fmt: skip
        procs.extend(started)
        return started

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # warm shutdown
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck worker
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def write_job(path: Path, records: int) -> None:
    with path.open("w") as out:
        for i in range(records):
            body = {
                "workflow": "newsletter",
                "recipients": [{"distinct_id": f"user-{i}", "$email": f"user-{i}@example.com"}],
                "data": {"record_id": i},
            }
            out.write(json.dumps(body) + "\n")


def kill_mid_shard(job: Job, plan: JobPlan, emulator: Emulator, kill: Callable[[int], None]) -> int:
    """Waits until a shard has sent some but not half of its records, then kills its worker.

    Returns the shard. What counts as sent is what the emulator has accepted under the shard's
    keys, read live.
    """
    accepted = emulator.state.accepted_by_key  # plain dict reads, safe while it grows
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        for shard, where in job.progress().running.items():
            spec = plan.shards[shard]
            first, count = spec["first"], spec["count"]
            sent = sum(
                1 for line in range(first, first + count) if f"{plan.job_id}/{line}" in accepted
            )
            if 0 < sent < count // 2:
                kill(int(where.rsplit(":", 1)[1]))
                return shard
        time.sleep(0.02)
    raise AssertionError("no shard was seen running part-way")


def assert_each_record_processed_once(
    account: JobAccount, plan: JobPlan, emulator: Emulator, records: int
) -> None:
    """The job's account covers every record, once, and agrees with the emulator's count."""
    assert (account.status, account.total, account.succeeded) == ("success", records, records)
    assert account.failure == 0 and account.failed_records == []
    stats = emulator.stats
    keys = emulator.accepted_by_key
    assert len(keys) == records and set(keys.values()) == {1}
    assert set(keys) == {f"{plan.job_id}/{i}" for i in range(records)}
    assert stats["records_accepted"] == records == account.succeeded
    assert len(emulator.accepted_by_record) == records
    assert stats["records_received"] == stats["records_accepted"] + stats["duplicates_skipped"]


def test_a_worker_killed_mid_shard_leaves_every_record_processed_once(
    start_workers: StartWorkers, redis_url: str, suprsend_emulator: Emulator, tmp_path: Path
) -> None:
    workers = start_workers(WORKERS)
    source = tmp_path / "recipients.jsonl"
    write_job(source, RECORDS)
    producer = Fanout(Celery("producer", broker=redis_url, backend=redis_url))
    plan = producer.plan_jsonl("newsletter-2026-12", source, records_per_shard=PER_SHARD)
    assert plan.total == RECORDS and len(plan) == 25
    job = producer.submit(plan)

    # The pool process running a shard dies; its worker hands the shard back to the broker.
    killed: list[int] = []

    def kill(pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    shard = kill_mid_shard(job, plan, suprsend_emulator, kill)
    account = job.result(timeout=300)

    assert_each_record_processed_once(account, plan, suprsend_emulator, RECORDS)
    # The killed shard ran again elsewhere; what it had sent was not processed twice.
    again_shard = account.shards[shard]
    assert again_shard.deliveries >= 2 and not again_shard.worker.endswith(f":{killed[0]}")
    stats = suprsend_emulator.stats
    # Its account is the run's, both deliveries merged: what the killed one had sent counts as
    # sent, not as skipped, and so does the job's.
    assert (again_shard.sent, again_shard.skipped) == (again_shard.total, 0)
    assert (account.sent, account.skipped) == (RECORDS, 0)
    # Each shard task's result in the result backend is that shard's account.
    assert sum(r["succeeded"] for r in job.tasks.get(timeout=60)) == RECORDS

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


def test_a_lost_worker_node_is_redelivered_after_the_visibility_timeout(
    start_workers: StartWorkers, redis_url: str, suprsend_emulator: Emulator, tmp_path: Path
) -> None:
    records = 40_000
    workers = start_workers(WORKERS, visibility_timeout=6)
    source = tmp_path / "recipients.jsonl"
    write_job(source, records)
    producer = Fanout(Celery("producer", broker=redis_url, backend=redis_url))
    plan = producer.plan_jsonl("lost-node", source, records_per_shard=4_000)
    job = producer.submit(plan)

    # The whole worker (its main process and its pool) is gone at once, as with a lost machine:
    # nobody hands the shard back; the broker's visibility timeout does.
    lost: list[subprocess.Popen[bytes]] = []

    def kill(pid: int) -> None:
        (node,) = [p for p in workers if os.getpgid(pid) == p.pid]
        os.killpg(node.pid, signal.SIGKILL)
        lost.append(node)

    shard = kill_mid_shard(job, plan, suprsend_emulator, kill)
    account = job.result(timeout=300)

    assert_each_record_processed_once(account, plan, suprsend_emulator, records)
    assert account.shards[shard].deliveries >= 2
    assert lost[0].wait(10) == -signal.SIGKILL


def test_a_job_submitted_twice_reports_what_it_sent(
    start_workers: StartWorkers, redis_url: str, suprsend_emulator: Emulator, tmp_path: Path
) -> None:
    records = 20_000
    source = tmp_path / "recipients.jsonl"
    write_job(source, records)
    producer = Fanout(Celery("producer", broker=redis_url, backend=redis_url))
    plan = producer.plan_jsonl("twice", source, records_per_shard=2_000)
    # Submitted twice (a retried request, two producers) before any worker runs a shard: the
    # second submission joins the first's run, so every shard is delivered twice.
    first = producer.submit(plan)
    second = producer.submit(plan)
    start_workers(2)
    # Every task of both submissions has run (the account is whole as soon as each shard has
    # one delivery's account; the later deliveries must not overwrite it with "skipped").
    first.tasks.get(timeout=300)
    second.tasks.get(timeout=300)
    account = second.result(timeout=60)
    assert_each_record_processed_once(account, plan, suprsend_emulator, records)
    assert (account.sent, account.skipped) == (records, 0)  # not "sent 0, skipped 20,000"
    assert all(s.deliveries == 2 for s in account.shards)
    assert first.result(timeout=60) == account
