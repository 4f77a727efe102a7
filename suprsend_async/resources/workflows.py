"""``client.workflows`` and ``client.bulk_workflows``: workflow triggers, single and bulk.

They depend on the `Sender` interface alone (its core for the
settings and endpoints, its ``attempt`` to send), never on the client's private attributes.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any, ClassVar

import httpx

from .._attachments import BlobCache
from .._bulk import (
    AsyncBulkWorkflowTrigger,
    KeyFrom,
    OutcomeCallback,
    ProgressCallback,
    stream_bulk,
)
from .._bulk_results import BulkResponse
from .._core import Call, Endpoint, Payload, PerCall, Sender
from .._models import WorkflowTriggerBody
from .._requests import PreparedRecord, WorkflowTriggerRequest, request_of
from .._responses import TriggerResponse
from .._retry import RetryEvent, retry_loop
from .._types import NOT_GIVEN, NotGiven, RequestKind

__all__ = ["AsyncBulkWorkflows", "AsyncWorkflows", "Streaming", "trigger_single"]


async def _payload(prepared: PreparedRecord, read_timeout: float | None) -> Payload:
    if prepared.placeholders is None:
        return Payload(prepared.content)
    # Read and encode attachments in a worker thread, never on the loop.
    loaded = await BlobCache().ensure(prepared.placeholders.blobs(), read_timeout=read_timeout)
    return Payload(prepared.placeholders.render(loaded))


_CALL_SPANS = {
    "trigger": ("suprsend.trigger", "suprsend.workflow"),
    "legacy": ("suprsend.trigger_workflow", "suprsend.workflow"),
    "event": ("suprsend.track_event", "suprsend.event"),
    "broadcast": ("suprsend.subscriber_lists.broadcast", "suprsend.list"),
}


async def trigger_single(
    sender: Sender,
    endpoint: Endpoint,
    prepared: PreparedRecord,
    deadline: float | NotGiven | None = NOT_GIVEN,
    per_call: PerCall | None = None,
) -> TriggerResponse:
    """Send one prepared trigger (or event) with retries; its last answer is the result."""
    call = Call(prepared.kind, idempotency_key=prepared.idempotency_key, per_call=per_call)
    span_name, attribute = _CALL_SPANS[prepared.kind]
    with sender.observer.call(span_name, {attribute: prepared.label}) as ending:
        result = await _send_single(sender, endpoint, prepared, deadline, call)
        outcome = "succeeded" if result.success else "failed"
        ending.update(
            {
                "suprsend.outcome": outcome,
                "suprsend.attempts": result.attempts,
                "http.response.status_code": result.status_code or 0,
            }
        )
        sender.observer.outcomes(prepared.kind, {outcome: 1})
        return result


async def _send_single(
    sender: Sender,
    endpoint: Endpoint,
    prepared: PreparedRecord,
    deadline: float | NotGiven | None,
    call: Call,
) -> TriggerResponse:
    async def retried(event: RetryEvent) -> None:
        await sender.retried(event, call)

    with sender.operation(deadline) as scope:
        payload = await _payload(prepared, sender.core.settings.read_limit)
        answer, _ = await retry_loop(
            lambda: sender.attempt(endpoint, payload, None, call),
            lambda answer: answer.advice(),
            sender.core.settings.retry,
            on_retry=retried,
            deadline_at=scope.deadline if scope.deadline != math.inf else None,
        )
        return sender.core.to_response(answer, call.attempts, prepared.idempotency_key)
    # The call's deadline passed (a closed client raised on leaving the operation).
    return TriggerResponse(
        success=False,
        status="fail",
        status_code=None,
        message=f"timed out: the call's deadline passed after {call.attempts} attempt(s)",
        error_type="timeout",
        attempts=call.attempts,
        idempotency_key=prepared.idempotency_key,
    )


class Streaming:
    """What every namespace has: the streaming bulk call, for its kind of record."""

    _kind: ClassVar[RequestKind]

    def __init__(self, sender: Sender) -> None:
        self._sender = sender

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
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> BulkResponse:
        """Stream any number of records through concurrent bulk requests, in bounded memory.

        ``records`` is any iterable or async iterable of this namespace's requests
        (`WorkflowTriggerRequest`, `Workflow` or `Event`), their body
        models or plain dicts; it is read lazily, only as fast as requests go out. Each
        record's outcome is passed to ``on_outcome`` as it is known (outcomes are not kept, so
        a million records take no more memory than a hundred); the returned summary has the
        counts and the failed records (``keep_failed_records=False`` drops those too).

        ``idempotency_key_from`` derives each record's idempotency key from a field of its body
        (a dotted path such as ``"data.order_id"``) or a function of the body, so running a
        crashed job again sends nothing twice. ``max_records_per_second`` keeps a long job
        under the workspace's rate limit (a bulk request counts as one call per record).
        ``deadline`` caps the whole call in seconds: past it the call stops as if cancelled
        (records not sent are ``not_sent``) and returns the account with a warning.
        """
        return await stream_bulk(
            self._sender,
            self._kind,
            records,
            concurrency=concurrency,
            max_records_per_second=max_records_per_second,
            on_progress=on_progress,
            on_outcome=on_outcome,
            idempotency_key_from=idempotency_key_from,
            keep_failed_records=keep_failed_records,
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )

    def _instance(self) -> AsyncBulkWorkflowTrigger:
        return AsyncBulkWorkflowTrigger(self._sender, kind=self._kind)


class AsyncWorkflows(Streaming):
    """``client.workflows``: trigger one workflow, or many in bulk."""

    _kind = "trigger"

    async def trigger(
        self,
        request: WorkflowTriggerRequest | WorkflowTriggerBody | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Trigger one workflow (``POST trigger/``).

        Takes a `WorkflowTriggerRequest`, a `WorkflowTriggerBody` or a plain
        dict body. Raises `SuprsendValidationError` for an invalid body, before sending.
        A failed call comes back as a result with ``success=False``; ``.raise_for_status()``
        raises. ``deadline`` caps the whole call in seconds, retries and their waits included
        (left out: the client's; ``None``: none); past it the result is a timeout failure.
        """
        request = request_of(request, WorkflowTriggerRequest)
        core = self._sender.core
        prepared = request.prepare(auto_idempotency_key=core.settings.auto_idempotency_keys)
        per_call = PerCall.of(extra_headers, timeout)
        return await trigger_single(
            self._sender, core.trigger_endpoint, prepared, deadline, per_call
        )

    def bulk_trigger_instance(self) -> AsyncBulkWorkflowTrigger:
        """A bulk instance: ``append(*requests)`` then ``await trigger()``."""
        return self._instance()


class AsyncBulkWorkflows(Streaming):
    """``client.bulk_workflows``: legacy bulk triggers of `Workflow` records."""

    _kind = "legacy"

    def new_instance(self) -> AsyncBulkWorkflowTrigger:
        """A legacy bulk instance: ``append(*workflows)`` then ``await trigger()``."""
        return self._instance()
