"""The SDK's own HTTP transport: one connection pool made of small shards.

httpcore's pool re-examines every connection it holds (and, for idle ones, asks the socket
whether the server hung up) each time a request starts or ends, so its cost per request grows
with the number of connections; with many requests queued it grows with their product. Under
the concurrency a bulk or a ``gather`` of triggers produces, that bookkeeping costs more CPU
than the request itself (profiled in ``docs/performance.md``).

Splitting the same connection budget into shards keeps every scan short; with one connection
per shard there is nothing else to scan (measured against shards of 4: 13-17% more records per
second in the bulk benchmark). A request goes to an idle open shard, or opens the next one, so
connections are reused as before and the total stays within ``limits.max_connections``. This is
an internal detail of clients the SDK builds; an ``http_client`` passed in by the caller is
used as it is.
"""

from __future__ import annotations

import importlib
import math
import ssl
from collections.abc import AsyncIterator, Callable
from functools import lru_cache

import anyio
import httpx

__all__ = ["ShardedTransport", "default_ssl_context", "tls_setting"]


@lru_cache(maxsize=1)
def default_ssl_context() -> ssl.SSLContext:
    """The verifying TLS context, built once per process (loading CAs reads files)."""
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
    __slots__ = ("_busy", "_done", "_index")

    def __init__(self, busy: list[int], index: int) -> None:
        self._busy = busy
        self._index = index
        self._done = False

    def __call__(self) -> None:
        if not self._done:
            self._done = True
            self._busy[self._index] -= 1


class ShardedTransport(httpx.AsyncBaseTransport):
    """An ``httpx`` transport spreading requests over small ``AsyncHTTPTransport`` shards.

    Shards are opened as concurrency needs them (the open ones fill up before another opens),
    so a client with 16 requests in flight builds 16 one-connection shards, not 100.
    ``tls=False`` (an ``http://`` base URL) skips loading CA files, which no request of such a
    client needs; an ``https://`` request through it is refused.
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
        self._busy: list[int] = []
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

    async def _pick(self) -> int:
        """The least busy open shard, or a new one when every open shard is full."""
        busy = self._busy
        if busy:
            least = min(busy)
            if len(busy) == self._count or least < self._sizes[busy.index(least)]:
                return busy.index(least)
        setting = self._setting if self._setting is not None else await self._resolve_tls()
        if self._closed:
            raise httpx.TransportError("the transport is closed")
        if len(busy) == self._count:  # opened by another request while this one waited
            return busy.index(min(busy))
        self._shards.append(
            httpx.AsyncHTTPTransport(limits=self._limits[len(busy)], verify=setting)
        )
        busy.append(0)
        return len(busy) - 1

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if not self._tls and request.url.scheme == "https":
            raise httpx.UnsupportedProtocol("this client was made for an http:// base URL")
        index = await self._pick()
        busy = self._busy
        busy[index] += 1
        release = _Release(busy, index)
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
        for shard in self._shards:
            await shard.aclose()
