"""The ``suprsend-async`` command line: trigger, event, bulk, emulator, demo.

Exit codes: 0 when everything succeeded, 1 when any trigger or record failed, 2 for bad usage
or configuration (missing credentials, unreadable file), 3 when the service refused the
credentials (401/403; a bulk stops at the first such answer), 130 when interrupted.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import anyio

from ._bulk_results import BulkProgress, BulkResponse, RecordOutcome
from ._client import AsyncSuprsend
from ._errors import ConfigurationError, SuprsendValidationError
from ._progress import ProgressBar
from ._requests import Event, Workflow, WorkflowTriggerRequest
from ._responses import TriggerResponse
from ._retry import is_transient
from ._version import __version__

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_AUTH = 0, 1, 2, 3

DESCRIPTION = """\
Trigger SuprSend workflows and send events from the command line, or run a local
SuprSend-compatible emulator.

Credentials come from flags or the environment: SUPRSEND_WORKSPACE_KEY and
SUPRSEND_WORKSPACE_SECRET (or SUPRSEND_WORKSPACE_UID and SUPRSEND_API_KEY), and
SUPRSEND_BASE_URL for another endpoint (such as the emulator).

Try it with no account at all:
  suprsend-async demo                              # the guide's scenarios against the emulator
  suprsend-async emulator --port 8080 &            # a local service to point your code at
  export SUPRSEND_WORKSPACE_KEY=emulator_workspace_key
  export SUPRSEND_WORKSPACE_SECRET=emulator_workspace_secret
  export SUPRSEND_BASE_URL=http://127.0.0.1:8080/
  suprsend-async trigger body.json
  suprsend-async event event.json
  suprsend-async bulk records.jsonl --failed-out failed.jsonl
