"""A job's state in Redis: runs, shard accounts, who runs what, and the job's journal."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from ..journal._redis import RedisJournal
from ._plan import JobPlan

__all__ = ["FLUSH_INTERVAL", "STATE_RANKS", "Flusher", "JobState"]

FLUSH_INTERVAL = 0.2  # seconds between writes of a shard's outcomes to Redis

STATE_RANKS = {"not_sent": 1, "failed": 2, "unknown": 3}
"""A record's states that are not success, worst first: across deliveries the best one wins
(success, kept in the journal, beats them all)."""

# A run of a job whose current run has not finished joins it: a job submitted twice at once
# (a retried request, two producers) is one run whose shards are delivered twice.
_BEGIN = """
local run = redis.call('GET', KEYS[1])
if run and tonumber(ARGV[1]) > 0 and redis.call('HGET', KEYS[2], 'shards') == ARGV[1]
    and redis.call('HGET', KEYS[2], 'total') == ARGV[2]
    and redis.call('HLEN', KEYS[3]) < tonumber(ARGV[1]) then
  return {tonumber(run), 1}
end
run = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
redis.call('HSET', KEYS[2], 'shards', ARGV[1], 'total', ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return {run, 0}
"""

_SENT = """
if ARGV[2] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
for i = 3, #ARGV do redis.call('SADD', KEYS[2], ARGV[i]) end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1
"""

# A delivery's account merged with every other delivery's of the shard in this run: a record
# that succeeded (the journal) is succeeded, and "sent" if any delivery of the run sent it,
# "skipped" if none did; any other record has the best state any delivery gave it. Atomic, so
# that two deliveries finishing at once cannot overwrite each other's view.
_MERGE = """
if ARGV[4] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[4] then return false end
local n_ids, n_states, n_failed = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local ids, st, fr = 7, 7 + n_ids, 7 + n_ids + 2 * n_states
for j = 1, n_states do
  local id, rank = ARGV[st + 2 * j - 1], tonumber(ARGV[st + 2 * j])
  if rank > tonumber(redis.call('HGET', KEYS[6], id) or '0') then
    redis.call('HSET', KEYS[6], id, rank)
  end
end
if n_states > 0 then redis.call('EXPIRE', KEYS[6], ARGV[3]) end
local names = {'not_sent', 'failed', 'unknown'}
local c = {succeeded = 0, failed = 0, unknown = 0, not_sent = 0, sent = 0, skipped = 0}
for j = 1, n_ids do
  local id = ARGV[ids + j]
  local sent = redis.call('SISMEMBER', KEYS[5], id) == 1
  if sent then c.sent = c.sent + 1 end
  if redis.call('SISMEMBER', KEYS[4], id) == 1 then
    c.succeeded = c.succeeded + 1
    if not sent then c.skipped = c.skipped + 1 end
  else
    local name = names[tonumber(redis.call('HGET', KEYS[6], id) or '1')]
    c[name] = c[name] + 1
  end
end
local kept = {}
for j = 1, n_failed do
  local id, body = ARGV[fr + 2 * j - 1], ARGV[fr + 2 * j]
  if redis.call('SISMEMBER', KEYS[4], id) == 0 then
    local name = names[tonumber(redis.call('HGET', KEYS[6], id) or '1')]
    table.insert(kept, '{"state": "' .. name .. '", ' .. string.sub(body, 2))
  end
end
local account = string.format(
  '{"succeeded": %d, "failed": %d, "unknown": %d, "not_sent": %d, "sent": %d, "skipped": %d,'
  .. ' "failed_records": [%s], ',
  c.succeeded, c.failed, c.unknown, c.not_sent, c.sent, c.skipped, table.concat(kept, ', ')
) .. string.sub(ARGV[2], 2)
redis.call('HSET', KEYS[2], ARGV[1], account)
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
return account
"""

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
        """A run of the job: its number. Joins the current run if that has not finished.

        A new run forgets the last run's accounts and keeps what succeeded; a shard of an
        earlier run that finishes later does not write into it. A plan submitted again while
        its run is still going (the same shards) joins that run instead: its shards count as
        deliveries of the same shards, and the account says what the run really sent.
        """
        job = plan.job_id
        names = ("run", "meta", "accounts", "running", "deliveries", "sent", "states")
        total = -1 if plan.total is None else plan.total
        run, _joined = self.redis.eval(
            _BEGIN, len(names), *(self.key(job, n) for n in names), len(plan), total, self.ttl
        )
        return int(run)

    def mark_sent(self, job_id: str, run: int | None, identities: Sequence[str]) -> None:
        """Note, before sending, which records this delivery sends in the job's current run."""
        if identities:
            keys = [self.key(job_id, "run"), self.key(job_id, "sent")]
            args = [str(self.ttl), "" if run is None else str(run), *identities]
            self.redis.eval(_SENT, len(keys), *keys, *args)

    def merge(
        self,
        job_id: str,
        shard: int,
        run: int | None,
        identities: Sequence[str],
        states: Mapping[str, str],
        account: Mapping[str, Any],
    ) -> dict[str, Any] | None:
        """Store the shard's account merged with its other deliveries' in this run.

        ``identities`` are all the shard's records, ``states`` this delivery's records that
        did not succeed (identity -> state), ``account`` the rest of its account (its
        ``failed_records`` without their states). ``None`` if the shard's run is over.
        """
        names = ("run", "accounts", "running", "done", "sent", "states")
        rest = {k: v for k, v in account.items() if k not in _MERGED}
        failed = [
            (r["identity"], json.dumps({k: v for k, v in r.items() if k != "state"}))
            for r in account["failed_records"]
        ]
        args: list[Any] = [str(shard), json.dumps(rest), str(self.ttl)]
        args += ["" if run is None else str(run), len(identities), len(states), len(failed)]
        args += identities
        args += [x for i, s in states.items() for x in (i, STATE_RANKS[s])]
        args += [x for pair in failed for x in pair]
        keys = [self.key(job_id, n) for n in names]
        merged = self.redis.eval(_MERGE, len(keys), *keys, *args)
        return None if merged is None else dict(json.loads(merged))

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


_MERGED = ("succeeded", "failed", "unknown", "not_sent", "sent", "skipped", "failed_records")


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
