"""Planning a job: cutting its records into shards, one JSON-serialisable spec per task."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from .._types import RECORD_KINDS, RequestKind

__all__ = [
    "DEFAULT_RECORDS_PER_SHARD",
    "JobPlan",
    "check_job_id",
    "plan_jsonl",
    "plan_loader",
    "plan_records",
    "shard_kind",
]

DEFAULT_RECORDS_PER_SHARD = 5_000
"""Records per shard when planning a file or an iterable, unless told otherwise."""

_JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")
_LOADER = re.compile(r"[A-Za-z_][\w.-]{0,63}")

ShardSource = Literal["jsonl", "records", "loader"]


def check_job_id(job_id: str) -> str:
    """``job_id`` if it makes good keys (letters, digits, ``._:@+-``), else ``ValueError``."""
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


def _check_kind(kind: RequestKind) -> RequestKind:
    if kind not in RECORD_KINDS:
        raise ValueError(f"kind {kind!r}: expected one of {', '.join(RECORD_KINDS)}")
    return kind


def shard_kind(spec: Mapping[str, Any]) -> RequestKind:
    """Which API a shard's records are for (specs queued by earlier versions say ``legacy``)."""
    kind = spec.get("kind")
    if kind in RECORD_KINDS:
        return kind  # type: ignore[no-any-return]
    return "legacy" if spec.get("legacy") else "trigger"


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
    kind: RequestKind,
    count: int | None,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "job": job_id,
        "shard": index,
        "source": source,
        "key_from": key_from,
        "kind": kind,
        "count": count,
        **fields,
    }


def plan_jsonl(
    job_id: str,
    path: str | os.PathLike[str],
    *,
    records_per_shard: int = DEFAULT_RECORDS_PER_SHARD,
    key_from: str | None = None,
    kind: RequestKind = "trigger",
) -> JobPlan:
    """Plan a JSONL file (one record per line) into shards of byte ranges.

    The file is read once here to cut it at line boundaries; each worker then reads only its
    own range, so the file must be at the same path on every worker (shared storage) and must
    not change while the job (or a re-run of it) lives. A record's identity is its line number
    (0-based; blank lines are skipped but keep their numbers), or ``key_from``: a dotted path
    into the record (``"data.order_id"``) whose value is unique within the job. ``kind`` says
    which API the records are for: ``"trigger"`` (workflow triggers), ``"legacy"`` (legacy
    ``Workflow`` bodies) or ``"event"``.
    """
    check_job_id(job_id)
    _check_shard_size(records_per_shard)
    _check_kind(kind)
    file = str(Path(path).resolve())
    shards: list[dict[str, Any]] = []
    start = offset = first = line_no = count = 0

    def cut() -> None:
        shards.append(
            _shard(job_id, len(shards), "jsonl", key_from, kind, count,
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
    kind: RequestKind = "trigger",
) -> JobPlan:
    """Plan records given in memory; each shard's records travel in its task message.

    For smaller jobs: the broker holds every record until its shard runs, so keep messages
    well under the broker's limits (a shard of 1,000 small records is a few hundred KB).
    Records must be JSON-serialisable mappings (request bodies). A record's identity is its
    position in ``records``, or the value at ``key_from``; pass the same records in the same
    order to re-run the job. ``kind`` as for `plan_jsonl`.
    """
    check_job_id(job_id)
    _check_shard_size(records_per_shard)
    _check_kind(kind)
    shards: list[dict[str, Any]] = []
    batch: list[Any] = []
    first = position = 0

    def close_shard() -> None:
        shards.append(
            _shard(job_id, len(shards), "records", key_from, kind, len(batch),
                   records=batch, first=first)
        )  # fmt: skip

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
    kind: RequestKind = "trigger",
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
    check_job_id(job_id)
    _check_kind(kind)
    if not isinstance(loader, str) or not _LOADER.fullmatch(loader):
        raise ValueError(f"loader {loader!r}: expected a registered loader's name")
    shards = [
        _shard(job_id, i, "loader", key_from, kind, None, loader=loader, spec=dict(spec))
        for i, spec in enumerate(specs)
    ]
    return JobPlan(job_id, tuple(shards), None)
