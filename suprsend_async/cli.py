"""The ``suprsend-async`` command line: trigger, bulk, emulator, demo.

Exit codes: 0 when everything succeeded, 1 when any trigger or record failed, 2 for bad usage
or configuration (missing credentials, unreadable file).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TextIO

import anyio

from ._bulk_results import BulkProgress, BulkResponse, RecordOutcome
from ._client import AsyncSuprsend
from ._errors import ConfigurationError, SuprsendValidationError
from ._requests import Workflow, WorkflowTriggerRequest
from ._version import __version__

__all__ = ["ProgressBar", "main"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

DESCRIPTION = """\
Trigger SuprSend workflows from the command line, or run a local SuprSend-compatible emulator.

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
  suprsend-async bulk records.jsonl --failed-out failed.jsonl
"""


# -- progress ---------------------------------------------------------------------------


class ProgressBar:
    """A one-line progress bar on a terminal; periodic plain lines when not a terminal."""

    def __init__(self, total: int | None, stream: TextIO | None = None, label: str = "") -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.label = label
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._last = 0.0
        self._last_done = -1
        self._shown = False

    def __call__(self, progress: BulkProgress) -> None:
        now = time.perf_counter()
        finished = self.total is not None and progress.done >= self.total
        if progress.done == self._last_done and self._shown:
            return  # nothing new to show
        if not finished and now - self._last < (0.1 if self.tty else 2.0):
            return
        self._last_done = progress.done
        self._last = now
        self.render(progress)

    def render(self, p: BulkProgress) -> None:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        rate = p.done / elapsed
        total = self.total
        if total:
            frac = min(p.done / total, 1.0)
            bar = "#" * int(frac * 30)
            head = f"[{bar:<30}] {frac:6.1%} {p.done:,}/{total:,}"
        else:
            head = f"{p.done:,} records"
        line = f"{self.label}{head}  ok {p.succeeded:,}  failed {p.failed:,}  {rate:,.0f} rec/s"
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """End the bar's line."""
        if self.tty and self._shown:
            self.stream.write("\n")
            self.stream.flush()


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
            return EXIT_OK if result.failure == 0 else EXIT_FAILED
        request = _request_for(payload, args)
        for path in args.attach or []:
            request.add_attachment(path)
        if isinstance(request, Workflow):
            response = await client.trigger_workflow(request)
        else:
            response = await client.workflows.trigger(request)
    out = {
        **response.to_dict(),
        "message_id": response.message_id,
        "idempotency_key": response.idempotency_key,
        "attempts": response.attempts,
    }
    if response.error_type:
        out["error_type"] = response.error_type
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    return EXIT_OK if response.success else EXIT_FAILED


# -- bulk -------------------------------------------------------------------------------


@dataclass
class _Line:
    number: int  # 1-based line number in the file
    body: Any
    key: str


@dataclass
class _BulkFile:
    """Reads a JSONL file lazily, skipping lines a journal says are settled."""

    path: Path
    done: set[int]
    legacy: bool | None = None
    # (line number, the parsed record or None, the line's text, why it was refused)
    bad_lines: list[tuple[int, Any, str, str]] = field(default_factory=list)
    skipped: int = 0

    def records(self) -> Iterator[_Line]:
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                text = raw.strip()
                if not text:
                    continue
                if number in self.done:
                    self.skipped += 1
                    continue
                try:
                    body = json.loads(text)
                except ValueError as exc:
                    self.bad_lines.append(
                        (number, None, text.decode(errors="replace"), f"not valid JSON: {exc}")
                    )
                    continue
                legacy = _is_legacy(body)
                if self.legacy is None:
                    self.legacy = legacy
                if legacy != self.legacy:
                    kind = "legacy (name/template)" if self.legacy else "new-API (workflow)"
                    self.bad_lines.append(
                        (
                            number,
                            body,
                            text.decode(errors="replace"),
                            f"the file holds {kind} records; this one is not",
                        )
                    )
                    continue
                # A stable key per line: a rerun (resume) sends the same key, so the service
                # skips anything that was processed before the interruption.
                digest = hashlib.sha256(text).hexdigest()[:32]
                yield _Line(number, body, f"{self.path.name}:{number}:{digest}")

    def peek_legacy(self) -> bool:
        with self.path.open("rb") as fh:
            for raw in fh:
                if raw.strip():
                    try:
                        return _is_legacy(json.loads(raw))
                    except ValueError:
                        return False
        return False


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def _read_journal(path: Path) -> set[int]:
    done: set[int] = set()
    if not path.exists():
        return done
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                done.add(int(json.loads(line)["line"]))
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a crash
    return done


