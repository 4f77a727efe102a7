"""Adding and removing any number of list members: chunked, concurrent, every id accounted for.

The official SDK sends a list's ``distinct_ids`` in one request. Here ids come from any
iterable or async iterable, are read lazily (a sync iterable in a worker thread, as bulk
triggers read theirs), cut into requests of at most `MAX_IDS_PER_REQUEST` ids, and sent
``concurrency`` requests at a time through the client's one retry loop.

The account keeps the bulk engine's rule (``docs/behaviour.md``, "The account of a bulk"):
every id taken from the source ends exactly once as

* ``succeeded``: the request carrying it was answered 2xx;
* ``failed``: refused (a 4xx, or 429/5xx once retries are spent), or not a valid id;
* ``not_sent``: it never started going out (read ahead, queued, waiting for a back-off);
* ``unknown``: the request carrying it started going out and no answer came back.

Adding or removing the same ids twice leaves a list as once, so a chunk whose answer was lost
is simply sent again by the retry loop, and ``unknown`` ids are safe to send again.

Memory stays flat: only the chunks in flight are held (``concurrency`` of them, plus as many
queued), and succeeded ids are counted, not kept, unless ``on_outcome`` asks for them.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import anyio
from anyio.abc import ObjectReceiveStream
from anyio.streams.memory import MemoryObjectSendStream

from .._bulk._dispatch import _Reader
from .._bulk._ledger import OutcomeCallback, ProgressCallback
from .._bulk_results import BulkProgress, BulkResponse, FailedRecord, RecordOutcome, RecordState
from .._core import Answer, Call, Endpoint, Payload, PerCall, Sender
from .._responses import ErrorType, error_message, parse_body
from .._retry import RetryAdvice, RetryEvent, is_transient, retry_loop
from .._types import NotGiven

__all__ = ["DEFAULT_MEMBER_CONCURRENCY", "MAX_IDS_PER_REQUEST", "MemberRun", "id_problem"]

MAX_IDS_PER_REQUEST: Final = 10_000
"""The most ``distinct_ids`` one add or remove request carries (SuprSend's documented limit
per call; see ``docs/protocol.md``, "Subscriber lists")."""

DEFAULT_MEMBER_CONCURRENCY: Final = 8
"""Member requests in flight at once, by default (each holds up to 10,000 ids)."""

_SENT_NO_ANSWER = "sent, but the call stopped before the answer arrived"


def id_problem(value: Any) -> str | None:
    """Why ``value`` is not a distinct_id that can be sent, or ``None``."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    if not value.strip():
        return "must be a non-empty string"
    return None


@dataclass(slots=True)
class _Chunk:
    """One request's worth of ids: their positions in the input, and where it stands."""

    number: int
    indices: list[int]
    ids: list[str]
    state: Literal["queued", "writing"] = "queued"
    reached: bool = False  # a request carrying it got no answer after it went out
    attempts: int = 0
    last: tuple[int | None, str, ErrorType | None] | None = None


@dataclass(slots=True)
class _Account:
    """Counts, failed ids and the callbacks: the only builder of a member call's result."""

    on_outcome: OutcomeCallback | None
    on_progress: ProgressCallback | None
    total: int | None
    keep_failed: bool
    succeeded: int = 0
    failed: int = 0
    not_sent: int = 0
    unknown: int = 0
    requests: int = 0
    failed_records: list[FailedRecord] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def settle(
        self,
        indices: Sequence[int],
        ids: Sequence[str],
        state: RecordState,
        last: tuple[int | None, str, ErrorType | None] | None = None,
        attempts: int = 0,
    ) -> None:
        code, error, error_type = last if last is not None else (None, None, None)
        if state == "succeeded" and self.on_outcome is None:
            self.succeeded += len(ids)
            return
        for index, distinct_id in zip(indices, ids, strict=True):
            outcome = RecordOutcome(
                index, state, distinct_id, code, None, error or None, error_type, None, attempts
            )
            self.count(outcome)

    def count(self, outcome: RecordOutcome) -> None:
        state = outcome.state
        if state == "succeeded":
            self.succeeded += 1
        else:
            self.failed += 1
            self.not_sent += state == "not_sent"
            self.unknown += state == "unknown"
            if self.keep_failed:
                self.failed_records.append(FailedRecord.from_outcome(outcome))
        if self.on_outcome is not None:
            self._call(self.on_outcome, outcome)

    def progress(self) -> None:
        if self.on_progress is not None:
            snapshot = BulkProgress.of(
                self.total,
                succeeded=self.succeeded,
                not_succeeded=self.failed,
                not_sent=self.not_sent,
                unknown=self.unknown,
                requests=self.requests,
            )
            self._call(self.on_progress, snapshot)

    def _call(self, callback: Callable[[Any], Any], value: Any) -> None:
        try:
            callback(value)
        except Exception as exc:  # the caller's callback must not break the account
            if not any(w.startswith("callback") for w in self.warnings):
                self.warnings.append(f"callback raised {type(exc).__name__}: {exc}")

    def response(self) -> BulkResponse:
        self.failed_records.sort(key=lambda f: f.index)
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


