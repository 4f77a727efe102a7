"""AsyncSuprsend: a client core paired with a connection pool; sending and closing.

Every request, single or bulk, is made by :meth:`_Pipe.attempt`: sign (afresh per attempt) ->
send -> read the answer. The retry loop (``_retry``) drives attempts; the namespaces
(``_resources``) and the bulk engine (``_bulk``) reach this module only through the
:class:`~suprsend_async._core.Sender` interface.
"""

from __future__ import annotations

import logging
import math
import os
import ssl
import time
import urllib.request
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.lowlevel
import httpx

from ._auth import Auth
from ._core import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_ANSWER_BYTES,
    DEFAULT_TIMEOUT,
    Answer,
    Call,
    ClientCore,
    Endpoint,
    Payload,
    Settings,
    api_key_auth,
    as_timeout,
    check_deadline,
    env,
    forked_message,
    hmac_auth,
    normalise_base_url,
)
from ._errors import SuprsendError
from ._observe import AttemptEnd, AttemptStart, Hooks, Observer, RetryInfo
from ._precheck import build_validators
from ._requests import Event, Workflow
from ._resources import (
    AsyncBulkEvents,
    AsyncBulkWorkflows,
    AsyncWorkflows,
    track_event,
    trigger_single,
)
from ._responses import ErrorType, TriggerResponse
from ._retry import RetryEvent, RetryPolicy, SharedBackoff, parse_retry_after
from ._transport import ShardedTransport, tls_setting
from ._types import NOT_GIVEN, NotGiven

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "AsyncSuprsend",
]

logger = logging.getLogger("suprsend_async")

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=50)


def _proxies_from_environment() -> bool:
    proxies = urllib.request.getproxies_environment()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


def _honours_trace(client: httpx.AsyncClient) -> bool:
    """Whether requests through ``client`` report when they start being written.

    httpx's own transport hands the ``trace`` extension to httpcore, which reports each step;
    a mount or another transport may not, and then a request counts as possibly sent from
    the moment it is handed over.
    """
    return type(client._transport) is httpx.AsyncHTTPTransport and not client._mounts


def _traced_path() -> bool:
    """Whether httpx's transport and httpcore's pool are the genuine ones right now.

    A mocking library (respx, say) replaces one of them, and its fake server never reports
    the steps of sending: then a request counts as possibly sent once it is handed over.
    """
    import httpcore  # imported by httpx's transport already

    return httpx.AsyncHTTPTransport.handle_async_request.__module__.startswith(
        "httpx."
    ) and httpcore.AsyncConnectionPool.handle_async_request.__module__.startswith("httpcore.")


