"""Bulk result types: per-record outcomes, failed records, the summary and progress."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ._responses import ErrorType, _DictReads

__all__ = ["BulkProgress", "BulkResponse", "FailedRecord", "RecordOutcome", "RecordState"]

RecordState = Literal["succeeded", "failed", "not_sent", "unknown"]
"""Where a bulk record stands.

``unknown`` means it was sent but no answer came back (the run was cancelled while it was in
flight); ``not_sent`` means it never left the process.
"""


@dataclass(slots=True)
class RecordOutcome:
    """What happened to one record of a bulk call (``index`` is its position in the input)."""

    index: int
    state: RecordState
    record: Any
    status_code: int | None = None
    message_id: str | None = None
    error: str | None = None
    error_type: ErrorType | None = None
    idempotency_key: str | None = None
    attempts: int = 0

    @property
    def success(self) -> bool:
        """Whether the service accepted the record."""
        return self.state == "succeeded"

    def describe_failure(self) -> str:
        """A one-line reason for a record that did not succeed."""
        if self.state == "not_sent":
            return self.error or "not sent: the bulk call stopped before this record was sent"
        if self.state == "unknown":
            return self.error or (
                "unknown: sent, but the bulk call stopped before the answer arrived"
            )
        return self.error or "failed"


@dataclass(frozen=True, slots=True, eq=False)
class FailedRecord(_DictReads):
    """A record that did not succeed: ``record`` (the body), ``error`` and ``code``.

    ``code`` is the HTTP status (400 for a record refused by validation before sending,
    ``None`` when no answer arrived). Also readable as ``failed["error"]``.
    """

    _dict_keys = ("record", "error", "code")

    record: Any
    error: str
    code: int | None
    index: int
    state: RecordState = "failed"
    error_type: ErrorType | None = None
    idempotency_key: str | None = None

    @classmethod
    def from_outcome(cls, outcome: RecordOutcome) -> FailedRecord:
        """The failed-record view of an outcome that did not succeed."""
        return cls(
            record=outcome.record,
            error=outcome.describe_failure(),
            code=outcome.status_code,
            index=outcome.index,
            state=outcome.state,
            error_type=outcome.error_type,
            idempotency_key=outcome.idempotency_key,
        )

    def __repr__(self) -> str:
        return f"FailedRecord(index={self.index}, code={self.code!r}, error={self.error!r})"


@dataclass(slots=True, eq=False)
class BulkResponse(_DictReads):
    """The result of a bulk call; every record is counted exactly once.

    ``status`` is ``success`` when every record succeeded, ``partial`` when some did and
    ``fail`` when none did. ``success + failure == total``; records that were not sent or whose
    answer never arrived (a cancelled run) are among the failures, in ``failed_records``, with
    their state saying which. ``outcomes`` holds every record's outcome in input order for a
    bulk instance; the streaming ``bulk_trigger`` leaves it ``None`` (outcomes go to its
    callback instead) to keep memory bounded.
    """

    _dict_keys = ("status", "total", "success", "failure", "failed_records", "warnings")

    status: Literal["success", "partial", "fail"]
    total: int
    success: int
    failure: int
    failed_records: list[FailedRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    outcomes: list[RecordOutcome] | None = None
    not_sent: int = 0
    unknown: int = 0
    requests: int = 0

    @staticmethod
    def status_for(total: int, success: int) -> Literal["success", "partial", "fail"]:
        """The guide's status word for ``success`` out of ``total`` records."""
        if success == total:
            return "success"
        return "partial" if success else "fail"

    def __repr__(self) -> str:
        failed = self.failed_records[:3]
        more = f" +{len(self.failed_records) - 3} more" if len(self.failed_records) > 3 else ""
        return (
            f"BulkResponse(status={self.status!r}, total={self.total}, success={self.success},"
            f" failure={self.failure}, failed_records={failed!r}{more},"
            f" warnings={self.warnings!r})"
        )


@dataclass(frozen=True, slots=True)
class BulkProgress:
    """Progress of a bulk call, passed to ``on_progress`` after each request completes.

    ``total`` is known for a bulk instance and for sized inputs (lists), else ``None``.
    """

    total: int | None
    done: int
    succeeded: int
    failed: int
    requests: int

    @property
    def fraction(self) -> float | None:
        """``done / total``, or ``None`` when the total is not known."""
        if not self.total:
            return None
        return self.done / self.total
