"""The Celery app the fan-out integration test's worker processes load (``celery -A``).

The broker, result backend and state all live in the Redis the test started
(``FANOUT_TEST_REDIS_URL``); the SDK client comes from the ``SUPRSEND_*`` variables, pointing
at the test's emulator.
"""

from __future__ import annotations

import os

from celery import Celery

from suprsend_async.celery import Fanout

REDIS_URL = os.environ.get("FANOUT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
VISIBILITY_TIMEOUT = int(os.environ.get("FANOUT_TEST_VISIBILITY_TIMEOUT", "600"))


def make_app(url: str) -> Celery:
    """A Celery app with the settings the guide recommends for the fan-out.

    The visibility timeout is longer than any shard here takes, so only a lost worker's shard
    is delivered again; a test that loses a whole worker shortens it (and the broker's sweep
    for abandoned messages) so that the redelivery comes within seconds.
    """
    app = Celery("fanout-test", broker=url, backend=url)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        # One shard at a time per process: a worker does not hoard shards it cannot run yet.
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        worker_hijack_root_logger=False,
    )
    return app


app = make_app(REDIS_URL)
fanout = Fanout(app)