class _Pool:
    """The connection pool a family of clients shares: one owner, and those derived from it.

    Holds the HTTP client, the SDK's own transport (when it built the client), the pause that
    a 429 puts on every request of the family, and whether the pool was closed.
    """

    __slots__ = (
        "backoff",
        "closed",
        "http",
        "loop",
        "operations",
        "owned",
        "pid",
        "trace",
        "transport",
    )

    def __init__(
        self,
        http: httpx.AsyncClient,
        transport: ShardedTransport | None,
        *,
        owned: bool,
    ) -> None:
        self.http = http
        self.transport = transport
        self.owned = owned
        self.trace = transport is not None or _honours_trace(http)
        self.backoff = SharedBackoff()
        self.closed = False  # closing has started: nothing more is sent
        self.pid = os.getpid()
        self.loop: object = None  # the event loop the pool's connections belong to
        self.operations: set[anyio.CancelScope] = set()  # calls running: close() cancels them

    @classmethod
    def build(
        cls,
        http_client: httpx.AsyncClient | None,
        *,
        limits: httpx.Limits,
        verify: bool | str | ssl.SSLContext,
        timeout: httpx.Timeout,
        tls: bool,
    ) -> _Pool:
        if http_client is not None:
            return cls(http_client, None, owned=False)
        if _proxies_from_environment():
            # HTTP(S)_PROXY is set: let httpx route through it (building the TLS context here,
            # once, is the price of that rarer set-up).
            http = httpx.AsyncClient(
                limits=limits,
                verify=tls_setting(verify)(),
                trust_env=True,
                follow_redirects=False,
                timeout=timeout,
            )
            return cls(http, None, owned=True)
        # With its own client the SDK sends straight through its transport: it sets every
        # header itself and needs none of the client layer's per-request work (URL merging,
        # cookie jars, auth and redirect flows), which costs more than the request.
        transport = ShardedTransport(limits=limits, verify=tls_setting(verify), tls=tls)
        http = httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=timeout)
        return cls(http, transport, owned=True)

    def check_usable(self) -> None:
        if self.closed:
            raise SuprsendError("this client is closed; create a new one")
        if os.getpid() != self.pid:
            raise SuprsendError(forked_message(self.pid))
        loop = anyio.lowlevel.current_token().native_token
        if self.loop is None:
            self.loop = loop
        elif self.loop is not loop:
            raise SuprsendError(
                "this client was first used in another event loop, which owns its connections;"
                " an AsyncSuprsend belongs to one event loop. Create the client inside the loop"
                " that uses it (one per asyncio.run(), e.g. in a FastAPI lifespan), or use the"
                " sync Suprsend, which keeps its own loop"
            )

    async def close(self, grace: float) -> None:
        """Stop everything: cancel running calls, wait (at most ``grace`` s) for them to
        settle their accounts, then close the connections. Nothing is sent after this starts."""
        self.closed = True
        self.backoff.pause(0)
        for scope in list(self.operations):
            scope.cancel()
        # Shielded: closing inside a cancelled scope (a shutdown timeout) still closes.
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(grace):
                while self.operations:  # noqa: ASYNC110 - each settles in its own task
                    await anyio.sleep(0.005)
            if self.owned:
                await self.http.aclose()


CLOSE_GRACE = 5.0
"""Seconds ``aclose()``/``close()`` wait for cancelled calls to settle their accounts."""