"""


# -- argument types -----------------------------------------------------------------------


def _at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value

    return parse


def _between(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = _at_least(low)(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, not {value}")
        return value

    return parse


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def _fraction() -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text)
        if not 0.0 <= value <= 1.0:
            raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
        return value

    return parse


def _not_negative() -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be at least 0, not {text}")
        return value

    return parse


def _positive(kind: type[float]) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
        return value

    return parse


# -- client from flags ------------------------------------------------------------------


def _single_options(p: argparse.ArgumentParser, tenant_help: str) -> None:
    """The options of the commands that send one JSON file: ``trigger`` and ``event``."""
    p.add_argument("file", metavar="FILE.json")
    p.add_argument("--tenant-id", help=tenant_help)
    p.add_argument("--idempotency-key", help="idempotency key (default: generated)")
    p.add_argument(
        "--attach",
        action="append",
        metavar="PATH",
        help="attach a local file or an http(s) URL (repeatable)",
    )
    p.add_argument(
        "--concurrency", type=_at_least(1), default=None, help="requests in flight for a list"
    )
    _client_options(p)


def _client_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("connection (flags win over the environment)")
    g.add_argument("--workspace-key", help="workspace key (env SUPRSEND_WORKSPACE_KEY)")
    g.add_argument("--workspace-secret", help="workspace secret (env SUPRSEND_WORKSPACE_SECRET)")
    g.add_argument(
        "--workspace-uid", help="workspace UID, for API-key auth (env SUPRSEND_WORKSPACE_UID)"
    )
    g.add_argument("--api-key", help="API key, instead of key + secret (env SUPRSEND_API_KEY)")
    g.add_argument(
        "--base-url", help="API base URL (env SUPRSEND_BASE_URL; default the hosted service)"
    )
    g.add_argument(
        "--timeout", type=_positive(float), default=30.0, help="seconds to wait for an answer (30)"
    )
    g.add_argument(
        "--max-retries", type=_at_least(0), default=2, help="retries of transient failures (2)"
    )
    g.add_argument("-v", "--verbose", action="store_true", help="log requests to stderr")


def _make_client(args: argparse.Namespace) -> AsyncSuprsend:
    options: dict[str, Any] = {"timeout": args.timeout, "max_retries": args.max_retries}
    if args.api_key or (os.environ.get("SUPRSEND_API_KEY") and not args.workspace_key):
        return AsyncSuprsend.with_workspace_api_key(
            args.workspace_uid, args.api_key, args.base_url, **options
        )
    return AsyncSuprsend(args.workspace_key, args.workspace_secret, args.base_url, **options)


def _is_legacy(body: Any) -> bool:
    return (
        isinstance(body, dict) and "workflow" not in body and "name" in body and "template" in body
    )


def _is_event(body: Any) -> bool:
    """An event record: ``event`` and ``distinct_id``, and neither ``workflow`` nor ``name``."""
    return (
        isinstance(body, dict)
        and "event" in body
        and "distinct_id" in body
        and "workflow" not in body
        and "name" not in body
    )


_Kind = str  # "workflow", "legacy" or "event": which API a record belongs to


def _kind_of(body: Any) -> _Kind:
    if _is_event(body):
        return "event"
    return "legacy" if _is_legacy(body) else "workflow"


_KIND_NAMES = {
    "workflow": "new-API (workflow)",
    "legacy": "legacy (name/template)",
    "event": "event (event/distinct_id)",
}


def _event_for(
    body: Any, idempotency_key: str | None, tenant_id: str | None, *, own_wins: bool = True
) -> Event:
    """An :class:`Event` from a JSON record; the record's own key and tenant win when
    ``own_wins``, else the given ones do."""
    event = Event.from_dict(body)
    key = event.idempotency_key if own_wins and event.idempotency_key else idempotency_key
    tenant = event.tenant_id if own_wins and event.tenant_id is not None else tenant_id
    return Event(
        event.distinct_id,
        event.event_name,
        event.properties,
        idempotency_key=key or event.idempotency_key,
        tenant_id=tenant if tenant is not None else event.tenant_id,
        brand_id=event.brand_id,
    )


def _request_for(body: Any, args: argparse.Namespace) -> WorkflowTriggerRequest | Workflow:
    tenant = getattr(args, "tenant_id", None)
    key = getattr(args, "idempotency_key", None)
    if _is_legacy(body):
        return Workflow(body, idempotency_key=key, tenant_id=tenant)
    return WorkflowTriggerRequest(body, tenant_id=tenant, idempotency_key=key)


# -- trigger ----------------------------------------------------------------------------


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}") from None


def _print_bulk(result: BulkResponse, out: TextIO) -> None:
    summary = {
        "status": result.status,
        "total": result.total,
        "success": result.success,
        "failure": result.failure,
        "warnings": result.warnings,
        "failed_records": [
            {"index": f.index, "code": f.code, "error": f.error} for f in result.failed_records[:20]
        ],
    }
    if len(result.failed_records) > 20:
        summary["failed_records_not_shown"] = len(result.failed_records) - 20
    out.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")


async def _cmd_trigger(args: argparse.Namespace) -> int:
    payload = _read_json(args.file)
    async with _make_client(args) as client:
        if isinstance(payload, list):
            legacy = bool(payload) and all(_is_legacy(b) for b in payload)
            bulk = (
                client.bulk_workflows.new_instance()
                if legacy
                else client.workflows.bulk_trigger_instance()
            )
            bulk.append(*payload)
            result = await bulk.trigger(concurrency=args.concurrency)
            _print_bulk(result, sys.stdout)
            if any(f.code in _AUTH_CODES for f in result.failed_records):
                return EXIT_AUTH
            return EXIT_OK if result.failure == 0 else EXIT_FAILED
        request = _request_for(payload, args)
        for path in args.attach or []:
            request.add_attachment(path)
        if isinstance(request, Workflow):
            response = await client.trigger_workflow(request)
        else:
            response = await client.workflows.trigger(request)
    return _print_single(response)


def _print_single(response: TriggerResponse) -> int:
    """Print one call's result as JSON; the exit code, with a hint on stderr for 401/403."""
    out = {
        **response.to_dict(),
        "message_id": response.message_id,
        "idempotency_key": response.idempotency_key,
        "attempts": response.attempts,
    }
    if response.error_type:
        out["error_type"] = response.error_type
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    if response.status_code in _AUTH_CODES:
        sys.stderr.write(
            f"the service refused the credentials ({response.status_code}: {response.message})."
            " Check the workspace key and secret (or API key) and the base URL.\n"
        )
        return EXIT_AUTH
    return EXIT_OK if response.success else EXIT_FAILED


