"""The fan-out's fixture: shards run eagerly against a real Redis and the emulator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from celery import Celery

from suprsend_async import Suprsend
from suprsend_async.celery import Fanout
from suprsend_async.emulator import Emulator
from tests.redis_server import redis_client, redis_url

from .support import load_range

__all__ = ["redis_client", "redis_url"]  # fixtures, used by name


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