class _Pipe:
    """One client's way to the network: its core's settings over the family's pool.

    The :class:`~suprsend_async._core.Sender` that namespaces and the bulk engine use.
    """

    __slots__ = ("_core", "_pool", "closed")

    def __init__(self, core: ClientCore, pool: _Pool) -> None:
        self._core = core
        self._pool = pool
        self.closed = False  # this client's own aclose(); the pool's is shared

    @property
    def core(self) -> ClientCore:
        return self._core

    def check_usable(self) -> None:
        if self.closed:
            raise SuprsendError("this client is closed; create a new one")
        self._pool.check_usable()

    @contextmanager
    def operation(self, deadline: float | NotGiven | None) -> Iterator[anyio.CancelScope]:
        self.check_usable()
        pool = self._pool
        if isinstance(deadline, NotGiven):
            limit = self._core.settings.deadline
        else:
            limit = check_deadline(deadline)
        scope = anyio.CancelScope(
            deadline=anyio.current_time() + limit if limit is not None else math.inf
        )
        pool.operations.add(scope)
        try:
            with scope:
                yield scope
        finally:
            pool.operations.discard(scope)
        if scope.cancelled_caught and (pool.closed or self.closed):
            raise SuprsendError("the client was closed while this call ran")

    @property
    def observer(self) -> Observer:
        return self._core.observer

    async def attempt(
        self,
        endpoint: Endpoint,
        payload: Payload,
        on_sent: Callable[[], None] | None = None,
        call: Call | None = None,
    ) -> Answer:
        pool = self._pool
        self.check_usable()
        await pool.backoff.wait()
        self.check_usable()  # closing may have started during the pause
        core = self._core
        if core.settings.log_bodies and logger.isEnabledFor(logging.DEBUG):
            logger.debug("request body %s: %s", endpoint.uri, payload.data.decode(errors="replace"))
        if call is None:
            call = Call("trigger")
        call.attempts += 1
        started = time.perf_counter()
        observer = core.observer
        if observer.active:
            answer = await self._observed(endpoint, payload, on_sent, call, started)
        else:
            answer = await self._exchange(endpoint, payload, on_sent)
        if answer.status_code == 429:
            self.pause(answer.retry_after)
        if logger.isEnabledFor(logging.DEBUG):
            response = answer.response
            request_id = response.headers.get("x-request-id") if response is not None else None
            logger.debug(
                "POST %s -> %s in %.1f ms (attempt %d, request id %s)",
                endpoint.uri,
                answer.status_code if response is not None else answer.error,
                (time.perf_counter() - started) * 1000,
                call.attempts,
                request_id,
                extra={
                    "suprsend_attempt": call.attempts,
                    "suprsend_status_code": answer.status_code,
                    "suprsend_request_id": request_id,
                    "suprsend_idempotency_key": call.idempotency_key,
                    "suprsend_records": call.records,
                },
            )
        return answer

    async def _observed(
        self,
        endpoint: Endpoint,
        payload: Payload,
        on_sent: Callable[[], None] | None,
        call: Call,
        started: float,
    ) -> Answer:
        observer = self._core.observer
        parsed = endpoint.parsed
        start = AttemptStart(
            "POST",
            endpoint.url,
            call.attempts,
            call.kind,
            call.bulk,
            call.records,
            call.idempotency_key,
        )
        await observer.before_attempt(start)
        with observer.attempt_span(start, parsed.host, parsed.port) as span:
            answer = await self._exchange(endpoint, payload, on_sent)
            response = answer.response
            end = AttemptEnd(
                start,
                answer.status_code,
                response.headers.get("x-request-id") if response is not None else None,
                time.perf_counter() - started,
                answer.error_type,
            )
            await observer.after_attempt(end, span)
        return answer

    async def _exchange(
        self, endpoint: Endpoint, payload: Payload, on_sent: Callable[[], None] | None
    ) -> Answer:
        """One request and its answer, any failure to get one turned into an :class:`Answer`."""
        limit = self._core.settings.attempt_limit
        try:
            with anyio.fail_after(limit):
                return await self._post(endpoint, payload, on_sent)
        except TimeoutError:
            return Answer(None, "timeout", f"timed out: the attempt took over {limit:g} s")
        except httpx.TimeoutException as exc:
            return Answer(None, "timeout", f"timed out: {type(exc).__name__}")
        except httpx.TransportError as exc:
            where = endpoint.parsed.netloc.decode("ascii", "replace")
            return Answer(None, "connection", f"connection error: {_describe(exc)} ({where})")
        except httpx.RequestError as exc:  # an answer that could not be read (bad encoding...)
            return Answer(None, "connection", f"unreadable answer: {_describe(exc)}")

    def _request(
        self, endpoint: Endpoint, payload: Payload, on_sent: Callable[[], None] | None
    ) -> httpx.Request:
        """The signed request. Built in its own frame: the headers (the credentials) are
        never a plain local of a frame that waits on I/O."""
        pool = self._pool
        extensions: dict[str, Any] = {"timeout": self._core.settings.timeout.as_dict()}
        if on_sent is not None:
            if pool.trace and _traced_path():
                extensions["trace"] = _sent_tracer(on_sent)
            else:
                on_sent()
        headers = self._core.headers(endpoint, payload.data)
        if pool.transport is None:  # another client: its hooks, mounts and defaults apply
            return pool.http.build_request(
                "POST", endpoint.url, content=payload.data, headers=headers, extensions=extensions
            )
        return httpx.Request(
            "POST", endpoint.parsed, content=payload.data, headers=headers, extensions=extensions
        )

    async def _post(
        self, endpoint: Endpoint, payload: Payload, on_sent: Callable[[], None] | None
    ) -> Answer:
        pool = self._pool
        request = self._request(endpoint, payload, on_sent)
        if pool.transport is None:
            response = await pool.http.send(request, stream=True)
        else:
            response = await pool.transport.handle_async_request(request)
            response.request = request
        cap = self._core.settings.max_answer_bytes
        try:
            body, size = await _read_capped(response, cap)
        finally:
            await response.aclose()
        # Read on any answer: a 207 may carry it for the records it refused with 429.
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        error_type: ErrorType | None = "http" if response.is_error else None
        headers = [
            (k, v)
            for k, v in response.headers.multi_items()
            if k not in ("content-encoding", "content-length", "transfer-encoding")
        ]
        settled = httpx.Response(
            response.status_code, headers=headers, content=body or b"", request=request
        )
        if body is None:
            note = f"the answer was over {cap:,} bytes (at least {size:,}) and was discarded"
            logger.warning("POST %s: %s", endpoint.uri, note)
            return Answer(settled, error_type, note, retry_after, oversized=True)
        return Answer(settled, error_type, "", retry_after)

    def pause(self, retry_after: float | None) -> None:
        """Hold every request of the family after a 429 (not past the Retry-After cap).

        An advice above ``max_retry_after`` is not waited for: the 429 goes back to the caller
        with ``retry_after`` set, and the client stays usable.
        """
        policy = self._core.settings.retry
        if retry_after is None:
            self._pool.backoff.pause(policy.backoff(1))
        elif not policy.retry_after_too_long(retry_after):
            self._pool.backoff.pause(retry_after)

    async def retried(self, event: RetryEvent, call: Call) -> None:
        logger.info(
            "retrying after attempt %d (%s) in %.2f s",
            event.attempt,
            event.reason,
            event.wait,
            extra={"suprsend_idempotency_key": call.idempotency_key},
        )
        observer = self._core.observer
        if observer.active:
            await observer.retried(RetryInfo(call.kind, event.attempt, event.reason, event.wait))


