"""How requests reach the network: the pool a family of clients shares, and one attempt.

Every request, single, bulk or a management call, is made by `Pipe.attempt`: sign
(afresh per attempt) -> send -> read the answer under its cap. The retry loop (``_retry``)
drives attempts; the namespaces and the bulk engine reach this module only through the
`Sender` interface.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import math
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import anyio.lowlevel
import httpx

from ._core import (
    Answer,
    Call,
    ClientCore,
    Endpoint,
    Payload,
    PerCall,
    Reply,
    attempt_limit,
    check_deadline,
    forked_message,
)
from ._decode import available_codings, decode_capped, read_capped
from ._errors import SuprsendError
from ._http11 import AttemptTimeout, OriginPool, httpx_patched
from ._http_answer import Exchange
from ._observe import AttemptEnd, AttemptStart, Observer, RetryInfo
from ._options import PoolOptions
from ._responses import ErrorType
from ._retry import RetryEvent, SharedBackoff, parse_retry_after
from ._transport import HANDED, ShardedTransport, tls_setting
from ._types import NotGiven

__all__ = ["CLOSE_GRACE", "Life", "Pipe", "Pool"]

logger = logging.getLogger("suprsend_async")


class Life(enum.Enum):
    """Where a client is in its life: open, closing (nothing more is sent), closed."""

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


def _proxies_from_environment() -> bool:
    proxies = urllib.request.getproxies_environment()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


class Pool:
    """The connection pool a family of clients shares: one owner, and those derived from it.

    Holds the HTTP client, the SDK's own transport (when it built the client), the pause that
    a 429 puts on every request of the family, and where the family is in its `Life`.
    """

    __slots__ = (
        "_idle",
        "backoff",
        "http",
        "life",
        "loop",
        "on_asyncio",
        "operations",
        "origin",
        "owned",
        "pid",
        "reports_sending",
        "transport",
    )

    def __init__(
        self,
        http: httpx.AsyncClient,
        transport: ShardedTransport | None,
        *,
        owned: bool,
        origin: OriginPool | None = None,
    ) -> None:
        self.http = http
        self.transport = transport
        self.owned = owned
        self.origin = origin
        """The SDK's own connections to the base URL (``_http11``): the way of its own
        requests when nothing else must see them (see `Pipe.own_way`)."""
        self.on_asyncio = False
        self.reports_sending = False
        """Whether a request through this pool has reported the start of its writing (the
        ``trace`` extension). Until one has, a request counts as possibly sent once it is
        handed over: a mocking library, or a transport of the caller's, may never report it."""
        self.backoff = SharedBackoff()
        self.life = Life.OPEN
        self.pid = os.getpid()
        self.loop: object = None  # the event loop the pool's connections belong to
        self.operations: set[anyio.CancelScope] = set()  # calls running: close() cancels them
        self._idle: anyio.Event | None = None  # set when closing and the last call has left

    @classmethod
    def build(cls, options: PoolOptions, *, timeout: httpx.Timeout, base_url: str) -> Pool:
        if options.http_client is not None:
            return cls(options.http_client, None, owned=False)
        if _proxies_from_environment():
            # HTTP(S)_PROXY is set: let httpx route through it (building the TLS context here,
            # once, is the price of that rarer set-up).
            http = httpx.AsyncClient(
                limits=options.limits,
                verify=tls_setting(options.verify)(),
                trust_env=True,
                follow_redirects=False,
                timeout=timeout,
            )
            return cls(http, None, owned=True)
        # With its own client the SDK sends straight through its transport: it sets every
        # header itself and needs none of the client layer's per-request work (URL merging,
        # cookie jars, auth and redirect flows), which costs more than the request.
        tls = base_url.startswith("https://")
        verify = tls_setting(options.verify)
        transport = ShardedTransport(limits=options.limits, verify=verify, tls=tls)
        http = httpx.AsyncClient(transport=transport, follow_redirects=False, timeout=timeout)
        origin = OriginPool(httpx.URL(base_url), options.limits, verify)
        return cls(http, transport, owned=True, origin=origin)

    def check_usable(self) -> None:
        if self.life is not Life.OPEN:
            raise SuprsendError("this client is closed; create a new one")
        if os.getpid() != self.pid:
            raise SuprsendError(forked_message(self.pid))
        if self.on_asyncio:
            try:
                if asyncio.get_running_loop() is self.loop:
                    return  # the loop it was first used in (asked the quick way)
            except RuntimeError:
                pass  # not on asyncio now: the general question below says where
        loop = anyio.lowlevel.current_token().native_token
        if self.loop is None:
            self.loop = loop
            self.on_asyncio = isinstance(loop, asyncio.AbstractEventLoop)
        elif self.loop is not loop:
            raise SuprsendError(
                "this client was first used in another event loop, which owns its connections;"
                " an AsyncSuprsend belongs to one event loop. Create the client inside the loop"
                " that uses it (one per asyncio.run(), e.g. in a FastAPI lifespan), or use the"
                " sync Suprsend, which keeps its own loop"
            )

    def left(self, scope: anyio.CancelScope) -> None:
        """A call's scope has ended: when closing waits for the last one, wake it."""
        self.operations.discard(scope)
        if not self.operations and self._idle is not None:
            self._idle.set()

    async def close(self, grace: float) -> None:
        """Stop everything: cancel running calls, wait (at most ``grace`` s) for them to
        settle their accounts, then close the connections. Nothing is sent after this starts."""
        self.life = Life.CLOSING
        self.backoff.pause(0)
        self._idle = anyio.Event()
        if not self.operations:
            self._idle.set()
        for scope in list(self.operations):
            scope.cancel()
        # Shielded: closing inside a cancelled scope (a shutdown timeout) still closes.
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(grace):
                await self._idle.wait()
            if self.owned:
                if self.origin is not None:
                    await self.origin.aclose()
                await self.http.aclose()
        self.life = Life.CLOSED


