"""Fan a bulk workflow trigger out over a Celery fleet, exactly once, with a resumable account.

Install with ``pip install 'suprsend-async[celery]'``. A job is planned into shards (byte
ranges of a JSONL file on shared storage, records carried in the task messages, or specs handed
to a loader of your own); each shard is one Celery task that sends its records through the sync
client's streaming bulk engine. Every record gets an idempotency key derived from the job id
and the record's identity (its position, or a business key you name), so a shard that runs
twice (a worker died and the broker delivered it again, or you re-ran the job) never makes the
service process a record twice. Which records succeeded is kept in Redis under the job id: a
re-run sends only what has not succeeded. See the "Beyond one machine" guide.

::

    app = Celery("notify", broker="redis://...", backend="redis://...")
    fanout = Fanout(app)  # registers the shard task and the worker-process signals

    job = fanout.submit(fanout.plan_jsonl("newsletter-2026-12", "/shared/recipients.jsonl"))
    print(job.progress())
    account = job.result(timeout=3600)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import redis
from celery import Celery, group, signals

from . import RecordOutcome, Suprsend

__all__ = [
    "DEFAULT_RECORDS_PER_SHARD",
    "Fanout",
    "Job",
    "JobAccount",
    "JobPlan",
    "JobProgress",
    "ShardAccount",
    "idempotency_key",
]

DEFAULT_RECORDS_PER_SHARD = 5_000
"""Records per shard when planning a file or an iterable, unless told otherwise."""

logger = logging.getLogger("suprsend_async")

MAX_KEY_LENGTH = 255  # the service's limit on $idempotency_key
_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
_LOADER = re.compile(r"[A-Za-z_][\w.-]{0,63}")
_FLUSH_INTERVAL = 0.2  # seconds between writes of succeeded identities to Redis
_SMISMEMBER_BATCH = 2_000

ShardSource = Literal["jsonl", "records", "loader"]
ClientFactory = Callable[[], Suprsend]
Loader = Callable[[Mapping[str, Any]], Iterable[Any]]


def idempotency_key(job_id: str, identity: str) -> str:
    """The idempotency key of a record: ``{job_id}/{identity}``, hashed when over 255 chars.

    The same job id and identity always give the same key, so a record sent again (a shard
    delivered twice, a job run again) is skipped by the service within its 24 h window.
    """
    key = f"{job_id}/{identity}"
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"{job_id}/sha256:{hashlib.sha256(identity.encode()).hexdigest()}"


def _check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise ValueError(
            f"job_id {job_id!r}: use 1 to 128 characters of letters, digits and ._:@+-,"
            " starting with a letter or digit"
        )
    return job_id


def _check_shard_size(records_per_shard: int) -> int:
    if isinstance(records_per_shard, bool) or records_per_shard < 1:
        raise ValueError("records_per_shard must be at least 1")
    return records_per_shard


def _lookup(record: Any, path: str) -> Any:
    value = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise KeyError(path)
        value = value[part]
    return value


# -- planning -------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobPlan:
    """A job cut into shards: each shard is a JSON-serialisable spec, one Celery task.

    ``total`` is the number of records when planning could count them (a file, an iterable),
    else ``None`` (a loader's shards are counted as they run).
    """

    job_id: str
    shards: tuple[dict[str, Any], ...]
    total: int | None

    def __len__(self) -> int:
        return len(self.shards)


def _shard(
    job_id: str,
    index: int,
    source: ShardSource,
    key_from: str | None,
    legacy: bool,
    count: int | None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "job": job_id,
        "shard": index,
        "source": source,
        "key_from": key_from,
        "legacy": legacy,
        "count": count,
        **fields,
    }


def plan_jsonl(
    job_id: str,
    path: str | os.PathLike[str],
    *,
    records_per_shard: int = DEFAULT_RECORDS_PER_SHARD,
    key_from: str | None = None,
    legacy: bool = False,
) -> JobPlan:
    """Plan a JSONL file (one record per line) into shards of byte ranges.

    The file is read once here to cut it at line boundaries; each worker then reads only its
    own range, so the file must be at the same path on every worker (shared storage) and must
    not change while the job (or a re-run of it) lives. A record's identity is its line number
    (0-based; blank lines are skipped but keep their numbers), or ``key_from``: a dotted path
    into the record (``"data.order_id"``) whose value is unique within the job.
    """
    _check_job_id(job_id)
    _check_shard_size(records_per_shard)
    file = str(Path(path).resolve())
    shards: list[dict[str, Any]] = []
    start = offset = first = line_no = count = 0

    def cut() -> None:
        shards.append(
            _shard(job_id, len(shards), "jsonl", key_from, legacy, count,
                   path=file, start=start, end=offset, first=first)
        )  # fmt: skip

    with open(file, "rb") as handle:
        for line in handle:
            offset += len(line)
            line_no += 1
            if line.strip():
                count += 1
                if count == records_per_shard:
                    cut()
                    start, first, count = offset, line_no, 0
    if count:
        cut()
    total = sum(shard["count"] for shard in shards)
    return JobPlan(job_id, tuple(shards), total)


def plan_records(
    job_id: str,
    records: Iterable[Mapping[str, Any]],
    *,
    records_per_shard: int = 1_000,
    key_from: str | None = None,
    legacy: bool = False,
) -> JobPlan:
    """Plan records given in memory; each shard's records travel in its task message.

    For smaller jobs: the broker holds every record until its shard runs, so keep messages
    well under the broker's limits (a shard of 1,000 small records is a few hundred KB).
    Records must be JSON-serialisable mappings (request bodies). A record's identity is its
    position in ``records``, or the value at ``key_from``; pass the same records in the same
    order to re-run the job.
    """
    _check_job_id(job_id)
    _check_shard_size(records_per_shard)
    shards: list[dict[str, Any]] = []
    batch: list[Any] = []
    first = 0
    position = 0

    def close_shard() -> None:
        shards.append(
            _shard(
                job_id,
                len(shards),
                "records",
                key_from,
                legacy,
                len(batch),
                records=batch,
                first=first,
            )
        )

    for record in records:
        batch.append(dict(record) if isinstance(record, Mapping) else record)
        position += 1
        if len(batch) == records_per_shard:
            close_shard()
            batch, first = [], position
    if batch:
        close_shard()
    return JobPlan(job_id, tuple(shards), position)


def plan_loader(
    job_id: str,
    loader: str,
    specs: Iterable[Mapping[str, Any]],
    *,
    key_from: str | None = None,
    legacy: bool = False,
) -> JobPlan:
    """Plan a job whose records a function of yours loads, one shard per spec.

    ``loader`` is the name the function is registered under on the workers
    (``Fanout(app, loaders={"customers": load_customers})``); it is called with one spec (a
    JSON-serialisable mapping such as ``{"min_id": 0, "max_id": 10_000}``) and returns an
    iterable of records. Only registered functions can be called: a task message names one,
    it cannot import code. Name a ``key_from`` (a unique business key such as
    ``"data.customer_id"``): without it a record's identity is its shard and position, which
    is only stable if the loader returns the same records in the same order every time.
    """
    _check_job_id(job_id)
    if not isinstance(loader, str) or not _LOADER.fullmatch(loader):
        raise ValueError(f"loader {loader!r}: expected a registered loader's name")
    shards = [
        _shard(job_id, i, "loader", key_from, legacy, None, loader=loader, spec=dict(spec))
        for i, spec in enumerate(specs)
    ]
    return JobPlan(job_id, tuple(shards), None)


# -- reading a shard ------------------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    identity: str
    record: Any
    error: str | None = None


def _read_jsonl(spec: Mapping[str, Any]) -> Iterator[tuple[str, Any, str | None]]:
    with open(spec["path"], "rb") as handle:
        handle.seek(spec["start"])
        data = handle.read(spec["end"] - spec["start"])
    for line_no, line in enumerate(data.split(b"\n"), start=spec["first"]):
        if not line.strip():
            continue
        try:
            yield str(line_no), json.loads(line), None
        except ValueError as exc:
            yield str(line_no), None, f"line {line_no + 1}: not valid JSON ({exc})"


def _raw_entries(
    spec: Mapping[str, Any], loaders: Mapping[str, Loader]
) -> Iterator[tuple[str, Any, str | None]]:
    source = spec["source"]
    if source == "jsonl":
        yield from _read_jsonl(spec)
    elif source == "records":
        for i, record in enumerate(spec["records"], start=spec["first"]):
            yield str(i), record, None
    elif source == "loader":
        load = loaders.get(spec["loader"])
        if load is None:
            raise LookupError(
                f"loader {spec['loader']!r} is not registered here: pass"
                " Fanout(app, loaders={...}) in the module the workers load"
            )
        for i, record in enumerate(load(spec["spec"])):
            yield f"{spec['shard']}.{i}", record, None
    else:
        raise ValueError(f"unknown shard source {source!r}")


def _entries(spec: Mapping[str, Any], loaders: Mapping[str, Loader] | None = None) -> list[_Entry]:
    """The shard's records with their identities; a record that cannot be sent has an error."""
    key_from: str | None = spec.get("key_from")
    out: list[_Entry] = []
    for position, record, error in _raw_entries(spec, loaders or {}):
        if error is None and not isinstance(record, Mapping):
            error = f"record {position}: expected a JSON object, got {type(record).__name__}"
        if error is not None or key_from is None:
            out.append(_Entry(position, record, error))
            continue
        try:
            value = _lookup(record, key_from)
        except KeyError:
            value = None
        if value is None or value == "" or isinstance(value, Mapping | list):
            out.append(
                _Entry(position, record, f"record {position}: {key_from} is missing or not a value")
            )
        else:
            out.append(_Entry(f"k:{value}", record))
    return out


# -- the job's state in Redis ---------------------------------------------------------------


# Atomic, so that a run starting in between cannot be handed an account of the one before.
_FINISH = """
if ARGV[4] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[4] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""


class _Store:
    """Per-job state in Redis: succeeded identities, shard accounts, who runs what."""

    def __init__(self, client: redis.Redis, prefix: str, ttl: int) -> None:
        self.redis = client
        self.prefix = prefix
        self.ttl = ttl

    def key(self, job_id: str, name: str) -> str:
        return f"{self.prefix}:{{{job_id}}}:{name}"

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

    def succeeded_among(self, job_id: str, identities: list[str]) -> set[str]:
        found: set[str] = set()
        done = self.key(job_id, "done")
        for i in range(0, len(identities), _SMISMEMBER_BATCH):
            part = identities[i : i + _SMISMEMBER_BATCH]
            flags = self.redis.smismember(done, part)
            found.update(ident for ident, flag in zip(part, flags, strict=True) if flag)
        return found

    def add_succeeded(self, job_id: str, identities: list[str]) -> None:
        pipe = self.redis.pipeline()
        pipe.sadd(self.key(job_id, "done"), *identities)
        pipe.expire(self.key(job_id, "done"), self.ttl)
        pipe.execute()

    def finish(self, job_id: str, shard: int, account: Mapping[str, Any], run: int | None) -> bool:
        """Store a shard's account in the job's current run; ``False`` if its run is over."""
        keys = [self.key(job_id, name) for name in ("run", "accounts", "running")]
        args = [str(shard), json.dumps(account), str(self.ttl), "" if run is None else str(run)]
        return bool(self.redis.eval(_FINISH, len(keys), *keys, *args))

    def snapshot(self, job_id: str) -> tuple[int, dict[int, dict[str, Any]], dict[int, str]]:
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


class _SucceededWriter:
    """Writes succeeded identities to Redis a few times a second, off the client's loop.

    ``add`` is called from the SDK's callback (on its event-loop thread) and only appends under
    a lock; a thread of its own does the Redis round trips. What a killed worker had not
    written yet is sent again by the next delivery, under the same keys: the service skips it.
    """

    def __init__(self, store: _Store, job_id: str) -> None:
        self._store = store
        self._job = job_id
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._stop = threading.Event()
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="suprsend-fanout-state", daemon=True)
        self._thread.start()

    def add(self, identity: str) -> None:
        with self._lock:
            self._pending.append(identity)

    def _run(self) -> None:
        while not self._stop.wait(_FLUSH_INTERVAL):
            try:
                self.flush()
            except redis.RedisError:  # kept for the next try; the final flush raises
                continue

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            self._store.add_succeeded(self._job, batch)
        except BaseException:
            with self._lock:
                self._pending = batch + self._pending
            raise
        self.written += len(batch)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.flush()


# -- accounts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShardAccount:
    """What one shard's last run did; ``succeeded + failed + unknown + not_sent == total``.

    ``sent`` counts records sent by that run and ``skipped`` the ones an earlier run (or an
    earlier delivery) had already got accepted. ``failed_records`` lists up to the fanout's
    ``max_failed_records`` records that did not succeed, each with ``identity``,
    ``idempotency_key``, ``state``, ``code`` and ``error``; ``error`` is set when the shard
    itself could not run (retries exhausted).
    """

    shard: int
    total: int
    succeeded: int
    failed: int
    unknown: int
    not_sent: int
    sent: int
    skipped: int
    deliveries: int
    worker: str
    failed_records: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ShardAccount:
        """Read an account as stored in Redis and the result backend."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class JobAccount:
    """The whole job: every shard's last account added up.

    ``status`` is ``success`` when every record succeeded, ``partial`` when some did and
    ``fail`` when none did. Run the job again (same plan, same job id) to send the records that
    did not succeed; ``unknown`` ones are safe to send again under their keys.
    """

    job_id: str
    status: Literal["success", "partial", "fail"]
    total: int
    succeeded: int
    failed: int
    unknown: int
    not_sent: int
    sent: int
    skipped: int
    shards: list[ShardAccount]

    @property
    def failure(self) -> int:
        """Records that did not succeed (failed, unknown or not sent)."""
        return self.failed + self.unknown + self.not_sent

    @property
    def failed_records(self) -> list[dict[str, Any]]:
        """The failed records the shards kept, shard by shard."""
        return [dict(r, shard=s.shard) for s in self.shards for r in s.failed_records]

    @classmethod
    def add_up(cls, job_id: str, shards: list[ShardAccount]) -> JobAccount:
        """The job's account from its shards' accounts."""
        shards = sorted(shards, key=lambda s: s.shard)
        total = sum(s.total for s in shards)
        succeeded = sum(s.succeeded for s in shards)
        status: Literal["success", "partial", "fail"] = (
            "success" if succeeded == total else "partial" if succeeded else "fail"
        )
        return cls(
            job_id=job_id,
            status=status,
            total=total,
            succeeded=succeeded,
            failed=sum(s.failed for s in shards),
            unknown=sum(s.unknown for s in shards),
            not_sent=sum(s.not_sent for s in shards),
            sent=sum(s.sent for s in shards),
            skipped=sum(s.skipped for s in shards),
            shards=shards,
        )


@dataclass(frozen=True)
class JobProgress:
    """Where a job stands, across all shards and workers.

    ``succeeded`` counts distinct records accepted so far (it is read live while shards run);
    ``total`` is ``None`` for a loader job until every shard has finished; ``running`` maps a
    running shard to the worker running it (``host:pid``).
    """

    job_id: str
    shards: int
    shards_done: int
    running: dict[int, str]
    total: int | None
    succeeded: int

    @property
    def fraction(self) -> float | None:
        """``succeeded / total``, or ``None`` when the total is not known."""
        if not self.total:
            return None
        return self.succeeded / self.total

    @property
    def finished(self) -> bool:
        """Whether every shard of the current run has an account."""
        return self.shards_done >= self.shards


class Job:
    """A submitted job: watch it with :meth:`progress`, wait for it with :meth:`result`."""

    def __init__(
        self, fanout: Fanout, job_id: str, plan: JobPlan | None = None, tasks: Any = None
    ) -> None:
        self.fanout = fanout
        self.job_id = job_id
        self.plan = plan
        self.tasks = tasks
        """The Celery ``GroupResult`` of this run's shard tasks (``None`` for a handle made
        by :meth:`Fanout.job`); each task's result in the result backend is its shard's
        account, as a dict."""

    def progress(self) -> JobProgress:
        """The job's progress now: distinct records accepted, shards finished and running."""
        store = self.fanout._store()
        meta = store.meta(self.job_id)
        if meta is None:
            raise LookupError(f"no job {self.job_id!r} in this fanout's Redis")
        shards, total = meta
        done, accounts, running = store.snapshot(self.job_id)
        if total is None and len(accounts) >= shards:
            total = sum(a["total"] for a in accounts.values())
        return JobProgress(self.job_id, shards, len(accounts), running, total, done)

    def account(self) -> JobAccount | None:
        """The job's account, or ``None`` while some shard of this run has none yet."""
        store = self.fanout._store()
        meta = store.meta(self.job_id)
        if meta is None:
            raise LookupError(f"no job {self.job_id!r} in this fanout's Redis")
        _, accounts, _ = store.snapshot(self.job_id)
        if len(accounts) < meta[0]:
            return None
        return JobAccount.add_up(
            self.job_id, [ShardAccount.from_dict(a) for a in accounts.values()]
        )

    def result(self, timeout: float | None = None, *, interval: float = 0.5) -> JobAccount:
        """Wait until every shard has an account and return the job's; ``TimeoutError`` else.

        A shard whose retries ran out still gets an account (its unsent records as
        ``not_sent`` and the reason in ``error``), so a job always finishes.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            account = self.account()
            if account is not None:
                return account
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"job {self.job_id!r} not finished after {timeout} s")
            time.sleep(interval)

    def rerun(self) -> Job:
        """Submit the same plan again: only records that have not succeeded are sent."""
        if self.plan is None:
            raise ValueError("this Job has no plan; build the plan again and submit it")
        return self.fanout.submit(self.plan)

    def __repr__(self) -> str:
        return f"Job({self.job_id!r})"


# -- the fanout -----------------------------------------------------------------------------


class Fanout:
    """Registers the shard task on a Celery app and plans, submits and accounts for jobs.

    Create it once, in the module your workers load (``celery -A yourapp worker``), so both the
    producer and the workers know the task. ``client_factory`` makes the :class:`Suprsend`
    client each worker process uses (by default ``Suprsend()``, configured from the
    ``SUPRSEND_*`` environment variables); it is called once per process at start
    (``worker_process_init``) and the client is closed at shutdown. ``loaders`` names the
    functions :meth:`plan_loader` jobs may use.

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

        fanout = self

        def send_shard(task: Any, spec: dict[str, Any]) -> dict[str, Any]:
            return fanout._run_task(task, spec)

        send_shard.__doc__ = "Send one shard of a fanout job; returns the shard's account."
        self.shard_task: Any = app.task(
            bind=True,
            name=task_name,
            acks_late=True,
            reject_on_worker_lost=True,
            max_retries=max_retries,
        )(send_shard)
        signals.worker_process_init.connect(self._on_process_init)
        signals.worker_process_shutdown.connect(self._on_process_shutdown)
        signals.worker_shutdown.connect(self._on_process_shutdown)

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

    def _store(self) -> _Store:
        with self._lock:
            if self._redis is None or self._redis_pid != os.getpid():
                # A connection pool must not cross a fork: each process makes its own.
                self._redis = redis.Redis.from_url(self.state_url)
                self._redis_pid = os.getpid()
            return _Store(self._redis, self.key_prefix, self.state_ttl)

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
        legacy: bool = False,
    ) -> JobPlan:
        """:func:`plan_loader`, checking that ``loader`` is registered with this fanout."""
        if loader not in self.loaders:
            raise ValueError(f"loader {loader!r} is not registered (known: {sorted(self.loaders)})")
        return plan_loader(job_id, loader, specs, key_from=key_from, legacy=legacy)

    def submit(self, plan: JobPlan) -> Job:
        """Send every shard of ``plan`` to the workers; re-submitting sends only what is left.

        Records that succeeded in an earlier run of the same job id are skipped by the
        workers, without a request.
        """
        run = self._store().begin(plan)
        tasks = None
        if plan.shards:
            shards = ({**spec, "run": run} for spec in plan.shards)
            tasks = group(self.shard_task.s(spec) for spec in shards).apply_async()
        return Job(self, plan.job_id, plan, tasks)

    def job(self, job_id: str) -> Job:
        """A handle on a job submitted earlier (possibly by another process)."""
        return Job(self, _check_job_id(job_id))

    # -- the shard task -----------------------------------------------------------------

    def _run_task(self, task: Any, spec: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.run_shard(spec)
        except Exception as exc:
            retries = int(task.request.retries or 0)
            if retries >= self.max_retries:
                return self._give_up(spec, f"{type(exc).__name__}: {exc}", retries + 1)
            raise task.retry(exc=exc, countdown=min(2**retries, 30)) from exc

    def _give_up(self, spec: Mapping[str, Any], reason: str, attempts: int) -> dict[str, Any]:
        """Write the account of a shard that cannot run: what did not succeed is not sent."""
        store = self._store()
        job, shard = spec["job"], int(spec["shard"])
        total = spec.get("count") or 0
        succeeded = 0
        if spec["source"] != "loader":  # a loader is not called again only to count
            try:
                entries = _entries(spec, self.loaders)
                total = len(entries)
                succeeded = len(store.succeeded_among(job, [e.identity for e in entries]))
            except Exception:  # the shard's source itself is what fails
                pass
        account = ShardAccount(
            shard=shard,
            total=total,
            succeeded=succeeded,
            failed=0,
            unknown=0,
            not_sent=total - succeeded,
            sent=0,
            skipped=succeeded,
            deliveries=attempts,
            worker=_where(),
            error=f"the shard gave up after {attempts} attempt(s): {reason}",
        )
        data = _as_dict(account)
        store.finish(job, shard, data, spec.get("run"))
        return data

    def run_shard(self, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Send one shard's records that have not succeeded yet; returns its account.

        This is the body of the Celery task, callable directly (tests, other task systems).
        """
        store = self._store()
        job, shard = _check_job_id(spec["job"]), int(spec["shard"])
        deliveries = store.start(job, shard, _where())
        if deliveries > self.max_deliveries:
            return self._give_up(
                spec,
                f"delivered more than max_deliveries={self.max_deliveries} times",
                deliveries,
            )
        entries = _entries(spec, self.loaders)
        already = store.succeeded_among(job, [e.identity for e in entries if e.error is None])
        failed_records: list[dict[str, Any]] = []
        counts = {"succeeded": 0, "failed": 0, "unknown": 0, "not_sent": 0}
        dropped = 0

        def keep(entry: _Entry, state: str, code: int | None, error: str) -> None:
            nonlocal dropped
            counts[state] += 1
            if len(failed_records) < self.max_failed_records:
                failed_records.append(
                    {
                        "identity": entry.identity,
                        "idempotency_key": idempotency_key(job, entry.identity),
                        "state": state,
                        "code": code,
                        "error": error,
                    }
                )
            else:
                dropped += 1

        to_send: list[dict[str, Any]] = []
        sending: list[_Entry] = []
        skipped = 0
        for entry in entries:
            if entry.error is not None:
                keep(entry, "failed", 400, entry.error)
            elif entry.identity in already:
                skipped += 1
            else:
                body = dict(entry.record)
                body["$idempotency_key"] = idempotency_key(job, entry.identity)
                to_send.append(body)
                sending.append(entry)

        warnings: list[str] = []
        if to_send:
            writer = _SucceededWriter(store, job)

            def on_outcome(outcome: RecordOutcome) -> None:
                entry = sending[outcome.index]
                if outcome.state == "succeeded":
                    counts["succeeded"] += 1
                    writer.add(entry.identity)
                else:
                    keep(entry, outcome.state, outcome.status_code, outcome.describe_failure())

            client = self.client()
            workflows = client.bulk_workflows if spec.get("legacy") else client.workflows
            try:
                summary = workflows.bulk_trigger(
                    to_send,
                    concurrency=self.concurrency,
                    max_records_per_second=self.max_records_per_second,
                    on_outcome=on_outcome,
                    keep_failed_records=False,
                )
            finally:
                writer.close()
            warnings.extend(summary.warnings)
        if dropped:
            warnings.append(f"{dropped} more records did not succeed (not listed)")
        account = ShardAccount(
            shard=shard,
            total=len(entries),
            succeeded=counts["succeeded"] + skipped,
            failed=counts["failed"],
            unknown=counts["unknown"],
            not_sent=counts["not_sent"],
            sent=len(to_send),
            skipped=skipped,
            deliveries=deliveries,
            worker=_where(),
            failed_records=failed_records,
            warnings=warnings,
        )
        data = _as_dict(account)
        store.finish(job, shard, data, spec.get("run"))
        return data


def _where() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _as_dict(account: ShardAccount) -> dict[str, Any]:
    return {name: getattr(account, name) for name in ShardAccount.__dataclass_fields__}