async def _read_capped(response: httpx.Response, cap: int) -> tuple[bytes | None, int]:
    """The decoded body, or ``None`` (with the size reached) once it passes ``cap`` bytes.

    The decoded size counts, and gzip and deflate are inflated a bounded step at a time, so a
    small compressed answer cannot expand in memory beyond the cap (a gzip bomb).
    """
    try:
        read = response.content  # already read by the transport (a test's mock transport)
    except httpx.ResponseNotRead:
        pass
    else:
        return (read, len(read)) if len(read) <= cap else (None, len(read))
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "deflate", ""):
        # Encodings the SDK never asks for: httpx decodes them, a chunk at a time.
        return await _collect(response.aiter_bytes(), cap)
    return await _collect(_inflate(response.aiter_raw(), encoding, cap), cap)


async def _inflate(raw: AsyncIterator[bytes], encoding: str, cap: int) -> AsyncIterator[bytes]:
    if encoding in ("identity", ""):
        async for chunk in raw:
            yield chunk
        return
    # 16 + MAX_WBITS: a gzip header; for deflate, a zlib header (servers rarely send raw).
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    step = min(cap + 1, 1 << 20)
    try:
        async for chunk in raw:
            data = chunk
            while data:
                yield inflater.decompress(data, step)
                data = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(f"the answer's {encoding} body is corrupt: {exc}") from None


async def _collect(chunks: AsyncIterator[bytes], cap: int) -> tuple[bytes | None, int]:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            return None, size
        parts.append(chunk)
    return b"".join(parts), size


def _sent_tracer(on_sent: Callable[[], None]) -> Callable[[str, Any], Any]:
    """An httpcore trace callback that calls ``on_sent`` once the request starts going out."""

    async def trace(name: str, info: Any) -> None:
        if name.endswith("send_request_headers.started"):
            on_sent()

    return trace


