"""A job's state in Redis: runs, shard accounts, who runs what, and the job's journal."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import redis

from ..journal._redis import RedisJournal
from ._plan import JobPlan

__all__ = ["FLUSH_INTERVAL", "Flusher", "JobState"]

FLUSH_INTERVAL = 0.2  # seconds between writes of a shard's outcomes to Redis

# Atomic, so that a run starting in between cannot be handed an account of the one before.
_FINISH = """
if ARGV[4] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""


class JobState:
    """Per-job state in Redis beside the journal: run number, shard accounts, deliveries."""

    def __init__(self, client: redis.Redis, prefix: str, ttl: int) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl

    def journal(self, job_id: str) -> RedisJournal:
        """The job's journal: which records succeeded or failed, across runs and workers."""
        return RedisJournal(self.redis, job_id, prefix=self.prefix, ttl=self.ttl)

    def key(self, job_id: str, name: str) -> str:
        """The Redis key of one part of a job's state."""
        return self.journal(job_id).name(name)

    def begin(self, plan: JobPlan) -> int:
        """A new run of the job: forget the last run's accounts, keep what succeeded.

        Returns the run's number; a shard of an earlier run that finishes later does not
        write into this run's account.
        """
        job = plan.job_id
        pipe = self.redis.pipeline()
        pipe.incr(self.key(job, "run"))
        pipe.expire(self.key(job, "run"), self.ttl)
        pipe.delete(
            self.key(job, "accounts"), self.key(job, "running"), self.key(job, "deliveries")
        )
        total = -1 if plan.total is None else plan.total
        pipe.hset(self.key(job, "meta"), mapping={"shards": len(plan), "total": total})
        pipe.expire(self.key(job, "meta"), self.ttl)
        return int(pipe.execute()[0])

    def meta(self, job_id: str) -> tuple[int, int | None] | None:
        """The current run's shard count and total (``None`` when not known); ``None``: no job."""
        raw = self.redis.hgetall(self.key(job_id, "meta"))
        if not raw:
            return None
        total = int(raw[b"total"])
        return int(raw[b"shards"]), (None if total < 0 else total)

    def start(self, job_id: str, shard: int, where: str) -> int:
        """Mark a shard running here; returns how many times it has been delivered."""
        pipe = self.redis.pipeline()
        pipe.hincrby(self.key(job_id, "deliveries"), str(shard), 1)
        pipe.hset(self.key(job_id, "running"), str(shard), where)
        for name in ("deliveries", "running"):
            pipe.expire(self.key(job_id, name), self.ttl)
        return int(pipe.execute()[0])

    def finish(self, job_id: str, shard: int, account: Mapping[str, Any], run: int | None) -> bool:
        """Store a shard's account in the job's current run; ``False`` if its run is over."""
        keys = [self.key(job_id, name) for name in ("run", "accounts", "running")]
        args = [str(shard), json.dumps(account), str(self.ttl), "" if run is None else str(run)]
        return bool(self.redis.eval(_FINISH, len(keys), *keys, *args))

    def snapshot(self, job_id: str) -> tuple[int, dict[int, dict[str, Any]], dict[int, str]]:
        """Records succeeded, shard accounts of this run, and running shards -> worker."""
        pipe = self.redis.pipeline()
        pipe.scard(self.key(job_id, "done"))
        pipe.hgetall(self.key(job_id, "accounts"))
        pipe.hgetall(self.key(job_id, "running"))
        done, accounts, running = pipe.execute()
        return (
            int(done),
            {int(k): json.loads(v) for k, v in accounts.items()},
            {int(k): v.decode() for k, v in running.items()},
        )


class Flusher:
    """Flushes a journal a few times a second on a thread of its own, off the client's loop.

    The SDK's outcome callback (on its event-loop thread) only queues outcomes in the journal;
    this thread does the Redis round trips. What a killed worker had not written yet is sent
    again by the next delivery, under the same keys: the service skips it.
    """

    def __init__(self, journal: RedisJournal, interval: float | None = None) -> None:
        self._journal = journal
        self._interval = FLUSH_INTERVAL if interval is None else interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="suprsend-fanout-state", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._journal.flush()
            except redis.RedisError:  # kept for the next try; the final flush raises
                continue

    def close(self) -> None:
        """Stop the thread and write what is left (raising if Redis will not take it)."""
        self._stop.set()
        self._thread.join()
        self._journal.flush()
