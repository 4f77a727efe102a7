"""Fan a bulk out over a Celery fleet, exactly once, with a resumable account.

Install with ``pip install 'suprsend-async[celery]'``. A job is planned into shards (byte
ranges of a JSONL file on shared storage, records carried in the task messages, or specs handed
to a loader of your own); each shard is one Celery task that sends its records through the sync
client's streaming bulk engine. Every record gets an idempotency key derived from the job id
and the record's identity (its position, or a business key you name) by
`suprsend_async.journal.record_key`, so a shard that runs twice (a worker died and the
broker delivered it again, or you re-ran the job) never makes the service process a record
twice. Which records succeeded is kept in the job's journal in Redis: a re-run sends only what
has not succeeded. See the "Beyond one machine" guide.

::

    app = Celery("notify", broker="redis://...", backend="redis://...")
    fanout = Fanout(app)  # registers the shard task and the worker-process signals

    job = fanout.submit(fanout.plan_jsonl("newsletter-2026-12", "/shared/recipients.jsonl"))
    print(job.progress())
    account = job.result(timeout=3600)

Modules: ``_plan`` (shards), ``_entries`` (reading a shard), ``_state`` (the job's Redis
state), ``_shard`` (one shard's run), ``_accounts``, ``_job`` and ``_fanout``.
"""

from __future__ import annotations

from ..journal import record_key as idempotency_key
from ._accounts import JobAccount, JobProgress, ShardAccount
from ._entries import Loader
from ._fanout import ClientFactory, Fanout
from ._job import Job
from ._plan import DEFAULT_RECORDS_PER_SHARD, JobPlan, plan_jsonl, plan_loader, plan_records

__all__ = [
    "DEFAULT_RECORDS_PER_SHARD",
    "ClientFactory",
    "Fanout",
    "Job",
    "JobAccount",
    "JobPlan",
    "JobProgress",
    "Loader",
    "ShardAccount",
    "idempotency_key",
    "plan_jsonl",
    "plan_loader",
    "plan_records",
]
