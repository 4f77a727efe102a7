"""The command line's journal: a JSONL file, a header naming the run, then one line per outcome."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from ._interface import Settled
from ._keys import record_key

__all__ = ["FileJournal"]

# Written in the header of journals whose keys follow record_key. Journals without it were
# written by earlier versions: their runs keep the keys they were sent with (see key()).
_KEY_RULE = "run/identity"


class FileJournal:
    """A run's journal in a file: ``{"run_id": ...}`` first, then ``{"line": n, "state": ...}``.

    :meth:`start` begins a new run (a new run id, a new file); :meth:`resume` continues the run
    a file holds. Outcomes are appended as they come and made durable by :meth:`flush`; a line
    cut short by a crash is ignored when the journal is read back. The file is the store: what
    was recorded is also kept in memory, so reading back costs no I/O.
    """

    def __init__(
        self, path: Path, run_id: str, handle: IO[str], key_prefix: str | None, named: bool = True
    ) -> None:
        self.path = path
        self.named_run = named
        """False for a journal written before runs had ids: its run id is the input's name."""
        self._run_id = run_id
        self._handle = handle
        self._legacy_prefix = key_prefix  # not None: keys as an earlier version made them
        self._lock = threading.Lock()
        self._succeeded: set[str] = set()
        self._failed: dict[str, bool] = {}

    @classmethod
    def start(cls, path: Path, *, source: str = "", run_id: str | None = None) -> FileJournal:
        """A new run: replaces any journal at ``path`` with one naming a fresh run id."""
        run_id = run_id or uuid.uuid4().hex[:16]
        path.unlink(missing_ok=True)
        handle = path.open("a", encoding="utf-8")
        header = {"run_id": run_id, "file": source, "started": _now(), "keys": _KEY_RULE}
        handle.write(json.dumps(header) + "\n")
        handle.flush()
        return cls(path, run_id, handle, None)

    @classmethod
    def resume(cls, path: Path, *, source_name: str = "") -> FileJournal:
        """Continue the run in the journal at ``path``, keeping the keys its records had.

        ``source_name`` (the input file's name) named the keys of journals written before
        runs had ids.
        """
        run_id: str | None = None
        rule: str | None = None
        entries: list[dict[str, Any]] = []
        with path.open(encoding="utf-8") as fh:
            for text in fh:
                try:
                    entry = json.loads(text)
                    if "run_id" in entry:
                        run_id, rule = str(entry["run_id"]), entry.get("keys")
                        continue
                    entries.append(entry)
                except (ValueError, TypeError):
                    continue  # a line cut short by a crash
        prefix = None if rule == _KEY_RULE else (run_id or source_name)
        handle = path.open("a", encoding="utf-8")
        journal = cls(path, run_id or source_name, handle, prefix, named=run_id is not None)
        for entry in entries:
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
        """The record's key: :func:`record_key`, or the form the journal's version used."""
        if self._legacy_prefix is not None:
            return f"{self._legacy_prefix}:{identity}"
        return record_key(self._run_id, identity)

    def record(
        self, identity: str, state: Settled, code: int | None = None, *, retry: bool = False
    ) -> None:
        """Append a record's outcome (a line number as identity is written as ``line``)."""
        entry: dict[str, Any] = {"line": int(identity)} if identity.isdigit() else {"id": identity}
        entry.update(state=state, code=code)
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