_READABLE = ", ".join(c for c in ("gzip", "deflate", "br", "zstd") if c in available_codings())
_COMMON_LINES = (
    f"Accept: */*\r\nAccept-Encoding: {_READABLE}\r\nConnection: keep-alive\r\n"
).encode()
"""What httpx's client adds to every request, in its order; the codings the SDK can read."""

CLOSE_GRACE = 5.0
"""Seconds ``aclose()``/``close()`` wait for cancelled calls to settle their accounts."""


class Pipe:
    """One client's way to the network: its core's settings over the family's pool.

    The `Sender` that namespaces and the bulk engine use.
    """

    __slots__ = ("_core", "_pool", "own_life")

    def __init__(self, core: ClientCore, pool: Pool) -> None:
        self._core = core
        self._pool = pool
        self.own_life = Life.OPEN  # this client's own aclose(); the pool's life is shared

    @property
    def core(self) -> ClientCore:
        return self._core

    @property
    def life(self) -> Life:
        """This client's life: its own close, else the family's."""
        return self.own_life if self.own_life is not Life.OPEN else self._pool.life

    def check_usable(self) -> None:
        if self.own_life is not Life.OPEN:
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
            pool.left(scope)
        if scope.cancelled_caught and self.life is not Life.OPEN:
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
        if pool.backoff.remaining > 0:
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
            answer = await self._exchange(endpoint, payload, on_sent, call)
        if answer.status_code == 429:
            self.pause(answer.retry_after)
        if logger.isEnabledFor(logging.DEBUG):
            response = answer.response
            request_id = response.headers.get("x-request-id") if response is not None else None
            logger.debug(
                "%s %s -> %s in %.1f ms (attempt %d, request id %s)",
                endpoint.method,
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
            endpoint.method,
            endpoint.url,
            call.attempts,
            call.kind,
            call.bulk,
            call.records,
            call.idempotency_key,
        )
        await observer.before_attempt(start)
        with observer.attempt_span(start, parsed.host, parsed.port) as span:
            answer = await self._exchange(endpoint, payload, on_sent, call)
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
        self,
        endpoint: Endpoint,
        payload: Payload,
        on_sent: Callable[[], None] | None,
        call: Call,
    ) -> Answer:
        """One request and its answer, any failure to get one turned into an `Answer`."""
        own = call.per_call.timeout if call.per_call is not None else None
        limit = self._core.settings.attempt_limit if own is None else attempt_limit(own)
        origin = self.own_way(endpoint)
        try:
            if origin is not None:  # keeps the cap itself, without a cancel scope
                return await self._post_own(origin, endpoint, payload, on_sent, call, limit)
            with anyio.fail_after(limit):
                return await self._post(endpoint, payload, on_sent, call)
        except (TimeoutError, AttemptTimeout):
            return Answer(None, "timeout", f"timed out: the attempt took over {limit:g} s")
        except httpx.TimeoutException as exc:
            return Answer(None, "timeout", f"timed out: {type(exc).__name__}")
        except httpx.TransportError as exc:
            where = endpoint.parsed.netloc.decode("ascii", "replace")
            return Answer(None, "connection", f"connection error: {_describe(exc)} ({where})")
        except httpx.RequestError as exc:  # an answer that could not be read (bad encoding...)
            return Answer(None, "connection", f"unreadable answer: {_describe(exc)}")

    def _request(
        self, endpoint: Endpoint, payload: Payload, report: _SentReport | None, call: Call
    ) -> httpx.Request:
        """The signed request. Built in its own frame: the headers (the credentials) are
        never a plain local of a frame that waits on I/O."""
        pool = self._pool
        per_call = call.per_call
        timeout = per_call.timeout if per_call is not None else None
        extensions: dict[str, Any] = {"timeout": (timeout or self._core.settings.timeout).as_dict()}
        if report is not None:
            extensions["trace"] = report.trace
            if pool.transport is not None:
                extensions[HANDED] = report.handed
        headers = self._signed(endpoint, payload, per_call)
        content = payload.data if payload.data or endpoint.method != "GET" else None
        if pool.transport is None:  # another client: its hooks, mounts and defaults apply
            return pool.http.build_request(
                endpoint.method,
                endpoint.url,
                content=content,
                headers=headers,
                extensions=extensions,
            )
        return httpx.Request(
            endpoint.method,
            endpoint.parsed,
            content=content,
            headers=headers,
            extensions=extensions,
        )

    def _signed(
        self, endpoint: Endpoint, payload: Payload, per_call: PerCall | None
    ) -> dict[str, str]:
        """The headers of one attempt, signed now, with the call's own added (both ways)."""
        headers = self._core.headers(endpoint, payload.data)
        if per_call is not None and per_call.extra_headers:
            headers.update(per_call.extra_headers)
        return headers

    def own_way(self, endpoint: Endpoint) -> OriginPool | None:
        """The SDK's own connections, when this request may take them: a client the SDK
        built, on asyncio, to its base URL, with nothing patched into httpx's request path
        that expects to see the request (a mock, an instrumentation)."""
        pool = self._pool
        origin = pool.origin
        if origin is None or not pool.on_asyncio or httpx_patched():
            return None
        return origin if origin.serves(endpoint.parsed) else None

    async def _post(
        self,
        endpoint: Endpoint,
        payload: Payload,
        on_sent: Callable[[], None] | None,
        call: Call,
    ) -> Answer:
        pool = self._pool
        report = _SentReport(on_sent, pool) if on_sent is not None else None
        request = self._request(endpoint, payload, report, call)
        try:
            if pool.transport is None:
                response = await pool.http.send(request, stream=True)
            else:
                response = await pool.transport.handle_async_request(request)
                response.request = request
        except BaseException:
            if report is not None:
                report.settle(answered=False)
            raise
        if report is not None:
            report.settle(answered=True)
        cap = self._core.settings.max_answer_bytes
        try:
            body, size = await read_capped(response, cap)
        finally:
            await response.aclose()
        return self._settled(endpoint, response.status_code, response.headers.raw, body, size, cap)

    async def _post_own(
        self,
        origin: OriginPool,
        endpoint: Endpoint,
        payload: Payload,
        on_sent: Callable[[], None] | None,
        call: Call,
        limit: float | None,
    ) -> Answer:
        """`_post` over the SDK's own connections: the same request and the same answer,
        within ``limit`` seconds."""
        per_call = call.per_call
        settings = self._core.settings
        timeout = settings.timeout
        if per_call is not None and per_call.timeout is not None:
            timeout = per_call.timeout
        cap = settings.max_answer_bytes
        exchange = await origin.request(
            self._message(origin, endpoint, payload, per_call),
            head_only=endpoint.method == "HEAD",
            timeout=timeout,
            cap=cap,
            on_sent=on_sent,
            limit=limit,
        )
        return await self._settle_own(endpoint, exchange, cap)

    def _message(
        self, origin: OriginPool, endpoint: Endpoint, payload: Payload, per_call: PerCall | None
    ) -> Payload:
        """The request's bytes, signed now: built in its own frame (as `_request` builds its
        request), so the credentials are never a plain local of a frame that waits on I/O."""
        headers = self._signed(endpoint, payload, per_call)
        lines = _COMMON_LINES + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
        body = payload.data if payload.data or endpoint.method != "GET" else None
        return Payload(origin.message(endpoint.method_bytes, endpoint.target, lines, body))

    async def _settle_own(self, endpoint: Endpoint, exchange: Exchange, cap: int) -> Answer:
        codings = exchange.values(b"content-encoding")
        body, size = (
            (exchange.body, exchange.size)
            if exchange.body is None or not codings
            else await decode_capped(codings, exchange.body, cap)
        )
        return self._settled(endpoint, exchange.status, exchange.headers, body, size, cap)

    @staticmethod
    def _settled(
        endpoint: Endpoint,
        status: int,
        raw_headers: list[tuple[bytes, bytes]],
        body: bytes | None,
        size: int,
        cap: int,
    ) -> Answer:
        """An answer read (``body`` ``None`` past the cap) as the `Answer` both ways give."""
        headers = [
            (k, v)
            for k, v in raw_headers
            if k.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")
        ]
        response = Reply(status, headers, body or b"")
        # Read on any answer: a 207 may carry it for the records it refused with 429.
        retry_after = parse_retry_after(response.header(b"retry-after"))
        error_type: ErrorType | None = "http" if response.is_error else None
        if body is None:
            note = f"the answer was over {cap:,} bytes (at least {size:,}) and was discarded"
            logger.warning("%s %s: %s", endpoint.method, endpoint.uri, note)
            return Answer(response, error_type, note, retry_after, oversized=True)
        return Answer(response, error_type, "", retry_after)

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


