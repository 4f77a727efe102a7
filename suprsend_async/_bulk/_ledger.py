"""The ledger: every record's state, and the only place that builds a bulk's account.

The invariant it keeps: every record taken into a bulk ends in exactly one final state,
reported once (to ``on_outcome``, the counters and the failed records):

* ``succeeded``: the service said it accepted the record;
* ``failed``: the service refused it (or it was invalid, or it could not be sent at all);
* ``not_sent``: it never reached the service: a later ``trigger()`` sends it;
* ``unknown``: the request carrying it may have reached the service, and no answer that can
  be trusted came back; safe to resend under its idempotency key.

Until then a record is live: ``queued`` (waiting for a worker, the rate limiter, a pool
connection or a back-off; or refused by the service with a transient status, which the service
does not process) or ``writing`` (the request carrying it has started going out on a
connection).

"May have reached the service" is memory that outlives every later outcome. A record is
``reached`` once a request carrying it got no answer, or once it ends ``unknown``; the set is
kept across runs over the same records (a bulk instance shares it with every ``trigger()``).
A reached record ends ``succeeded`` (an answer says so) or ``unknown``: never ``failed`` or
``not_sent``. A later refusal (a 429 with a long ``Retry-After``, a 4xx, an attachment that
cannot be read again, a deadline while it waits) speaks for that attempt only, not for the
earlier one the service may hold under the record's key; it is kept as the last error.
`Ledger._emit`, the one way out, enforces the rule.

Transitions go only forward (see `Ledger._step`); anything else is a bug and raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .._bulk_results import BulkProgress, BulkResponse, FailedRecord, RecordOutcome, RecordState
from ._classify import Classified, Verdict
from ._plan import Item

__all__ = ["Ledger", "LedgerError"]

logger = logging.getLogger("suprsend_async")

OutcomeCallback = Callable[[RecordOutcome], Any]
ProgressCallback = Callable[[BulkProgress], Any]


_EARLIER = "an earlier attempt may have been processed, and no answer since said so"


class LedgerError(AssertionError):
    """A transition the ledger does not allow: a bug in the engine, never the caller's."""


