"""The Celery fan-out's journal in Redis: its keys, their lifetime, and failed writes."""

from __future__ import annotations

import pytest
import redis

from suprsend_async.journal import RedisJournal


def test_keys_are_those_earlier_versions_used_and_expire(redis_client: redis.Redis) -> None:
    journal = RedisJournal(redis_client, "job-1", prefix="p", ttl=60)
    assert journal.run_id == "job-1" and journal.key("7") == "job-1/7"
    journal.record("7", "succeeded", 202)
    journal.record("8", "failed", 400)
    journal.record("9", "failed", 429, retry=True)
    journal.close()
    assert redis_client.smembers("p:{job-1}:done") == {b"7"}
    assert redis_client.hgetall("p:{job-1}:failed") == {b"8": b"1", b"9": b"0"}
    assert 0 < redis_client.ttl("p:{job-1}:done") <= 60
    assert 0 < redis_client.ttl("p:{job-1}:failed") <= 60


def test_a_job_started_by_an_earlier_version_resumes(redis_client: redis.Redis) -> None:
    redis_client.sadd("suprsend:fanout:{old-job}:done", "0", "1")  # what that version wrote
    journal = RedisJournal(redis_client, "old-job", ttl=60)
    assert journal.succeeded_among(["0", "1", "2"]) == {"0", "1"}
    assert journal.count_succeeded() == 2


def test_reads_are_batched(redis_client: redis.Redis) -> None:
    journal = RedisJournal(redis_client, "many", prefix="p", ttl=60)
    for i in range(4_500):
        journal.record(str(i), "succeeded" if i % 3 else "failed", 400)
    journal.flush()
    wanted = [str(i) for i in range(5_000)]
    assert len(journal.succeeded_among(wanted)) == 3_000
    assert len(journal.failed_among(wanted)) == 1_500


def test_nothing_queued_writes_nothing(redis_client: redis.Redis) -> None:
    journal = RedisJournal(redis_client, "idle", prefix="p", ttl=60)
    journal.flush()
    assert redis_client.keys("p:{idle}:*") == []


def test_a_failed_write_keeps_the_outcomes_queued(redis_client: redis.Redis) -> None:
    journal = RedisJournal(redis.Redis(port=1), "job", prefix="q", ttl=60)  # nothing listens
    journal.record("1", "succeeded", 202)
    with pytest.raises(redis.ConnectionError):
        journal.flush()
    journal.redis = redis_client
    journal.close()
    assert redis_client.smembers("q:{job}:done") == {b"1"}
