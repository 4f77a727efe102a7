"""The inbox's history on disk: SQLite, written by one thread so requests never wait on it."""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from pathlib import Path
from typing import Any

from .._types import RequestKind
from ._inbox_rows import Exchange
from ._store import connect

__all__ = ["ExchangeLog"]


class ExchangeLog:
    """SQLite history, written by one thread so the request path never touches the disk.

    It shares the ``--db`` file with the entity store (`._store`), in a table of its own.
    """

    _SCHEMA = """
        CREATE TABLE IF NOT EXISTS exchanges (
            seq INTEGER PRIMARY KEY, received REAL, api TEXT, path TEXT, headers TEXT,
            body BLOB, status INTEGER, answer BLOB, answer_headers TEXT, outcomes TEXT,
            fault TEXT, latency_ms REAL
        )"""

    def __init__(self, path: str) -> None:
        self.path = path
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(self._SCHEMA)
        self._queue: queue.SimpleQueue[Exchange | str] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write, name="emulator-inbox-db", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        return connect(self.path)

    def load(self, limit: int) -> list[Exchange]:
        """The newest ``limit`` exchanges, oldest first."""
        db = self._connect()
        try:
            rows = db.execute(
                "SELECT * FROM (SELECT * FROM exchanges ORDER BY seq DESC LIMIT ?) ORDER BY seq",
                (limit,),
            ).fetchall()
        finally:
            db.close()
        out = []
        for (
            seq,
            received,
            api,
            path,
            headers,
            body,
            status,
            answer,
            ahead,
            outcomes,
            f,
            lat,
        ) in rows:
            out.append(
                Exchange(
                    seq,
                    received,
                    _kind(api),
                    path,
                    [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(headers)],
                    body,
                    status,
                    answer,
                    json.loads(ahead),
                    tuple(json.loads(outcomes)) if outcomes is not None else None,
                    f,
                    lat,
                )
            )
        return out

    def put(self, item: Exchange | str) -> None:
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put("close")
        self._thread.join()

    def _write(self) -> None:
        db = self._connect()
        try:
            while True:
                batch = [self._queue.get()]
                while True:  # everything queued so far, in one transaction
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                done = False
                with db:
                    for item in batch:
                        if isinstance(item, Exchange):
                            db.execute(
                                "INSERT OR REPLACE INTO exchanges VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                                _db_row(item),
                            )
                        elif item == "reset":
                            db.execute("DELETE FROM exchanges")
                        else:  # "close"
                            done = True
                if done:
                    return
        finally:
            db.close()


def _db_row(ex: Exchange) -> tuple[Any, ...]:
    return (
        ex.seq,
        ex.received,
        ex.api,
        ex.path,
        json.dumps(ex.shown_headers()),  # secrets never reach the disk
        ex.body,
        ex.status,
        ex.answer,
        json.dumps(dict(ex.answer_headers)),
        json.dumps(list(ex.outcomes)) if ex.outcomes is not None else None,
        ex.fault,
        ex.latency_ms,
    )


def _kind(text: str) -> RequestKind:
    # Files written before the API was spelled RequestKind said "bulk_event" for bulk events.
    if text in ("trigger", "legacy", "event", "broadcast", "api"):
        return text  # type: ignore[return-value]
    return "event" if text == "bulk_event" else "trigger"
