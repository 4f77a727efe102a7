"""``bulk``: one run over a JSONL file, its journal, its failed-records file and its summary."""

from __future__ import annotations

import argparse
import bisect
import json
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import anyio

from .._bulk_results import BulkProgress, BulkResponse, RecordOutcome
from .._client import AsyncSuprsend
from .._errors import SuprsendValidationError
from .._progress import ProgressBar
from .._requests import Event, Workflow, WorkflowTriggerRequest
from .._retry import is_transient
from ..journal import note_outcome
from ._bulk_file import Line, own_key, own_tenant
from ._bulk_setup import BulkJob, bulk_setup, check_input
from ._common import AUTH_CODES, EXIT_AUTH, EXIT_FAILED, EXIT_OK, event_for, make_client

__all__ = ["BulkRun", "cmd_bulk"]

_REASONS_SHOWN = 10
_FIRST_LINES = 5

# What --resume does with a line that did not succeed, said in the summary and --failed-out.
_RESENDS = "resends it"
_RESENDS_UNLESS_SKIP = "resends it, unless --skip-failed"
_RESENDS_SAME_KEY = "resends it under the same key (skipped by the service if it had it)"
_LOST = "unknown: sent, and the answer was lost (the service may have processed it)"
_NOT_SENT = "not sent: the run stopped before sending it"

_Request = WorkflowTriggerRequest | Workflow | Event


async def cmd_bulk(args: argparse.Namespace) -> int:
    """Send every line of ``args.file``; see the ``bulk`` command's help."""
    await anyio.to_thread.run_sync(check_input, args)
    # The client is built before the journal: missing credentials or a bad base URL stop the
    # command before anything is written.
    async with make_client(args) as client:
        job = await anyio.to_thread.run_sync(bulk_setup, args)
        return await BulkRun(client, job, args).run()


@dataclass
class _Reason:
    count: int = 0
    first_lines: list[int] = field(default_factory=list)

    def add(self, number: int) -> None:
        self.count += 1
        if len(self.first_lines) < _FIRST_LINES or number < self.first_lines[-1]:
            bisect.insort(self.first_lines, number)
            del self.first_lines[_FIRST_LINES:]