class MemberRun:
    """One chunked add or remove: reads ids, cuts them into requests, runs the workers.

    ``done_chunks``: chunk numbers an earlier run already settled (a resumed replace): their
    ids are counted as succeeded without being sent. ``on_chunk``: called with a chunk's number
    when it succeeds, for a journal.
    """

    def __init__(
        self,
        sender: Sender,
        endpoint: Endpoint,
        *,
        concurrency: int | None = None,
        chunk_size: int = MAX_IDS_PER_REQUEST,
        on_outcome: OutcomeCallback | None = None,
        on_progress: ProgressCallback | None = None,
        total: int | None = None,
        keep_failed: bool = True,
        per_call: PerCall | None = None,
        done_chunks: Callable[[int], bool] | None = None,
        on_chunk: Callable[[int], None] | None = None,
    ) -> None:
        concurrency = DEFAULT_MEMBER_CONCURRENCY if concurrency is None else concurrency
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if not 1 <= chunk_size <= MAX_IDS_PER_REQUEST:
            raise ValueError(f"chunk_size must be from 1 to {MAX_IDS_PER_REQUEST:,}")
        self.sender = sender
        self.endpoint = endpoint
        self.concurrency = concurrency
        self.chunk_size = chunk_size
        self.per_call = per_call
        self.account = _Account(on_outcome, on_progress, total, keep_failed)
        self.done_chunks = done_chunks
        self.on_chunk = on_chunk
        self._live: dict[int, _Chunk] = {}
        self._position = 0  # ids taken from the source so far
        self._filling = _Chunk(0, [], [])
        self._taken_in_chunk = 0

    async def run(
        self, source: Iterable[Any] | AsyncIterable[Any], deadline: float | NotGiven | None
    ) -> BulkResponse:
        """Send every id of ``source``; returns when each has its outcome.

        Cancelled (or past ``deadline``), it stops promptly and the account is final when the
        cancellation reaches the caller.
        """
        with self.sender.operation(deadline) as scope:
            await self._run(source)
        if scope.cancelled_caught:
            self.account.warnings.append(
                "the call's deadline passed: ids not sent yet are not_sent, those in flight unknown"
            )
        return self.account.response()

    async def _run(self, source: Iterable[Any] | AsyncIterable[Any]) -> None:
        send, receive = anyio.create_memory_object_stream[_Chunk](self.concurrency)
        reader = None if isinstance(source, Sequence) else _Reader(source)
        batch: Sequence[Any] = ()
        at = 0
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.concurrency):
                    tg.start_soon(self._worker, receive.clone())
                receive.close()
                async with send:
                    if reader is None:
                        assert isinstance(source, Sequence)
                        batch = source
                        while at < len(batch):
                            at += 1
                            await self._take(batch[at - 1], send)
                    else:
                        tg.start_soon(reader.run)
                        async for batch in reader.receive:
                            at = 0
                            while at < len(batch):
                                at += 1
                                await self._take(batch[at - 1], send)
                    await self._ship(send)
        except BaseExceptionGroup as group:
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
        finally:
            unread = list(batch[at:]) + (reader.leftovers() if reader is not None else [])
            self._close(unread)
        if reader is not None and reader.error is not None:
            error = reader.error
            error.add_note(
                f"list members: the source of ids raised after {self._position} ids; those"
                f" were sent: {self.account.succeeded} succeeded, {self.account.failed} failed"
            )
            raise error

    async def _take(self, raw: Any, send: MemoryObjectSendStream[_Chunk]) -> None:
        """One id from the source: into the chunk being filled (or failed, if invalid)."""
        index = self._position
        self._position += 1
        self._taken_in_chunk += 1
        problem = id_problem(raw)
        if problem is not None:
            error = f"distinct_ids[{index}]: {problem}"
            self.account.count(RecordOutcome(index, "failed", raw, 400, None, error, "validation"))
        else:
            self._filling.indices.append(index)
            self._filling.ids.append(raw)
        # Chunks are cut by position in the input, so a rerun over the same input cuts the same.
        if self._taken_in_chunk >= self.chunk_size:
            await self._ship(send)

    async def _ship(self, send: MemoryObjectSendStream[_Chunk]) -> None:
        chunk = self._filling
        self._filling = _Chunk(chunk.number + 1, [], [])
        self._taken_in_chunk = 0
        if not chunk.ids:
            return
        if self.done_chunks is not None and self.done_chunks(chunk.number):
            self.account.settle(chunk.indices, chunk.ids, "succeeded")
            self.account.progress()
            return
        self._live[chunk.number] = chunk
        await send.send(chunk)

    def _close(self, unread: list[Any]) -> None:
        """The run is over: every id taken and not final gets its truthful state."""
        account = self.account
        pending = self._filling
        for raw in unread:
            account.count(RecordOutcome(self._position, "not_sent", raw))
            self._position += 1
        account.settle(pending.indices, pending.ids, "not_sent")
        self._filling = _Chunk(pending.number + 1, [], [])
        live, self._live = self._live, {}
        for chunk in live.values():
            if chunk.state == "writing" or chunk.reached:
                error_type = chunk.last[2] if chunk.last else None
                last = (None, f"unknown: {_SENT_NO_ANSWER}", error_type)
                account.settle(chunk.indices, chunk.ids, "unknown", last, chunk.attempts)
            else:
                account.settle(chunk.indices, chunk.ids, "not_sent", None, chunk.attempts)
        account.progress()

    # -- sending ------------------------------------------------------------------------------

    async def _worker(self, receive: ObjectReceiveStream[_Chunk]) -> None:
        async with receive:
            async for chunk in receive:
                await self._send_chunk(chunk)

    async def _send_chunk(self, chunk: _Chunk) -> None:
        """Send one chunk until it is answered, refused for good, or retries are spent."""
        sender = self.sender
        payload = Payload(_body(chunk.ids))
        call = Call("api", bulk=True, records=len(chunk.ids), per_call=self.per_call)

        def writing() -> None:
            chunk.state = "writing"

        async def attempt() -> Answer:
            answer = await sender.attempt(self.endpoint, payload, writing, call)
            chunk.attempts += 1
            self.account.requests += 1
            if answer.response is None and chunk.state == "writing":
                chunk.reached = True  # it went out and no answer came: it may have landed
            chunk.state = "queued"
            return answer

        async def retried(event: RetryEvent) -> None:
            await sender.retried(event, call)

        deadline = anyio.current_effective_deadline()
        answer, _ = await retry_loop(
            attempt,
            _advice,
            sender.core.settings.retry,
            on_retry=retried,
            deadline_at=deadline if deadline != math.inf else None,
        )
        self._settle(chunk, answer)

    def _settle(self, chunk: _Chunk, answer: Answer) -> None:
        del self._live[chunk.number]
        response = answer.response
        account = self.account
        if response is not None and response.is_success:
            account.settle(chunk.indices, chunk.ids, "succeeded", (response.status_code, "", None))
            if self.on_chunk is not None:
                self.on_chunk(chunk.number)
        elif response is None:
            state: RecordState = "unknown" if chunk.reached else "failed"
            last = (None, answer.error, answer.error_type)
            account.settle(chunk.indices, chunk.ids, state, last, chunk.attempts)
        else:
            code = response.status_code
            error = error_message(parse_body(response), code)
            # A refusal speaks for this attempt; an earlier one may have landed (still unknown).
            state = "unknown" if chunk.reached else "failed"
            if state == "unknown":
                error = f"unknown: an earlier attempt may have been processed (last: {error})"
            account.settle(chunk.indices, chunk.ids, state, (code, error, "http"), chunk.attempts)
        account.progress()


def _advice(answer: Answer) -> RetryAdvice | None:
    # Adding or removing the same ids twice is harmless: a lost answer is retried too.
    if answer.response is not None and not is_transient(answer.status_code):
        return None
    return answer.advice()


def _body(ids: list[str]) -> bytes:
    return json.dumps({"distinct_ids": ids}, ensure_ascii=False, separators=(",", ":")).encode()