async def _cmd_event(args: argparse.Namespace) -> int:
    payload = _read_json(args.file)
    async with _make_client(args) as client:
        if isinstance(payload, list):
            events = [
                _event_for(record, None, args.tenant_id) for record in payload
            ]  # a record that is no event is refused here, naming its fields
            bulk = client.bulk_events.new_instance()
            bulk.append(*events)
            result = await bulk.trigger(concurrency=args.concurrency)
            _print_bulk(result, sys.stdout)
            if any(f.code in _AUTH_CODES for f in result.failed_records):
                return EXIT_AUTH
            return EXIT_OK if result.failure == 0 else EXIT_FAILED
        # Flags win over the file for a single event, as for ``trigger``.
        event = _event_for(payload, args.idempotency_key, args.tenant_id, own_wins=False)
        for path in args.attach or []:
            event.add_attachment(path)
        response = await client.track_event(event)
    return _print_single(response)


# -- bulk -------------------------------------------------------------------------------
#
# A bulk run keeps a journal next to its file: a header naming the run, then one entry per line
# the run settled. The run id is part of every default idempotency key, so a new run of the same
# file (or of a same-named file elsewhere) is new to the service, while --resume, which reuses
# the run id, resends lines under the keys they had: a line sent before an interruption is not
# processed twice. Business keys (--idempotency-key-from) do not contain the run id: they are
# the way to make separate runs deduplicate each other.

_AUTH_CODES = frozenset({401, 403})
_REASONS_SHOWN = 10
_FIRST_LINES = 5


@dataclass
class _Line:
    number: int  # 1-based line number in the file
    body: Any
    key: str


@dataclass
class _BadLine:
    number: int
    record: Any  # the parsed record, or None when the line is not JSON
    text: str
    error: str
    reason: str  # what the summary groups it under


@dataclass
class _EarlierRun:
    """What an earlier run of the file settled, read back from its journal."""

    run_id: str | None  # None: a journal from a version without run ids (keys without one)
    succeeded: set[int] = field(default_factory=set)
    # line -> True when refused for good (a bad record), False when it failed for a passing
    # reason (no answer, 429, 5xx): --skip-failed skips only the first kind.
    failed: dict[int, bool] = field(default_factory=dict)


@dataclass
class _BulkFile:
    """Reads a JSONL file lazily, skipping the lines an earlier run settled (on --resume)."""

    path: Path
    run_id: str | None
    succeeded_before: set[int] = field(default_factory=set)
    failed_before: dict[int, bool] = field(default_factory=dict)
    skip_failed: bool = False
    kind: _Kind = "workflow"  # what the file's first record is (see peek_kind)
    bad_lines: list[_BadLine] = field(default_factory=list)
    skipped_succeeded: int = 0
    skipped_failed: int = 0
    resent_failed: int = 0

    def skips(self, number: int) -> bool:
        """Whether line ``number`` was settled by the earlier run and is not sent again."""
        if number in self.succeeded_before:
            return True
        return self.skip_failed and self.failed_before.get(number, False)

    def records(self) -> Iterator[_Line]:
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                text = raw.strip()
                if not text:
                    continue
                if number in self.succeeded_before:
                    self.skipped_succeeded += 1
                    continue
                if self.skips(number):
                    self.skipped_failed += 1
                    continue
                if number in self.failed_before:
                    self.resent_failed += 1
                try:
                    body = json.loads(text)
                except ValueError as exc:
                    self.bad_lines.append(
                        _BadLine(
                            number,
                            None,
                            text.decode(errors="replace"),
                            f"not valid JSON: {exc}",
                            "not valid JSON",
                        )
                    )
                    continue
                if _kind_of(body) != self.kind:
                    error = f"the file holds {_KIND_NAMES[self.kind]} records; this one is not"
                    self.bad_lines.append(
                        _BadLine(number, body, text.decode(errors="replace"), error, error)
                    )
                    continue
                yield _Line(number, body, self.key_for(number, text))

    def key_for(self, number: int, text: bytes) -> str:
        """The line's default idempotency key: the same for the same run, line and text."""
        digest = hashlib.sha256(text).hexdigest()[:32]
        if self.run_id is None:  # resuming a journal written before run ids: its keys
            return f"{self.path.name}:{number}:{digest}"
        return f"{self.run_id}:{number}:{digest}"

    def peek_kind(self) -> _Kind:
        """What the file's first JSON record is: workflow, legacy (name/template) or event."""
        with self.path.open("rb") as fh:
            for raw in fh:
                try:
                    return _kind_of(json.loads(raw))
                except ValueError:
                    continue  # blank or not JSON: the next line decides
        return "workflow"

    def count_to_send(self) -> int:
        with self.path.open("rb") as fh:
            return sum(
                1
                for number, line in enumerate(fh, start=1)
                if line.strip() and not self.skips(number)
            )


