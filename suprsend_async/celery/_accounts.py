"""What a shard and a job did: accounts that add up, and a job's progress."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .._bulk_results import BulkResponse

__all__ = ["JobAccount", "JobProgress", "ShardAccount", "as_dict"]


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


def as_dict(account: ShardAccount) -> dict[str, Any]:
    """An account as stored in Redis and returned by the shard task."""
    return {name: getattr(account, name) for name in ShardAccount.__dataclass_fields__}


@dataclass(frozen=True)
class JobAccount:
    """The whole job: every shard's last account added up.

    ``status`` is ``success`` when every record succeeded, ``partial`` when some did and
    ``fail`` when none did (the bulk result's rule). Run the job again (same plan, same job
    id) to send the records that did not succeed; ``unknown`` ones are safe to send again
    under their keys.
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
        return cls(
            job_id=job_id,
            status=BulkResponse.status_for(total, succeeded),
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
