"""A submitted job: its progress, its account, waiting for it, running it again."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from ._accounts import JobAccount, JobProgress, ShardAccount
from ._plan import JobPlan

if TYPE_CHECKING:
    from ._fanout import Fanout

__all__ = ["Job"]


class Job:
    """A submitted job: watch it with `progress`, wait for it with `result`."""

    def __init__(
        self, fanout: Fanout, job_id: str, plan: JobPlan | None = None, tasks: Any = None
    ) -> None:
        self.fanout = fanout
        self.job_id = job_id
        self.plan = plan
        self.tasks = tasks
        """The Celery ``GroupResult`` of this run's shard tasks (``None`` for a handle made
        by `Fanout.job`); each task's result in the result backend is its shard's
        account, as a dict."""

    def _meta(self) -> tuple[int, int | None]:
        meta = self.fanout._state().meta(self.job_id)
        if meta is None:
            raise LookupError(f"no job {self.job_id!r} in this fanout's Redis")
        return meta

    def progress(self) -> JobProgress:
        """The job's progress now: distinct records accepted, shards finished and running."""
        shards, total = self._meta()
        done, accounts, running = self.fanout._state().snapshot(self.job_id)
        if total is None and len(accounts) >= shards:
            total = sum(a["total"] for a in accounts.values())
        return JobProgress(self.job_id, shards, len(accounts), running, total, done)

    def account(self) -> JobAccount | None:
        """The job's account, or ``None`` while some shard of this run has none yet."""
        shards, _ = self._meta()
        _, accounts, _ = self.fanout._state().snapshot(self.job_id)
        if len(accounts) < shards:
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
