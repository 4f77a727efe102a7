"""What a resumable journal does, whichever store keeps it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, Protocol, runtime_checkable

from .._bulk_results import RecordOutcome
from .._retry import is_transient

__all__ = ["Journal", "Settled", "note_outcome"]

Settled = Literal["succeeded", "failed"]
"""The states a journal keeps; records not sent or of unknown fate are simply not in it."""


@runtime_checkable
class Journal(Protocol):
    """A run's account of settled records, kept so that a later run sends only the rest.

    A record is named by its ``identity`` (a line number, a position, a business key), unique
    within the run. Its idempotency key is `key` of that identity: the same on every
    resume. Success is final: once a record succeeded, a later failure of it is ignored (the
    service has it). A failure is either for good (the service refused the record) or
    passing (no answer, 429, 5xx): a resume may choose to skip only the first kind.
    """

    @property
    def run_id(self) -> str:
        """The run's id, part of every key the run derives."""
        ...

    def key(self, identity: str) -> str:
        """The idempotency key of the record ``identity`` in this run."""
        ...

    def record(
        self, identity: str, state: Settled, code: int | None = None, *, retry: bool = False
    ) -> None:
        """Note a record's outcome; ``retry`` marks a failure a resend could cure.

        Safe to call from any thread; kept until `flush` (or close) makes it durable.
        """
        ...

    def succeeded_among(self, identities: Iterable[str]) -> set[str]:
        """Which of ``identities`` succeeded in this run or a run it resumes."""
        ...

    def failed_among(self, identities: Iterable[str]) -> dict[str, bool]:
        """Which of ``identities`` failed (and did not succeed since): identity -> for good."""
        ...

    def count_succeeded(self) -> int:
        """How many distinct records succeeded."""
        ...

    def flush(self) -> None:
        """Make every recorded outcome durable."""
        ...

    def close(self) -> None:
        """Flush, and release the store's resources (the journal itself stays)."""
        ...


def note_outcome(journal: Journal, identity: str, outcome: RecordOutcome) -> None:
    """Record a bulk record's outcome: the one rule of what a journal keeps.

    A success is kept; a failure too, marked ``retry`` when a resend could cure it (no answer,
    429, 5xx). ``not_sent`` and ``unknown`` records are left out: a resumed run sends them,
    under the same key.
    """
    if outcome.state == "succeeded":
        journal.record(identity, "succeeded", outcome.status_code)
    elif outcome.state == "failed":
        journal.record(
            identity, "failed", outcome.status_code, retry=is_transient(outcome.status_code)
        )
