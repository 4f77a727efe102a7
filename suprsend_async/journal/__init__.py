"""Resumable journals: which records of a run settled, so that a resumed run sends the rest.

One interface, `Journal`, and two stores: `FileJournal` (a JSONL file next to the
input, used by the command line) and `RedisJournal` (a Redis set and hash per job, used
by the Celery fan-out). Both name a record's idempotency key with `record_key`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._file import FileJournal
from ._file_read import JournalDamaged
from ._interface import Journal, Settled, note_outcome
from ._keys import MAX_KEY_LENGTH, record_key

if TYPE_CHECKING:
    from ._redis import RedisJournal

__all__ = [
    "MAX_KEY_LENGTH",
    "FileJournal",
    "Journal",
    "JournalDamaged",
    "RedisJournal",
    "Settled",
    "note_outcome",
    "record_key",
]


def __getattr__(name: str) -> Any:
    # The Redis store needs the ``celery`` extra's redis client; the file store needs nothing.
    if name == "RedisJournal":
        from ._redis import RedisJournal

        return RedisJournal
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
