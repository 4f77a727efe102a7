"""One shard's run: skip what succeeded, send the rest, keep the account."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._bulk_results import RecordOutcome
from .._sync_resources import BulkEvents, BulkWorkflows, Workflows
from ..journal import note_outcome
from ._accounts import ShardAccount, as_dict
from ._entries import Entry, entries
from ._plan import check_job_id, shard_kind
from ._state import Flusher

if TYPE_CHECKING:
    from ._fanout import Fanout

__all__ = ["ShardRun", "where"]


def where() -> str:
    """This worker process, as ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class ShardRun:
    """Sends one delivery of one shard and writes its account.

    Records the job's journal says succeeded are skipped; every other record is sent under
    the job's key for its identity, and its outcome goes to the journal as it comes. The
    account stored is merged with the shard's other deliveries in the same run (a shard
    delivered twice, a job submitted twice): a record's best state wins, and a record that
    any delivery of the run sent counts as sent, not skipped (see ``JobState.merge``).
    """

    def __init__(self, fanout: Fanout, spec: Mapping[str, Any]) -> None:
        self.fanout = fanout
        self.spec = spec
        self.state = fanout._state()
        self.job = check_job_id(spec["job"])
        self.shard = int(spec["shard"])
        self.journal = self.state.journal(self.job)
        self.run_number: int | None = None if spec.get("run") is None else int(spec["run"])
        self.counts = {"succeeded": 0, "failed": 0, "unknown": 0, "not_sent": 0}
        self.states: dict[str, str] = {}  # identity -> state, for records that did not succeed
        self.failed_records: list[dict[str, Any]] = []
        self.dropped = 0
        self.skipped = 0
        self.warnings: list[str] = []

    def run(self) -> dict[str, Any]:
        """Send what has not succeeded yet; the shard's account, as stored."""
        deliveries = self.state.start(self.job, self.shard, where())
        limit = self.fanout.max_deliveries
        if deliveries > limit:
            return self.give_up(f"delivered more than max_deliveries={limit} times", deliveries)
        shard_entries = entries(self.spec, self.fanout.loaders)
        sending = self._select(shard_entries)
        if sending:
            # Before sending: a delivery that dies part-way has still sent (some of) these.
            self.state.mark_sent(self.job, self.run_number, [e.identity for e in sending])
            self._send(sending)
        self.journal.flush()  # the refused records, when nothing was sent
        if self.dropped:
            self.warnings.append(f"{self.dropped} more records did not succeed (not listed)")
        account = ShardAccount(
            shard=self.shard,
            total=len(shard_entries),
            succeeded=self.counts["succeeded"] + self.skipped,
            failed=self.counts["failed"],
            unknown=self.counts["unknown"],
            not_sent=self.counts["not_sent"],
            sent=len(sending),
            skipped=self.skipped,
            deliveries=deliveries,
            worker=where(),
            failed_records=self.failed_records,
            warnings=self.warnings,
        )
        return self._store(account, [e.identity for e in shard_entries])

    def give_up(self, reason: str, attempts: int) -> dict[str, Any]:
        """Write the account of a shard that cannot run: what did not succeed is not sent."""
        total = self.spec.get("count") or 0
        succeeded = 0
        identities: list[str] | None = None
        if self.spec["source"] != "loader":  # a loader is not called again only to count
            try:
                identities = [e.identity for e in entries(self.spec, self.fanout.loaders)]
                total = len(identities)
                succeeded = len(self.journal.succeeded_among(identities))
            except Exception:  # the shard's source itself is what fails
                pass
        account = ShardAccount(
            shard=self.shard,
            total=total,
            succeeded=succeeded,
            failed=0,
            unknown=0,
            not_sent=total - succeeded,
            sent=0,
            skipped=succeeded,
            deliveries=attempts,
            worker=where(),
            error=f"the shard gave up after {attempts} attempt(s): {reason}",
        )
        return self._store(account, identities)

    def _store(self, account: ShardAccount, identities: list[str] | None) -> dict[str, Any]:
        """Store the account, merged with the shard's other deliveries when its records are
        known; the merged account, or this delivery's own if its run is over."""
        data = as_dict(account)
        if identities is None:  # a loader that cannot be read: nothing to merge by
            self.state.finish(self.job, self.shard, data, self.run_number)
            return data
        merged = self.state.merge(
            self.job, self.shard, self.run_number, identities, self.states, data
        )
        return data if merged is None else merged

    def _keep(self, entry: Entry, state: str, code: int | None, error: str) -> None:
        self.counts[state] += 1
        self.states[entry.identity] = state
        if len(self.failed_records) >= self.fanout.max_failed_records:
            self.dropped += 1
            return
        self.failed_records.append(
            {
                "identity": entry.identity,
                "idempotency_key": self.journal.key(entry.identity),
                "state": state,
                "code": code,
                "error": error,
            }
        )

    def _select(self, shard_entries: list[Entry]) -> list[Entry]:
        """The entries to send: not refused, and not succeeded in an earlier run or delivery."""
        valid = [e.identity for e in shard_entries if e.error is None]
        already = self.journal.succeeded_among(valid)
        sending: list[Entry] = []
        for entry in shard_entries:
            if entry.error is not None:
                self._keep(entry, "failed", 400, entry.error)
                self.journal.record(entry.identity, "failed", 400)
            elif entry.identity in already:
                self.skipped += 1
            else:
                sending.append(entry)
        return sending

    def _send(self, sending: list[Entry]) -> None:
        bodies = [
            {**entry.record, "$idempotency_key": self.journal.key(entry.identity)}
            for entry in sending
        ]

        def on_outcome(outcome: RecordOutcome) -> None:
            entry = sending[outcome.index]
            note_outcome(self.journal, entry.identity, outcome)
            if outcome.state == "succeeded":
                self.counts["succeeded"] += 1
            else:
                self._keep(entry, outcome.state, outcome.status_code, outcome.describe_failure())

        client = self.fanout.client()
        kind = shard_kind(self.spec)
        namespace: Workflows | BulkWorkflows | BulkEvents = (
            client.workflows
            if kind == "trigger"
            else client.bulk_workflows
            if kind == "legacy"
            else client.bulk_events
        )
        flusher = Flusher(self.journal)
        try:
            summary = namespace.bulk_trigger(
                bodies,
                concurrency=self.fanout.concurrency,
                max_records_per_second=self.fanout.max_records_per_second,
                on_outcome=on_outcome,
                keep_failed_records=False,
            )
        finally:
            flusher.close()
        self.warnings.extend(summary.warnings)
