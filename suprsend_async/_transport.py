"""The SDK's own HTTP transport: one connection pool made of small shards.

httpcore's pool re-examines every connection it holds (and, for idle ones, asks the socket
whether the server hung up) each time a request starts or ends, so its cost per request grows
with the number of connections; with many requests queued it grows with their product. Under
the concurrency a bulk or a ``gather`` of triggers produces, that bookkeeping costs more CPU
than the request itself (profiled in ``docs/performance.md``).

Splitting the same connection budget into shards of a few connections each keeps every scan
short. Requests go to the least busy shard, so connections are reused as before and the total
stays within ``limits.max_connections``. This is an internal detail of clients the SDK builds;
an ``http_client`` passed in by the caller is used as it is.
"""

from __future__ import annotations

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


CONNECTIONS_PER_SHARD = 4


def _share(total: int, parts: int, index: int) -> int:
    """Part ``index`` of ``total`` split into ``parts`` near-equal whole parts (at least 1)."""
    return max(1, total // parts + (1 if index < total % parts else 0))


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
    """An ``httpx`` transport spreading requests over small ``AsyncHTTPTransport`` shards."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        verify: bool | ssl.SSLContext | Callable[[], bool | ssl.SSLContext],
        per_shard: int = CONNECTIONS_PER_SHARD,
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
                max_keepalive_connections=_share(keepalive, count, i),
                keepalive_expiry=limits.keepalive_expiry,
            )
            for i in range(count)
        ]
        self._count = count
        self._verify = verify
        self._shards: list[httpx.AsyncHTTPTransport] = []
        self._busy = [0] * count
        self._lock = anyio.Lock()
        self._closed = False

    async def _open(self) -> list[httpx.AsyncHTTPTransport]:
        # Built on first use: a TLS context reads CA files, which must not happen on the event
        # loop (nor in a constructor that async code calls), so it is made in a worker thread.
        async with self._lock:
            if self._closed:
                raise httpx.TransportError("the transport is closed")
            if not self._shards:
                verify = self._verify
                if callable(verify):
                    verify = await anyio.to_thread.run_sync(verify)
                self._shards = [
                    httpx.AsyncHTTPTransport(limits=limits, verify=verify)
                    for limits in self._limits
                ]
        return self._shards

    @property
    def shard_count(self) -> int:
        """How many sub-pools the connection budget is split into."""
        return self._count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        shards = self._shards or await self._open()
        busy = self._busy
        index = busy.index(min(busy))
        busy[index] += 1
        release = _Release(busy, index)
        try:
            response = await shards[index].handle_async_request(request)
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