class Ledger:
    """Per-record states of one bulk run, the counters, and the callbacks."""

    def __init__(
        self,
        *,
        on_outcome: OutcomeCallback | None,
        on_progress: ProgressCallback | None,
        total: int | None,
        keep_failed: bool,
        reached: set[int] | None = None,
    ) -> None:
        self.on_outcome = on_outcome
        self.reached: set[int] = reached if reached is not None else set()
        """Indices of the records that may have reached the service, in this run or in an
        earlier one over the same records (pass the same set to each run)."""
        self.on_progress = on_progress
        self.total = total
        self.keep_failed = keep_failed
        self._live: dict[int, Item] = {}  # the live records (each keeps its own state)
        self.succeeded = 0
        self.failed = 0
        self.not_sent = 0
        self.unknown = 0
        self.requests = 0
        self.failed_records: list[FailedRecord] = []
        self.warnings: list[str] = []
        self._callback_errors = 0
        self.closed = False

    # -- intake ---------------------------------------------------------------------------

    def admit(self, item: Item) -> None:
        """A prepared record, not sent by this run: ``queued`` (an earlier run may have)."""
        if item.index in self._live or self.closed:
            raise LedgerError(f"record {item.index} admitted twice or after the end")
        item.state, item.last = "queued", None
        self._live[item.index] = item

    def admit_chunk(self, chunk: Sequence[Item]) -> None:
        """`admit` for each record of a chunk the planner closed."""
        live = self._live
        for item in chunk:
            if item.index in live or self.closed:
                raise LedgerError(f"record {item.index} admitted twice or after the end")
            item.state, item.last = "queued", None
            live[item.index] = item

    def settle_now(self, outcome: RecordOutcome) -> None:
        """A record that is final from the start (refused by validation, never read)."""
        if outcome.index in self._live:
            raise LedgerError(f"record {outcome.index} is live")
        self._finish(outcome)

    @property
    def live(self) -> int:
        """Records taken and not final yet."""
        return len(self._live)

    # -- the way out ----------------------------------------------------------------------

    def writing(self, items: Sequence[Item]) -> None:
        """The request carrying ``items`` has started going out: they may reach the service."""
        live = self._live
        for item in items:
            if live.get(item.index) is not item:
                raise LedgerError(f"record {item.index} is not live and cannot be written")
            item.state = "writing"  # (again, if a connection was replaced mid-request)

    def answered(self, items: Sequence[Item], classified: Classified) -> list[Item]:
        """Apply an answer's verdicts; return the records that want another attempt."""
        self.requests += 1
        if classified.warning is not None:
            self.warn(classified.warning)
        live = self._live
        if classified.all_succeeded and self.on_outcome is None:
            # The common answer, in one step: every record accepted, and nobody asked for
            # the outcome objects (see _emit), so each is only counted.
            for item in items:
                if live.pop(item.index, None) is not item:
                    raise LedgerError(f"record {item.index} answered but not live")
                item.attempts += 1
            self.succeeded += len(items)
            self.progress()
            return []
        again: list[Item] = []
        for item, verdict in zip(items, classified.verdicts, strict=True):
            if live.get(item.index) is not item:
                raise LedgerError(f"record {item.index} answered but not live")
            item.attempts += 1
            if self._step(item, verdict):
                again.append(item)
        self.progress()
        return again

    def _step(self, item: Item, verdict: Verdict) -> bool:
        """Move one live record on by a verdict; True when it stays live for a retry."""
        kind = verdict.kind
        if kind == "succeeded":
            self._final(item, "succeeded", verdict)
            return False
        if kind == "failed":
            self._final(item, "failed", verdict)
            return False
        if kind == "unknown":
            self._final(item, "unknown", verdict)
            return False
        item.last = verdict
        if kind == "lost" and item.state == "writing":
            self.reached.add(item.index)  # no answer to a request that went out
        # Refused with a transient status (not processed), or lost: queued for a retry.
        item.state = "queued"
        return True

    def give_up(self, items: Iterable[Item]) -> None:
        """No more attempts for ``items``: each ends by its last verdict and its state."""
        for item in items:
            if self._live.get(item.index) is not item or item.last is None:
                raise LedgerError(f"record {item.index} given up without a verdict")
            # Refused each time, or it never went out: failed, unless reached (see _emit).
            self._final(item, "failed", item.last)
        self.progress()

    def fail(self, item: Item, error: str, error_type: Any) -> None:
        """A record that cannot be sent (an attachment that can no longer be read).

        If an earlier attempt of it may have been processed, it is ``unknown``.
        """
        if self._live.get(item.index) is not item or item.state == "writing":
            raise LedgerError(f"record {item.index} cannot fail while it is being written")
        self._final(item, "failed", Verdict("failed", None, None, error, error_type))

    def close(self) -> None:
        """The run is over (done, cancelled, failed): every live record gets its final state.

        ``queued`` records were not sent by this run (``not_sent``, unless reached earlier);
        ``writing`` ones may have reached the service (``unknown``).
        """
        self.closed = True
        live, self._live = self._live, {}
        for item in live.values():
            if item.state == "queued":
                # The last refusal is worth keeping only if the record ends unknown.
                last = item.last if item.index in self.reached else None
                self._emit(item, "not_sent", last)
            else:
                self._emit(
                    item,
                    "unknown",
                    None,
                    note="sent, but the bulk call stopped before the answer arrived",
                )
        if live:
            self.progress()

    # -- outcomes -------------------------------------------------------------------------

    def _final(self, item: Item, state: RecordState, verdict: Verdict, note: str = "") -> None:
        del self._live[item.index]
        self._emit(item, state, verdict, note)

    def _emit(
        self, item: Item, state: RecordState, verdict: Verdict | None, note: str = ""
    ) -> None:
        """Report a record's final state: the one way out, where "reached" is enforced."""
        if state in ("failed", "not_sent") and item.index in self.reached:
            state, note = "unknown", _EARLIER
        if state == "unknown":
            self.reached.add(item.index)
        if state == "succeeded" and self.on_outcome is None:
            self.succeeded += 1  # nobody asked for the outcome object: count it only
            return
        prepared = item.prepared
        error = verdict.error if verdict is not None else None
        if note:
            error = f"unknown: {note}" + (f" (last: {error})" if error else "")
        self._finish(
            RecordOutcome(
                item.index,
                state,
                None,
                status_code=verdict.status_code if verdict is not None else None,
                message_id=verdict.message_id if verdict is not None else None,
                error=error,
                error_type=verdict.error_type if verdict is not None else None,
                idempotency_key=prepared.idempotency_key,
                attempts=item.attempts,
                sent=prepared.content,
            )
        )

    def _finish(self, outcome: RecordOutcome) -> None:
        state = outcome.state
        if state == "succeeded":
            self.succeeded += 1
        else:
            self.failed += 1
            if state == "not_sent":
                self.not_sent += 1
            elif state == "unknown":
                self.unknown += 1
            if self.keep_failed:
                self.failed_records.append(FailedRecord.from_outcome(outcome))
        if self.on_outcome is not None:
            self.call_back(self.on_outcome, outcome)

    def snapshot(self) -> BulkProgress:
        """Where the run stands."""
        return BulkProgress.of(
            self.total,
            succeeded=self.succeeded,
            not_succeeded=self.failed,
            not_sent=self.not_sent,
            unknown=self.unknown,
            requests=self.requests,
        )

    def progress(self) -> None:
        if self.on_progress is not None:
            self.call_back(self.on_progress, self.snapshot())

    def call_back(self, callback: Callable[[Any], Any], value: Any) -> None:
        """Run a caller's callback; its failure must not break the account of the records."""
        try:
            callback(value)
        except Exception as exc:
            self._callback_errors += 1
            if self._callback_errors == 1:
                logger.exception("bulk: a callback raised; the bulk goes on")
                self.warnings.append(
                    f"callback {getattr(callback, '__name__', repr(callback))} raised"
                    f" {type(exc).__name__}: {exc}"
                )

    def warn(self, message: str) -> None:
        logger.warning("bulk: %s", message)
        self.warnings.append(message)

    def summary(self) -> BulkResponse:
        """The account of the run: every record taken, counted once."""
        self.failed_records.sort(key=lambda f: f.index)
        if self._callback_errors > 1:
            self.warnings.append(f"callbacks raised {self._callback_errors} times in all")
        total = self.succeeded + self.failed
        return BulkResponse(
            status=BulkResponse.status_for(total, self.succeeded),
            total=total,
            success=self.succeeded,
            failure=self.failed,
            failed_records=self.failed_records,
            warnings=self.warnings,
            not_sent=self.not_sent,
            unknown=self.unknown,
            requests=self.requests,
        )
