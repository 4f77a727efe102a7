"""Bulk triggers: the pure chunk planner and the concurrent dispatcher.

Records flow: source -> prepare (validate + serialise, once) -> chunk planner -> bounded
channel -> N workers -> the client's request pipeline -> per-record outcomes. Memory is bounded
by the channel: the source is pulled only as fast as workers take chunks.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import ObjectReceiveStream, TaskGroup
from anyio.streams.memory import MemoryObjectSendStream
from pydantic import BaseModel

from ._attachments import INLINE_LIMIT, AttachmentError, BlobCache
from ._bulk_results import (
    BulkProgress,
    BulkResponse,
    FailedRecord,
    RecordOutcome,
)
from ._errors import SuprsendValidationError
from ._requests import PreparedRecord, Workflow, WorkflowTriggerRequest, _BaseRequest
from ._responses import TriggerResponse, error_message, parse_body
from ._serialize import MAX_APPARENT_SIZE

if TYPE_CHECKING:
    from ._client import AsyncSuprsend, _Answer, _Endpoint

__all__ = [
    "DEFAULT_CONCURRENCY",
    "MAX_RECORDS_PER_REQUEST",
    "AsyncBulkWorkflowTrigger",
    "AsyncBulkWorkflows",
    "AsyncWorkflows",
    "ChunkPlanner",
]

logger = logging.getLogger("suprsend_async")

DEFAULT_CONCURRENCY = 16
"""Bulk requests in flight at once, by default (each holds up to 100 records)."""

MAX_RECORDS_PER_REQUEST = 100

_SOURCE_BATCH = 256  # records pulled from a sync iterator per trip to a worker thread
_ASYNC_BATCH = 64  # records of an async source handed over at once
_READ_AHEAD = 2  # batches read but not yet taken by the dispatcher

KeyFrom = str | Callable[[Mapping[str, Any]], Any]
OutcomeCallback = Callable[[RecordOutcome], Any]
ProgressCallback = Callable[[BulkProgress], Any]


@dataclass(slots=True)
class _Item:
    index: int
    prepared: PreparedRecord
    attempts: int = 0


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
        self._chunk: list[_Item] = []
        self._size = 0
        self._exact = False  # whether _size is the exact sum (else a sum of bounds)

    def add(self, item: _Item) -> list[list[_Item]]:
        """Add one record; return the chunks that are now complete (usually none)."""
        prepared = item.prepared
        size = prepared.exact_size() if self._exact else prepared.size
        done: list[list[_Item]] = []
        if self._chunk and self._size + size > self._max_bytes and not self._exact:
            self._size = sum(i.prepared.exact_size() for i in self._chunk)
            self._exact = True
            size = prepared.exact_size()
        if self._chunk and self._size + size > self._max_bytes:
            done.append(self._chunk)
            self._start()
            size = prepared.size
        self._chunk.append(item)
        self._size += size
        if len(self._chunk) >= self._max_records:
            # Ship a full chunk at once rather than waiting for the next record.
            done.append(self._chunk)
            self._start()
        return done

    def _start(self) -> None:
        self._chunk, self._size, self._exact = [], 0, False

    def flush(self) -> list[_Item] | None:
        """The chunk being filled, if it holds anything."""
        chunk = self._chunk
        self._start()
        return chunk or None


def plan_chunks(items: Iterable[_Item], **limits: int) -> Iterator[list[_Item]]:
    """All chunks for ``items`` in order (the dispatcher drives the planner the same way)."""
    planner = ChunkPlanner(**limits)
    for item in items:
        yield from planner.add(item)
    last = planner.flush()
    if last:
        yield last


class _RateLimiter:
    """Spaces requests so records go out at most ``rate`` per second, across all workers."""

    __slots__ = ("_next", "_rate")

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError("max_records_per_second must be > 0")
        self._rate = rate
        self._next = 0.0

    async def acquire(self, records: int) -> None:
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + records / self._rate
        if start > now:
            await anyio.sleep(start - now)


def _lookup(body: Any, path: str) -> Any:
    value = body
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, BaseModel) and hasattr(value, part):
            value = getattr(value, part)
        else:
            raise KeyError(path)
    return value


class _Preparer:
    """Turns whatever the caller gave into a validated, serialised record (or its failure).

    Shared by streaming runs and bulk instances (which prepare at ``append``); attachment
    warnings go to the ``warnings`` list it is given, once per file.
    """

    def __init__(self, client: AsyncSuprsend, legacy: bool, warnings: list[str]) -> None:
        self.legacy = legacy
        self.auto_keys = client._settings.auto_idempotency_keys
        self.warnings = warnings
        self._warned: set[tuple[str, int]] = set()

    def as_request(self, raw: Any) -> _BaseRequest:
        expected: type[_BaseRequest] = Workflow if self.legacy else WorkflowTriggerRequest
        if type(raw) is dict:
            return expected(raw)
        if isinstance(raw, expected):
            return raw
        if isinstance(raw, _BaseRequest):
            raise SuprsendValidationError.single(
                "",
                f"expected a {expected.__name__}, got a {type(raw).__name__}"
                + (
                    " (use client.bulk_workflows for legacy Workflow records)"
                    if isinstance(raw, Workflow)
                    else " (use client.workflows for WorkflowTriggerRequest records)"
                ),
            )
        return expected(raw)

    def prepare(self, index: int, raw: Any, key_from: KeyFrom | None) -> _Item | RecordOutcome:
        """Validate and serialise one record; a bad one becomes its failed outcome."""
        try:
            request = self.as_request(raw)
            fallback = self.derive_key(request, key_from) if key_from is not None else None
            prepared = request.prepare(
                auto_idempotency_key=self.auto_keys,
                fallback_key=fallback,
            )
        except SuprsendValidationError as exc:
            return RecordOutcome(
                index,
                "failed",
                _display_record(raw),
                status_code=400,
                error=exc.short_message,
                error_type="validation",
            )
        if prepared.placeholders is None:
            return _Item(index, prepared)
        for name, size in prepared.inline_attachments():
            if size > INLINE_LIMIT and (name, size) not in self._warned:
                self._warned.add((name, size))
                self.warnings.append(
                    f"attachment {name!r} is {size:,} bytes, over the service's inline limit of"
                    f" about {INLINE_LIMIT // 1024} KB; consider sending it as a URL"
                )
        return _Item(index, prepared)

    @staticmethod
    def derive_key(request: _BaseRequest, key_from: KeyFrom) -> str | None:
        body = request.body
        if not callable(key_from):
            try:
                value = _lookup(body, key_from)
            except KeyError:
                raise SuprsendValidationError.single(
                    key_from, "is missing, and the idempotency key is derived from it"
                ) from None
        else:
            try:
                value = key_from(body)  # type: ignore[arg-type]
            except Exception as exc:  # the caller's function: its failure is this record's
                raise SuprsendValidationError.single(
                    "idempotency_key_from", f"raised {type(exc).__name__}: {exc}"
                ) from None
        if value is None or value == "":
            raise SuprsendValidationError.single(
                str(key_from) if isinstance(key_from, str) else "idempotency_key_from",
                "gave no value to derive the idempotency key from",
            )
        return str(value)


class _Run:
    """One bulk dispatch: prepares records, plans chunks, runs workers, accounts outcomes."""

    def __init__(
        self,
        client: AsyncSuprsend,
        legacy: bool,
        *,
        concurrency: int | None,
        max_records_per_second: float | None,
        on_outcome: OutcomeCallback | None,
        on_progress: ProgressCallback | None,
        total: int | None,
        keep_failed_records: bool = True,
    ) -> None:
        concurrency = DEFAULT_CONCURRENCY if concurrency is None else concurrency
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.client = client
        self.legacy = legacy
        self.endpoint: _Endpoint = client._legacy_endpoint if legacy else client._trigger_endpoint
        self.concurrency = concurrency
        self.rate = _RateLimiter(max_records_per_second) if max_records_per_second else None
        self.on_outcome = on_outcome
        self.on_progress = on_progress
        self.total = total
        self.keep_failed = keep_failed_records
        self.pulled = 0
        self.succeeded = 0
        self.failed = 0
        self.not_sent = 0
        self.unknown = 0
        self.requests = 0
        self.failed_records: list[FailedRecord] = []
        self.warnings: list[str] = []
        self.preparer = _Preparer(client, legacy, self.warnings)
        self.blobs = BlobCache()
        self._pending: dict[int, _Item] = {}  # prepared, not yet handed to the network
        self._in_flight: dict[int, _Item] = {}
        self._callback_errors = 0

    # -- accounting ---------------------------------------------------------------------

    def finish(self, outcome: RecordOutcome) -> None:
        """Record the one final outcome of a record."""
        state = outcome.state
        if state == "succeeded":
            self.succeeded += 1
        else:
            self.failed += 1
            if state == "not_sent":
                self.not_sent += 1
            elif state == "unknown":
                self.unknown += 1
            if self.keep_failed:
                self.failed_records.append(FailedRecord.from_outcome(outcome))
        if self.on_outcome is not None:
            self.call_back(self.on_outcome, outcome)

    def progress(self) -> None:
        if self.on_progress is not None:
            done = self.succeeded + self.failed
            self.call_back(
                self.on_progress,
                BulkProgress(self.total, done, self.succeeded, self.failed, self.requests),
            )

    def call_back(self, callback: Callable[[Any], Any], value: Any) -> None:
        """Run a caller's callback; its failure must not break the account of the records."""
        try:
            callback(value)
        except Exception as exc:
            self._callback_errors += 1
            if self._callback_errors == 1:
                logger.exception("bulk: a callback raised; the bulk goes on")
                self.warnings.append(
                    f"callback {getattr(callback, '__name__', repr(callback))} raised"
                    f" {type(exc).__name__}: {exc}"
                )

    def summary(self) -> BulkResponse:
        self.failed_records.sort(key=lambda f: f.index)
        if self._callback_errors > 1:
            self.warnings.append(f"callbacks raised {self._callback_errors} times in all")
        total = self.succeeded + self.failed
        return BulkResponse(
            status=BulkResponse.status_for(total, self.succeeded),
            total=total,
            success=self.succeeded,
            failure=self.failed,
            failed_records=self.failed_records,
            warnings=self.warnings,
            not_sent=self.not_sent,
            unknown=self.unknown,
            requests=self.requests,
        )

    def warn(self, message: str) -> None:
        logger.warning("bulk: %s", message)
        self.warnings.append(message)

    # -- running ------------------------------------------------------------------------

    async def run(
        self, source: Iterable[Any] | AsyncIterable[Any], key_from: KeyFrom | None
    ) -> None:
        """Dispatch every record of ``source``; returns when each one has its outcome."""
        send, receive = anyio.create_memory_object_stream[list[_Item]](
            max_buffer_size=self.concurrency
        )
        failure: list[BaseException] = []
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.concurrency):
                    tg.start_soon(self.worker, receive.clone())
                receive.close()
                async with send:
                    planner = ChunkPlanner()
                    async with contextlib.aclosing(_batches(source, tg, failure)) as batches:
                        async for batch in batches:
                            for raw in batch:
                                await self.take(raw, planner, send, key_from)
                    last = planner.flush()
                    if last:
                        await send.send(last)
        except BaseExceptionGroup as group:
            # One failure (say, the caller's generator raised): let it out as itself.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            # Cancelled or failed: give every record still held its truthful state.
            for item in self._in_flight.values():
                self.finish(self.untold(item, "unknown"))
            for item in self._pending.values():
                self.finish(self.untold(item, "not_sent"))
            self._in_flight.clear()
            self._pending.clear()
            self.progress()
        if failure:
            # The caller's source failed: every record it gave was still sent and accounted for.
            error = failure[0]
            error.add_note(
                f"bulk: the source of records raised after {self.pulled} records; those were"
                f" sent: {self.succeeded} succeeded, {self.failed} failed"
            )
            raise error

    async def take(
        self,
        raw: Any,
        planner: ChunkPlanner,
        send: MemoryObjectSendStream[list[_Item]],
        key_from: KeyFrom | None,
    ) -> None:
        """Prepare one record and plan it into a chunk; full chunks go to the workers."""
        index = self.pulled
        self.pulled += 1
        # A bulk instance hands in records it prepared at append time.
        item = raw if isinstance(raw, _Item) else self.preparer.prepare(index, raw, key_from)
        if isinstance(item, RecordOutcome):
            self.finish(item)
            return
        self._pending[item.index] = item
        for chunk in planner.add(item):
            await send.send(chunk)

    @staticmethod
    def untold(item: _Item, state: Any) -> RecordOutcome:
        return RecordOutcome(
            item.index,
            state,
            item.prepared.body,
            idempotency_key=item.prepared.idempotency_key,
            attempts=item.attempts,
        )

    async def worker(self, receive: ObjectReceiveStream[list[_Item]]) -> None:
        async with receive:
            async for chunk in receive:
                await self.send_chunk(chunk)

    async def send_chunk(self, chunk: list[_Item]) -> None:
        policy = self.client._settings.retry
        batch = chunk
        round_ = 0
        while batch:
            if self.rate is not None:
                await self.rate.acquire(len(batch))
            batch, records = await self.render(batch)
            if not batch:
                return
            content = b"[" + b", ".join(records) + b"]"
            answer, attempts = await self.client._send(
                self.endpoint, content, functools.partial(self.mark_sent, batch)
            )
            self.requests += 1
            for item in batch:
                item.attempts += attempts
            retry, retry_after = self.settle(batch, answer, final=round_ >= policy.max_retries)
            self.progress()
            if not retry:
                return
            round_ += 1
            if policy.retry_after_too_long(retry_after):
                # Too long to wait here: settle them with the 429 they got.
                self.settle(retry, answer, final=True, forced=True)
                return
            await anyio.sleep(policy.wait(round_, retry_after))
            batch = retry

    def mark_sent(self, batch: list[_Item]) -> None:
        """From the moment bytes may leave, a cancelled record's state is ``unknown``
        (perhaps processed), no longer ``not_sent``."""
        for item in batch:
            self._pending.pop(item.index, None)
            self._in_flight[item.index] = item

    async def render(self, batch: list[_Item]) -> tuple[list[_Item], list[bytes]]:
        """Each record's bytes, with inline attachments read (off the loop) and spliced in.

        A record whose attachment cannot be read any more fails alone.
        """
        if not any(item.prepared.placeholders is not None for item in batch):
            return batch, [item.prepared.content for item in batch]
        loaded = await self.blobs.ensure(
            blob
            for item in batch
            if item.prepared.placeholders is not None
            for blob in item.prepared.placeholders.blobs()
        )
        kept: list[_Item] = []
        records: list[bytes] = []
        for item in batch:
            placeholders = item.prepared.placeholders
            if placeholders is None:
                kept.append(item)
                records.append(item.prepared.content)
                continue
            try:
                records.append(placeholders.render(loaded))
            except AttachmentError as exc:
                self.done(item, "failed", None, None, str(exc), "validation")
                continue
            kept.append(item)
        return kept, records

    # -- classifying answers ------------------------------------------------------------

    def settle(
        self, batch: list[_Item], answer: _Answer, *, final: bool, forced: bool = False
    ) -> tuple[list[_Item], float | None]:
        """Give each record of an answered (or failed) request its outcome.

        Returns the records to retry on their own (transient per-record errors, while retries
        remain) and the longest Retry-After advised for them.
        """
        response = answer.response
        if forced:
            for item in batch:
                self.done(
                    item, "failed", 429, None, "rate limited (429); Retry-After too long", "http"
                )
            return [], None
        if response is None:
            for item in batch:
                self.done(item, "failed", None, None, answer.error, answer.error_type)
            return [], None
        code = response.status_code
        body = parse_body(response)
        if not response.is_success:
            message = error_message(body, code)
            for item in batch:
                self.done(item, "failed", code, None, message, "http")
            return [], None
        if self.legacy:
            # The legacy bulk endpoint answers for the request as a whole.
            for item in batch:
                self.done(item, "succeeded", code, None, None, None)
            return [], None
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or len(records) != len(batch):
            if not isinstance(body, dict):
                what = "was not a JSON object"
            elif not isinstance(records, list):
                what = "had no 'records' list"
            else:
                what = f"listed {len(records)} records for {len(batch)} sent"
            self.warn(
                f"a {code} answer {what}; its {len(batch)} records are counted as accepted"
                " on the request's success status"
            )
            for item in batch:
                self.done(item, "succeeded", code, None, None, None)
            return [], None
        retry: list[_Item] = []
        retry_after: float | None = None
        odd = sum(1 for rec in records if not isinstance(rec, dict))
        if odd:
            self.warn(
                f"{odd} entr{'y' if odd == 1 else 'ies'} of a {code} answer's records were not"
                " objects; counted as accepted on the request's success status"
            )
        count_only = self.on_outcome is None
        for item, rec in zip(batch, records, strict=True):
            if count_only and type(rec) is dict and rec.get("status") == "success":
                # The common case, once per record: no result tuple to build.
                self.done(item, "succeeded", 202, None, None, None)
                continue
            outcome = _record_result(rec, code)
            ok, rec_code, message_id, error = outcome
            if ok:
                self.done(item, "succeeded", rec_code, message_id, None, None)
            elif rec_code is not None and (rec_code == 429 or rec_code >= 500) and not final:
                retry.append(item)
                advised = answer.retry_after
                if rec_code == 429:
                    self.client.pause_all(advised)
                if advised is not None:
                    retry_after = max(retry_after or 0.0, advised)
            else:
                self.done(item, "failed", rec_code, None, error, "http")
        return retry, retry_after

    def done(
        self,
        item: _Item,
        state: Any,
        code: int | None,
        message_id: str | None,
        error: str | None,
        error_type: Any,
    ) -> None:
        self._in_flight.pop(item.index, None)
        self._pending.pop(item.index, None)
        if state == "succeeded" and self.on_outcome is None:
            self.succeeded += 1  # nobody asked for the outcome object: count it only
            return
        self.finish(
            RecordOutcome(
                item.index,
                state,
                item.prepared.body,
                status_code=code,
                message_id=message_id,
                error=error,
                error_type=error_type,
                idempotency_key=item.prepared.idempotency_key,
                attempts=item.attempts,
            )
        )