def _read_journal(path: Path) -> _EarlierRun:
    earlier = _EarlierRun(run_id=None)
    with path.open(encoding="utf-8") as fh:
        for text in fh:
            try:
                entry = json.loads(text)
                if "run_id" in entry:
                    earlier.run_id = str(entry["run_id"])
                    continue
                number, state = int(entry["line"]), entry["state"]
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
            # Later entries win: a line that failed and then succeeded on a resume succeeded.
            if state == "succeeded":
                earlier.succeeded.add(number)
                earlier.failed.pop(number, None)
            elif state == "failed":
                earlier.succeeded.discard(number)
                # Journals without "retry" recorded only failures that were refused for good.
                earlier.failed[number] = not entry.get("retry", False)
    return earlier


def _permanent(outcome: RecordOutcome) -> bool:
    """Settled for good: succeeded, or refused in a way a resend would not change."""
    if outcome.state == "succeeded":
        return True
    return outcome.state == "failed" and not is_transient(outcome.status_code)


@dataclass
class _Reason:
    count: int = 0
    first_lines: list[int] = field(default_factory=list)

    def add(self, number: int) -> None:
        self.count += 1
        if len(self.first_lines) < _FIRST_LINES or number < self.first_lines[-1]:
            bisect.insort(self.first_lines, number)
            del self.first_lines[_FIRST_LINES:]


@dataclass
class _BulkJob:
    path: Path
    journal_path: Path
    run_id: str | None
    source: _BulkFile
    total: int
    journal: IO[str]
    failed_out: IO[str] | None


def _check_record_options(args: argparse.Namespace) -> None:
    """Refuse a bad --tenant-id or a missing --attach file before anything is written."""
    probe = WorkflowTriggerRequest({"workflow": "probe", "recipients": ["probe"]})
    if args.tenant_id is not None:
        WorkflowTriggerRequest(
            {"workflow": "probe", "recipients": ["probe"]}, tenant_id=args.tenant_id
        ).prepare(auto_idempotency_key=False)
    for path in args.attach or []:
        probe.add_attachment(path)  # checks that a local file exists; reads nothing


def _check_input(args: argparse.Namespace) -> Path:
    path = Path(args.file)
    if not path.is_file():
        raise ConfigurationError(f"cannot read {path}: no such file")
    return path


def _writable(path: Path, what: str) -> None:
    if not path.parent.is_dir():
        raise ConfigurationError(f"cannot write {what} {path}: no such directory")


def _bulk_setup(args: argparse.Namespace) -> _BulkJob:
    """Check every option, then open the journal and outputs (blocking: run in a thread).

    Nothing is written until every check has passed, so a mistake leaves nothing behind that
    would stand in the way of the corrected command.
    """
    path = _check_input(args)
    _check_record_options(args)
    journal_path = Path(args.journal) if args.journal else path.with_name(path.name + ".journal")
    _writable(journal_path, "the journal")
    if args.failed_out:
        _writable(Path(args.failed_out), "--failed-out")
    exists = journal_path.exists()
    if exists and not (args.resume or args.restart):
        raise ConfigurationError(
            f"{journal_path} exists: an earlier run of this file was interrupted or finished."
            " Pass --resume to send what it did not settle, or --restart for a new run."
        )
    if args.resume and exists:
        earlier = _read_journal(journal_path)
    else:
        if args.resume:
            sys.stderr.write(f"no journal at {journal_path}: starting a new run\n")
        earlier = _EarlierRun(run_id=uuid.uuid4().hex[:16])
    source = _BulkFile(
        path,
        earlier.run_id,
        succeeded_before=earlier.succeeded,
        failed_before=earlier.failed,
        skip_failed=args.skip_failed,
    )
    # The first record decides which API the whole file uses; a record of the other kind fails.
    source.kind = source.peek_kind()
    total = source.count_to_send()
    # Every check passed: from here on, files are written.
    new_run = not (args.resume and exists)
    if new_run and exists:
        journal_path.unlink()  # --restart
    journal = journal_path.open("a", encoding="utf-8")
    if new_run:
        header = {"run_id": earlier.run_id, "file": str(path), "started": _now()}
        journal.write(json.dumps(header) + "\n")
        journal.flush()
    try:
        # On --resume the failures of the earlier run stay in the file; new ones are added.
        failed_out = (
            open(args.failed_out, "a" if args.resume else "w", encoding="utf-8")  # noqa: SIM115
            if args.failed_out
            else None
        )
    except OSError as exc:
        journal.close()
        if new_run:
            journal_path.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {args.failed_out}: {exc.strerror}") from None
    return _BulkJob(path, journal_path, earlier.run_id, source, total, journal, failed_out)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


