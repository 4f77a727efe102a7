"""A bulk's input: a JSONL file read lazily, each line with its identity and default key.

A line's identity in the journal is its 1-based line number; its default idempotency key is
the journal's key for ``{number}:{digest of the line's text}``, so a line whose text changed
(a fixed record) is new to the service, and the same line on a resume keeps its key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._types import RequestKind, kind_of
from ..journal import Journal

__all__ = ["KIND_NAMES", "BadLine", "BulkFile", "Line", "own_key", "own_tenant"]

KIND_NAMES: dict[RequestKind, str] = {
    "trigger": "new-API (workflow)",
    "legacy": "legacy (name/template)",
    "event": "event (event/distinct_id)",
}


@dataclass
class Line:
    """A line to send."""

    number: int  # 1-based line number in the file
    body: Any
    key: str


@dataclass
class BadLine:
    """A line refused before sending."""

    number: int
    record: Any  # the parsed record, or None when the line is not JSON
    text: str
    error: str
    reason: str  # what the summary groups it under


def _no_key(identity: str) -> str:
    raise RuntimeError("BulkFile.key is set once the run's journal is open")


@dataclass
class BulkFile:
    """Reads a JSONL file lazily, skipping the lines an earlier run settled (on --resume)."""

    path: Path
    skip_failed: bool = False
    kind: RequestKind = "trigger"  # what the file's first record is (see peek_kind)
    key: Callable[[str], str] = _no_key  # the run's key for an identity (Journal.key)
    succeeded_before: set[int] = field(default_factory=set)
    # line -> True when refused for good (a bad record), False when it failed for a passing
    # reason (no answer, 429, 5xx): --skip-failed skips only the first kind.
    failed_before: dict[int, bool] = field(default_factory=dict)
    bad_lines: list[BadLine] = field(default_factory=list)
    skipped_succeeded: int = 0
    skipped_failed: int = 0
    resent_failed: int = 0

    def load_earlier(self, journal: Journal) -> None:
        """Learn from ``journal`` which lines an earlier run of this file settled."""
        with self.path.open("rb") as fh:
            numbers = [str(n) for n, line in enumerate(fh, start=1) if line.strip()]
        self.succeeded_before = {int(i) for i in journal.succeeded_among(numbers)}
        self.failed_before = {int(i): g for i, g in journal.failed_among(numbers).items()}

    def skips(self, number: int) -> bool:
        """Whether line ``number`` was settled by the earlier run and is not sent again."""
        if number in self.succeeded_before:
            return True
        return self.skip_failed and self.failed_before.get(number, False)

    def records(self) -> Iterator[Line]:
        """The lines to send, in order; bad lines are kept in ``bad_lines`` instead."""
        with self.path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                text = raw.strip()
                if not text or self._skipped(number):
                    continue
                if number in self.failed_before:
                    self.resent_failed += 1
                line = self._parse(number, text)
                if line is not None:
                    yield line

    def _skipped(self, number: int) -> bool:
        if number in self.succeeded_before:
            self.skipped_succeeded += 1
            return True
        if self.skips(number):
            self.skipped_failed += 1
            return True
        return False

    def _parse(self, number: int, text: bytes) -> Line | None:
        try:
            body = json.loads(text)
        except ValueError as exc:
            error = f"not valid JSON: {exc}"
            self.refuse(number, None, text.decode(errors="replace"), error, "not valid JSON")
            return None
        if self.kind != "identity" and kind_of(body) != self.kind:  # users import: any object
            error = f"the file holds {KIND_NAMES[self.kind]} records; this one is not"
            self.refuse(number, body, text.decode(errors="replace"), error, error)
            return None
        return Line(number, body, self.key_for(number, text))

    def refuse(self, number: int, record: Any, text: str, error: str, reason: str) -> None:
        """Keep a line as refused before sending."""
        self.bad_lines.append(BadLine(number, record, text, error, reason))

    def key_for(self, number: int, text: bytes) -> str:
        """The line's default idempotency key: the same for the same run, line and text."""
        digest = hashlib.sha256(text).hexdigest()[:32]
        return self.key(f"{number}:{digest}")

    def peek_kind(self) -> RequestKind:
        """What the file's first JSON record is: trigger, legacy (name/template) or event."""
        with self.path.open("rb") as fh:
            for raw in fh:
                try:
                    return kind_of(json.loads(raw))
                except ValueError:
                    continue  # blank or not JSON: the next line decides
        return "trigger"

    def count_to_send(self) -> int:
        """How many lines this run will read (sent, or refused before sending)."""
        with self.path.open("rb") as fh:
            return sum(
                1
                for number, line in enumerate(fh, start=1)
                if line.strip() and not self.skips(number)
            )


def own_key(body: Any) -> str | None:
    """The record's own ``$idempotency_key``, if it has a usable one."""
    key = body.get("$idempotency_key") if isinstance(body, dict) else None
    return key if isinstance(key, str) and key.strip() else None


def own_tenant(body: Any) -> bool:
    """Whether the record names its own tenant."""
    return isinstance(body, dict) and body.get("tenant_id") is not None
