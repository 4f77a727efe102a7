"""The fanout: the shard task on a Celery app, per-process resources, submitting jobs."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import redis
from celery import Celery, group, signals

from .._sync import Suprsend
from .._types import RequestKind
from ._entries import Loader
from ._job import Job
from ._plan import JobPlan, check_job_id, plan_jsonl, plan_loader, plan_records
from ._shard import ShardRun
from ._state import JobState

__all__ = ["ClientFactory", "Fanout"]

logger = logging.getLogger("suprsend_async")

ClientFactory = Callable[[], Suprsend]


class Fanout:
    """Registers the shard task on a Celery app and plans, submits and accounts for jobs.

    Create it once, in the module your workers load (``celery -A yourapp worker``), so both the
    producer and the workers know the task. ``client_factory`` makes the `Suprsend`
    client each worker process uses (by default ``Suprsend()``, configured from the
    ``SUPRSEND_*`` environment variables); it is called once per process at start
    (``worker_process_init``) and the client is closed at shutdown. ``loaders`` names the
    functions `plan_loader` jobs may use.

    ``state_url`` is the Redis that keeps each job's state (default: the app's Redis result
    backend, else its Redis broker). ``concurrency`` and ``max_records_per_second`` apply to
    each shard's bulk (per worker process: divide a workspace's rate limit by the number of
    processes). The shard task acknowledges its message only when it has finished
    (``acks_late``), is handed back to the broker if its process dies
    (``reject_on_worker_lost``), retries ``max_retries`` times on errors, and gives up with a
    written account after ``max_deliveries`` deliveries of one shard in one run.
    """

    def __init__(
        self,
        app: Celery,
        client_factory: ClientFactory | None = None,
        *,
        loaders: Mapping[str, Loader] | None = None,
        state_url: str | None = None,
        key_prefix: str = "suprsend:fanout",
        concurrency: int | None = None,
        max_records_per_second: float | None = None,
        max_retries: int = 3,
        max_deliveries: int = 10,
        max_failed_records: int = 100,
        state_ttl: int = 7 * 86_400,
        task_name: str = "suprsend_async.celery.send_shard",
    ) -> None:
        self.app = app
        self.client_factory: ClientFactory = client_factory or Suprsend
        self.loaders: dict[str, Loader] = dict(loaders or {})
        self.state_url = state_url or self._default_state_url(app)
        self.key_prefix = key_prefix
        self.concurrency = concurrency
        self.max_records_per_second = max_records_per_second
        self.max_retries = max_retries
        self.max_deliveries = max_deliveries
        self.max_failed_records = max_failed_records
        self.state_ttl = state_ttl
        self._lock = threading.Lock()
        self._client: Suprsend | None = None
        self._client_pid = 0
        self._redis: redis.Redis | None = None
        self._redis_pid = 0
        self.shard_task: Any = self._register(app, task_name, max_retries)
        signals.worker_process_init.connect(self._on_process_init)
        signals.worker_process_shutdown.connect(self._on_process_shutdown)
        signals.worker_shutdown.connect(self._on_process_shutdown)

    def _register(self, app: Celery, task_name: str, max_retries: int) -> Any:
        fanout = self

        def send_shard(task: Any, spec: dict[str, Any]) -> dict[str, Any]:
            return fanout._run_task(task, spec)

        send_shard.__doc__ = "Send one shard of a fanout job; returns the shard's account."
        return app.task(
            bind=True,
            name=task_name,
            acks_late=True,
            reject_on_worker_lost=True,
            max_retries=max_retries,
        )(send_shard)

    @staticmethod
    def _default_state_url(app: Celery) -> str:
        for url in (app.conf.result_backend, app.conf.broker_url):
            if isinstance(url, str) and url.startswith(("redis://", "rediss://", "unix://")):
                return url
        raise ValueError(
            "Fanout needs a Redis for the jobs' state: pass state_url='redis://...' (the app's"
            " result backend and broker are not Redis)"
        )

    # -- per-process resources ----------------------------------------------------------

    def _on_process_init(self, **_: Any) -> None:
        try:
            self.client()
        except Exception:
            # A pool process that failed to start would be restarted in a loop; the shard
            # task tries again and, if it still fails, records why in the shard's account.
            logger.exception("fanout: could not make the client at process start")

    def _on_process_shutdown(self, **_: Any) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._client_pid == os.getpid():
            client.close()

    def client(self) -> Suprsend:
        """This process's client, made on first use (at worker start in a prefork pool)."""
        with self._lock:
            if self._client is None or self._client_pid != os.getpid():
                self._client = self.client_factory()
                self._client_pid = os.getpid()
            return self._client

    def _state(self) -> JobState:
        with self._lock:
            if self._redis is None or self._redis_pid != os.getpid():
                # A connection pool must not cross a fork: each process makes its own.
                self._redis = redis.Redis.from_url(self.state_url)
                self._redis_pid = os.getpid()
            return JobState(self._redis, self.key_prefix, self.state_ttl)

    # -- planning and submitting --------------------------------------------------------

    plan_jsonl = staticmethod(plan_jsonl)
    plan_records = staticmethod(plan_records)

    def plan_loader(
        self,
        job_id: str,
        loader: str,
        specs: Iterable[Mapping[str, Any]],
        *,
        key_from: str | None = None,
        kind: RequestKind = "trigger",
    ) -> JobPlan:
        """`plan_loader`, checking that ``loader`` is registered with this fanout."""
        if loader not in self.loaders:
            raise ValueError(f"loader {loader!r} is not registered (known: {sorted(self.loaders)})")
        return plan_loader(job_id, loader, specs, key_from=key_from, kind=kind)

    def submit(self, plan: JobPlan) -> Job:
        """Send every shard of ``plan`` to the workers; re-submitting sends only what is left.

        Records that succeeded in an earlier run of the same job id are skipped by the
        workers, without a request.
        """
        run = self._state().begin(plan)
        tasks = None
        if plan.shards:
            shards = ({**spec, "run": run} for spec in plan.shards)
            tasks = group(self.shard_task.s(spec) for spec in shards).apply_async()
        return Job(self, plan.job_id, plan, tasks)

    def job(self, job_id: str) -> Job:
        """A handle on a job submitted earlier (possibly by another process)."""
        return Job(self, check_job_id(job_id))

    # -- the shard task -----------------------------------------------------------------

    def _run_task(self, task: Any, spec: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.run_shard(spec)
        except Exception as exc:
            retries = int(task.request.retries or 0)
            if retries >= self.max_retries:
                reason = f"{type(exc).__name__}: {exc}"
                return ShardRun(self, spec).give_up(reason, retries + 1)
            raise task.retry(exc=exc, countdown=min(2**retries, 30)) from exc

    def run_shard(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Send one shard's records that have not succeeded yet; returns its account.

        This is the body of the Celery task, callable directly (tests, other task systems).
        """
        return ShardRun(self, spec).run()