async def _cmd_bulk(args: argparse.Namespace) -> int:
    await anyio.to_thread.run_sync(_check_input, args)
    # The client is built before the journal: missing credentials or a bad base URL stop the
    # command before anything is written.
    async with _make_client(args) as client:
        job = await anyio.to_thread.run_sync(_bulk_setup, args)
        return await _run_bulk(client, job, args)


async def _run_bulk(client: AsyncSuprsend, job: _BulkJob, args: argparse.Namespace) -> int:
    journal, failed_out, source, total = job.journal, job.failed_out, job.source, job.total
    lines_by_index: dict[int, _Line] = {}
    bar = None if args.no_progress else ProgressBar(total, label="bulk ")
    settled = 0
    reasons: dict[tuple[int | None, str], _Reason] = {}
    refused: RecordOutcome | None = None  # the first answer refusing the credentials
    stop = anyio.CancelScope()

    def write_failed(
        number: int, record: Any, error: str, code: int | None, text: str = ""
    ) -> None:
        if failed_out is not None:
            entry: dict[str, Any] = {"line": number, "code": code, "error": error, "record": record}
            if record is None:
                entry["text"] = text  # the line as it was, when it was not JSON
            failed_out.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def journal_line(number: int, state: str, code: int | None, retry: bool = False) -> None:
        entry: dict[str, Any] = {"line": number, "state": state, "code": code}
        if state == "failed":
            entry["retry"] = retry
        journal.write(json.dumps(entry) + "\n")

    def count_failure(number: int, code: int | None, reason: str) -> None:
        reasons.setdefault((code, reason), _Reason()).add(number)

    def on_outcome(outcome: RecordOutcome) -> None:
        nonlocal settled, refused
        line = lines_by_index.pop(outcome.index)
        if outcome.state == "failed" and outcome.status_code in _AUTH_CODES:
            # The service refused the credentials, not the record: send nothing more, and leave
            # the line out of the journal so that --resume sends it (even with --skip-failed).
            if refused is None:
                refused = outcome
                stop.cancel()
            return
        if outcome.state == "succeeded":
            settled += 1
            journal_line(line.number, "succeeded", outcome.status_code)
        elif outcome.state == "failed":
            settled += 1
            error = outcome.describe_failure()
            journal_line(line.number, "failed", outcome.status_code, not _permanent(outcome))
            write_failed(line.number, line.body, error, outcome.status_code)
            count_failure(line.number, outcome.status_code, error)
        # not_sent / unknown (an interrupted run): not failures; --resume sends them.

    def on_progress(progress: BulkProgress) -> None:
        journal.flush()
        if bar is not None:
            bad = len(source.bad_lines)  # refused lines count as done and failed too
            bar(
                BulkProgress(
                    progress.total,
                    progress.done + bad,
                    progress.succeeded,
                    progress.failed + bad,
                    progress.requests,
                )
            )

    def requests() -> Iterator[WorkflowTriggerRequest | Workflow | Event]:
        index = 0
        for line in source.records():
            # The record's own key wins; then the field named by --idempotency-key-from (derived
            # by the engine); then the line's key for this run. The record's own tenant wins too.
            key = _own_key(line.body) or (None if args.idempotency_key_from else line.key)
            tenant = None if _own_tenant(line.body) else args.tenant_id
            request: WorkflowTriggerRequest | Workflow | Event
            if kind == "event":
                try:
                    request = _event_for(line.body, key, tenant)
                except SuprsendValidationError as exc:  # a field no event has
                    text = json.dumps(line.body, ensure_ascii=False)
                    error = f"not an event: {exc}"
                    source.bad_lines.append(_BadLine(line.number, line.body, text, error, error))
                    continue
            elif kind == "legacy":
                request = Workflow(line.body, idempotency_key=key, tenant_id=tenant)
            else:
                request = WorkflowTriggerRequest(line.body, idempotency_key=key, tenant_id=tenant)
            # This generator is read in a worker thread, so the stat() stays off the loop;
            # the file itself is read once per run, however many records share it.
            for path in attach:
                request.add_attachment(path)
            lines_by_index[index] = line
            index += 1
            yield request

    kind = source.kind
    attach = args.attach or []
    result: BulkResponse | None = None
    try:
        with stop:
            async with anyio.create_task_group() as tg:
                # SIGTERM (a polite stop) cancels the bulk as Ctrl-C does: at an await, so every
                # record's state and the journal are settled before the process ends.
                tg.start_soon(_cancel_on_sigterm, tg.cancel_scope)
                namespace: Any = {
                    "event": client.bulk_events,
                    "legacy": client.bulk_workflows,
                }.get(kind, client.workflows)
                result = await namespace.bulk_trigger(
                    requests(),
                    concurrency=args.concurrency,
                    max_records_per_second=args.rate,
                    on_outcome=on_outcome,
                    on_progress=on_progress,
                    idempotency_key_from=args.idempotency_key_from,
                )
                tg.cancel_scope.cancel()  # done: stop watching for signals
    finally:
        if bar is not None:
            bar.close()
        for bad in source.bad_lines:
            write_failed(bad.number, bad.record, bad.error, 400, bad.text)
            journal_line(bad.number, "failed", 400)  # refused for good
            count_failure(bad.number, 400, bad.reason)
        journal.close()
        if failed_out is not None:
            failed_out.close()
        if result is None and refused is None:
            sys.stderr.write(
                f"stopped: {settled + len(source.bad_lines):,} of {total:,} lines settled."
                f" Run the same command with --resume to send the rest; lines already sent keep"
                f" their idempotency keys, so none is processed twice.\n"
            )
    if refused is not None:
        sys.stderr.write(
            f"suprsend-async bulk: the service refused the credentials"
            f" ({refused.status_code}: {refused.describe_failure()}). Stopped: nothing more was"
            f" sent. Check the workspace key and secret (or API key), then run the same command"
            f" with --resume: every line not accepted yet is sent, under the same key.\n"
        )
        return EXIT_AUTH
    if result is None:  # stopped by SIGTERM (Ctrl-C arrives as KeyboardInterrupt instead)
        sys.stderr.write("interrupted\n")
        return 130
    bad_count = len(source.bad_lines)
    records = result.total + bad_count
    ranked = sorted(reasons.items(), key=lambda item: (-item[1].count, item[1].first_lines))
    summary: dict[str, Any] = {
        "status": BulkResponse.status_for(records, result.success),
        "file": str(job.path),
        "run_id": job.run_id,
        "records": records,
        "success": result.success,
        "failure": result.failure + bad_count,
        "failures_by_reason": [
            {"code": code, "reason": reason, "count": r.count, "first_lines": r.first_lines}
            for (code, reason), r in ranked[:_REASONS_SHOWN]
        ],
        "resent_failed": source.resent_failed,
        "skipped_succeeded": source.skipped_succeeded,
        "skipped_failed": source.skipped_failed,
        "warnings": result.warnings,
        "journal": str(job.journal_path),
    }
    if len(ranked) > _REASONS_SHOWN:
        summary["reasons_not_shown"] = len(ranked) - _REASONS_SHOWN
    if args.failed_out:
        summary["failed_records_file"] = args.failed_out
    sys.stdout.write(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK if summary["failure"] == 0 else EXIT_FAILED


async def _cancel_on_sigterm(scope: anyio.CancelScope) -> None:
    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        return  # signals reach only the main thread
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            scope.cancel()
            return


def _own_key(body: Any) -> str | None:
    key = body.get("$idempotency_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key.strip() else None


def _own_tenant(body: Any) -> bool:
    return isinstance(body, dict) and body.get("tenant_id") is not None


# -- emulator and demo ------------------------------------------------------------------


def _emulator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=_between(0, 65535), default=8080, help="port (8080; 0 picks a free one)"
    )
    parser.add_argument("--workspace-key", default=None, help="accepted workspace key")
    parser.add_argument("--workspace-secret", default=None, help="accepted workspace secret")
    parser.add_argument("--api-key", default=None, help="also accept this API key (Bearer)")
    parser.add_argument("--workspace-uid", default=None, help="workspace UID for API-key auth")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="benchmark mode: check signatures, count records, skip validation and storage",
    )
    parser.add_argument(
        "--db", metavar="PATH", default=None, help="keep the inbox's history in this SQLite file"
    )
    f = parser.add_argument_group("fault injection (rates between 0 and 1)")
    rate, at_least_0 = _fraction(), _not_negative()
    f.add_argument("--latency-ms", type=at_least_0, default=0.0, help="added latency per request")
    f.add_argument(
        "--latency-jitter-ms", type=at_least_0, default=0.0, help="random extra latency, up to this"
    )
    f.add_argument("--rate-429", type=rate, default=0.0, help="answer 429 with Retry-After")
    f.add_argument(
        "--retry-after", type=at_least_0, default=1.0, help="Retry-After seconds for injected 429s"
    )
    f.add_argument("--rate-5xx", type=rate, default=0.0, help="answer a 5xx without processing")
    f.add_argument(
        "--status-5xx", type=_between(500, 599), default=503, help="the 5xx status to answer (503)"
    )
    f.add_argument("--rate-record-5xx", type=rate, default=0.0, help="per-record 503 inside a 207")
    f.add_argument("--rate-drop", type=rate, default=0.0, help="process, then drop the connection")
    f.add_argument(
        "--drop-next",
        type=_at_least(0),
        default=0,
        help="drop the next N requests after processing",
    )
    f.add_argument("--seed", type=int, default=None, help="seed for repeatable faults")


