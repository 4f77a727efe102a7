"""The Celery fan-out's journal: a Redis set of succeeded identities and a hash of failures."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import redis

from ._interface import Settled
from ._keys import record_key

__all__ = ["RedisJournal"]

_BATCH = 2_000  # identities per SMISMEMBER / HMGET round trip


class RedisJournal:
    """A job's journal in Redis, shared by every process working on the job.

    The run id is the job id: every run of a job resumes it. Keys are
    ``{prefix}:{{job_id}}:done`` (a set; the name earlier versions used, so a job started
    by one of them resumes) and ``{prefix}:{{job_id}}:failed`` (a hash: identity -> ``1``
    refused for good, ``0`` passing), both expiring ``ttl`` seconds after the last write.
    `record` only queues (it may run on an event loop); `flush` writes the queue.
    """

    def __init__(
        self, client: redis.Redis, job_id: str, *, prefix: str = "suprsend:fanout", ttl: int
    ) -> None:
        self.redis = client
        self.job_id = job_id
        self.prefix = prefix
        self.ttl = ttl
        self._lock = threading.Lock()
        self._pending: list[tuple[str, Settled, bool]] = []

    def name(self, part: str) -> str:
        """The Redis key of one part of the job's state (hash-tagged by job, for a cluster)."""
        return f"{self.prefix}:{{{self.job_id}}}:{part}"

    @property
    def run_id(self) -> str:
        """The job id."""
        return self.job_id

    def key(self, identity: str) -> str:
        """The record's idempotency key, `record_key` of the job and identity."""
        return record_key(self.job_id, identity)

    def record(
        self, identity: str, state: Settled, code: int | None = None, *, retry: bool = False
    ) -> None:
        """Queue a record's outcome for the next `flush`."""
        with self._lock:
            self._pending.append((identity, state, not retry))

    def flush(self) -> None:
        """Write the queued outcomes; on an error they stay queued and the error is raised."""
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        last: dict[str, tuple[Settled, bool]] = {}
        for identity, state, for_good in batch:
            earlier = last.get(identity)
            if earlier is None or earlier[0] != "succeeded":  # success is final
                last[identity] = (state, for_good)
        succeeded = [i for i, (state, _) in last.items() if state == "succeeded"]
        failed = {i: int(g) for i, (state, g) in last.items() if state == "failed"}
        pipe = self.redis.pipeline()
        if succeeded:
            pipe.sadd(self.name("done"), *succeeded)
            pipe.hdel(self.name("failed"), *succeeded)
            pipe.expire(self.name("done"), self.ttl)
        if failed:
            pipe.hset(self.name("failed"), mapping=failed)  # type: ignore[arg-type]
            pipe.expire(self.name("failed"), self.ttl)
        try:
            pipe.execute()
        except BaseException:
            with self._lock:
                self._pending = batch + self._pending
            raise

    def succeeded_among(self, identities: Iterable[str]) -> set[str]:
        """Which of ``identities`` succeeded (in any run of the job)."""
        found: set[str] = set()
        wanted = list(identities)
        for i in range(0, len(wanted), _BATCH):
            part = wanted[i : i + _BATCH]
            flags = self.redis.smismember(self.name("done"), part)
            found.update(ident for ident, flag in zip(part, flags, strict=True) if flag)
        return found

    def failed_among(self, identities: Iterable[str]) -> dict[str, bool]:
        """Which of ``identities`` failed and did not succeed since: identity -> for good."""
        wanted = list(identities)
        done = self.succeeded_among(wanted)
        out: dict[str, bool] = {}
        for i in range(0, len(wanted), _BATCH):
            part = wanted[i : i + _BATCH]
            values = self.redis.hmget(self.name("failed"), part)
            for ident, value in zip(part, values, strict=True):
                if value is not None and ident not in done:
                    out[ident] = value == b"1"
        return out

    def count_succeeded(self) -> int:
        """How many distinct records of the job succeeded."""
        return int(self.redis.scard(self.name("done")))

    def close(self) -> None:
        """Write what is queued (the Redis connection is the caller's: it stays open)."""
        self.flush()
