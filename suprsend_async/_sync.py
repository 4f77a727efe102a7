"""Suprsend: the synchronous facade over :class:`AsyncSuprsend`.

A private event loop runs on one daemon thread per client (an anyio ``BlockingPortal``); each
facade method is one call into the async core on that loop. There is no second implementation
of anything: the facade only forwards. Works from plain scripts, from many threads at once,
and from threads that already run an event loop (Jupyter, sync code called inside async code),
since the caller's loop is never used.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import threading
import weakref
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from concurrent.futures import CancelledError, Future
from types import TracebackType
from typing import Any, ClassVar, ParamSpec, Self, TypeVar

import anyio
import httpx
from anyio.from_thread import BlockingPortal

from ._bulk import AsyncBulkWorkflowTrigger, KeyFrom, OutcomeCallback, ProgressCallback
from ._bulk_results import BulkResponse, RecordOutcome
from ._client import DEFAULT_LIMITS, AsyncSuprsend
from ._core import DEFAULT_MAX_ANSWER_BYTES, forked_message
from ._errors import SuprsendError
from ._models import WorkflowTriggerBody
from ._observe import Hooks
from ._requests import Event, Workflow, WorkflowTriggerRequest
from ._resources import _Streaming
from ._responses import TriggerResponse
from ._retry import RetryPolicy
from ._types import NOT_GIVEN, NotGiven

__all__ = ["BulkWorkflowTrigger", "Suprsend"]

_SETTLE_TIMEOUT = 30.0  # seconds a cancelled call may take to finish its clean-up

P = ParamSpec("P")
T = TypeVar("T")


class _LoopThread:
    """A daemon thread running an event loop with a blocking portal into it.

    Daemon, so a script that never calls ``close()`` still exits (the guide's samples do not
    close their client); ``close()`` stops the loop and joins the thread.
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self._ready = threading.Event()
        self.closing = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="suprsend-async-loop", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._error is not None:  # pragma: no cover - the loop failed to start
            raise self._error

    def _main(self) -> None:
        try:
            anyio.run(self._serve)
        except BaseException as exc:  # pragma: no cover - only if the loop cannot start
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        async with BlockingPortal() as portal:
            self._portal = portal
            self._ready.set()
            await portal.sleep_until_stopped()

    @property
    def portal(self) -> BlockingPortal:
        if os.getpid() != self._pid:
            raise SuprsendError(forked_message(self._pid))
        if self._portal is None or not self._thread.is_alive():
            raise SuprsendError("this client is closed; create a new one")
        return self._portal

    @property
    def thread(self) -> threading.Thread:
        return self._thread

    def run(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func(*args)`` on the loop and wait; Ctrl-C cancels it and waits for cleanup."""
        if threading.current_thread() is self._thread:
            raise SuprsendError(
                "a Suprsend (sync) method was called from one of its own callbacks; callbacks"
                " run on the client's event-loop thread and must not call the client back"
            )

        settled = threading.Event()

        async def call() -> T:
            try:
                return await func(*args, **kwargs)
            finally:
                settled.set()

        try:
            future: Future[T] = self.portal.start_task_soon(call)
        except RuntimeError:  # the loop stopped between the check and the call: closed
            raise SuprsendError("this client is closed; create a new one") from None
        try:
            return future.result()
        except CancelledError:  # the loop was stopped under the call: closed meanwhile
            raise SuprsendError("the client was closed while this call ran") from None
        except KeyboardInterrupt:
            # Cancel the task and wait until it has settled its account (a bulk records which
            # records were sent), then let the interrupt go on.
            future.cancel()
            settled.wait(_SETTLE_TIMEOUT)
            raise

    def call_sync(self, func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a plain function on the loop thread (for objects that must be built there)."""
        return self.portal.call(lambda: func(*args, **kwargs))

    def stop(self) -> None:
        portal = self._portal
        if portal is None or not self._thread.is_alive():
            return
        if threading.current_thread() is self._thread:  # pragma: no cover - misuse guard
            raise SuprsendError("close() cannot be called from a client callback")
        with contextlib.suppress(RuntimeError):  # stopped by a close() racing this one
            portal.call(portal.stop)
        self._thread.join()
        self._portal = None


def _close(client: AsyncSuprsend, loop: _LoopThread) -> None:
    try:
        if loop.thread.is_alive() and not client.is_closed:
            loop.run(client.aclose)
    except SuprsendError:  # already closed by a racing close()
        pass
    finally:
        loop.stop()


class BulkWorkflowTrigger:
    """The sync bulk instance: ``append(*requests)`` then ``trigger()``.

    Same rules as :class:`AsyncBulkWorkflowTrigger`: append snapshots and validates at once,
    a second ``trigger()`` sends nothing twice, Ctrl-C during ``trigger()`` stops promptly
    and leaves the account in ``outcomes``.
    """

    def __init__(
        self, inner: AsyncBulkWorkflowTrigger, loop: _LoopThread, client: object = None
    ) -> None:
        self._inner = inner
        self._loop = loop
        self._client = client  # keeps the client (and so its loop and pool) alive

    def append(self, *requests: Any) -> None:
        """Add records; invalid ones become failed outcomes (nothing raises)."""
        self._inner.append(*requests)

    def __len__(self) -> int:
        return len(self._inner)

    @property
    def outcomes(self) -> list[RecordOutcome]:
        """Each appended record's outcome so far, in append order."""
        return self._inner.outcomes

    def result(self) -> BulkResponse:
        """The account of every appended record as it stands now."""
        return self._inner.result()

    def trigger(
        self,
        *,
        concurrency: int | None = None,
        max_records_per_second: float | None = None,
        on_progress: ProgressCallback | None = None,
        resend_unknown: bool = False,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> BulkResponse:
        """Send every record not sent yet; see :meth:`AsyncBulkWorkflowTrigger.trigger`."""
        return self._loop.run(
            self._inner.trigger,
            concurrency=concurrency,
            max_records_per_second=max_records_per_second,
            on_progress=on_progress,
            resend_unknown=resend_unknown,
            deadline=deadline,
        )


class _SyncStreaming:
    """The sync twin of a namespace's streaming bulk call; ``_name`` is the async one's."""

    _name: ClassVar[str]

    def __init__(self, owner: Suprsend) -> None:
        self._owner = owner

    def _target(self) -> _Streaming:
        namespace: _Streaming = getattr(self._owner._async, self._name)
        return namespace

    def _wrap(self, inner: AsyncBulkWorkflowTrigger) -> BulkWorkflowTrigger:
        return BulkWorkflowTrigger(inner, self._owner._loop, self._owner)

    def bulk_trigger(
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
    ) -> BulkResponse:
        """Stream records through concurrent bulk requests; see ``AsyncWorkflows.bulk_trigger``.

        A sync iterable is read in a worker thread, never on the event loop; callbacks run on
        the client's loop thread: keep them quick and thread-safe.
        """
        return self._owner._loop.run(
            self._target().bulk_trigger,
            records,
            concurrency=concurrency,
            max_records_per_second=max_records_per_second,
            on_progress=on_progress,
            on_outcome=on_outcome,
            idempotency_key_from=idempotency_key_from,
            keep_failed_records=keep_failed_records,
            deadline=deadline,
        )


class _Workflows(_SyncStreaming):
    _name = "workflows"

    def trigger(
        self,
        request: WorkflowTriggerRequest | WorkflowTriggerBody | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Trigger one workflow; see :meth:`AsyncWorkflows.trigger`."""
        owner = self._owner
        return owner._loop.run(owner._async.workflows.trigger, request, deadline=deadline)

    def bulk_trigger_instance(self) -> BulkWorkflowTrigger:
        """A bulk instance: ``append(*requests)`` then ``trigger()``."""
        return self._wrap(self._owner._async.workflows.bulk_trigger_instance())


class _BulkWorkflows(_SyncStreaming):
    _name = "bulk_workflows"

    def new_instance(self) -> BulkWorkflowTrigger:
        """A legacy bulk instance: ``append(*workflows)`` then ``trigger()``."""
        return self._wrap(self._owner._async.bulk_workflows.new_instance())


class _BulkEvents(_SyncStreaming):
    _name = "bulk_events"

    def new_instance(self) -> BulkWorkflowTrigger:
        """A bulk of events: ``append(*events)`` then ``trigger()``."""
        return self._wrap(self._owner._async.bulk_events.new_instance())


class Suprsend:
    """The sync client, for scripts and sync frameworks: the same calls, without ``await``.

    Takes the same arguments as :class:`AsyncSuprsend`. Use ``with Suprsend(...) as client:``
    or call :meth:`close`; a script that forgets still exits cleanly.
    """

    def __init__(
        self,
        workspace_key: str | None = None,
        workspace_secret: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: bool | str | ssl.SSLContext = True,
        auto_idempotency_keys: bool = True,
        log_bodies: bool = False,
        deadline: float | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        hooks: Hooks | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        self._start(
            lambda: AsyncSuprsend(
                workspace_key,
                workspace_secret,
                base_url,
                timeout=timeout,
                max_retries=max_retries,
                retry_policy=retry_policy,
                http_client=http_client,
                limits=limits,
                verify=verify,
                auto_idempotency_keys=auto_idempotency_keys,
                log_bodies=log_bodies,
                deadline=deadline,
                max_answer_bytes=max_answer_bytes,
                hooks=hooks,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
        )

    def _start(self, build: Callable[[], AsyncSuprsend]) -> None:
        loop = _LoopThread()
        try:
            client = loop.call_sync(build)
        except BaseException:
            loop.stop()
            raise
        self._bind(client, loop, owner=True)
        # A script that never calls close() (every sample of the user guide) still closes
        # its connections before the interpreter goes, so nothing warns at exit.
        self._finalizer = weakref.finalize(self, _close, client, loop)

    def _bind(
        self,
        client: AsyncSuprsend,
        loop: _LoopThread,
        *,
        owner: bool,
        parent: Suprsend | None = None,
    ) -> None:
        """Every piece of per-facade state, set in one place for new and derived facades.

        A derived facade keeps its ``parent`` alive: the parent's finalizer closes the pool
        and the loop they share.
        """
        self._owner = owner
        self._parent = parent
        self._loop = loop
        self._async = client
        self.workflows = _Workflows(self)
        """Workflow triggers: ``trigger``, ``bulk_trigger_instance``, ``bulk_trigger``."""
        self.bulk_workflows = _BulkWorkflows(self)
        """Legacy bulk triggers of :class:`Workflow`: ``new_instance``, ``bulk_trigger``."""
        self.bulk_events = _BulkEvents(self)
        """Many :class:`Event` at once: ``new_instance``, ``bulk_trigger``."""

    @classmethod
    def with_workspace_api_key(
        cls,
        workspace_uid: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        limits: httpx.Limits = DEFAULT_LIMITS,
        verify: bool | str | ssl.SSLContext = True,
        auto_idempotency_keys: bool = True,
        log_bodies: bool = False,
        deadline: float | None = None,
        max_answer_bytes: int = DEFAULT_MAX_ANSWER_BYTES,
        hooks: Hooks | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> Self:
        """A sync client that authenticates with an API key; see the async twin."""
        self = object.__new__(cls)
        self._start(
            lambda: AsyncSuprsend.with_workspace_api_key(
                workspace_uid,
                api_key,
                base_url,
                timeout=timeout,
                max_retries=max_retries,
                retry_policy=retry_policy,
                http_client=http_client,
                limits=limits,
                verify=verify,
                auto_idempotency_keys=auto_idempotency_keys,
                log_bodies=log_bodies,
                deadline=deadline,
                max_answer_bytes=max_answer_bytes,
                hooks=hooks,
                tracer_provider=tracer_provider,
                meter_provider=meter_provider,
            )
        )
        return self

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        deadline: float | NotGiven | None = NOT_GIVEN,
        hooks: Hooks | None = None,
    ) -> Self:
        """A client with other per-call settings sharing this one's pool and loop thread.

        ``timeout=None`` and ``deadline=None`` mean no limit. Closing the derived client is a
        no-op; close the original.
        """
        derived = object.__new__(type(self))
        derived._bind(
            self._async.with_options(
                timeout=timeout,
                max_retries=max_retries,
                retry_policy=retry_policy,
                deadline=deadline,
                hooks=hooks,
            ),
            self._loop,
            owner=False,
            parent=self,
        )
        return derived

    @property
    def async_client(self) -> AsyncSuprsend:
        """The async client this facade forwards to (use it only from the facade's loop)."""
        return self._async

    @property
    def base_url(self) -> str:
        """The API base URL, with exactly one trailing slash."""
        return self._async.base_url

    def trigger_workflow(
        self,
        workflow: Workflow | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Trigger a legacy dynamic workflow; see :meth:`AsyncSuprsend.trigger_workflow`."""
        return self._loop.run(self._async.trigger_workflow, workflow, deadline=deadline)

    def track_event(
        self,
        event: Event | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Send an event; see :meth:`AsyncSuprsend.track_event`."""
        return self._loop.run(self._async.track_event, event, deadline=deadline)

    def close(self) -> None:
        """Close the client and stop its loop thread (idempotent, safe from any thread).

        Calls still running on other threads are cancelled and settle their accounts (within
        :data:`CLOSE_GRACE` seconds), then raise :class:`SuprsendError`; nothing is sent once
        closing has started.
        """
        if not self._owner:
            return
        if threading.current_thread() is self._loop.thread:
            raise SuprsendError("close() cannot be called from a client callback")
        # One close at a time: a second caller waits until the first has finished.
        with self._loop.closing:
            self._finalizer()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return repr(self._async).replace("AsyncSuprsend(", "Suprsend(", 1)
