"""The dispatcher: reads the caller's records, prepares and plans them, runs the workers.

Records flow: source -> reader (a worker thread for a sync iterable, ahead of the dispatcher)
-> prepare (validate + serialise, once) -> chunk planner -> bounded channel -> N workers ->
one attempt at a time through the `Sender`, retried by the one
retry loop -> verdicts (``_classify``) -> the ledger (``_ledger``), which alone keeps the
account. Memory is bounded: the source is pulled only as fast as workers take chunks.

When the run stops early (cancelled, or the caller's source raised), the records that were
read but not yet prepared are reported ``not_sent``, and the ledger gives every live record
its final state, so every record taken from the source is accounted for exactly once.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import (
    AsyncIterable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import Any

import anyio
from anyio.abc import ObjectReceiveStream
from anyio.streams.memory import MemoryObjectSendStream
from pydantic import BaseModel

from .._attachments import INLINE_LIMIT, AttachmentError, BlobCache
from .._bulk_results import RecordOutcome
from .._core import Call, Payload, PerCall, Sender
from .._edits import UserEdit
from .._errors import SuprsendValidationError
from .._identity import edit_view, identity_request
from .._prepared import prepare_plain
from .._requests import (
    CLASSES,
    Event,
    Workflow,
    WorkflowTriggerRequest,
    _BaseRequest,
    request_of,
)
from .._retry import RetryAdvice, RetryEvent, retry_loop
from .._types import NOT_GIVEN, NotGiven, RequestKind
from ._classify import classify
from ._ledger import Ledger, OutcomeCallback, ProgressCallback
from ._plan import ChunkPlanner, Item, planner_for

__all__ = [
    "ASYNC_BATCH",
    "DEFAULT_CONCURRENCY",
    "READ_AHEAD",
    "SOURCE_BATCH",
    "KeyFrom",
    "Preparer",
    "Run",
    "display_record",
    "lookup",
]

DEFAULT_CONCURRENCY = 16
"""Bulk requests in flight at once, by default (each holds up to 100 records)."""

SOURCE_BATCH = 256  # records pulled from a sync iterator per trip to a worker thread
ASYNC_BATCH = 64  # records of an async source handed over at once
READ_AHEAD = 2  # batches read but not yet taken by the dispatcher

KeyFrom = str | Callable[[Mapping[str, Any]], Any]


# A plain dict record becomes its kind's request directly (request_of's path, inlined).
_FROM_DICT: dict[RequestKind, Callable[[dict[str, Any]], _BaseRequest]] = {
    "trigger": WorkflowTriggerRequest,
    "legacy": Workflow,
    "event": Event.from_dict,
}


class RateLimiter:
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


def lookup(body: Any, path: str) -> Any:
    """The value at a dotted ``path`` in a record (mappings and models); ``KeyError`` if absent."""
    value = body
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, BaseModel) and hasattr(value, part):
            value = getattr(value, part)
        else:
            raise KeyError(path)
    return value


class Preparer:
    """Turns whatever the caller gave into a validated, serialised record (or its failure).

    Shared by streaming runs and bulk instances (which prepare at ``append``); attachment
    warnings go to the ``warnings`` list it is given, once per file.
    """

    def __init__(
        self, auto_keys: bool, kind: RequestKind, warnings: list[str], env: str = ""
    ) -> None:
        self.kind = kind
        self.env = env
        self.auto_keys = auto_keys
        self.warnings = warnings
        self._warned: set[tuple[str, int]] = set()
        # Plain dict bodies of the kinds with a quick way (``prepare_plain``): their model.
        self.model = CLASSES[kind]._model if kind in ("trigger", "legacy") else None

    def as_request(self, raw: Any) -> _BaseRequest:
        if type(raw) is dict and self.kind in _FROM_DICT:
            return _FROM_DICT[self.kind](raw)  # the common case, without the checks' calls
        if self.kind == "identity":
            return identity_request(raw)
        return request_of(raw, CLASSES[self.kind], bulk=True)

    def prepare(self, index: int, raw: Any, key_from: KeyFrom | None) -> Item | RecordOutcome:
        """Validate and serialise one record; a bad one becomes its failed outcome."""
        if self.model is not None and key_from is None and type(raw) is dict:
            quick = prepare_plain(self.kind, self.model, raw, self.auto_keys)
            if quick is not None:
                return Item(index, quick)
        try:
            request = self.as_request(raw)
            fallback = self.derive_key(request, key_from) if key_from is not None else None
            prepared = request.prepare(
                auto_idempotency_key=self.auto_keys, fallback_key=fallback, env=self.env
            )
        except SuprsendValidationError as exc:
            error = exc.short_message
        except Exception as exc:  # the caller's odd object (a Mapping that raises...): its own
            error = f"could not be prepared: {type(exc).__name__}: {exc}"
        else:
            error = ""
        if error:
            return RecordOutcome(
                index, "failed", display_record(raw), 400, None, error, "validation"
            )
        if prepared.placeholders is None:
            return Item(index, prepared)
        for name, size in prepared.inline_attachments():
            if size > INLINE_LIMIT and (name, size) not in self._warned:
                self._warned.add((name, size))
                self.warnings.append(
                    f"attachment {name!r} is {size:,} bytes, over the service's inline limit of"
                    f" about {INLINE_LIMIT // 1024} KB; consider sending it as a URL"
                )
        return Item(index, prepared)

    @staticmethod
    def derive_key(request: _BaseRequest, key_from: KeyFrom) -> str | None:
        body = request.body
        if not callable(key_from):
            try:
                value = lookup(body, key_from)
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


def display_record(raw: Any) -> Any:
    """A record refused before sending, as the caller gave it (models as their dicts)."""
    if isinstance(raw, _BaseRequest):
        raw = raw.body
    if isinstance(raw, UserEdit):
        return edit_view(raw)
    if isinstance(raw, BaseModel):
        return raw.model_dump(by_alias=True, exclude_none=True)
    return raw


class _Reader:
    """Reads a source that is not a sequence, ahead of the dispatcher, in batches.

    A sync iterable may block (a file, a database cursor), so it is read in a worker thread,
    which a cancelled run does not wait for: the thread stops before its next read. Whatever
    was read and not handed over is kept in ``leftovers`` for the account.
    """

    def __init__(self, source: Iterable[Any] | AsyncIterable[Any]) -> None:
        self.source = source
        self.send, self.receive = anyio.create_memory_object_stream[list[Any]](READ_AHEAD)
        self.error: Exception | None = None
        self._lock = threading.Lock()
        self._partial: list[Any] = []  # read by the thread, not yet handed over
        self._stopped = False

    async def run(self) -> None:
        async with self.send:
            try:
                if isinstance(self.source, AsyncIterable):
                    await self._read_async(self.source)
                else:
                    await self._read_sync(iter(self.source))
            except Exception as exc:
                self.error = exc
            await self._hand_over()

    async def _hand_over(self) -> None:
        with self._lock:
            batch, self._partial = self._partial, []
        if batch:
            try:
                await self.send.send(batch)
            except BaseException:
                with self._lock:
                    self._partial[:0] = batch
                raise

    async def _read_async(self, source: AsyncIterable[Any]) -> None:
        async for record in source:
            self._partial.append(record)
            if len(self._partial) >= ASYNC_BATCH:
                await self._hand_over()

    async def _read_sync(self, iterator: Iterator[Any]) -> None:
        while True:
            done = await anyio.to_thread.run_sync(
                self._take, iterator, SOURCE_BATCH, abandon_on_cancel=True
            )
            if done:
                return
            await self._hand_over()

    def _take(self, iterator: Iterator[Any], n: int) -> bool:
        """Read up to ``n`` records into ``_partial`` (in a worker thread); True at the end."""
        for _ in range(n):
            if self._stopped:
                return True
            try:
                record = next(iterator)
            except StopIteration:
                return True
            except Exception as exc:  # the caller's source failed: what it gave still counts
                self.error = exc
                return True
            with self._lock:
                if self._stopped:
                    return True  # read after the run ended: it was never taken
                self._partial.append(record)
        return False

    def leftovers(self) -> list[Any]:
        """Stop reading; every record read and not taken by the dispatcher, in order."""
        with self._lock:
            self._stopped = True
            partial, self._partial = self._partial, []
        out: list[Any] = []
        while True:
            try:
                out.extend(self.receive.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                break
        self.receive.close()
        return out + partial


class Run:
    """One bulk dispatch: reads, prepares and plans records, runs the workers."""

    def __init__(
        self,
        sender: Sender,
        kind: RequestKind,
        *,
        concurrency: int | None,
        max_records_per_second: float | None,
        on_outcome: OutcomeCallback | None,
        on_progress: ProgressCallback | None,
        total: int | None,
        keep_failed_records: bool = True,
        per_call: PerCall | None = None,
        reached: set[int] | None = None,
    ) -> None:
        concurrency = DEFAULT_CONCURRENCY if concurrency is None else concurrency
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.sender = sender
        self.kind = kind
        self.per_call = per_call
        core = sender.core
        self.endpoint = core.bulk_endpoints[kind]
        self.policy = core.settings.retry
        self.concurrency = concurrency
        self.rate = RateLimiter(max_records_per_second) if max_records_per_second else None
        self.ledger = Ledger(
            on_outcome=on_outcome,
            on_progress=on_progress,
            total=total,
            keep_failed=keep_failed_records,
            reached=reached,
        )
        # Outcomes of accepted records are built only when someone reads them.
        self.details = on_outcome is not None
        self.preparer = Preparer(
            core.settings.auto_idempotency_keys, kind, self.ledger.warnings, core.env
        )
        self.blobs = BlobCache()
        self.pulled = 0
        self.batch: Sequence[Any] = ()  # the records being planned, and how far that got
        self.position = 0

    # -- reading and planning ---------------------------------------------------------------

    async def run(
        self,
        source: Iterable[Any] | AsyncIterable[Any],
        key_from: KeyFrom | None,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> None:
        """Dispatch every record of ``source``; returns when each one has its outcome.

        Past ``deadline`` the run stops as if cancelled and says so in ``warnings``; when the
        client is closed meanwhile it raises `SuprsendError` once the account is settled.
        """
        ledger = self.ledger
        with self.sender.observer.call("suprsend.bulk", {"suprsend.kind": self.kind}) as ending:
            try:
                with self.sender.operation(deadline) as scope:
                    await self._run(source, key_from)
            finally:
                counts = {
                    "succeeded": ledger.succeeded,
                    "failed": ledger.failed - ledger.not_sent - ledger.unknown,
                    "not_sent": ledger.not_sent,
                    "unknown": ledger.unknown,
                }
                ending.update({f"suprsend.records.{k}": v for k, v in counts.items()})
                ending["suprsend.records.total"] = ledger.succeeded + ledger.failed
                ending["suprsend.requests"] = ledger.requests
                self.sender.observer.outcomes(self.kind, counts)
        if scope.cancelled_caught:
            self.ledger.warn(
                "the call's deadline passed: records not sent yet are not_sent, and those in"
                " flight unknown"
            )

    async def _run(
        self, source: Iterable[Any] | AsyncIterable[Any], key_from: KeyFrom | None
    ) -> None:
        send, receive = anyio.create_memory_object_stream[list[Item]](
            max_buffer_size=self.concurrency
        )
        reader = None if isinstance(source, Sequence) else _Reader(source)
        planner = planner_for(self.kind)
        self.batch, self.position = (), 0
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.concurrency):
                    tg.start_soon(self.worker, receive.clone())
                receive.close()
                async with send:
                    if reader is None:
                        assert isinstance(source, Sequence)
                        await self.plan_batch(source, planner, send, key_from)
                    else:
                        tg.start_soon(reader.run)
                        # Not closed here: what it still holds is counted when the run ends.
                        async for batch in reader.receive:
                            await self.plan_batch(batch, planner, send, key_from)
                    last = planner.flush()
                    if last:
                        await self.hand_over([last], send)
        except BaseExceptionGroup as group:
            # One failure (say, a closed client): let it out as itself.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            # Done, cancelled or failed: records read but not prepared, and those prepared
            # but still in the chunk being filled, were never sent; and the ledger gives
            # every live record its truthful state.
            unread: list[Any] = planner.flush() or []
            unread += self.batch[self.position :]
            if reader is not None:
                unread += reader.leftovers()
            self.never_sent(unread)
            self.ledger.close()
        error = reader.error if reader is not None else None
        if error is not None:
            # The caller's source failed: every record it gave was still sent and accounted for.
            ledger = self.ledger
            error.add_note(
                f"bulk: the source of records raised after {self.pulled} records; those were"
                f" sent: {ledger.succeeded} succeeded, {ledger.failed} failed"
            )
            raise error

    def never_sent(self, records: list[Any]) -> None:
        """Account records that were taken from the source but never prepared."""
        for raw in records:
            if isinstance(raw, Item):
                self.ledger.admit(raw)  # closing the ledger settles it as not sent
                continue
            self.ledger.settle_now(RecordOutcome(self.pulled, "not_sent", display_record(raw)))
            self.pulled += 1

    async def plan_batch(
        self,
        batch: Sequence[Any],
        planner: ChunkPlanner,
        send: MemoryObjectSendStream[list[Item]],
        key_from: KeyFrom | None,
    ) -> None:
        """Plan each record of ``batch``; ``position`` says how far it got (an early end
        counts the rest as never sent)."""
        self.batch, self.position = batch, 0
        while self.position < len(batch):
            self.position += 1
            chunks = self.plan(batch[self.position - 1], planner, key_from)
            if chunks:
                await self.hand_over(chunks, send)

    def plan(
        self, raw: Any, planner: ChunkPlanner, key_from: KeyFrom | None
    ) -> Sequence[list[Item]]:
        """Prepare one record and plan it into a chunk: the chunks it completed (usually
        none). Synchronous: the loop over the records awaits only to hand a chunk over."""
        if type(raw) is Item:  # a bulk instance hands in records prepared at append
            return planner.add(raw)
        item = self.preparer.prepare(self.pulled, raw, key_from)
        self.pulled += 1
        if type(item) is RecordOutcome:
            self.ledger.settle_now(item)
            return ()
        return planner.add(item)  # type: ignore[arg-type]  # an Item: the other case

    async def hand_over(
        self, chunks: Sequence[list[Item]], send: MemoryObjectSendStream[list[Item]]
    ) -> None:
        """Full chunks to the workers. The ledger takes records a chunk at a time, as the
        planner closes them (until then the planner holds them, and an early end counts them
        from there); all of them first, so a cancelled send loses none."""
        for chunk in chunks:
            self.ledger.admit_chunk(chunk)
        for chunk in chunks:
            await send.send(chunk)

    # -- sending ----------------------------------------------------------------------------

    async def worker(self, receive: ObjectReceiveStream[list[Item]]) -> None:
        async with receive:
            async for chunk in receive:
                await self.send_chunk(chunk)

    async def send_chunk(self, chunk: list[Item]) -> None:
        """Send one chunk; records refused transiently are retried on their own, with the
        same keys, by the one retry loop. When it stops, each keeps its last verdict."""
        pending = chunk
        ledger = self.ledger
        call = Call(self.kind, bulk=True, records=len(chunk), per_call=self.per_call)
        observer = self.sender.observer

        async def one_round() -> RetryAdvice | None:
            nonlocal pending
            if self.rate is not None:
                await self.rate.acquire(len(pending))
            batch, payload = await self.render(pending)
            if not batch:
                pending = []
                return None
            call.records = len(batch)
            answer = await self.sender.attempt(
                self.endpoint, payload, functools.partial(ledger.writing, batch), call
            )
            # The legacy trigger and identity endpoints answer for a request as a whole.
            whole = self.kind in ("legacy", "identity")
            classified = classify(answer, len(batch), legacy=whole, details=self.details)
            pending = ledger.answered(batch, classified)
            if observer.hooks.on_bulk_progress is not None:
                await observer.bulk_progress(ledger.snapshot())
            if not pending:
                return None
            again = [v for v in classified.verdicts if v.kind in ("retry", "lost")]
            if answer.status_code != 429 and any(v.status_code == 429 for v in again):
                # Records refused with 429 inside an accepted answer: hold the client too.
                self.sender.pause(classified.retry_after)
            first = again[0]
            reason = str(first.status_code) if first.status_code else first.error_type
            return RetryAdvice(reason or "connection", classified.retry_after)

        async def retried(event: RetryEvent) -> None:
            await self.sender.retried(event, call)

        await retry_loop(one_round, _same, self.policy, on_retry=retried, deadline_at=_deadline)
        if pending:
            ledger.give_up(pending)

    async def render(self, batch: list[Item]) -> tuple[list[Item], Payload]:
        """The request body, with inline attachments read (off the loop) and spliced in.

        A record whose attachment cannot be read any more fails alone.
        """
        if not any(item.prepared.placeholders is not None for item in batch):
            return batch, _join([item.prepared.content for item in batch])
        loaded = await self.blobs.ensure(
            (
                blob
                for item in batch
                if item.prepared.placeholders is not None
                for blob in item.prepared.placeholders.blobs()
            ),
            read_timeout=self.sender.core.settings.read_limit,
        )
        kept: list[Item] = []
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
                self.ledger.fail(item, str(exc), "validation")
                continue
            kept.append(item)
        return kept, _join(records)


def _same(advice: RetryAdvice | None) -> RetryAdvice | None:
    return advice


def _deadline() -> float | None:
    """When the calling scopes run out (asked only when a retry is in question)."""
    deadline = anyio.current_effective_deadline()
    return deadline if deadline != math.inf else None


def _join(records: list[bytes]) -> Payload:
    return Payload(b"[" + b", ".join(records) + b"]")