class _SentReport:
    """Calls ``on_sent`` once, when a request may have reached the service.

    httpcore reports each step of a request through the ``trace`` extension: the start of
    writing its headers is the moment it may reach the service. A path that reports nothing
    (a mocking library, a transport of the caller's) is settled when the attempt ends: a
    request that got an answer was sent; one that failed or was cancelled counts as possibly
    sent once it was handed over, unless the path has shown that it reports its steps (this
    request's or an earlier one's trace), or it was still queued in the SDK's own transport.
    """

    __slots__ = ("done", "handed_over", "on_sent", "pool", "traced")

    def __init__(self, on_sent: Callable[[], None], pool: Pool) -> None:
        self.on_sent = on_sent
        self.pool = pool
        self.done = False
        self.traced = False
        # Through another client a request is in the caller's hands at once; the SDK's own
        # transport says when it leaves the queue for a connection.
        self.handed_over = pool.transport is None

    def handed(self) -> None:
        """The SDK's own transport gave the request a connection."""
        self.handed_over = True

    def sent(self) -> None:
        if not self.done:
            self.done = True
            self.on_sent()

    def settle(self, *, answered: bool) -> None:
        """The attempt ended: decide for a path that did not report the writing."""
        if self.done:
            return
        if answered:
            if not self.traced:
                # An answer came and nothing reported a step: a mock (or a transport that
                # does not trace) is in the way now.
                self.pool.reports_sending = False
            self.sent()
        elif self.handed_over and not (self.traced or self.pool.reports_sending):
            self.sent()

    async def trace(self, name: str, info: Any) -> None:
        self.traced = True
        self.pool.reports_sending = True
        if name.endswith("send_request_headers.started"):
            self.sent()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