async def _cmd_emulator(args: argparse.Namespace) -> int:
    try:
        from .emulator import (
            DEFAULT_WORKSPACE_KEY,
            DEFAULT_WORKSPACE_SECRET,
            Emulator,
            Faults,
            serve,
        )
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise ConfigurationError(
            f"the emulator needs its extra: pip install 'suprsend-async[emulator]' ({exc})"
        ) from None
    # Each fault flag is named after its Faults field (--rate-429 -> rate_429).
    try:
        faults = Faults(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Faults)})
    except ValueError as exc:  # the flags' own checks come first; this keeps any other one tidy
        raise ConfigurationError(str(exc)) from None
    emulator = Emulator(
        workspace_key=args.workspace_key
        or os.environ.get("SUPRSEND_WORKSPACE_KEY")
        or DEFAULT_WORKSPACE_KEY,
        workspace_secret=args.workspace_secret
        or os.environ.get("SUPRSEND_WORKSPACE_SECRET")
        or DEFAULT_WORKSPACE_SECRET,
        api_key=args.api_key,
        workspace_uid=args.workspace_uid,
        host=args.host,
        port=args.port,
        fast=args.fast,
        faults=faults,
        db=args.db,
    )
    await serve(emulator)
    return EXIT_OK


async def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return await run_demo(
        records=args.records, progress=not args.no_progress, keep_open=args.keep_open
    )