def _permanent(outcome: RecordOutcome) -> bool:
    """Settled for good: succeeded, or refused in a way a resend would not change."""
    if outcome.state == "succeeded":
        return True
    code = outcome.status_code
    return outcome.state == "failed" and code is not None and code < 500 and code != 429


@dataclass
class _BulkJob:
    path: Path
    journal_path: Path
    done: set[int]
    total: int
    legacy: bool
    journal: IO[str]
    failed_out: IO[str] | None


def _bulk_setup(args: argparse.Namespace) -> _BulkJob:
    """File checks, journal reading and opening outputs (blocking: run in a thread)."""
    path = Path(args.file)
    if not path.is_file():
        raise ConfigurationError(f"cannot read {path}: no such file")
    journal_path = Path(args.journal) if args.journal else path.with_name(path.name + ".journal")
    if journal_path.exists() and not (args.resume or args.restart):
        raise ConfigurationError(
            f"{journal_path} exists: an earlier run of this file was interrupted or finished."
            " Pass --resume to send only what it did not settle, or --restart to start over."
        )
    if args.restart and journal_path.exists():
        journal_path.unlink()
    done = _read_journal(journal_path) if args.resume else set()
    return _BulkJob(
        path=path,
        journal_path=journal_path,
        done=done,
        total=_count_lines(path) - len(done),
        legacy=_BulkFile(path, done).peek_legacy(),
        journal=journal_path.open("a", encoding="utf-8"),
        # On --resume the failures of the earlier run stay in the file; new ones are added.
        failed_out=(
            open(args.failed_out, "a" if args.resume else "w", encoding="utf-8")
            if args.failed_out
            else None
        ),
    )


async def _cmd_bulk(args: argparse.Namespace) -> int:
    job = await anyio.to_thread.run_sync(_bulk_setup, args)
    path, journal_path, journal, failed_out = (
        job.path,
        job.journal_path,
        job.journal,
        job.failed_out,
    )
    source = _BulkFile(path, job.done)
    total = job.total
    lines_by_index: dict[int, _Line] = {}
    bar = None if args.no_progress else ProgressBar(total, label="bulk ")
    settled = 0

    def write_failed(
        number: int, record: Any, error: str, code: int | None, text: str = ""
    ) -> None:
        if failed_out is not None:
            entry: dict[str, Any] = {"line": number, "code": code, "error": error, "record": record}
            if record is None:
                entry["text"] = text  # the line as it was, when it was not JSON
            failed_out.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def journal_line(number: int, state: str, code: int | None) -> None:
        journal.write(json.dumps({"line": number, "state": state, "code": code}) + "\n")

    def on_outcome(outcome: RecordOutcome) -> None:
        nonlocal settled
        line = lines_by_index.pop(outcome.index)
        if _permanent(outcome):
            journal_line(line.number, outcome.state, outcome.status_code)
        if outcome.state == "failed":
            settled += 1
            write_failed(line.number, line.body, outcome.describe_failure(), outcome.status_code)
        elif outcome.success:
            settled += 1
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

    def requests() -> Iterator[WorkflowTriggerRequest | Workflow]:
        for index, line in enumerate(source.records()):
            lines_by_index[index] = line
            # The record's own key wins; then the field named by --idempotency-key-from (derived
            # by the engine); then the line's stable key.
            key = _own_key(line.body) or (None if args.idempotency_key_from else line.key)
            request: WorkflowTriggerRequest | Workflow = (
                Workflow(line.body, idempotency_key=key)
                if source.legacy
                else WorkflowTriggerRequest(line.body, idempotency_key=key)
            )
            # This generator is read in a worker thread, so the stat() stays off the loop;
            # the file itself is read once per run, however many records share it.
            for path in attach:
                request.add_attachment(path)
            yield request

    legacy = job.legacy
    attach = args.attach or []
    result: BulkResponse | None = None
    try:
        async with _make_client(args) as client, anyio.create_task_group() as tg:
            # SIGTERM (a polite stop) cancels the bulk as Ctrl-C does: at an await, so every
            # record's state and the journal are settled before the process ends.
            tg.start_soon(_cancel_on_sigterm, tg.cancel_scope)
            namespace = client.bulk_workflows if legacy else client.workflows
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
        for number, record, text, error in source.bad_lines:
            write_failed(number, record, error, 400, text)
            journal_line(number, "failed", 400)  # refused for good: not read again on resume
        journal.close()
        if failed_out is not None:
            failed_out.close()
        if result is None:
            sys.stderr.write(
                f"stopped: {settled + len(source.bad_lines):,} of {total:,} lines settled."
                f" Run the same command with --resume to send the rest; lines already sent keep"
                f" their idempotency keys, so none is processed twice.\n"
            )
    if result is None:  # stopped by SIGTERM (Ctrl-C arrives as KeyboardInterrupt instead)
        sys.stderr.write("interrupted\n")
        return 130
    bad = len(source.bad_lines)
    summary = {
        "status": BulkResponse.status_for(result.total + bad, result.success),
        "file": str(path),
        "records": result.total + bad,
        "success": result.success,
        "failure": result.failure + bad,
        "skipped_already_done": source.skipped,
        "warnings": result.warnings,
        "journal": str(journal_path),
    }
    if args.failed_out:
        summary["failed_records_file"] = args.failed_out
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
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


