"""Setting a bulk run up: every check first, then the journal and the outputs.

A bulk run keeps a journal next to its file (`FileJournal`): a
header naming the run, then one entry per line the run settled. The run id is part of every
default idempotency key, so a new run of the same file (or of a same-named file elsewhere) is
new to the service, while --resume, which reuses the run id, resends lines under the keys they
had: a line sent before an interruption is not processed twice. --resume refuses a journal it
cannot read whole: guessing its keys could send lines twice. Business keys
(--idempotency-key-from) do not contain the run id: they make separate runs deduplicate.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .._errors import ConfigurationError
from .._requests import WorkflowTriggerRequest
from ..journal import FileJournal
from ._bulk_file import BulkFile

__all__ = ["BulkJob", "bulk_setup", "check_input"]


@dataclass
class BulkJob:
    """A bulk run ready to go: its input, journal and outputs, all open."""

    path: Path
    source: BulkFile
    total: int
    journal: FileJournal
    failed_out: IO[str] | None
    run_id: str


def _check_record_options(args: argparse.Namespace) -> None:
    """Refuse a bad --tenant-id or a missing --attach file before anything is written."""
    probe = WorkflowTriggerRequest({"workflow": "probe", "recipients": ["probe"]})
    if args.tenant_id is not None:
        WorkflowTriggerRequest(
            {"workflow": "probe", "recipients": ["probe"]}, tenant_id=args.tenant_id
        ).prepare(auto_idempotency_key=False)
    for path in args.attach or []:
        probe.add_attachment(path)  # checks that a local file exists; reads nothing


def check_input(args: argparse.Namespace) -> Path:
    """The input file, or a usage error when there is none."""
    path = Path(args.file)
    if not path.is_file():
        raise ConfigurationError(f"cannot read {path}: no such file")
    return path


def _writable(path: Path, what: str) -> None:
    if not path.parent.is_dir():
        raise ConfigurationError(f"cannot write {what} {path}: no such directory")


def _journal_path(args: argparse.Namespace, path: Path) -> Path:
    journal_path = Path(args.journal) if args.journal else path.with_name(path.name + ".journal")
    _writable(journal_path, "the journal")
    if args.failed_out:
        _writable(Path(args.failed_out), "--failed-out")
    if journal_path.exists() and not (args.resume or args.restart):
        raise ConfigurationError(
            f"{journal_path} exists: an earlier run of this file was interrupted or finished."
            " Pass --resume to send what it did not settle, or --restart for a new run."
        )
    return journal_path


def bulk_setup(args: argparse.Namespace) -> BulkJob:
    """Check every option, then open the journal and outputs (blocking: run in a thread).

    Nothing is written until every check has passed, so a mistake leaves nothing behind that
    would stand in the way of the corrected command.
    """
    path = check_input(args)
    _check_record_options(args)
    journal_path = _journal_path(args, path)
    source = BulkFile(path, skip_failed=args.skip_failed)
    earlier: FileJournal | None = None
    if args.resume and journal_path.exists():
        earlier = FileJournal.resume(journal_path, source_name=path.name)
        source.load_earlier(earlier)
    elif args.resume:
        sys.stderr.write(f"no journal at {journal_path}: starting a new run\n")
    # The first record decides which API the whole file uses; a record of the other kind fails.
    source.kind = source.peek_kind()
    total = source.count_to_send()
    # Every check passed: from here on, files are written (--restart replaces the journal).
    journal = earlier or FileJournal.start(journal_path, source=str(path))
    source.key = journal.key
    try:
        # On --resume the failures of the earlier run stay in the file; new ones are added.
        failed_out = (
            open(args.failed_out, "a" if args.resume else "w", encoding="utf-8")  # noqa: SIM115
            if args.failed_out
            else None
        )
    except OSError as exc:
        journal.close()
        if earlier is None:
            journal_path.unlink(missing_ok=True)
        raise ConfigurationError(f"cannot write {args.failed_out}: {exc.strerror}") from None
    return BulkJob(path, source, total, journal, failed_out, journal.run_id)
