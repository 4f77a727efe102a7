"""The command line's journal: a JSONL file, a header naming the run, then one line per outcome."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ._file_read import KEY_RULE, TAGGED, read_journal
from ._interface import Settled
from ._keys import record_key

__all__ = ["FileJournal"]


class FileJournal:
    """A run's journal in a file: ``{"run_id": ...}`` first, then ``{"line": n, "state": ...}``.

    `start` begins a new run (a new run id, a new file); `resume` continues the run
    a file holds, and refuses (`JournalDamaged`) a journal it
    cannot read whole: a resume that guessed could send lines twice. Only a last line torn by
    a crash mid-write is let go (see `._file_read`). Every entry carries its run's id, so
    an entry from another journal is told apart. Outcomes are appended as they come and made
    durable by `flush`. The file is the store: what was recorded is also kept in memory,
    so reading back costs no I/O.
    """

    def __init__(
        self,
        path: Path,
        run_id: str,
        handle: IO[str],
        key_prefix: str | None,
        *,
        tagged: bool = True,
    ) -> None:
        self.path = path
        self.named_run = True
        """Always true: a journal without a header naming its run is refused, not guessed at."""
        self._run_id = run_id
        self._handle = handle
        self._legacy_prefix = key_prefix  # not None: keys as an earlier version made them
        self._tagged = tagged  # entries carry "run" (journals of this version)
        self._lock = threading.Lock()
        self._succeeded: set[str] = set()
        self._failed: dict[str, bool] = {}

    @classmethod
    def start(cls, path: Path, *, source: str = "", run_id: str | None = None) -> FileJournal:
        """A new run: replaces any journal at ``path`` with one naming a fresh run id."""
        run_id = run_id or uuid.uuid4().hex[:16]
        path.unlink(missing_ok=True)
        handle = path.open("a", encoding="utf-8")
        header = {
            "run_id": run_id,
            "file": source,
            "started": _now(),
            "keys": KEY_RULE,
            "entries": TAGGED,
        }
        handle.write(json.dumps(header) + "\n")
        handle.flush()
        return cls(path, run_id, handle, None)

    @classmethod
    def resume(cls, path: Path, *, source_name: str = "") -> FileJournal:
        """Continue the run in the journal at ``path``, keeping the keys its records had.

        Raises `JournalDamaged` (a ``ConfigurationError``) when
        the journal cannot be read whole, naming the line. A journal whose header has no
        ``keys`` was written by an earlier version: its records keep that version's keys.
        ``source_name`` is accepted for callers of earlier versions and not used: a journal
        without a header is refused.
        """
        del source_name
        text = read_journal(path)
        if text.torn_at is not None:
            with path.open("r+b") as fh:  # cut the torn bytes before anything is appended
                fh.truncate(text.torn_at)
        header = text.header
        run_id = str(header["run_id"])
        prefix = None if "keys" in header else run_id
        handle = path.open("a", encoding="utf-8")
        if text.needs_newline:
            handle.write("\n")
        journal = cls(path, run_id, handle, prefix, tagged=header.get("entries") == TAGGED)
        for entry in text.entries:
            journal._remember(entry)
        return journal

    def _remember(self, entry: dict[str, Any]) -> None:
        try:
            identity = str(entry["id"]) if "id" in entry else str(int(entry["line"]))
            state = entry["state"]
        except (ValueError, KeyError, TypeError):
            return
        if state == "succeeded":
            self._succeeded.add(identity)
            self._failed.pop(identity, None)
        elif state == "failed" and identity not in self._succeeded:
            # Journals without "retry" recorded only failures that were refused for good.
            self._failed[identity] = not entry.get("retry", False)

    @property
    def run_id(self) -> str:
        """The run's id (for a journal written before runs had ids, the input file's name)."""
        return self._run_id

    def key(self, identity: str) -> str:
        """The record's key: `record_key`, or the form the journal's version used."""
        if self._legacy_prefix is not None:
            return f"{self._legacy_prefix}:{identity}"
        return record_key(self._run_id, identity)

    def record(
        self, identity: str, state: Settled, code: int | None = None, *, retry: bool = False
    ) -> None:
        """Append a record's outcome (a line number as identity is written as ``line``)."""
        entry: dict[str, Any] = {"line": int(identity)} if identity.isdigit() else {"id": identity}
        entry.update(state=state, code=code)
        if self._tagged:
            entry["run"] = self._run_id
        if state == "failed":
            entry["retry"] = retry
        with self._lock:
            self._remember(entry)
            self._handle.write(json.dumps(entry) + "\n")

    def succeeded_among(self, identities: Iterable[str]) -> set[str]:
        """Which of ``identities`` succeeded."""
        return {i for i in identities if i in self._succeeded}

    def failed_among(self, identities: Iterable[str]) -> dict[str, bool]:
        """Which of ``identities`` failed: identity -> refused for good."""
        return {i: self._failed[i] for i in identities if i in self._failed}

    def count_succeeded(self) -> int:
        """How many distinct records succeeded."""
        return len(self._succeeded)

    def flush(self) -> None:
        """Hand what was recorded to the operating system."""
        with self._lock:
            self._handle.flush()

    def close(self) -> None:
        """Flush and close the file."""
        with self._lock:
            self._handle.close()


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
