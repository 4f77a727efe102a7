"""Both journal stores behind one fixture, so that the contract runs against each."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from suprsend_async.journal import FileJournal, Journal, RedisJournal
from tests.redis_server import redis_client, redis_url

__all__ = ["redis_client", "redis_url"]  # fixtures, used by name

_jobs = itertools.count()


@dataclass
class Store:
    """Makes a new run's journal, and opens it again as a resumed run would."""

    name: str
    new: Callable[[], Journal]
    reopen: Callable[[Journal], Journal]


@pytest.fixture(params=["file", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "file":

        def new_file() -> Journal:
            return FileJournal.start(tmp_path / "in.jsonl.journal", source="in.jsonl")

        def reopen_file(journal: Journal) -> Journal:
            journal.close()
            return FileJournal.resume(tmp_path / "in.jsonl.journal", source_name="in.jsonl")

        yield Store("file", new_file, reopen_file)
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    job = f"contract-{next(_jobs)}"

    def new_redis() -> Journal:
        return RedisJournal(client, job, prefix="contract", ttl=60)

    def reopen_redis(journal: Journal) -> Journal:
        journal.close()
        return RedisJournal(client, job, prefix="contract", ttl=60)

    yield Store("redis", new_redis, reopen_redis)
