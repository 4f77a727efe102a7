"""Suprsend: the synchronous facade over `AsyncSuprsend`.

A private event loop runs on one daemon thread per client (anyio's blocking portal); each
facade method is one call into the async core on that loop. There is no second
implementation of anything: the namespaces, the bulk instance and the client's calls are
twins generated from the async classes (``_sync_resources.py``); this module only builds the
client, its loop thread, and closes them. Works from plain scripts, from many threads at once,
and from threads that already run an event loop (Jupyter, sync code called inside async code),
since the caller's loop is never used.
"""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from concurrent.futures import CancelledError, Future
from types import TracebackType
from typing import ParamSpec, Self, TypeVar, Unpack

from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._client import AsyncSuprsend
from ._core import forked_message
from ._errors import SuprsendError
from ._options import CallOptions, ClientOptions, check_options
from ._sync_resources import SYNC_NAMESPACES, BulkWorkflowTrigger, SuprsendCalls

__all__ = ["BulkWorkflowTrigger", "Portal", "Suprsend"]

_SETTLE_TIMEOUT = 30.0  # seconds a cancelled call may take to finish its clean-up

P = ParamSpec("P")
T = TypeVar("T")


class Portal:
    """anyio's blocking portal on a daemon thread, with the facade's guards around it.

    Daemon, so a script that never calls ``close()`` still exits (the guide's samples do not
    close their client). The guards: a call from a forked child, or from one of the client's
    own callbacks (which run on the loop thread), is refused with a clear error; Ctrl-C during
    a call cancels it and waits until it has settled its account.
    """

    def __init__(self) -> None:
        self._pid = os.getpid()
        self.closing = threading.Lock()
        self._manager: contextlib.AbstractContextManager[BlockingPortal] | None = (
            start_blocking_portal(name="suprsend-async-loop")
        )
        self._portal: BlockingPortal | None = self._manager.__enter__()
        self._thread_id = self._portal.call(threading.get_ident)

    @property
    def portal(self) -> BlockingPortal:
        if os.getpid() != self._pid:
            raise SuprsendError(forked_message(self._pid))
        if self._portal is None:
            raise SuprsendError("this client is closed; create a new one")
        return self._portal

    @property
    def alive(self) -> bool:
        return self._portal is not None

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self._thread_id

    def run(self, func: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``func(*args)`` on the loop and wait; Ctrl-C cancels it and waits for cleanup."""
        if self.on_loop_thread():
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

        future: Future[T] | None = None
        try:
            try:
                future = self.portal.start_task_soon(call)
            except RuntimeError:  # the loop stopped between the check and the call: closed
                raise SuprsendError("this client is closed; create a new one") from None
            return future.result()
        except CancelledError:  # the loop was stopped under the call: closed meanwhile
            raise SuprsendError("the client was closed while this call ran") from None
        except KeyboardInterrupt:
            # Cancel the task and wait until it has settled its account (a bulk records which
            # records were sent), then let the interrupt go on. A Ctrl-C that lands while the
            # task is being handed to the loop is caught here too: once it is there, it is
            # cancelled like any other.
            if future is not None:
                future.cancel()
                settled.wait(_SETTLE_TIMEOUT)
            raise

    def call_sync(self, func: Callable[[], T]) -> T:
        """Run a plain function on the loop thread (for objects that must be built there)."""
        return self.portal.call(func)

    def stop(self) -> None:
        manager, self._manager = self._manager, None
        if manager is None:
            return
        if self.on_loop_thread():  # pragma: no cover - misuse guard
            raise SuprsendError("close() cannot be called from a client callback")
        self._portal = None
        with contextlib.suppress(RuntimeError):  # the loop already went (interpreter exit)
            manager.__exit__(None, None, None)


def _close(client: AsyncSuprsend, portal: Portal) -> None:
    try:
        if portal.alive and not client.is_closed:
            portal.run(client.aclose)
    except SuprsendError:  # already closed by a racing close()
        pass
    finally:
        portal.stop()


class Suprsend(SuprsendCalls):
    """The sync client, for scripts and sync frameworks: the same calls, without ``await``.

    Takes the same arguments and options as `AsyncSuprsend`. Use
    ``with Suprsend(...) as client:`` or call `close`; a script that forgets still exits
    cleanly.
    """

    def __init__(
        self,
        workspace_key: str | None = None,
        workspace_secret: str | None = None,
        base_url: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        check_options(options, ClientOptions, f"{type(self).__name__}.__init__")
        self._start(lambda: AsyncSuprsend(workspace_key, workspace_secret, base_url, **options))

    @classmethod
    def with_workspace_api_key(
        cls,
        workspace_uid: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        **options: Unpack[ClientOptions],
    ) -> Self:
        """A sync client that authenticates with an API key; see the async twin."""
        check_options(options, ClientOptions, f"{cls.__name__}.with_workspace_api_key")
        self = object.__new__(cls)
        self._start(
            lambda: AsyncSuprsend.with_workspace_api_key(
                workspace_uid, api_key, base_url, **options
            )
        )
        return self

    def _start(self, build: Callable[[], AsyncSuprsend]) -> None:
        portal = Portal()
        try:
            client = portal.call_sync(build)
        except BaseException:
            portal.stop()
            raise
        self._bind(client, portal, owner=True)
        # A script that never calls close() (every sample of the user guide) still closes
        # its connections before the interpreter goes, so nothing warns at exit.
        self._finalizer = weakref.finalize(self, _close, client, portal)

    def _bind(
        self,
        client: AsyncSuprsend,
        portal: Portal,
        *,
        owner: bool,
        parent: Suprsend | None = None,
    ) -> None:
        """Every piece of per-facade state, set in one place for new and derived facades.

        A derived facade keeps its ``parent`` alive: the parent's finalizer closes the pool
        and the loop they share.
        """
        SuprsendCalls.__init__(self, client, self)
        self._owner = owner
        self._parent = parent
        self._portal = portal
        for name, twin in SYNC_NAMESPACES.items():
            setattr(self, name, twin(getattr(client, name), self))

    def with_options(self, **options: Unpack[CallOptions]) -> Self:
        """A client with other per-call settings sharing this one's pool and loop thread.

        ``timeout=None`` and ``deadline=None`` mean no limit. Closing the derived client is a
        no-op; close the original.
        """
        check_options(options, CallOptions, f"{type(self).__name__}.with_options")
        derived = object.__new__(type(self))
        derived._bind(self._async.with_options(**options), self._portal, owner=False, parent=self)
        return derived

    @property
    def async_client(self) -> AsyncSuprsend:
        """The async client this facade forwards to (use it only from the facade's loop)."""
        client: AsyncSuprsend = self._async
        return client

    def close(self) -> None:
        """Close the client and stop its loop thread (idempotent, safe from any thread).

        Calls still running on other threads are cancelled and settle their accounts (within
        `CLOSE_GRACE` seconds), then raise `SuprsendError`; nothing is sent once
        closing has started.
        """
        if not self._owner:
            return
        if self._portal.on_loop_thread():
            raise SuprsendError("close() cannot be called from a client callback")
        # One close at a time: a second caller waits until the first has finished.
        with self._portal.closing:
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
