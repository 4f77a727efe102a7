"""Bulk result types: per-record outcomes, failed records, the summary and progress."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ._responses import ErrorType, _DictReads

__all__ = ["BulkProgress", "BulkResponse", "FailedRecord", "RecordOutcome", "RecordState"]

RecordState = Literal["succeeded", "failed", "not_sent", "unknown"]
"""Where a bulk record stands.

``unknown`` means the request carrying it may have reached the service but no answer that can
be trusted came back (a cancelled, lost or unmatched answer): safe to resend under its key.
``not_sent`` means it never reached the service.
"""


class RecordOutcome:
    """What happened to one record of a bulk call (``index`` is its position in the input).

    ``record`` is a snapshot of the record as it was sent, idempotency key included (decoded
    from the bytes sent, when it is first read), so it stays what was sent whatever happens
    to the caller's objects later. A record refused before sending is shown as given.
    """

    __slots__ = (
        "_record",
        "_sent",
        "attempts",
        "error",
        "error_type",
        "idempotency_key",
        "index",
        "message_id",
        "state",
        "status_code",
    )

    def __init__(
        self,
        index: int,
        state: RecordState,
        record: Any = None,
        status_code: int | None = None,
        message_id: str | None = None,
        error: str | None = None,
        error_type: ErrorType | None = None,
        idempotency_key: str | None = None,
        attempts: int = 0,
        *,
        sent: bytes | None = None,
    ) -> None:
        self.index = index
        self.state: RecordState = state
        self._record = record
        self._sent = sent
        self.status_code = status_code
        self.message_id = message_id
        self.error = error
        self.error_type: ErrorType | None = error_type
        self.idempotency_key = idempotency_key
        self.attempts = attempts

    @property
    def record(self) -> Any:
        """The record as sent (a fresh dict decoded from the bytes sent), or as given."""
        if self._sent is not None:
            self._record = json.loads(self._sent)
            self._sent = None
        return self._record

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

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordOutcome):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _OUTCOME_FIELDS)

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaced

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in _OUTCOME_FIELDS)
        return f"RecordOutcome({fields})"


_OUTCOME_FIELDS = (
    "index",
    "state",
    "record",
    "status_code",
    "message_id",
    "error",
    "error_type",
    "idempotency_key",
    "attempts",
)


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

    Every record taken so far is counted once, in one of four states: ``succeeded``,
    ``failed`` (refused by the service, invalid, or unable to go out), ``unknown`` (sent, no
    answer that can be trusted came back) and ``not_sent`` (the call stopped before sending
    it). ``done`` counts all four. A call that stops early (cancelled, interrupted, a deadline)
    reports its unsent records as ``not_sent``, never as ``failed``, so ``finished`` (and the
    command line's bar) stays short of ``total``.

    ``total`` is known for a bulk instance and for sized inputs (lists), else ``None``.
    """

    total: int | None
    done: int
    succeeded: int
    failed: int
    requests: int
    unknown: int = 0
    not_sent: int = 0

    @classmethod
    def of(
        cls,
        total: int | None,
        *,
        succeeded: int,
        not_succeeded: int,
        not_sent: int,
        unknown: int,
        requests: int,
    ) -> BulkProgress:
        """Progress from an account's counts, where ``not_succeeded`` (the summary's
        ``failure``) includes the records not sent and unknown: they are told apart here, so
        that a stopped call is not shown as failed."""
        return cls(
            total,
            succeeded + not_succeeded,
            succeeded,
            not_succeeded - not_sent - unknown,
            requests,
            unknown=unknown,
            not_sent=not_sent,
        )

    @property
    def finished(self) -> int:
        """Records the call took as far as it will: succeeded, failed or unknown."""
        return self.done - self.not_sent

    @property
    def fraction(self) -> float | None:
        """``finished / total`` (a stopped call's unsent records are not progress), or
        ``None`` when the total is not known."""
        if not self.total:
            return None
        return self.finished / self.total