# -- emulator and demo ------------------------------------------------------------------


def _emulator_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    parser.add_argument(
        "--port", type=_at_least(0), default=8080, help="port (8080; 0 picks a free one)"
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
    f.add_argument("--latency-ms", type=float, default=0.0, help="added latency per request")
    f.add_argument(
        "--latency-jitter-ms", type=float, default=0.0, help="random extra latency, up to this"
    )
    f.add_argument("--rate-429", type=float, default=0.0, help="answer 429 with Retry-After")
    f.add_argument(
        "--retry-after", type=float, default=1.0, help="Retry-After seconds for injected 429s"
    )
    f.add_argument("--rate-5xx", type=float, default=0.0, help="answer a 5xx without processing")
    f.add_argument("--status-5xx", type=int, default=503, help="the 5xx status to answer (503)")
    f.add_argument("--rate-record-5xx", type=float, default=0.0, help="per-record 503 inside a 207")
    f.add_argument("--rate-drop", type=float, default=0.0, help="process, then drop the connection")
    f.add_argument(
        "--drop-next", type=int, default=0, help="drop the next N requests after processing"
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
    faults = Faults(**{f.name: getattr(args, f.name) for f in dataclasses.fields(Faults)})
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
    p.add_argument("file", metavar="FILE.json")
    p.add_argument("--tenant-id", help="tenant to trigger for")
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

    p = sub.add_parser(
        "bulk",
        help="stream a JSONL file of workflow bodies through concurrent bulk requests",
        description="Send every line of FILE.jsonl (one JSON body per line) in concurrent bulk"
        " requests with a progress bar. Settled lines are written to a journal"
        " (FILE.jsonl.journal); after an interruption, --resume sends only the rest, and every"
        " line keeps a stable idempotency key so nothing is processed twice.",
    )
    p.add_argument("file", metavar="FILE.jsonl")
    p.add_argument("--failed-out", metavar="PATH", help="write failed records (JSONL) here")
    p.add_argument("--journal", metavar="PATH", help="journal file (default FILE.jsonl.journal)")
    resume = p.add_mutually_exclusive_group()
    resume.add_argument("--resume", action="store_true", help="continue an interrupted run")
    resume.add_argument("--restart", action="store_true", help="forget the journal, send all")
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
        description="Serve the SuprSend trigger API locally: HMAC and API-key auth, validation,"
        " 202/207 answers, idempotency, and fault injection. GET /_emulator/triggers lists what"
        " it accepted; DELETE it to reset; PUT /_emulator/faults changes faults while running.",
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
    "bulk": _cmd_bulk,
    "emulator": _cmd_emulator,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
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