class BulkRun:
    """One run of ``bulk``: sends the file's lines, journals each outcome, sums them up.

    The engine's callbacks (`on_outcome`, `on_progress`) and the request
    generator (`requests`, read in a worker thread) share this run's state.
    """

    def __init__(self, client: AsyncSuprsend, job: BulkJob, args: argparse.Namespace) -> None:
        self.client = client
        self.job = job
        self.args = args
        self.source = job.source
        self.journal = job.journal
        self.failed_out = job.failed_out
        self.attach: list[str] = args.attach or []
        self.bar = None if args.no_progress else ProgressBar(job.total, label="bulk ")
        self.lines_by_index: dict[int, Line] = {}
        # Lines by final state, as journaled (refused lines apart, in source.bad_lines).
        self.counts = {"succeeded": 0, "failed": 0, "unknown": 0, "not_sent": 0}
        self.requests_answered = 0
        # Lines the engine reported not sent: listed if the run completes (see _wind_up).
        self.unsent: list[tuple[int, Any, RecordOutcome]] = []
        self.reasons: dict[tuple[str, int | None, str, str], _Reason] = {}
        self.refused: RecordOutcome | None = None  # the first answer refusing the credentials
        self.stop = anyio.CancelScope()
        self.result: BulkResponse | None = None

    async def run(self) -> int:
        """Send, wind up (whatever stopped the run), and report; the exit code."""
        try:
            await self._send()
        finally:
            self._wind_up()
        return self._report()

    async def _send(self) -> None:
        namespace: Any = {
            "event": self.client.bulk_events,
            "legacy": self.client.bulk_workflows,
        }.get(self.source.kind, self.client.workflows)
        with self.stop:
            async with anyio.create_task_group() as tg:
                # SIGTERM (a polite stop) cancels the bulk as Ctrl-C does: at an await, so every
                # record's state and the journal are settled before the process ends.
                tg.start_soon(_cancel_on_sigterm, tg.cancel_scope)
                self.result = await namespace.bulk_trigger(
                    self.requests(),
                    concurrency=self.args.concurrency,
                    max_records_per_second=self.args.rate,
                    on_outcome=self.on_outcome,
                    on_progress=self.on_progress,
                    idempotency_key_from=self.args.idempotency_key_from,
                )
                tg.cancel_scope.cancel()  # done: stop watching for signals

    def requests(self) -> Iterator[_Request]:
        """The requests to send, in order; lines no request can be made of are refused."""
        index = 0
        for line in self.source.records():
            request = self._request_for(line)
            if request is None:
                continue
            # This generator is read in a worker thread, so the stat() stays off the loop;
            # the file itself is read once per run, however many records share it.
            for path in self.attach:
                request.add_attachment(path)
            self.lines_by_index[index] = line
            index += 1
            yield request

    def _request_for(self, line: Line) -> _Request | None:
        # The record's own key wins; then the field named by --idempotency-key-from (derived
        # by the engine); then the line's key for this run. The record's own tenant wins too.
        key = own_key(line.body) or (None if self.args.idempotency_key_from else line.key)
        tenant = None if own_tenant(line.body) else self.args.tenant_id
        kind = self.source.kind
        if kind == "event":
            try:
                return event_for(line.body, key, tenant)
            except SuprsendValidationError as exc:  # a field no event has
                text = json.dumps(line.body, ensure_ascii=False)
                error = f"not an event: {exc}"
                self.source.refuse(line.number, line.body, text, error, error)
                return None
        if kind == "legacy":
            return Workflow(line.body, idempotency_key=key, tenant_id=tenant)
        return WorkflowTriggerRequest(line.body, idempotency_key=key, tenant_id=tenant)

    def on_outcome(self, outcome: RecordOutcome) -> None:
        """Journal a record's outcome; stop everything if the credentials were refused."""
        line = self.lines_by_index.pop(outcome.index)
        if outcome.state == "failed" and outcome.status_code in AUTH_CODES:
            # The service refused the credentials, not the record: send nothing more, and leave
            # the line out of the journal so that --resume sends it (even with --skip-failed).
            if self.refused is None:
                self.refused = outcome
                self.stop.cancel()
            return
        if self.refused is not None and outcome.state in ("unknown", "not_sent"):
            # In flight when the credentials were refused: refused too, or cut off. Counted as
            # not sent (--resume sends them), not listed: they say nothing about the records.
            return
        note_outcome(self.journal, str(line.number), outcome)
        self.counts[outcome.state] += 1
        if outcome.state == "not_sent":
            self.unsent.append((line.number, line.body, outcome))
        elif outcome.state != "succeeded":
            self._not_succeeded(line.number, line.body, outcome)

    def _not_succeeded(self, number: int, record: Any, outcome: RecordOutcome) -> None:
        """List a line that did not succeed, by its state, and say what --resume does with it.

        Every state is listed: a line whose answer was lost (``unknown``) or that the run
        stopped before sending (``not_sent``) did not succeed either, and --resume sends it.
        """
        state, code, error = outcome.state, outcome.status_code, outcome.describe_failure()
        if state == "failed":
            reason = error
            resume = _RESENDS if is_transient(code) else _RESENDS_UNLESS_SKIP
        elif state == "unknown":
            reason, resume = _LOST, _RESENDS_SAME_KEY
        else:
            reason, resume = _NOT_SENT, _RESENDS
        self._write_failed(number, record, state, error, code, resume)
        self._count_failure(number, state, code, reason, resume)

    def on_progress(self, progress: BulkProgress) -> None:
        """Make the journal durable, and move the bar."""
        self.journal.flush()
        self.requests_answered = progress.requests
        if self.bar is not None:
            self.bar(self.progress())

    def progress(self, *, final: bool = False) -> BulkProgress:
        """The run's counts as journaled (refused lines among the failed).

        ``final``: every line of the run not accounted for otherwise (never read, or refused
        with the credentials) is counted as not sent; --resume sends it.
        """
        c = self.counts
        failed = c["failed"] + len(self.source.bad_lines)
        not_sent = c["not_sent"]
        if final:
            not_sent = max(self.job.total - c["succeeded"] - failed - c["unknown"], 0)
        done = c["succeeded"] + failed + c["unknown"] + not_sent
        return BulkProgress(
            self.job.total,
            done,
            c["succeeded"],
            failed,
            self.requests_answered,
            unknown=c["unknown"],
            not_sent=not_sent,
        )

    def _write_failed(
        self,
        number: int,
        record: Any,
        state: str,
        error: str,
        code: int | None,
        resume: str,
        text: str = "",
    ) -> None:
        if self.failed_out is not None:
            entry: dict[str, Any] = {
                "line": number,
                "state": state,
                "code": code,
                "error": error,
                "resume": resume,
                "record": record,
            }
            if record is None:
                entry["text"] = text  # the line as it was, when it was not JSON
            self.failed_out.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def _count_failure(
        self, number: int, state: str, code: int | None, reason: str, resume: str
    ) -> None:
        self.reasons.setdefault((state, code, reason, resume), _Reason()).add(number)

    def _wind_up(self) -> None:
        """Close the bar, settle the refused lines, close the files; say how far it got."""
        if self.bar is not None:
            self.bar.close(self.progress(final=True))
        if self.result is not None:
            # A run that completed lists every line that did not succeed. One that stopped
            # early lists what it sent; the lines it did not send (read ahead or not read at
            # all) are counted on the progress line and on stderr, and --resume sends them.
            for number, record, outcome in self.unsent:
                self._not_succeeded(number, record, outcome)
        for bad in self.source.bad_lines:
            resume = _RESENDS_UNLESS_SKIP
            self._write_failed(bad.number, bad.record, "failed", bad.error, 400, resume, bad.text)
            self.journal.record(str(bad.number), "failed", 400)  # refused for good
            self._count_failure(bad.number, "failed", 400, bad.reason, resume)
        self.journal.close()
        if self.failed_out is not None:
            self.failed_out.close()
        if self.result is None and self.refused is None:
            settled = self.counts["succeeded"] + self.counts["failed"]
            settled += len(self.source.bad_lines)
            sys.stderr.write(
                f"stopped: {settled:,} of {self.job.total:,} lines settled."
                f" Run the same command with --resume to send the rest; lines already sent keep"
                f" their idempotency keys, so none is processed twice.\n"
            )

    def _report(self) -> int:
        if self.refused is not None:
            sys.stderr.write(
                f"suprsend-async bulk: the service refused the credentials"
                f" ({self.refused.status_code}: {self.refused.describe_failure()}). Stopped:"
                f" nothing more was sent. Check the workspace key and secret (or API key), then"
                f" run the same command with --resume: every line not accepted yet is sent,"
                f" under the same key.\n"
            )
            return EXIT_AUTH
        if self.result is None:  # stopped by SIGTERM (Ctrl-C arrives as KeyboardInterrupt)
            sys.stderr.write("interrupted\n")
            return 130
        summary = self._summary(self.result)
        sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK if summary["failure"] == 0 else EXIT_FAILED

    def _summary(self, result: BulkResponse) -> dict[str, Any]:
        bad_count = len(self.source.bad_lines)
        records = result.total + bad_count
        ranked = sorted(self.reasons.items(), key=lambda i: (-i[1].count, i[1].first_lines))
        summary: dict[str, Any] = {
            "status": BulkResponse.status_for(records, result.success),
            "file": str(self.job.path),
            "run_id": self.job.run_id,
            "records": records,
            "success": result.success,
            "failure": result.failure + bad_count,
            # failure, by state: refused (or invalid), answer lost, never sent.
            "failed": self.counts["failed"] + bad_count,
            "unknown": self.counts["unknown"],
            "not_sent": self.counts["not_sent"],
            "failures_by_reason": [
                {
                    "state": state,
                    "code": code,
                    "reason": reason,
                    "count": r.count,
                    "first_lines": r.first_lines,
                    "resume": resume,
                }
                for (state, code, reason, resume), r in ranked[:_REASONS_SHOWN]
            ],
            "resent_failed": self.source.resent_failed,
            "skipped_succeeded": self.source.skipped_succeeded,
            "skipped_failed": self.source.skipped_failed,
            "warnings": result.warnings,
            "journal": str(self.journal.path),
        }
        if len(ranked) > _REASONS_SHOWN:
            summary["reasons_not_shown"] = len(ranked) - _REASONS_SHOWN
        if self.args.failed_out:
            summary["failed_records_file"] = self.args.failed_out
        return summary


async def _cancel_on_sigterm(scope: anyio.CancelScope) -> None:
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        return  # signals reach only the main thread
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return
