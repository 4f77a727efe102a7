"""The emulator's store of entities: tables of JSON documents keyed by id.

Tenants live in one table today; users, objects, subscriber lists and messages are meant to be
more tables of the same kind, not more special cases. A table keeps its documents in the order
they were first stored (an update keeps a document's place), which is the order pages follow.

Two backends behave alike: memory (the default) and SQLite (``--db PATH``, the same file the
inbox keeps its history in, in a table of its own). Documents are stored as JSON text in both,
so what a caller gets back is always a fresh copy, never a reference into the store. Writes are
synchronous: an answer that says a tenant was stored means a read that follows will see it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .._errors import ConfigurationError

__all__ = [
    "Document",
    "EmulatorDatabaseError",
    "Page",
    "Store",
    "Table",
    "check_database",
    "connect",
]

Document = dict[str, Any]


def connect(path: str) -> sqlite3.Connection:
    """A connection to the emulator's SQLite file, shared by the inbox and the store.

    Several connections use the file at once (the inbox's writer thread, the store), so each
    waits for the others' transactions instead of failing with "database is locked".
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return sqlite3.connect(path, check_same_thread=False, timeout=30)


class EmulatorDatabaseError(ConfigurationError):
    """The emulator's ``--db`` file cannot be used: it is not an SQLite database, it is
    damaged, or it cannot be opened. The message names the file and what to do; the command
    line prints it as one line."""


# What SQLite says about a file that is not a database, or a damaged one.
_DAMAGED = frozenset({"SQLITE_CORRUPT", "SQLITE_NOTADB"})


def check_database(path: str) -> None:
    """Open ``path`` and check it (``PRAGMA quick_check``) before the emulator uses it.

    Raises `EmulatorDatabaseError` with a one-line message otherwise, so that a damaged
    file stops the start with advice rather than a traceback half-way through serving.
    """
    try:
        db = connect(path)
        try:
            problems = [row[0] for row in db.execute("PRAGMA quick_check(3)")]
        finally:
            db.close()
    except sqlite3.Error as exc:
        if getattr(exc, "sqlite_errorname", "") in _DAMAGED:
            raise _damaged(path, str(exc)) from None
        raise EmulatorDatabaseError(
            f"cannot use {path} as the emulator's database ({exc}); choose another --db path"
        ) from None
    except OSError as exc:  # its folder cannot be created
        raise EmulatorDatabaseError(
            f"cannot use {path} as the emulator's database ({exc.strerror or exc});"
            " choose another --db path"
        ) from None
    if problems != ["ok"]:
        # SQLite's report spans lines ("*** in database main ***", then one per page): the
        # first page's line is enough to say where.
        lines = [line for p in problems for line in str(p).splitlines() if "***" not in line]
        raise _damaged(path, f"database disk image is malformed: {lines[0] if lines else '?'}")


def _damaged(path: str, why: str) -> EmulatorDatabaseError:
    return EmulatorDatabaseError(
        f"{path} is not a usable SQLite database ({why}): move it aside or delete it to start"
        " afresh (it holds the inbox's history and the stored entities), or choose another"
        " --db path"
    )


@dataclass(frozen=True)
class Page:
    """One page of a table: the documents, how many the table holds, and the next cursor."""

    items: list[Document]
    count: int
    next_cursor: str | None = None


class _Backend(Protocol):
    def get(self, table: str, key: str) -> str | None: ...
    def put(self, table: str, key: str, text: str) -> None: ...
    def delete(self, table: str, key: str) -> bool: ...
    def count(self, table: str) -> int: ...
    def slice(self, table: str, offset: int, limit: int) -> list[str]: ...
    def after(self, table: str, seq: int, limit: int) -> list[tuple[int, str]]: ...
    def clear(self, table: str | None) -> None: ...
    def close(self) -> None: ...


class _Memory:
    """Tables as dicts: a dict keeps insertion order, and replacing a value keeps its place."""

    def __init__(self) -> None:
        self._tables: dict[str, dict[str, tuple[int, str]]] = {}
        self._seq = 0

    def _table(self, table: str) -> dict[str, tuple[int, str]]:
        return self._tables.setdefault(table, {})

    def get(self, table: str, key: str) -> str | None:
        found = self._table(table).get(key)
        return found[1] if found is not None else None

    def put(self, table: str, key: str, text: str) -> None:
        rows = self._table(table)
        if key in rows:
            rows[key] = (rows[key][0], text)
        else:
            self._seq += 1
            rows[key] = (self._seq, text)

    def delete(self, table: str, key: str) -> bool:
        return self._table(table).pop(key, None) is not None

    def count(self, table: str) -> int:
        return len(self._table(table))

    def slice(self, table: str, offset: int, limit: int) -> list[str]:
        rows = list(self._table(table).values())[offset : offset + limit]
        return [text for _, text in rows]

    def after(self, table: str, seq: int, limit: int) -> list[tuple[int, str]]:
        rows = (row for row in self._table(table).values() if row[0] > seq)
        return [row for _, row in zip(range(limit), rows, strict=False)]

    def clear(self, table: str | None) -> None:
        if table is None:
            self._tables.clear()
        else:
            self._tables.pop(table, None)

    def close(self) -> None:
        return None


class _Sqlite:
    """Tables as rows of one SQLite table ``entities (tbl, id, seq, doc)``."""

    _SCHEMA = (
        "CREATE TABLE IF NOT EXISTS entities (tbl TEXT NOT NULL, id TEXT NOT NULL,"
        " seq INTEGER NOT NULL, doc TEXT NOT NULL, PRIMARY KEY (tbl, id))",
        "CREATE INDEX IF NOT EXISTS entities_order ON entities (tbl, seq)",
    )

    def __init__(self, path: str) -> None:
        self._path = path
        self._conn: sqlite3.Connection | None = None
        self._db.close()  # creates the file and the table now, so a bad path fails early
        self._conn = None

    @property
    def _db(self) -> sqlite3.Connection:
        # Opened on first use, again after close(): an emulator can stop and start again.
        if self._conn is None:
            self._conn = connect(self._path)
            with self._conn:
                for statement in self._SCHEMA:
                    self._conn.execute(statement)
        return self._conn

    def _one(self, sql: str, *args: Any) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return row[0] if row is not None else None

    def get(self, table: str, key: str) -> str | None:
        text: str | None = self._one(
            "SELECT doc FROM entities WHERE tbl = ? AND id = ?", table, key
        )
        return text

    def put(self, table: str, key: str, text: str) -> None:
        with self._db:
            # An update keeps the row's seq, so the document keeps its place in pages.
            self._db.execute(
                "INSERT INTO entities (tbl, id, seq, doc) VALUES"
                " (?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM entities), ?)"
                " ON CONFLICT (tbl, id) DO UPDATE SET doc = excluded.doc",
                (table, key, text),
            )

    def delete(self, table: str, key: str) -> bool:
        with self._db:
            cursor = self._db.execute("DELETE FROM entities WHERE tbl = ? AND id = ?", (table, key))
        return cursor.rowcount > 0

    def count(self, table: str) -> int:
        return int(self._one("SELECT COUNT(*) FROM entities WHERE tbl = ?", table))

    def slice(self, table: str, offset: int, limit: int) -> list[str]:
        rows = self._db.execute(
            "SELECT doc FROM entities WHERE tbl = ? ORDER BY seq LIMIT ? OFFSET ?",
            (table, limit, offset),
        )
        return [text for (text,) in rows]

    def after(self, table: str, seq: int, limit: int) -> list[tuple[int, str]]:
        rows = self._db.execute(
            "SELECT seq, doc FROM entities WHERE tbl = ? AND seq > ? ORDER BY seq LIMIT ?",
            (table, seq, limit),
        )
        return [(int(s), text) for s, text in rows]

    def clear(self, table: str | None) -> None:
        with self._db:
            if table is None:
                self._db.execute("DELETE FROM entities")
            else:
                self._db.execute("DELETE FROM entities WHERE tbl = ?", (table,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Table:
    """One table of documents keyed by id (a string); get it with `Store.table`."""

    def __init__(self, store: Store, name: str) -> None:
        self.name = name
        self._store = store

    def get(self, key: str) -> Document | None:
        """The document stored under ``key`` (a copy), or ``None``."""
        with self._store._lock:
            text = self._store._backend.get(self.name, key)
        return _load(text) if text is not None else None

    def upsert(self, key: str, document: Document) -> Document:
        """Store ``document`` under ``key`` (replacing what was there) and return a copy."""
        text = json.dumps(document, ensure_ascii=False, sort_keys=False)
        with self._store._lock:
            self._store._backend.put(self.name, key, text)
            self._store.version += 1
        return _load(text)

    def delete(self, key: str) -> bool:
        """Forget ``key``; whether there was a document to forget."""
        with self._store._lock:
            gone = self._store._backend.delete(self.name, key)
            if gone:
                self._store.version += 1
        return gone

    def count(self) -> int:
        """How many documents the table holds."""
        with self._store._lock:
            return self._store._backend.count(self.name)

    def page(self, offset: int = 0, limit: int = 20) -> Page:
        """Documents ``offset`` to ``offset + limit`` in storage order, and the table's count."""
        with self._store._lock:
            texts = self._store._backend.slice(self.name, offset, limit)
            count = self._store._backend.count(self.name)
        return Page([_load(t) for t in texts], count)

    def page_after(self, cursor: str | None = None, limit: int = 20) -> Page:
        """Up to ``limit`` documents after ``cursor`` (``None``: from the start), in storage
        order; ``next_cursor`` is ``None`` on the last page. Cursors are opaque strings."""
        seq = int(cursor) if cursor else 0
        with self._store._lock:
            rows = self._store._backend.after(self.name, seq, limit + 1)
            count = self._store._backend.count(self.name)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = str(rows[-1][0]) if more and rows else None
        return Page([_load(t) for _, t in rows], count, next_cursor)

    def __iter__(self) -> Iterator[Document]:
        """Every document, in storage order (read a page at a time)."""
        offset = 0
        while True:
            page = self.page(offset, 500)
            yield from page.items
            if len(page.items) < 500:
                return
            offset += 500

    def clear(self) -> None:
        """Forget every document of this table."""
        with self._store._lock:
            self._store._backend.clear(self.name)
            self._store.version += 1


def _load(text: str) -> Document:
    document: Document = json.loads(text)
    return document


class Store:
    """Named tables of JSON documents, in memory or in SQLite (``db``: the file's path).

    ``version`` goes up on every change, so a watcher (the inbox page's live stream) can tell
    that something moved without reading the tables. Safe to use from several threads.
    """

    def __init__(self, db: str | None = None) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._backend: _Backend = _Sqlite(db) if db else _Memory()
        self._tables: dict[str, Table] = {}
        self.version = 0

    def table(self, name: str) -> Table:
        """The table called ``name`` (created on first use)."""
        with self._lock:
            found = self._tables.get(name)
            if found is None:
                found = self._tables[name] = Table(self, name)
            return found

    def clear(self) -> None:
        """Forget every document of every table."""
        with self._lock:
            self._backend.clear(None)
            self.version += 1

    def close(self) -> None:
        """Close the database connection (the next use opens it again)."""
        with self._lock:
            self._backend.close()
