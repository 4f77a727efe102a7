"""The SDK's own HTTP transport: one connection pool made of small shards.

httpcore's pool re-examines every connection it holds (and, for idle ones, asks the socket
whether the server hung up) each time a request starts or ends, so its cost per request grows
with the number of connections; with many requests queued it grows with their product. Under
the concurrency a bulk or a ``gather`` of triggers produces, that bookkeeping costs more CPU
than the request itself (profiled in ``docs/performance.md``).

Splitting the same connection budget into shards keeps every scan short; with one connection
per shard there is nothing else to scan (measured against shards of 4: 13-17% more records per
second in the bulk benchmark). A request goes to an idle open shard, or opens the next one, so
connections are reused as before and the total stays within ``limits.max_connections``. When
every connection is busy and no shard may open, requests queue here, in arrival order, and each
takes the first connection that frees (whichever shard it is in), waiting at most the request's
pool timeout. This is an internal detail of clients the SDK builds; an ``http_client`` passed in
by the caller is used as it is.
"""

from __future__ import annotations

import heapq
import importlib
import math
import os
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from functools import lru_cache

import anyio
import httpx

__all__ = ["HANDED", "ShardedTransport", "default_ssl_context", "tls_setting"]

HANDED = "suprsend.handed"
"""A request extension: called when the request leaves the queue for a connection."""


def default_ssl_context() -> ssl.SSLContext:
    """The verifying TLS context, built once per set of CA settings (loading CAs reads files).

    As httpx does with ``verify=True``: the CA bundle named by ``SSL_CERT_FILE``, else the CA
    directory named by ``SSL_CERT_DIR``, else certifi's bundle.
    """
    return _context_for(
        os.environ.get("SSL_CERT_FILE") or None, os.environ.get("SSL_CERT_DIR") or None
    )