def _record_result(rec: Any, request_code: int) -> tuple[bool, int | None, str | None, str]:
    """``(ok, status_code, message_id, error)`` of one entry of a 207's ``records``."""
    if not isinstance(rec, dict):
        return True, request_code, None, ""
    code = rec.get("status_code")
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    status = rec.get("status")
    ok = status == "success" if status is not None else (code is not None and code < 300)
    if ok:
        mid = rec.get("message_id")
        return True, code or 202, mid if isinstance(mid, str) else None, ""
    if not any(rec.get(k) for k in ("error", "message", "detail", "msg")):
        return False, code, None, f"the service gave no reason (record status {status!r})"
    return False, code, None, error_message(rec, code or request_code)


def _display_record(raw: Any) -> Any:
    if isinstance(raw, _BaseRequest):
        raw = raw.body
    if isinstance(raw, BaseModel):
        return raw.model_dump(by_alias=True, exclude_none=True)
    return raw


async def _batches(
    source: Iterable[Any] | AsyncIterable[Any], tg: TaskGroup, failure: list[BaseException]
) -> AsyncGenerator[Sequence[Any], None]:
    """Records of ``source`` in batches, read lazily and with back-pressure.

    A sequence is in memory already and is walked in place. Any other sync iterable may hide
    I/O (a file, a database cursor), so a reader task pulls it in a worker thread, one batch
    ahead of the dispatcher: reading overlaps with preparing, and at most
    ``_READ_AHEAD`` batches wait at any time. If the source raises, what it gave before is
    still yielded (and so sent and accounted for) and the error goes into ``failure``.
    """
    if isinstance(source, Sequence):
        for start in range(0, len(source), _SOURCE_BATCH):
            yield source[start : start + _SOURCE_BATCH]
        return
    send, receive = anyio.create_memory_object_stream[Sequence[Any]](_READ_AHEAD)
    tg.start_soon(_read, source, send, failure)
    async with receive:
        async for batch in receive:
            yield batch


