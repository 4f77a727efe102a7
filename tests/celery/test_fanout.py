"""Watching jobs, and the fanout's per-process resources (client, Redis, state writer)."""

from __future__ import annotations

import os
import threading

import pytest
import redis
from celery import Celery

from suprsend_async import Suprsend
from suprsend_async.celery import Fanout, plan_loader
from suprsend_async.celery._state import Flusher
from suprsend_async.emulator import Emulator
from suprsend_async.journal import RedisJournal

from .support import record

# -- watching jobs --------------------------------------------------------------------------


def test_progress_and_result_of_a_job_still_running(fanout: Fanout) -> None:
    plan = plan_loader("slow", "range", [{}, {}])
    state = fanout._state()
    state.begin(plan)
    state.start("slow", 1, "host:42")
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


def test_state_flusher_keeps_outcomes_until_redis_takes_them(redis_client: redis.Redis) -> None:
    tries = threading.Semaphore(0)

    class Down(RedisJournal):
        up = False

        def flush(self) -> None:
            if not self.up and self._pending:
                tries.release()
                self._pending = list(self._pending)  # kept, as a failed write keeps them
                raise redis.ConnectionError("Redis is down")
            super().flush()

    journal = Down(redis_client, "job", prefix="p", ttl=60)
    flusher = Flusher(journal, interval=0.01)
    journal.record("1", "succeeded", 202)
    journal.record("2", "succeeded", 202)
    assert tries.acquire(timeout=10) and tries.acquire(timeout=10)  # it tried, and kept going
    with pytest.raises(redis.ConnectionError):
        flusher.close()
    assert [p[0] for p in journal._pending] == ["1", "2"]
    journal.up = True
    journal.flush()
    assert journal._pending == []
    assert redis_client.smembers("p:{job}:done") == {b"1", b"2"}
    assert redis_client.ttl("p:{job}:done") > 0


def test_worker_pid_is_recorded_while_a_shard_runs(
    fanout: Fanout, suprsend_emulator: Emulator
) -> None:
    seen: list[dict[int, str]] = []
    plan = fanout.plan_records("where", [record(1)])
    fanout._state().begin(plan)
    real = fanout.client

    def spy() -> Suprsend:
        seen.append(fanout.job("where").progress().running)
        return real()

    fanout.client = spy  # type: ignore[method-assign]
    fanout.run_shard(plan.shards[0])
    assert seen == [{0: f"{os.uname().nodename}:{os.getpid()}"}]
    assert fanout.job("where").progress().running == {}