# -- entry point ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    parser = argparse.ArgumentParser(
        prog="suprsend-async",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"suprsend-async {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "trigger",
        help="trigger one workflow body from a JSON file (a JSON list is sent as a bulk)",
        description="Trigger a workflow from FILE.json ('-' reads stdin). An object with"
        " 'workflow' uses the workflow API; one with 'name' and 'template' the legacy dynamic"
        " workflow API; a list of objects is sent as a bulk.",
    )
    _single_options(p, "tenant to trigger for")

    p = sub.add_parser(
        "event",
        help="send one event from a JSON file (a JSON list is sent as a bulk of events)",
        description="Send an event from FILE.json ('-' reads stdin): an object with"
        " 'distinct_id', 'event' (or 'event_name'), and optionally 'properties',"
        " '$idempotency_key', 'tenant_id' and 'brand_id'. A list of such objects is sent"
        " through the bulk events API.",
    )
    _single_options(p, "tenant to send the event for")

    p = sub.add_parser(
        "bulk",
        help="stream a JSONL file of workflow bodies or events through concurrent bulk requests",
        description="Send every line of FILE.jsonl (one JSON body per line) in concurrent bulk"
        " requests with a progress bar. The first record decides the API for the whole file:"
        " a record with 'event' and 'distinct_id' and neither 'workflow' nor 'name' is an event"
        " (sent to the bulk events API); one with 'name' and 'template' and no 'workflow' a"
        " legacy dynamic workflow; anything else a workflow trigger. A line of another kind"
        " fails. Each run has a run id, kept in a journal"
        " (FILE.jsonl.journal) with every line it settled; a line's default idempotency key holds"
        " the run id. --resume continues the same run: it sends every line that did not succeed,"
        " under the key it had, so nothing is processed twice. A new run (or --restart) is new to"
        " the service; use --idempotency-key-from for keys that deduplicate across runs."
        " Exit codes: 0 all succeeded, 1 some failed, 2 bad usage, 3 credentials refused"
        " (stops at once; fix them and --resume), 130 interrupted.",
    )
    p.add_argument("file", metavar="FILE.jsonl")
    p.add_argument(
        "--failed-out",
        metavar="PATH",
        help="write failed records (JSONL) here; --resume appends to it",
    )
    p.add_argument("--journal", metavar="PATH", help="journal file (default FILE.jsonl.journal)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the journal: send every line that did not succeed",
    )
    resume.add_argument(
        "--restart",
        action="store_true",
        help="forget the journal and start a new run (new keys: everything is sent again)",
    )
    p.add_argument(
        "--skip-failed",
        action="store_true",
        help="with --resume: do not resend lines the service refused (4xx); still resend the"
        " ones that failed for a passing reason (no answer, 429, 5xx)",
    )
    p.add_argument("--tenant-id", help="tenant for every record that names none")
    p.add_argument("--concurrency", type=_at_least(1), default=None, help="requests in flight (16)")
    p.add_argument(
        "--rate", type=_positive(float), default=None, help="at most this many records per second"
    )
    p.add_argument(
        "--idempotency-key-from",
        metavar="FIELD",
        help="derive each record's idempotency key from this dotted field, e.g. data.order_id",
    )
    p.add_argument(
        "--attach",
        action="append",
        metavar="PATH",
        help="attach this file or URL to every record (repeatable)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _client_options(p)

    p = sub.add_parser(
        "emulator",
        help="run the local SuprSend-compatible emulator",
        description="Serve the SuprSend trigger and event APIs locally: HMAC and API-key auth,"
        " validation, 202/207 answers, idempotency, and fault injection. GET /_emulator/triggers"
        " and /_emulator/events list what it accepted; DELETE either to reset; PUT"
        " /_emulator/faults changes faults while running.",
    )
    _emulator_options(p)

    p = sub.add_parser(
        "demo",
        help="run the user guide's scenarios against an embedded emulator",
        description="Starts an emulator in-process and runs the guide's scenarios through the SDK,"
        " then prints what the emulator received. Exits 0 only if every step did what it should.",
    )
    p.add_argument(
        "--records", type=_at_least(1), default=10_000, help="records in the bulk step (10000)"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--keep-open", action="store_true", help="keep the emulator and its inbox page running"
    )
    return parser


_COMMANDS = {
    "trigger": _cmd_trigger,
    "event": _cmd_event,
    "bulk": _cmd_bulk,
    "emulator": _cmd_emulator,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "skip_failed", False) and not args.resume:
        parser.error("--skip-failed only makes sense with --resume")
    if getattr(args, "verbose", False):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger = logging.getLogger("suprsend_async")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        return anyio.run(_COMMANDS[args.command], args)
    except BaseException as raised:
        exc = _unwrap(raised)
        if isinstance(exc, ConfigurationError | SuprsendValidationError | FileNotFoundError):
            sys.stderr.write(f"suprsend-async {args.command}: {exc}\n")
            return EXIT_USAGE
        if isinstance(exc, OSError):  # the emulator's port is taken, a file cannot be written
            sys.stderr.write(f"suprsend-async {args.command}: {exc.strerror or exc}\n")
            return EXIT_USAGE
        if isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, BaseExceptionGroup) and exc.subgroup(KeyboardInterrupt) is not None
        ):
            sys.stderr.write("interrupted\n")
            return 130
        raise


def _unwrap(exc: BaseException) -> BaseException:
    """The one error inside (nested) single-error groups that task groups wrap it in."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