class AsyncSuprsend:
    """The async client: trigger workflows with ``await``.

    ``workspace_key``, ``workspace_secret`` and ``base_url`` fall back to the environment
    variables ``SUPRSEND_WORKSPACE_KEY``, ``SUPRSEND_WORKSPACE_SECRET`` and
    ``SUPRSEND_BASE_URL``. Use it as ``async with AsyncSuprsend(...) as client:`` or call
    :meth:`aclose` when done. One client holds one connection pool: create it once per
    process (in a FastAPI lifespan, a worker's start-up) and share it.

    Options:

    * ``timeout``: seconds, or an ``httpx.Timeout`` (default 30 s read, 5 s connect; with an
      ``http_client``, that client's own); ``None`` means no limit;
    * ``max_retries``: retries of a transient failure (default 2; 0 turns retries off); the
      waits are tuned with ``retry_policy`` (a :class:`RetryPolicy`);
    * ``http_client``: an ``httpx.AsyncClient`` of yours to send through; the SDK never closes it;
    * ``limits``: pool limits of the SDK's own HTTP client; ``verify``: ``True`` (default),
      ``False``, a CA bundle path or an ``ssl.SSLContext``;
    * ``auto_idempotency_keys``: generate an idempotency key for every trigger that has none
      (default true), so retries are never processed twice;
    * ``log_bodies``: log request bodies at DEBUG level (default false: they hold personal data);
    * ``deadline``: seconds that a whole call may take, retries and waits included (default
      none); each call can set its own;
    * ``max_answer_bytes``: the most of an answer that is read, once decoded (default 4 MiB);
    * ``hooks``: a :class:`Hooks` of callbacks before and after each attempt, on each retry
      and on bulk progress; ``tracer_provider``/``meter_provider``: OpenTelemetry providers
      (default: the global ones, when ``opentelemetry-api`` is installed).

    ``timeout`` also caps each attempt as a whole: from connecting to the last byte of the
    answer, no attempt takes longer than its longest part (30 s by default).
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
        _auth: Auth | None = None,
    ) -> None:
        auth = _auth if _auth is not None else hmac_auth(workspace_key, workspace_secret)
        retry = retry_policy or RetryPolicy()
        if max_retries is not None:
            retry = replace(retry, max_retries=max_retries)
        if isinstance(timeout, NotGiven):
            # The caller's client keeps its own timeout unless one is given here.
            resolved = http_client.timeout if http_client is not None else DEFAULT_TIMEOUT
        else:
            resolved = as_timeout(timeout)
        settings = Settings(
            base_url=normalise_base_url(env("SUPRSEND_BASE_URL", base_url) or DEFAULT_BASE_URL),
            timeout=resolved,
            retry=retry,
            auto_idempotency_keys=auto_idempotency_keys,
            log_bodies=log_bodies,
            deadline=check_deadline(deadline),
            max_answer_bytes=_check_cap(max_answer_bytes),
        )
        pool = _Pool.build(
            http_client,
            limits=limits,
            verify=verify,
            timeout=resolved,
            tls=settings.base_url.startswith("https://"),
        )
        build_validators()
        observer = Observer(hooks, tracer_provider, meter_provider)
        self._bind(ClientCore(auth, settings, observer), pool, owner=True)

    def _bind(self, core: ClientCore, pool: _Pool, *, owner: bool) -> None:
        """Set every piece of per-client state; the constructor and ``with_options`` both
        come here, so a derived client shares exactly what is passed in: the pool."""
        self._core = core
        self._pool = pool
        self._owner = owner
        self._pipe = _Pipe(core, pool)
        self.workflows = AsyncWorkflows(self._pipe)
        """Workflow triggers: ``trigger``, ``bulk_trigger_instance``, ``bulk_trigger``."""
        self.bulk_workflows = AsyncBulkWorkflows(self._pipe)
        """Legacy bulk triggers of :class:`Workflow`: ``new_instance``, ``bulk_trigger``."""
        self.bulk_events = AsyncBulkEvents(self._pipe)
        """Many :class:`Event` at once: ``new_instance``, ``bulk_trigger``."""

    # -- construction -------------------------------------------------------------------

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
        """A client that authenticates with an API key (Bearer) instead of HMAC signing.

        ``workspace_uid`` and ``api_key`` fall back to ``SUPRSEND_WORKSPACE_UID`` and
        ``SUPRSEND_API_KEY``. Takes the same options as the constructor.
        """
        return cls(
            base_url=base_url,
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
            _auth=api_key_auth(workspace_uid, api_key),
        )

    def with_options(
        self,
        *,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
        max_retries: int | None = None,
        retry_policy: RetryPolicy | None = None,
        deadline: float | NotGiven | None = NOT_GIVEN,
        hooks: Hooks | None = None,
    ) -> Self:
        """A client with other per-call settings that shares this one's connection pool.

        ``client.with_options(timeout=5, max_retries=0).workflows.trigger(...)``;
        ``timeout=None`` and ``deadline=None`` mean no limit. The derived client does not own
        the pool: closing it is a no-op; close the original.
        """
        retry = retry_policy or self._core.settings.retry
        if max_retries is not None:
            retry = replace(retry, max_retries=max_retries)
        core = self._core.derive(
            timeout=None if isinstance(timeout, NotGiven) else as_timeout(timeout),
            retry=retry,
            deadline=deadline,
            hooks=hooks,
        )
        derived = object.__new__(type(self))
        derived._bind(core, self._pool, owner=False)
        return derived

    # -- settings -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API base URL, with exactly one trailing slash."""
        return self._core.settings.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force for this client."""
        return self._core.settings.retry

    @property
    def timeout(self) -> httpx.Timeout:
        """The request timeout in force for this client."""
        return self._core.settings.timeout

    @property
    def is_closed(self) -> bool:
        """Whether :meth:`aclose` was called on this client (or on the one it derives from)."""
        return self._pipe.closed or self._pool.closed

    # -- life cycle ---------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the client: nothing is sent once this starts.

        Calls still running (a retry waiting out its back-off, a request in flight, a bulk)
        are cancelled at once and given up to :data:`CLOSE_GRACE` seconds to settle their
        accounts (a bulk's records become ``not_sent`` or ``unknown``); each then raises
        :class:`SuprsendError`. Then the connections are closed (unless the pool is an
        ``http_client`` of yours, or shared from the client this one derives from).
        """
        self._pipe.closed = True
        if self._owner:
            await self._pool.close(CLOSE_GRACE)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"AsyncSuprsend(auth={self._core.auth!r}, base_url={self.base_url!r})"

    # -- single triggers ----------------------------------------------------------------

    async def trigger_workflow(
        self,
        workflow: Workflow | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Trigger a legacy dynamic workflow (``POST {workspace}/trigger/``).

        Raises :class:`SuprsendValidationError` for an invalid body, before sending. Failures of
        the call itself come back as a result with ``success=False``. ``deadline`` caps the
        whole call, retries included (default: the client's).
        """
        if not isinstance(workflow, Workflow):
            workflow = Workflow(workflow)
        pipe = self._pipe
        prepared = workflow.prepare(auto_idempotency_key=self._core.settings.auto_idempotency_keys)
        return await trigger_single(pipe, self._core.legacy_endpoint, prepared, deadline)

    async def track_event(
        self,
        event: Event | Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
    ) -> TriggerResponse:
        """Send an event (``POST v2/event/``): workflows triggered by it run for its user.

        Raises :class:`SuprsendValidationError` for an invalid event, before sending. The
        result has the same shape as a trigger's; retries keep the event's ``$insert_id`` and
        idempotency key. ``deadline`` caps the whole call (default: the client's).
        """
        return await track_event(self._pipe, event, deadline)


def _check_cap(max_answer_bytes: int) -> int:
    if max_answer_bytes < 1024:
        raise ValueError(f"max_answer_bytes must be at least 1024, not {max_answer_bytes!r}")
    return max_answer_bytes


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
