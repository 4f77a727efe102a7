"""The chunk planner: records into requests of at most 100 records (400 identity events)
and 800 KiB. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._prepared import PreparedRecord
from .._serialize import MAX_APPARENT_SIZE
from .._types import RequestKind

__all__ = [
    "MAX_RECORDS_BY_KIND",
    "MAX_RECORDS_PER_REQUEST",
    "ChunkPlanner",
    "Item",
    "plan_chunks",
    "planner_for",
]

MAX_RECORDS_PER_REQUEST = 100
MAX_RECORDS_BY_KIND: dict[RequestKind, int] = {"identity": 400}
"""Kinds whose requests hold another number of records (``constants.py`` of the official
SDK: ``MAX_IDENTITY_EVENTS_IN_BULK_API``); every kind's requests hold at most 800 KiB."""


@dataclass(slots=True)
class Item:
    """A prepared record on its way: its position in the input, the attempts it took, and
    (while a ledger holds it) its live state and the last verdict on it."""

    index: int
    prepared: PreparedRecord
    attempts: int = 0
    state: Literal["queued", "writing"] = "queued"
    last: Any = None
    """The last `Verdict` that kept it live (the ledger's)."""


_NONE: tuple[list[Item], ...] = ()  # what most calls of ``add`` return: no object made


class ChunkPlanner:
    """Packs prepared records into requests: at most 100 records and 800 KiB apparent size.

    Pure and iterative: ``add`` returns the chunk it closed (if any), ``flush`` the last one.
    Records are kept by reference; nothing is copied. Sizes may be upper bounds (see
    ``PreparedRecord.exact_size``): a chunk that fits by its bounds fits, and only when the
    bounds say the next record may not fit are that chunk's sizes measured exactly, so the
    chunks are the ones exact sizes give.
    """

    __slots__ = ("_chunk", "_exact", "_max_bytes", "_max_records", "_size")

    def __init__(
        self, max_records: int = MAX_RECORDS_PER_REQUEST, max_bytes: int = MAX_APPARENT_SIZE
    ) -> None:
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._chunk: list[Item] = []
        self._size = 0
        self._exact = False  # whether _size is the exact sum (else a sum of bounds)

    def add(self, item: Item) -> Sequence[list[Item]]:
        """Add one record; return the chunks that are now complete (usually none)."""
        prepared = item.prepared
        size = prepared.exact_size() if self._exact else prepared.size
        done: list[list[Item]] | None = None
        if self._chunk and self._size + size > self._max_bytes and not self._exact:
            # Tighter bounds first (two counts a record), exact sizes only if still needed.
            self._size = sum(i.prepared.counted_size() for i in self._chunk)
            size = prepared.counted_size()
            if self._size + size > self._max_bytes:
                self._size = sum(i.prepared.exact_size() for i in self._chunk)
                self._exact = True
                size = prepared.exact_size()
        if self._chunk and self._size + size > self._max_bytes:
            done = [self._chunk]
            self._start()
            size = prepared.size
        self._chunk.append(item)
        self._size += size
        if len(self._chunk) >= self._max_records:
            # Ship a full chunk at once rather than waiting for the next record.
            if done is None:
                done = [self._chunk]
            else:
                done.append(self._chunk)
            self._start()
        return _NONE if done is None else done

    def _start(self) -> None:
        self._chunk, self._size, self._exact = [], 0, False

    def flush(self) -> list[Item] | None:
        """The chunk being filled, if it holds anything."""
        chunk = self._chunk
        self._start()
        return chunk or None


def planner_for(kind: RequestKind) -> ChunkPlanner:
    """The planner of a kind's bulk requests."""
    return ChunkPlanner(MAX_RECORDS_BY_KIND.get(kind, MAX_RECORDS_PER_REQUEST))


def plan_chunks(items: Iterable[Item], **limits: int) -> Iterator[list[Item]]:
    """All chunks for ``items`` in order (the dispatcher drives the planner the same way)."""
    planner = ChunkPlanner(**limits)
    for item in items:
        yield from planner.add(item)
    last = planner.flush()
    if last:
        yield last
