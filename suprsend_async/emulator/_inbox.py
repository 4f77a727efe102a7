"""The emulator's inbox: every request it received, with the answer it sent, for the web page.

Recording is O(1) per request: an `Exchange` keeps references to the raw header list,
the body bytes and the encoded answer, which the emulator has in hand anyway. Nothing is parsed
until someone looks: the page's rows (one per workflow trigger or event, so a bulk request gives
several) are built on first view and cached. The history is bounded by count and bytes, and can
be kept in SQLite (``--db PATH``) by a writer thread, so the request path never waits on disk.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from .._types import RequestKind
from ._inbox_db import ExchangeLog
from ._inbox_rows import CHANNELS, STATUSES, Exchange, InboxQuery, Status, _Row

__all__ = [
    "CHANNELS",
    "STATUSES",
    "Exchange",
    "Inbox",
    "InboxQuery",
    "Route",
    "Status",
    "api_for_path",
]


MAX_EXCHANGES = 10_000
MAX_BYTES = 64 * 1024 * 1024  # request and answer bodies kept in memory, in all
# The page's counts and filters look at the newest rows only, so that a long bulk run (a
# request holds up to 100 rows) neither stalls the emulator's loop nor builds a row for each.
SCAN_LIMIT = 20_000
# Fast (benchmark) mode keeps a short tail only: bodies kept by the thousand would leave the
# allocator handing out cold memory on every request, which a benchmark would notice.
FAST_MAX_EXCHANGES = 1_000
FAST_MAX_BYTES = 2 * 1024 * 1024


Route = tuple[RequestKind, bool]
"""Which API a request path belongs to, and whether the path takes only bulks (``v2/bulk/event/``).

Trigger paths take one record or an array of them, so for them the body says single or bulk."""


def api_for_path(path: str) -> Route | None:
    """The API a request path belongs to (``None``: not one the inbox shows)."""
    if path == "/v2/event/":
        return "event", False
    if path == "/v2/bulk/event/":
        return "event", True
    if not path.endswith("/trigger/"):
        return None
    segments = path.strip("/").split("/")
    if len(segments) == 1:
        return "trigger", False
    return ("legacy", False) if len(segments) == 2 else None


class Inbox:
    """The bounded history of exchanges, newest last; optionally kept in SQLite."""

    def __init__(
        self,
        db: str | None = None,
        *,
        max_exchanges: int = MAX_EXCHANGES,
        max_bytes: int = MAX_BYTES,
        scan_limit: int = SCAN_LIMIT,
    ) -> None:
        self.max_exchanges = max_exchanges
        self.max_bytes = max_bytes
        self.scan_limit = scan_limit
        self._lock = threading.Lock()
        self._items: deque[Exchange] = deque()
        self._bytes = 0
        self.version = 0  # goes up on every change: the page's live stream watches it
        self.stopping: Callable[[], bool] = lambda: False
        self.db = db
        self._store: ExchangeLog | None = None
        start = 1
        if db:
            self.open()
            assert self._store is not None
            for ex in self._store.load(max_exchanges):
                self._append(ex)
            start = self._items[-1].seq + 1 if self._items else 1
        self._seq = itertools.count(start)

    @classmethod
    def for_mode(cls, db: str | None = None, *, fast: bool = False) -> Inbox:
        """An inbox sized for the emulator's mode (a short tail in fast mode)."""
        if fast:
            return cls(db, max_exchanges=FAST_MAX_EXCHANGES, max_bytes=FAST_MAX_BYTES)
        return cls(db)

    def open(self) -> None:
        """Start the database writer (again, after `close`); no-op without ``db``."""
        with self._lock:
            if self.db and self._store is None:
                self._store = ExchangeLog(self.db)

    def _append(self, ex: Exchange) -> None:
        items = self._items
        items.append(ex)
        self._bytes += ex.size
        while len(items) > self.max_exchanges or (self._bytes > self.max_bytes and len(items) > 1):
            self._bytes -= items.popleft().size

    def record(
        self,
        api: RequestKind,
        path: str,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        status: int,
        answer: bytes,
        answer_headers: Mapping[str, str],
        outcomes: tuple[str, ...] | None = None,
        fault: str | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        """Keep one exchange: references only, no parsing (this runs on every request)."""
        with self._lock:
            ex = Exchange(
                next(self._seq),
                time.time(),
                api,
                path,
                headers,
                body,
                status,
                answer,
                answer_headers,
                outcomes,
                fault,
                latency_ms,
            )
            self._append(ex)
            self.version += 1
            if self._store is not None:
                self._store.put(ex)

    def reset(self) -> None:
        """Forget the history (in the database too)."""
        with self._lock:
            self._items.clear()
            self._bytes = 0
            self.version += 1
            if self._store is not None:
                self._store.put("reset")

    def close(self) -> None:
        """Flush the database writer and stop it (no-op without ``db``)."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()

    def exchanges(self) -> list[Exchange]:
        with self._lock:
            return list(self._items)

    def _rows_newest_first(self) -> Iterator[_Row]:
        for ex in reversed(self.exchanges()):
            yield from reversed(ex.rows())

    def query(self, q: InboxQuery, limit: int = 200) -> dict[str, Any]:
        """Counts, and the newest ``limit`` rows that match ``q``, over the newest
        ``scan_limit`` rows (``truncated`` says when there were more)."""
        counts = dict.fromkeys(STATUSES, 0)
        total = matching = 0
        items: list[dict[str, Any]] = []
        version = self.version
        truncated = False
        for row in self._rows_newest_first():
            if total == self.scan_limit:
                truncated = True
                break
            summary = row.summary()
            total += 1
            counts[summary["status"]] += 1
            if q.matches(summary):
                matching += 1
                if len(items) < limit:
                    items.append(summary)
        return {
            "version": version,
            "total": total,
            "counts": counts,
            "matching": matching,
            "items": items,
            "truncated": truncated,
        }

    def for_recipient(self, distinct_id: str, limit: int = 100) -> list[dict[str, Any]]:
        """The newest ``limit`` rows naming ``distinct_id`` as a recipient (exactly), over the
        newest ``scan_limit`` rows: triggers, events and broadcast deliveries."""
        found: list[dict[str, Any]] = []
        for n, row in enumerate(self._rows_newest_first()):
            if n == self.scan_limit or len(found) == limit:
                break
            summary = row.summary()
            if distinct_id in summary["distinct_ids"]:
                found.append(summary)
        return found

    def find(self, row_id: str) -> _Row | None:
        seq_text, _, index_text = row_id.partition("-")
        try:
            seq = int(seq_text)
            index = int(index_text) - 1 if index_text else 0
        except ValueError:
            return None
        for ex in self.exchanges():
            if ex.seq == seq:
                rows = ex.rows()
                return rows[index] if 0 <= index < len(rows) else None
        return None

    def detail(self, row_id: str) -> dict[str, Any] | None:
        row = self.find(row_id)
        return row.detail() if row is not None else None

    def attachment(self, row_id: str, n: int) -> tuple[bytes, str, str] | None:
        """``(content, content type, file name)`` of an inline attachment, if there is one."""
        row = self.find(row_id)
        return row.attachment(n) if row is not None else None
