"""Bulk instances (``append`` then ``trigger``) and the streaming bulk call."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterable, Iterable, Mapping, Sequence
from typing import Any

import anyio
import httpx

from .._bulk_results import BulkResponse, FailedRecord, RecordOutcome
from .._core import PerCall, Sender
from .._types import NOT_GIVEN, NotGiven, RequestKind
from ._dispatch import KeyFrom, Preparer, Run
from ._ledger import OutcomeCallback, ProgressCallback
from ._plan import Item

__all__ = ["AsyncBulkWorkflowTrigger", "stream_bulk"]


class AsyncBulkWorkflowTrigger:
    """A bulk of records built with ``append`` and sent with ``await trigger()``.

    ``append`` validates and serialises each record at once: later edits to the caller's
    objects change nothing, and an invalid record is kept as a failed outcome (it does not
    raise). ``trigger()`` sends every record not yet sent; called again with nothing new it
    sends nothing and returns the same account. After a cancelled ``trigger()`` the
    instance keeps a truthful per-record account (``outcomes``): calling ``trigger()``
    again sends only the records that were never sent, and ``trigger(resend_unknown=True)``
    also those that may have been (safe: each keeps its idempotency key).
    """

    def __init__(self, sender: Sender, *, kind: RequestKind = "trigger") -> None:
        self._sender = sender
        self._kind: RequestKind = kind
        self._outcomes: list[RecordOutcome] = []
        self._waiting: dict[int, Item] = {}  # not sent, or unknown: a later trigger may send
        # Records that may have reached the service: a resend can make them succeeded, never
        # failed or not sent (the ledger's rule; this is its memory across triggers).
        self._reached: set[int] = set()
        self._warnings: list[str] = []
        self._requests = 0
        self._lock = anyio.Lock()
        self._append_lock = threading.Lock()
        core = sender.core
        self._preparer = Preparer(
            core.settings.auto_idempotency_keys, kind, self._warnings, core.env
        )

    def append(self, *requests: Any) -> None:
        """Add records (requests, models or plain dicts); invalid ones become failed outcomes.

        Safe to call from several threads (the sync facade) and while ``trigger()`` runs: such
        records are sent by the next ``trigger()``.
        """
        for raw in requests:
            with self._append_lock:  # an index and its slot are taken together
                index = len(self._outcomes)
                item = self._preparer.prepare(index, raw, None)
                if isinstance(item, RecordOutcome):
                    self._outcomes.append(item)
                    continue
                prepared = item.prepared
                self._outcomes.append(
                    RecordOutcome(
                        index,
                        "not_sent",
                        idempotency_key=prepared.idempotency_key,
                        sent=prepared.content,
                    )
                )
                self._waiting[index] = item

    def __len__(self) -> int:
        return len(self._outcomes)

    @property
    def outcomes(self) -> list[RecordOutcome]:
        """Each appended record's outcome so far, in append order."""
        return list(self._outcomes)

    async def trigger(
        self,
        *,
        concurrency: int | None = None,
        max_records_per_second: float | None = None,
        on_progress: ProgressCallback | None = None,
        resend_unknown: bool = False,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> BulkResponse:
        """Send every record not sent yet, concurrently, and return the account of all records.

        ``concurrency`` bounds requests in flight (default `DEFAULT_CONCURRENCY`);
        ``max_records_per_second`` caps the sending rate; ``on_progress`` is called with a
        `BulkProgress` after each request. ``resend_unknown=True`` also resends the
        records whose earlier request may have reached the service (``unknown``), under the
        same idempotency keys, so the service skips those it did process. ``deadline`` caps
        the call in seconds: past it the call stops as if cancelled, with a warning.
        """
        async with self._lock:
            # Built first: a bad argument must not cost the records their place in the queue.
            run = Run(
                self._sender,
                self._kind,
                concurrency=concurrency,
                max_records_per_second=max_records_per_second,
                on_outcome=self._store,
                on_progress=on_progress,
                total=None,
                keep_failed_records=False,
                per_call=PerCall.of(extra_headers, timeout),
                reached=self._reached,
            )
            wanted = ("not_sent", "unknown") if resend_unknown else ("not_sent",)
            with self._append_lock:
                batch = [
                    item
                    for index, item in sorted(self._waiting.items())
                    if self._outcomes[index].state in wanted
                ]
            if batch:
                run.ledger.total = len(batch)
                try:
                    await run.run(batch, None, deadline)
                finally:
                    self._warnings.extend(run.ledger.warnings)
                    self._requests += run.ledger.requests
            return self.result()

    def _store(self, outcome: RecordOutcome) -> None:
        self._outcomes[outcome.index] = outcome
        if outcome.state in ("succeeded", "failed"):
            self._waiting.pop(outcome.index, None)

    def result(self) -> BulkResponse:
        """The account of every appended record as it stands now."""
        outcomes = list(self._outcomes)
        success = sum(1 for o in outcomes if o.state == "succeeded")
        failed = [FailedRecord.from_outcome(o) for o in outcomes if o.state != "succeeded"]
        return BulkResponse(
            status=BulkResponse.status_for(len(outcomes), success),
            total=len(outcomes),
            success=success,
            failure=len(outcomes) - success,
            failed_records=failed,
            warnings=list(self._warnings),
            outcomes=outcomes,
            not_sent=sum(1 for o in outcomes if o.state == "not_sent"),
            unknown=sum(1 for o in outcomes if o.state == "unknown"),
            requests=self._requests,
        )


async def stream_bulk(
    sender: Sender,
    kind: RequestKind,
    records: Iterable[Any] | AsyncIterable[Any],
    *,
    concurrency: int | None,
    max_records_per_second: float | None,
    on_progress: ProgressCallback | None,
    on_outcome: OutcomeCallback | None,
    idempotency_key_from: KeyFrom | None,
    keep_failed_records: bool,
    deadline: float | NotGiven | None = NOT_GIVEN,
    per_call: PerCall | None = None,
) -> BulkResponse:
    """The streaming bulk call behind every namespace's ``bulk_trigger``."""
    run = Run(
        sender,
        kind,
        concurrency=concurrency,
        max_records_per_second=max_records_per_second,
        on_outcome=on_outcome,
        on_progress=on_progress,
        total=len(records) if isinstance(records, Sequence) else None,
        keep_failed_records=keep_failed_records,
        per_call=per_call,
    )
    await run.run(records, idempotency_key_from, deadline)
    return run.ledger.summary()