async def _read(
    source: Iterable[Any] | AsyncIterable[Any],
    send: MemoryObjectSendStream[Sequence[Any]],
    failure: list[BaseException],
) -> None:
    async with send:
        batch: list[Any] = []
        try:
            if isinstance(source, AsyncIterable):
                async for item in source:
                    batch.append(item)
                    if len(batch) >= _ASYNC_BATCH:
                        await send.send(batch)
                        batch = []
            else:
                iterator = iter(source)
                while True:
                    batch, error = await anyio.to_thread.run_sync(_take, iterator, _SOURCE_BATCH)
                    if error is not None:
                        raise error
                    if len(batch) < _SOURCE_BATCH:
                        break
                    await send.send(batch)
                    batch = []
        except Exception as exc:
            failure.append(exc)
        if batch:
            await send.send(batch)


def _take(iterator: Iterator[Any], n: int) -> tuple[list[Any], Exception | None]:
    """Up to ``n`` items, and the error that stopped the iterator early (if any)."""
    out: list[Any] = []
    try:
        for item in itertools.islice(iterator, n):
            out.append(item)
    except Exception as exc:
        return out, exc
    return out, None


class AsyncBulkWorkflowTrigger:
    """A bulk of records built with ``append`` and sent with ``await trigger()``.

    ``append`` validates and serialises each record at once: later edits to the caller's
    objects change nothing, and an invalid record is kept as a failed outcome (it does not
    raise). ``trigger()`` sends every record not yet sent; called again with nothing new it
    sends nothing and returns the same account. After a cancelled ``trigger()`` the
    instance keeps a truthful per-record account (``outcomes``), and calling ``trigger()``
    again sends only the records that were never sent.
    """

    def __init__(self, client: AsyncSuprsend, *, legacy: bool) -> None:
        self._client = client
        self._legacy = legacy
        self._outcomes: list[RecordOutcome] = []
        self._unsent: list[_Item] = []
        self._warnings: list[str] = []
        self._requests = 0
        self._lock = anyio.Lock()
        self._append_lock = threading.Lock()
        self._preparer = _Preparer(client, legacy, self._warnings)

    def append(self, *requests: Any) -> None:
        """Add records (requests, models or plain dicts); invalid ones become failed outcomes.

        Safe to call from several threads (the sync facade) and while ``trigger()`` runs: such
        records are sent by the next ``trigger()``.
        """
        for raw in requests:
            with self._append_lock:  # an index and its slot are taken together
                index = len(self._outcomes)
                item = self._preparer.prepare(index, raw, None)
                if isinstance(item, RecordOutcome):
                    self._outcomes.append(item)
                else:
                    self._outcomes.append(_Run.untold(item, "not_sent"))
                    self._unsent.append(item)

    def __len__(self) -> int:
        return len(self._outcomes)

    @property
    def outcomes(self) -> list[RecordOutcome]:
        """Each appended record's outcome so far, in append order."""
        return list(self._outcomes)

    async def trigger(
        self,
        *,
        concurrency: int | None = None,
        max_records_per_second: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> BulkResponse:
        """Send every record not sent yet, concurrently, and return the account of all records.

        ``concurrency`` bounds requests in flight (default :data:`DEFAULT_CONCURRENCY`);
        ``max_records_per_second`` caps the sending rate; ``on_progress`` is called with a
        :class:`BulkProgress` after each request.
        """
        async with self._lock:
            # Built first: a bad argument must not cost the records their place in the queue.
            run = _Run(
                self._client,
                self._legacy,
                concurrency=concurrency,
                max_records_per_second=max_records_per_second,
                on_outcome=self._store,
                on_progress=on_progress,
                total=None,
                keep_failed_records=False,
            )
            with self._append_lock:
                batch, self._unsent = self._unsent, []
            if batch:
                run.total = len(batch)
                try:
                    await run.run(batch, None)
                finally:
                    self._warnings.extend(run.warnings)
                    self._requests += run.requests
                    # Records never handed to the network may be sent by a later trigger(),
                    # ahead of any appended while this one ran.
                    leftover = [
                        item for item in batch if self._outcomes[item.index].state == "not_sent"
                    ]
                    with self._append_lock:
                        self._unsent = leftover + self._unsent
            return self.result()

    def _store(self, outcome: RecordOutcome) -> None:
        self._outcomes[outcome.index] = outcome

    def result(self) -> BulkResponse:
        """The account of every appended record as it stands now."""
        outcomes = list(self._outcomes)
        success = sum(1 for o in outcomes if o.state == "succeeded")
        failed = [FailedRecord.from_outcome(o) for o in outcomes if o.state != "succeeded"]
        return BulkResponse(
            status=BulkResponse.status_for(len(outcomes), success),
            total=len(outcomes),
            success=success,
            failure=len(outcomes) - success,
            failed_records=failed,
            warnings=list(self._warnings),
            outcomes=outcomes,
            not_sent=sum(1 for o in outcomes if o.state == "not_sent"),
            unknown=sum(1 for o in outcomes if o.state == "unknown"),
            requests=self._requests,
        )


class AsyncWorkflows:
    """``client.workflows``: trigger one workflow, or many in bulk."""

    def __init__(self, client: AsyncSuprsend) -> None:
        self._client = client

    async def trigger(self, request: WorkflowTriggerRequest | Mapping[str, Any]) -> TriggerResponse:
        """Trigger one workflow (``POST trigger/``).

        Raises :class:`SuprsendValidationError` for an invalid body, before sending. A failed
        call comes back as a result with ``success=False``; ``.raise_for_status()`` raises.
        """
        if not isinstance(request, WorkflowTriggerRequest):
            request = WorkflowTriggerRequest(request)
        client = self._client
        prepared = request.prepare(auto_idempotency_key=client._settings.auto_idempotency_keys)
        return await client._trigger_one(client._trigger_endpoint, prepared)

    def bulk_trigger_instance(self) -> AsyncBulkWorkflowTrigger:
        """A bulk instance: ``append(*requests)`` then ``await trigger()``."""
        return AsyncBulkWorkflowTrigger(self._client, legacy=False)

    async def bulk_trigger(
        self,
        records: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int | None = None,
        max_records_per_second: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        idempotency_key_from: KeyFrom | None = None,
        keep_failed_records: bool = True,
    ) -> BulkResponse:
        """Stream any number of records through concurrent bulk requests, in bounded memory.

        ``records`` is any iterable or async iterable of :class:`WorkflowTriggerRequest`, body
        models or plain dicts; it is read lazily, only as fast as requests go out. Each record's
        outcome is passed to ``on_outcome`` as it is known (outcomes are not kept, so a million
        records take no more memory than a hundred); the returned summary has the counts and
        the failed records (``keep_failed_records=False`` drops those too).

        ``idempotency_key_from`` derives each record's idempotency key from a field of its body
        (a dotted path such as ``"data.order_id"``) or a function of the body, so running a
        crashed job again sends nothing twice. ``max_records_per_second`` keeps a long job
        under the workspace's rate limit (a bulk request counts as one call per record).
        """
        return await _stream(
            self._client,
            False,
            records,
            concurrency=concurrency,
            max_records_per_second=max_records_per_second,
            on_progress=on_progress,
            on_outcome=on_outcome,
            idempotency_key_from=idempotency_key_from,
            keep_failed_records=keep_failed_records,
        )


class AsyncBulkWorkflows:
    """``client.bulk_workflows``: legacy bulk triggers of :class:`Workflow` records."""

    def __init__(self, client: AsyncSuprsend) -> None:
        self._client = client

    def new_instance(self) -> AsyncBulkWorkflowTrigger:
        """A legacy bulk instance: ``append(*workflows)`` then ``await trigger()``."""
        return AsyncBulkWorkflowTrigger(self._client, legacy=True)

    async def bulk_trigger(
        self,
        records: Iterable[Any] | AsyncIterable[Any],
        *,
        concurrency: int | None = None,
        max_records_per_second: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_outcome: OutcomeCallback | None = None,
        idempotency_key_from: KeyFrom | None = None,
        keep_failed_records: bool = True,
    ) -> BulkResponse:
        """Stream legacy :class:`Workflow` records; see ``AsyncWorkflows.bulk_trigger``."""
        return await _stream(
            self._client,
            True,
            records,
            concurrency=concurrency,
            max_records_per_second=max_records_per_second,
            on_progress=on_progress,
            on_outcome=on_outcome,
            idempotency_key_from=idempotency_key_from,
            keep_failed_records=keep_failed_records,
        )


async def _stream(
    client: AsyncSuprsend,
    legacy: bool,
    records: Iterable[Any] | AsyncIterable[Any],
    *,
    idempotency_key_from: KeyFrom | None,
    **options: Any,
) -> BulkResponse:
    total = len(records) if isinstance(records, Sequence) else None
    run = _Run(client, legacy, total=total, **options)
    await run.run(records, idempotency_key_from)
    return run.summary()
