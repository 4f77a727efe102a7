"""The sharded transport: connections stay within the budget and every shard is released."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest
import trustme
from anyio.streams.tls import TLSListener

from suprsend_async import AsyncSuprsend
from suprsend_async._http11 import OriginPool
from suprsend_async._transport import ShardedTransport, default_ssl_context, tls_setting
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


@pytest.mark.asyncio
async def test_concurrent_triggers_balance_and_release(suprsend_emulator: Emulator) -> None:
    limits = httpx.Limits(max_connections=12, max_keepalive_connections=6)
    async with suprsend_emulator.client(limits=limits) as client:
        origin = client._pool.origin
        assert isinstance(origin, OriginPool)
        results: list[bool] = []
        opened = 0
        real_open = origin._open

        async def counted(timeout: httpx.Timeout, ends: float | None = None) -> Any:
            nonlocal opened
            opened += 1
            return await real_open(timeout, ends)

        origin._open = counted  # type: ignore[method-assign]

        async def one(i: int) -> None:
            r = await client.workflows.trigger({"workflow": "w", "recipients": [f"u{i}"]})
            results.append(r.success)

        async with anyio.create_task_group() as tg:
            for i in range(300):
                tg.start_soon(one, i)
        assert results.count(True) == 300
        assert origin._busy == 0 and not origin._waiters
        assert len(origin._idle) <= 6  # within the keep-alive budget
        assert 1 <= opened <= 300 and opened >= 12  # every connection of the budget was used
    assert len(suprsend_emulator.triggers) == 300


@pytest.mark.asyncio
async def test_failed_requests_release_their_place() -> None:
    async with AsyncSuprsend("k", "s", "http://127.0.0.1:9/", max_retries=0) as client:
        origin = client._pool.origin
        assert isinstance(origin, OriginPool)
        result = await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        assert result.error_type == "connection"
        assert origin._busy == 0 and not origin._idle


def test_shard_sizes_follow_the_limits() -> None:
    t = ShardedTransport(limits=httpx.Limits(max_connections=10), verify=False, per_shard=4)
    assert t.shard_count == 3
    one = ShardedTransport(limits=httpx.Limits(max_connections=1), verify=False)
    assert one.shard_count == 1
    unbounded = ShardedTransport(limits=httpx.Limits(max_connections=None), verify=False)
    assert unbounded.shard_count == 100
    # The keep-alive budget is split exactly too, even when it is smaller than the shards.
    kept = ShardedTransport(
        limits=httpx.Limits(max_connections=10, max_keepalive_connections=4), verify=False
    )
    assert sum(limit.max_keepalive_connections or 0 for limit in kept._limits) == 4


@pytest.mark.asyncio
async def test_connections_open_as_concurrency_needs_them(suprsend_emulator: Emulator) -> None:
    async with suprsend_emulator.client() as client:
        origin = client._pool.origin
        assert isinstance(origin, OriginPool)
        assert origin.max == 100  # the budget of 100 connections, at most
        assert await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        assert len(origin._idle) == 1
        assert await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        assert len(origin._idle) == 1  # reused
        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(client.workflows.trigger, {"workflow": "w", "recipients": [f"u{i}"]})
        assert 2 <= len(origin._idle) <= 17  # no more than were in flight at once
        assert origin._busy == 0


@pytest.mark.asyncio
async def test_an_http_client_loads_no_ca_files_and_refuses_https(
    suprsend_emulator: Emulator,
) -> None:
    async with suprsend_emulator.client() as client:
        origin = client._pool.origin
        assert isinstance(origin, OriginPool)
        assert await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        assert origin._context is None  # its own connections never built a TLS context
        transport = client._pool.http._transport
        assert isinstance(transport, ShardedTransport)
        with pytest.raises(httpx.UnsupportedProtocol, match="http:// base URL"):
            await transport.handle_async_request(httpx.Request("POST", "https://example.com/"))
        assert transport._setting is None  # nor did httpx's way, which it did not take


# -- queueing: a waiting request takes the first connection that frees ----------------------


class HoldingServer:
    """A loopback HTTP/1.1 server (keep-alive, GET only) that answers each path when the test
    says so, and records what happened in order: ("arrive" | "answer", path, connection)."""

    def __init__(self, holds: dict[str, anyio.Event]) -> None:
        self.holds = holds
        self.events: list[tuple[str, str, int]] = []
        self.arrived: defaultdict[str, anyio.Event] = defaultdict(anyio.Event)
        self.active = 0
        self.most_active = 0
        self._connections = 0

    async def serve(self, stream: anyio.abc.ByteStream) -> None:
        self._connections += 1
        conn = self._connections
        buffer = b""
        async with stream:
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        buffer += await stream.receive()
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        return
                head, buffer = buffer.split(b"\r\n\r\n", 1)
                path = head.split(b" ", 2)[1].decode()
                self.active += 1
                self.most_active = max(self.most_active, self.active)
                self.events.append(("arrive", path, conn))
                self.arrived[path].set()
                hold = self.holds.get(path)
                if hold is not None:
                    with anyio.move_on_after(10):  # a guard: a hold never outlasts the test
                        await hold.wait()
                self.events.append(("answer", path, conn))
                self.active -= 1
                await stream.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def index(self, kind: str, path: str) -> int:
        return next(i for i, e in enumerate(self.events) if e[:2] == (kind, path))

    def connection(self, path: str) -> int:
        return next(e[2] for e in self.events if e[:2] == ("arrive", path))


async def serve(
    tg: anyio.abc.TaskGroup, server: HoldingServer, tls: ssl.SSLContext | None = None
) -> int:
    listener: anyio.abc.Listener[Any] = await anyio.create_tcp_listener(
        local_host="127.0.0.1", local_port=0
    )
    port: int = listener.extra(anyio.abc.SocketAttribute.local_port)
    if tls is not None:
        listener = TLSListener(listener, tls, standard_compatible=False)

    async def run() -> None:
        async with listener:
            await listener.serve(server.serve)

    tg.start_soon(run)
    return port


async def until_queued(transport: ShardedTransport, count: int) -> None:
    while len(transport._waiters) < count:
        await anyio.lowlevel.checkpoint()


@pytest.mark.asyncio
async def test_a_queued_request_takes_the_first_connection_that_frees() -> None:
    """2 connections, 3 requests: the third goes out as soon as the short one is answered,
    not behind the long one (which holds the first shard opened)."""
    release_short = anyio.Event()
    release_long = anyio.Event()
    server = HoldingServer({"/long": release_long, "/short": release_short})
    transport = ShardedTransport(limits=httpx.Limits(max_connections=2), verify=False, tls=False)
    async with anyio.create_task_group() as tg, httpx.AsyncClient(transport=transport) as http:
        port = await serve(tg, server)
        base = f"http://127.0.0.1:{port}"
        answers: dict[str, int] = {}

        async def get(path: str) -> None:
            answers[path] = (await http.get(base + path)).status_code

        async with anyio.create_task_group() as calls:
            calls.start_soon(get, "/long")
            await server.arrived["/long"].wait()
            calls.start_soon(get, "/short")
            await server.arrived["/short"].wait()
            calls.start_soon(get, "/third")
            await until_queued(transport, 1)  # every connection busy: the third waits
            release_short.set()
            await server.arrived["/third"].wait()
            release_long.set()
        tg.cancel_scope.cancel()
    assert answers == {"/long": 200, "/short": 200, "/third": 200}
    # The third reached the server after the short one was answered, before the long one was.
    assert server.index("answer", "/short") < server.index("arrive", "/third")
    assert server.index("arrive", "/third") < server.index("answer", "/long")
    assert server.connection("/third") == server.connection("/short")  # its connection, reused
    assert server.most_active == 2  # never more than the limit
    assert transport._busy == [0, 0] and not transport._waiters


@pytest.mark.asyncio
async def test_queued_requests_are_served_in_arrival_order() -> None:
    release = anyio.Event()
    server = HoldingServer({"/first": release})
    transport = ShardedTransport(limits=httpx.Limits(max_connections=1), verify=False, tls=False)
    async with anyio.create_task_group() as tg, httpx.AsyncClient(transport=transport) as http:
        port = await serve(tg, server)
        async with anyio.create_task_group() as calls:
            calls.start_soon(http.get, f"http://127.0.0.1:{port}/first")
            await server.arrived["/first"].wait()
            for i in range(5):
                calls.start_soon(http.get, f"http://127.0.0.1:{port}/q{i}")
                await until_queued(transport, i + 1)
            release.set()
        tg.cancel_scope.cancel()
    arrivals = [path for kind, path, _ in server.events if kind == "arrive"]
    assert arrivals == ["/first", "/q0", "/q1", "/q2", "/q3", "/q4"]
    assert server.most_active == 1


@pytest.mark.asyncio
async def test_a_queued_request_honours_the_pool_timeout_and_leaks_nothing() -> None:
    release = anyio.Event()
    server = HoldingServer({"/held": release})
    transport = ShardedTransport(limits=httpx.Limits(max_connections=1), verify=False, tls=False)
    async with anyio.create_task_group() as tg, httpx.AsyncClient(transport=transport) as http:
        port = await serve(tg, server)
        base = f"http://127.0.0.1:{port}"
        async with anyio.create_task_group() as calls:
            calls.start_soon(http.get, base + "/held")
            await server.arrived["/held"].wait()
            with pytest.raises(httpx.PoolTimeout, match="pool timeout"):
                await http.get(base + "/late", timeout=httpx.Timeout(10, pool=0.05))
            assert not transport._waiters
            # A cancelled waiter leaves its place too.
            with anyio.move_on_after(0.05):
                await http.get(base + "/cancelled")
            assert not transport._waiters
            release.set()
        assert (await http.get(base + "/after")).status_code == 200
        tg.cancel_scope.cancel()
    assert [p for k, p, _ in server.events if k == "arrive"] == ["/held", "/after"]
    assert transport._busy == [0] and transport._spare == [0]


@pytest.mark.asyncio
async def test_a_slot_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    transport = ShardedTransport(limits=httpx.Limits(max_connections=1), verify=False, tls=False)
    request = httpx.Request("GET", "http://127.0.0.1:9/")
    assert await transport._acquire(request) == 0  # one request holds the only connection
    got: list[int] = []

    async def wait_in(scope_box: list[anyio.CancelScope]) -> None:
        with anyio.CancelScope() as scope:
            scope_box.append(scope)
            got.append(await transport._acquire(request))

    async def take() -> None:
        got.append(await transport._acquire(request))

    first: list[anyio.CancelScope] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(wait_in, first)
        await until_queued(transport, 1)
        tg.start_soon(take)
        await until_queued(transport, 2)
        # The first waiter is cancelled, and before it runs again, the slot is handed to it.
        first[0].cancel()
        transport._free(0)
    assert got == [0]  # the second waiter got the slot
    assert transport._busy == [1] and not transport._spare
    transport._free(0)
    assert transport._busy == [0] and transport._spare == [0]


@pytest.mark.asyncio
async def test_closing_fails_queued_requests() -> None:
    transport = ShardedTransport(limits=httpx.Limits(max_connections=1), verify=False, tls=False)
    request = httpx.Request("GET", "http://127.0.0.1:9/")
    assert await transport._acquire(request) == 0
    errors: list[BaseException] = []

    async def wait() -> None:
        try:
            await transport._acquire(request)
        except httpx.TransportError as exc:
            errors.append(exc)

    async def wait_cancelled(scope_box: list[anyio.CancelScope]) -> None:
        with anyio.CancelScope() as scope:
            scope_box.append(scope)
            await transport._acquire(request)

    box: list[anyio.CancelScope] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(wait)
        await until_queued(transport, 1)
        tg.start_soon(wait_cancelled, box)
        await until_queued(transport, 2)
        box[0].cancel()  # cancelled, then told of the close before it runs again
        await transport.aclose()
    assert [str(e) for e in errors] == ["the transport is closed"]
    assert not transport._waiters
    transport._free(0)  # a request finishing after the close keeps its slot out of use
    with pytest.raises(httpx.TransportError, match="closed"):
        await transport._acquire(request)


# -- TLS: the CA settings httpx honours ---------------------------------------------------------


@pytest.fixture
def ca(tmp_path: Path) -> tuple[trustme.CA, ssl.SSLContext, Path]:
    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost", "127.0.0.1").configure_cert(server_ctx)
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    return authority, server_ctx, pem


async def fetch_over_tls(server_ctx: ssl.SSLContext) -> int:
    server = HoldingServer({})
    transport = ShardedTransport(limits=httpx.Limits(max_connections=1), verify=tls_setting(True))
    outcome: int | httpx.HTTPError
    async with anyio.create_task_group() as tg, httpx.AsyncClient(transport=transport) as http:
        port = await serve(tg, server, tls=server_ctx)
        try:
            outcome = (await http.get(f"https://localhost:{port}/")).status_code
        except httpx.HTTPError as exc:
            outcome = exc
        tg.cancel_scope.cancel()
    if isinstance(outcome, httpx.HTTPError):
        raise outcome
    return outcome


@pytest.mark.asyncio
async def test_tls_trusts_the_ca_named_by_ssl_cert_file(
    ca: tuple[trustme.CA, ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, server_ctx, pem = ca
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await fetch_over_tls(server_ctx)  # certifi's bundle does not know this CA
    monkeypatch.setenv("SSL_CERT_FILE", str(pem))
    assert await fetch_over_tls(server_ctx) == 200
    # Built once per setting: the same context while the variables stay the same.
    assert default_ssl_context() is default_ssl_context()
    monkeypatch.delenv("SSL_CERT_FILE")
    assert default_ssl_context().get_ca_certs() != ca_certs_of(pem)


def ca_certs_of(pem: Path) -> list[Any]:
    return ssl.create_default_context(cafile=str(pem)).get_ca_certs()


@pytest.fixture
def hashed_ca_dir(ca: tuple[trustme.CA, ssl.SSLContext, Path], tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to name the CA file by its subject hash")
    directory = tmp_path / "certs"
    directory.mkdir()
    pem = ca[2]
    digest = subprocess.run(
        ["openssl", "x509", "-hash", "-noout", "-in", str(pem)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    shutil.copy(pem, directory / f"{digest}.0")  # the name OpenSSL looks a CA up by
    return directory


@pytest.mark.asyncio
async def test_tls_trusts_the_cas_in_ssl_cert_dir(
    ca: tuple[trustme.CA, ssl.SSLContext, Path],
    hashed_ca_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server_ctx = ca[1]
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.setenv("SSL_CERT_DIR", str(hashed_ca_dir))
    assert await fetch_over_tls(server_ctx) == 200
    # SSL_CERT_FILE wins when both are set, as in httpx.
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    monkeypatch.setenv("SSL_CERT_FILE", str(other))
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        await fetch_over_tls(server_ctx)


@pytest.mark.asyncio
async def test_a_shard_of_several_connections_fills_before_anyone_waits() -> None:
    transport = ShardedTransport(
        limits=httpx.Limits(max_connections=2), verify=False, tls=False, per_shard=2
    )
    request = httpx.Request("GET", "http://127.0.0.1:9/")
    assert [await transport._acquire(request) for _ in range(2)] == [0, 0]
    assert transport._busy == [2] and not transport._spare and not transport._waiters
    transport._free(0)
    assert await transport._acquire(request) == 0
    await transport.aclose()