@lru_cache(maxsize=4)
def _context_for(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    if cafile is not None:
        return ssl.create_default_context(cafile=cafile)
    if capath is not None:
        return ssl.create_default_context(capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


def tls_setting(verify: bool | str | ssl.SSLContext) -> Callable[[], bool | ssl.SSLContext]:
    """How to get the TLS setting for ``verify``: a function, since building it reads files.

    ``True`` is the shared default context, a string is a CA bundle to trust instead, ``False``
    turns verification off (never do this in production), a context is used as given.
    """
    if verify is True:
        return default_ssl_context
    if isinstance(verify, str):
        path = verify
        return lambda: ssl.create_default_context(cafile=path)
    setting = verify
    return lambda: setting


CONNECTIONS_PER_SHARD = 1


def _share(total: int, parts: int, index: int, least: int = 1) -> int:
    """Part ``index`` of ``total`` split into ``parts`` near-equal whole parts (at least
    ``least``)."""
    return max(least, total // parts + (1 if index < total % parts else 0))


class _CountedStream(httpx.AsyncByteStream):
    """A response body that tells its shard when the connection is released."""

    def __init__(self, inner: httpx.AsyncByteStream, release: _Release) -> None:
        self._inner = inner
        self._release = release

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._inner:
            yield chunk

    async def aclose(self) -> None:
        try:
            await self._inner.aclose()
        finally:
            self._release()


class _Release:
    """Gives a request's connection slot back, once."""

    __slots__ = ("_done", "_index", "_transport")

    def __init__(self, transport: ShardedTransport, index: int) -> None:
        self._transport = transport
        self._index = index
        self._done = False

    def __call__(self) -> None:
        if not self._done:
            self._done = True
            self._transport._free(self._index)


class _Waiter:
    """A request queued for a connection: ``slot`` is the shard it is handed (-1: closed)."""

    __slots__ = ("event", "slot")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.slot: int | None = None


class ShardedTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport spreading requests over small ``AsyncHTTPTransport`` shards.

    Shards are opened as concurrency needs them (the open ones fill up before another opens),
    so a client with 16 requests in flight builds 16 one-connection shards, not 100.
    ``tls=False`` (an ``http://`` base URL) skips loading CA files, which no request of such a
    client needs; an ``https://`` request through it is refused.

    Free connection slots are kept in a heap of shard indexes (lowest first, so the shards
    within the keep-alive budget are reused first); a request takes one without waiting, or
    queues (first come, first served) until a slot is given back, and then gets it directly.
    """

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        verify: bool | ssl.SSLContext | Callable[[], bool | ssl.SSLContext],
        per_shard: int = CONNECTIONS_PER_SHARD,
        tls: bool = True,
    ) -> None:
        total = limits.max_connections or 100
        keepalive = (
            total
            if limits.max_keepalive_connections is None
            else (limits.max_keepalive_connections)
        )
        count = max(1, math.ceil(total / per_shard))
        # Split both budgets exactly: the shards together never exceed the caller's limits.
        self._limits = [
            httpx.Limits(
                max_connections=_share(total, count, i),
                # A shard beyond the keep-alive budget closes its connection after each use.
                max_keepalive_connections=_share(keepalive, count, i, least=0),
                keepalive_expiry=limits.keepalive_expiry,
            )
            for i in range(count)
        ]
        self._sizes = [limit.max_connections or 1 for limit in self._limits]
        # httpx imports httpcore (and h11) when its first transport is made: about 50 ms,
        # paid here with the client rather than on the event loop inside the first request.
        importlib.import_module("httpcore")
        self._count = count
        self._verify = verify
        self._tls = tls
        self._setting: bool | ssl.SSLContext | None = None
        self._shards: list[httpx.AsyncHTTPTransport] = []
        self._busy: list[int] = []  # requests in each shard
        self._spare: list[int] = []  # a heap: one entry per free slot of an open shard
        self._waiters: deque[_Waiter] = deque()
        self._lock = anyio.Lock()
        self._closed = False

    async def _resolve_tls(self) -> bool | ssl.SSLContext:
        # Resolved on first use: a TLS context reads CA files, which must not happen on the
        # event loop (nor in a constructor that async code calls), so it is made in a thread.
        async with self._lock:
            if self._closed:
                raise httpx.TransportError("the transport is closed")
            if self._setting is None:
                verify = self._verify
                if not self._tls:
                    # Never used for TLS (https is refused); with no trusted CAs it would fail
                    # closed if it ever were.
                    verify = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                elif callable(verify):
                    verify = await anyio.to_thread.run_sync(verify)
                self._setting = verify
        return self._setting

    @property
    def shard_count(self) -> int:
        """How many sub-pools the connection budget is split into, at most."""
        return self._count

    async def _acquire(self, request: httpx.Request) -> int:
        """A slot in some shard: a free one, a new shard's, or the first one given back."""
        while not self._waiters:  # nobody queued: no one to overtake
            if self._closed:
                raise httpx.TransportError("the transport is closed")
            if self._spare:
                index = heapq.heappop(self._spare)
                self._busy[index] += 1
                return index
            opened = len(self._shards)
            if opened == self._count:
                break
            if self._setting is None:
                await self._resolve_tls()
                continue  # others may have taken or opened slots meanwhile
            self._shards.append(
                httpx.AsyncHTTPTransport(limits=self._limits[opened], verify=self._setting)
            )
            self._busy.append(1)
            for _ in range(self._sizes[opened] - 1):
                heapq.heappush(self._spare, opened)
            return opened
        # Not closed here: closing empties the queue, and a closed transport queues no one.
        return await self._wait(request)

    async def _wait(self, request: httpx.Request) -> int:
        timeouts = request.extensions.get("timeout")
        limit = timeouts.get("pool") if isinstance(timeouts, dict) else None
        waiter = _Waiter()
        self._waiters.append(waiter)
        try:
            with anyio.move_on_after(limit):
                await waiter.event.wait()
        except BaseException:  # cancelled: give back a slot handed over meanwhile
            if waiter.slot is None:
                self._waiters.remove(waiter)
            elif waiter.slot >= 0:
                self._free(waiter.slot)
            raise
        if waiter.slot is None:
            self._waiters.remove(waiter)
            raise httpx.PoolTimeout(
                f"no connection became free within the pool timeout ({limit:g} s)",
                request=request,
            )
        if waiter.slot < 0:
            raise httpx.TransportError("the transport is closed")
        return waiter.slot

    def _free(self, index: int) -> None:
        """A request is done with its slot in shard ``index``: hand it on or keep it."""
        self._busy[index] -= 1
        if self._waiters and not self._closed:
            waiter = self._waiters.popleft()
            waiter.slot = index
            self._busy[index] += 1
            waiter.event.set()
        else:
            heapq.heappush(self._spare, index)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._tls and request.url.scheme == "https":
            raise httpx.UnsupportedProtocol("this client was made for an http:// base URL")
        index = await self._acquire(request)
        release = _Release(self, index)
        handed = request.extensions.get(HANDED)
        if handed is not None:
            handed()  # out of the queue: from here on it may be written to a connection
        try:
            response = await self._shards[index].handle_async_request(request)
        except BaseException:
            release()
            raise
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        response.stream = _CountedStream(stream, release)
        return response

    async def aclose(self) -> None:
        self._closed = True
        while self._waiters:  # queued requests fail now rather than wait for a slot
            waiter = self._waiters.popleft()
            waiter.slot = -1
            waiter.event.set()
        for shard in self._shards:
            await shard.aclose()
