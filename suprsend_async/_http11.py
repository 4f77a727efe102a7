"""The SDK's own HTTP/1.1 connections to its base URL, on asyncio, for the client's own pool.

Why: at the service's speed the generic stack (httpx's client and transport, httpcore's pool
and connection, h11's state machine, anyio's socket streams) costs several times what a bulk
request itself needs: about 6 us of client CPU a record out of 17 (``docs/performance.md``).
A client the SDK builds sends to one origin, one request at a time per connection, with
headers it writes itself and answers it reads whole under a cap; that is a small protocol,
done here on an asyncio ``Protocol`` with no task or cancel scope of its own per request.

What it keeps of the generic stack's behaviour (each covered in
``tests/integration/test_http11.py``, and every integration test of the SDK runs through it):

* framing: ``Content-Length``, ``chunked`` (extensions and trailers skipped) and a body read
  until the server closes; interim 1xx heads skipped; 204, 304 and HEAD answers bodiless;
  anything malformed is an ``httpx.RemoteProtocolError`` and the connection is dropped;
* keep-alive: a connection is reused unless the answer says ``close``, is HTTP/1.0 or is read
  until close; an idle connection older than the keep-alive expiry, closed by the server, or
  with bytes waiting that nobody asked for is dropped before reuse (a socket poll, as httpcore
  does); the keep-alive budget closes the connections above it;
* timeouts, as httpx's ``Timeout`` means them: ``connect`` (TCP and TLS), ``write`` (while
  the socket's buffer is full), ``read`` (the longest silence while an answer is due) and
  ``pool`` (waiting for a connection when all are busy), raised as httpx's exceptions;
* "may have been sent": ``on_sent`` is called just before the first byte is handed to the
  socket, never earlier (a refused connection, a pool timeout or a cancelled wait sent
  nothing) and never later;
* TLS with the client's context (``verify``), with the host name checked;
* cancellation anywhere: the connection is aborted and its place in the pool given back.

The pool is used only where nothing else should see the request: not for a caller's
``http_client``, nor through a proxy, nor under trio, nor when a library has patched httpx's
or httpcore's request path (a mock such as respx, an instrumentation): then requests take
httpx's path (`Pipe`), as before.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import types
from collections import deque
from collections.abc import Callable
from typing import Any

import httpcore
import httpx

from ._core import Payload
from ._http_answer import AnswerReader, Exchange

__all__ = ["AttemptTimeout", "OriginPool", "httpx_patched"]

_SENDS = (
    (httpcore.AsyncConnectionPool, "httpcore._async.connection_pool"),
    (httpx.AsyncHTTPTransport, "httpx._transports.default"),
)


class AttemptTimeout(httpx.TimeoutException):
    """The attempt as a whole outlasted its cap (``limit``): a server that keeps every single
    wait short (a byte at a time) cannot hold an attempt longer than that."""


def _bounded(
    loop: asyncio.AbstractEventLoop, part: float | None, ends: float | None
) -> tuple[float | None, bool]:
    """How long a wait may last: its own timeout, or what is left of the attempt's cap if
    that is shorter; and whether the cap is the bound."""
    if ends is None:
        return part, False
    left = max(0.0, ends - loop.time())
    return (left, True) if part is None or left < part else (part, False)


def httpx_patched() -> bool:
    """Whether a library has replaced httpx's or httpcore's request path (a mock, a tracer):
    the SDK's requests then take that path, so it sees them. Asked of what is there now (a
    plain function of the library's own module, or something else), so it does not matter
    whether the SDK was imported before or after the patch."""
    for cls, module in _SENDS:
        send = cls.handle_async_request
        if type(send) is not types.FunctionType or send.__module__ != module:
            return True
    return False


# -- one connection -----------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    """One keep-alive connection: one request at a time, its answer read as it arrives."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        # asyncio's transport, or another loop's with the same methods (uvloop's is no
        # subclass of asyncio.Transport)
        self.transport: Any = None
        self.answer: AnswerReader | None = None
        self.done: asyncio.Future[Exchange] | None = None
        self.drained: asyncio.Future[None] | None = None
        self.paused = False
        self.closed = False
        self.idle_since = 0.0
        self.last_read = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # asyncio's callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        answer = self.answer
        if answer is None or self.done is None or self.done.done():
            self.close()  # bytes nobody asked for: the connection cannot be trusted
            return
        self.last_read = self.loop.time()
        try:
            complete = answer.feed(data)
        except httpx.RemoteProtocolError as exc:
            self._fail(exc)
            return
        if complete:
            self.done.set_result(answer.result())

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.drained is not None and not self.drained.done():
            self.drained.set_exception(httpx.WriteError(f"connection lost: {exc}"))
        done, answer = self.done, self.answer
        if done is None or done.done() or answer is None:
            return
        if answer.at_close() and exc is None:  # a reset is not the end of the answer
            answer.keep_alive = False
            done.set_result(answer.result())
        elif answer.exchange is None and not answer.buffer:
            done.set_exception(
                httpx.RemoteProtocolError("Server disconnected without sending a response.")
            )
        else:
            done.set_exception(httpx.RemoteProtocolError("the server closed mid-answer"))

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drained is not None and not self.drained.done():
            self.drained.set_result(None)

    # use

    def _fail(self, exc: BaseException) -> None:
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    def reusable(self, expiry: float | None) -> bool:
        """Whether this idle connection may carry another request now."""
        if self.closed or self.transport is None or self.transport.is_closing():
            return False
        if expiry is not None and self.loop.time() - self.idle_since > expiry:
            return False
        sock = self.transport.get_extra_info("socket")
        if sock is None:
            return False
        # Readable while idle: the server closed it (or sent what nobody asked for). The event
        # loop may not have said so yet.
        return not _readable(sock.fileno())

    async def exchange(
        self,
        message: Payload,
        answer: AnswerReader,
        timeout: httpx.Timeout,
        on_sent: Callable[[], None] | None,
        ends: float | None,
    ) -> Exchange:
        if self.closed or self.transport is None:
            # Closed between the pool's check and now: nothing was written.
            raise httpx.RemoteProtocolError("the connection closed before the request went out")
        self.answer = answer
        self.done = self.loop.create_future()
        if on_sent is not None:
            on_sent()
        self.transport.write(message.data)
        try:
            if self.paused:
                await self._drain(self.done, timeout.write, ends)
            # The answer's silence counts from here: writing a large body is not reading.
            self.last_read = self.loop.time()
            if timeout.read is not None or ends is not None:
                self._watch(timeout.read, ends)
            return await self.done
        finally:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            self.done = None
            self.answer = None

    async def _drain(
        self, done: asyncio.Future[Exchange], limit: float | None, ends: float | None
    ) -> None:
        """Wait while the socket's buffer is full: until it drains, or the answer comes
        (a server may answer, say a 413, before it has read the whole request)."""
        drained = self.drained = self.loop.create_future()
        wait, capped = _bounded(self.loop, limit, ends)
        try:
            await asyncio.wait((drained, done), timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if done.done():
                if self.answer is not None:
                    self.answer.keep_alive = False  # the rest of the request is still queued
                return
            if drained.done():
                drained.result()  # raises if the connection was lost meanwhile
                return
        finally:
            if not drained.done():
                drained.cancel()  # nobody waits for it now, and nothing is set on it later
            self.drained = None
        if capped:
            raise AttemptTimeout("the attempt outlasted its cap")
        raise httpx.WriteTimeout("writing the request timed out")

    def _watch(self, limit: float | None, ends: float | None) -> None:
        """Fail the answer after ``limit`` seconds without a byte, or at ``ends`` (the
        attempt's cap); checked again as the time comes (bytes re-arm nothing)."""
        now = self.loop.time()
        if ends is not None and now >= ends:
            self._fail(AttemptTimeout("the attempt outlasted its cap"))
            return
        quiet = now - self.last_read
        if limit is not None and quiet >= limit:
            self._fail(httpx.ReadTimeout("reading the answer timed out"))
            return
        wait = min(
            limit - quiet if limit is not None else float("inf"),
            ends - now if ends is not None else float("inf"),
        )
        self.timer = self.loop.call_later(wait, self._watch, limit, ends)


def _readable(fd: int) -> bool:
    """Whether a read on ``fd`` would not block, asked without waiting (poll has no limit on
    descriptor numbers; select, where poll is missing, does)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])


# -- the pool -----------------------------------------------------------------------------


class OriginPool:
    """Keep-alive connections to one origin, within the client's ``httpx.Limits``.

    A request takes an idle connection (the most recently used first), or opens one while the
    budget allows, or waits (first come, first served) for the next one given back, at most
    the pool timeout.
    """

    def __init__(
        self,
        origin: httpx.URL,
        limits: httpx.Limits,
        tls: Callable[[], Any],
    ) -> None:
        self.scheme = origin.scheme
        self.host = origin.raw_host.decode("ascii")  # an IDN host in its ASCII form
        self.port = origin.port or (443 if origin.scheme == "https" else 80)
        self.max = limits.max_connections or 100
        keep = limits.max_keepalive_connections
        self.keep = self.max if keep is None else keep
        self.expiry = limits.keepalive_expiry
        self._tls = tls
        self._context: ssl.SSLContext | None = None
        self._idle: list[_Connection] = []
        self._busy = 0  # connections in use or being opened
        self._waiters: deque[asyncio.Future[_Connection | None]] = deque()
        self._closed = False
        self._serves: dict[httpx.URL, bool] = {}
        host = self.host if ":" not in self.host else f"[{self.host}]"
        default = self.port == (443 if self.scheme == "https" else 80)
        self.host_header = (host if default else f"{host}:{self.port}").encode("ascii")

    def serves(self, url: httpx.URL) -> bool:
        """Whether requests to ``url`` go to this origin (remembered per URL)."""
        known = self._serves.get(url)
        if known is None:
            port = url.port or (443 if url.scheme == "https" else 80)
            host = url.raw_host.decode("ascii")
            known = url.scheme == self.scheme and host == self.host and port == self.port
            if len(self._serves) < 256:
                self._serves[url] = known
        return known

    def message(self, method: bytes, target: bytes, headers: bytes, body: bytes | None) -> bytes:
        """A request's bytes. ``headers`` are its header lines (each ending in CRLF) but
        ``Host`` and ``Content-Length``, added here; ``body`` ``None`` sends none and no
        length (a GET)."""
        data = b"%s %s HTTP/1.1\r\nHost: %s\r\n%s" % (method, target, self.host_header, headers)
        if body is None:
            return data + b"\r\n"
        return b"".join((data, b"Content-Length: %d\r\n\r\n" % len(body), body))  # one copy

    async def request(
        self,
        message: Payload,
        *,
        head_only: bool,
        timeout: httpx.Timeout,
        cap: int,
        on_sent: Callable[[], None] | None,
        limit: float | None = None,
    ) -> Exchange:
        """Send one request (its bytes, from `message`, held in a `Payload` so that no
        waiting frame shows them) and read its answer, all within ``limit`` seconds (else
        `AttemptTimeout`)."""
        ends = None if limit is None else asyncio.get_running_loop().time() + limit
        connection = await self._acquire(timeout, ends)
        answer = AnswerReader(cap, head_only)
        try:
            if connection is None:
                connection = await self._open(timeout, ends)
            exchange = await connection.exchange(message, answer, timeout, on_sent, ends)
        except BaseException:
            if connection is not None:
                connection.close()
            self._release(None)
            raise
        if answer.keep_alive and not self._closed:
            self._release(connection)
        else:
            connection.close()
            self._release(None)
        return exchange

    async def _open(self, timeout: httpx.Timeout, ends: float | None = None) -> _Connection:
        loop = asyncio.get_running_loop()
        context = None
        if self.scheme == "https":
            if self._context is None:
                setting = await asyncio.to_thread(self._tls)  # reads CA files: off the loop
                self._context = _as_context(setting)
            context = self._context
        wait, capped = _bounded(loop, timeout.connect, ends)
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: _Connection(loop),
                    self.host,
                    self.port,
                    ssl=context,
                    server_hostname=self.host if context is not None else None,
                ),
                wait,
            )
        except TimeoutError:
            if capped:
                raise AttemptTimeout("the attempt outlasted its cap") from None
            raise httpx.ConnectTimeout("connecting timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from None
        return connection

    async def _acquire(
        self, timeout: httpx.Timeout, ends: float | None = None
    ) -> _Connection | None:
        """An idle connection, or ``None`` for a place to open one."""
        if self._closed:
            raise httpx.TransportError("the transport is closed")
        if not self._waiters:  # nobody queued: no one to overtake
            while self._idle:
                connection = self._idle.pop()
                if connection.reusable(self.expiry):
                    self._busy += 1
                    return connection
                connection.close()
            if self._busy < self.max:
                self._busy += 1
                return None
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        wait, capped = _bounded(loop, timeout.pool, ends)
        try:
            given = await asyncio.wait_for(asyncio.shield(waiter), wait)
        except TimeoutError:
            self._abandon(waiter)
            if capped:
                raise AttemptTimeout("the attempt outlasted its cap") from None
            raise httpx.PoolTimeout(
                f"no connection became free within the pool timeout ({timeout.pool:g} s)"
            ) from None
        except BaseException:
            self._abandon(waiter)
            raise
        if given is not None and not given.reusable(self.expiry):
            given.close()
            given = None
        return given

    def _abandon(self, waiter: asyncio.Future[_Connection | None]) -> None:
        """A request that stopped waiting: pass on the place it was handed meanwhile."""
        if not waiter.done():
            waiter.cancel()
            self._waiters.remove(waiter)
        elif not waiter.cancelled() and waiter.exception() is None:
            self._release(waiter.result())

    def _release(self, connection: _Connection | None) -> None:
        """A request is done with its place (and its connection, kept if given)."""
        if connection is not None:
            connection.idle_since = connection.loop.time()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)  # the place passes on, with the connection
                return
        self._busy -= 1
        if connection is not None:
            if len(self._idle) < self.keep and not self._closed:
                self._idle.append(connection)
            else:
                connection.close()

    async def aclose(self) -> None:
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(httpx.TransportError("the transport is closed"))
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _as_context(setting: Any) -> ssl.SSLContext:
    """The TLS context of a ``verify`` setting (see ``_transport.tls_setting``)."""
    if isinstance(setting, ssl.SSLContext):
        return setting
    if setting is False:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    return ssl.create_default_context()
