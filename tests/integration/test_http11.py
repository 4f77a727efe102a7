"""The SDK's own HTTP/1.1 connections (``_http11``) against loopback servers that frame,
close, stall and misbehave on purpose: framing, keep-alive, every timeout, TLS, cancellation,
and the moment a request may have been sent."""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx
import trustme

from suprsend_async import APIConnectionError, AsyncSuprsend, Hooks, SuprsendError
from suprsend_async._core import Payload
from suprsend_async._http11 import AttemptTimeout, OriginPool
from suprsend_async._http_answer import AnswerReader
from suprsend_async._transport import tls_setting
from suprsend_async._types import NOT_GIVEN

from ..conftest import KEY, SECRET
from .misbehaving_server import BODY, Handler, Server, read_request

pytestmark = pytest.mark.integration

Serve = Callable[[Handler], Awaitable[tuple[Server, str]]]
TIMEOUT = httpx.Timeout(5.0)
ACCEPTED = b'{"status":"success","message_id":"m1"}'


def pool_for(url: str, **limits: Any) -> OriginPool:
    return OriginPool(httpx.URL(url), httpx.Limits(**limits), tls_setting(False))


async def get(
    pool: OriginPool,
    *,
    timeout: httpx.Timeout = TIMEOUT,
    cap: int = 1 << 20,
    sent: list[bool] | None = None,
    method: bytes = b"POST",
) -> Any:
    message = pool.message(method, b"/trigger/", b"Content-Type: application/json\r\n", b"{}")
    return await pool.request(
        Payload(message),
        head_only=method == b"HEAD",
        timeout=timeout,
        cap=cap,
        on_sent=(lambda: sent.append(True)) if sent is not None else None,
    )


def answering(raw: bytes, *, close: bool = False, drip: bool = False) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if drip:
            for i in range(len(raw)):
                writer.write(raw[i : i + 1])
                await writer.drain()
        else:
            writer.write(raw)
            await writer.drain()
        if close:
            writer.close()
            raise ConnectionError("closed on purpose")

    return handle


def length_answer(
    body: bytes = ACCEPTED, *, status: bytes = b"202 Accepted", extra: bytes = b""
) -> bytes:
    return b"HTTP/1.1 %s\r\nContent-Length: %d\r\n%s\r\n%s" % (status, len(body), extra, body)


# -- framing ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_content_length_answer_on_a_reused_connection(serve: Serve) -> None:
    server, url = await serve(answering(length_answer()))
    async with AsyncSuprsend(KEY, SECRET, url) as client:
        for _ in range(3):
            result = await client.workflows.trigger(BODY)
            assert result.success and result.message_id == "m1"
        assert client._pool.origin is not None and len(client._pool.origin._idle) == 1
    assert server.requests == 3


@pytest.mark.asyncio
async def test_a_chunked_answer_arriving_a_byte_at_a_time(serve: Serve) -> None:
    body = (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5;ext=1\r\n{"sta\r\n'
        b'21\r\ntus":"success","message_id":"m1"}\r\n'
        b"0\r\nX-Trailer: t\r\n\r\n"
    )
    _, url = await serve(answering(body, drip=True))
    pool = pool_for(url)
    exchange = await get(pool)
    assert exchange.status == 202 and exchange.body == ACCEPTED
    assert len(pool._idle) == 1  # a chunked answer leaves the connection reusable
    await pool.aclose()


@pytest.mark.asyncio
async def test_a_gzip_answer_is_decoded_under_the_cap(serve: Serve) -> None:
    packed = gzip.compress(ACCEPTED)
    _, url = await serve(answering(length_answer(packed, extra=b"Content-Encoding: gzip\r\n")))
    async with AsyncSuprsend(KEY, SECRET, url) as client:
        result = await client.workflows.trigger(BODY)
    assert result.success and result.message_id == "m1"


@pytest.mark.asyncio
async def test_an_answer_read_until_close_and_connection_close(serve: Serve) -> None:
    _, url = await serve(answering(b"HTTP/1.1 202 Accepted\r\n\r\n" + ACCEPTED, close=True))
    pool = pool_for(url)
    exchange = await get(pool)
    assert exchange.body == ACCEPTED and not pool._idle and pool._busy == 0
    await pool.aclose()
    _, url = await serve(answering(length_answer(extra=b"Connection: close\r\n")))
    pool = pool_for(url)
    assert (await get(pool)).body == ACCEPTED and not pool._idle
    await pool.aclose()


@pytest.mark.asyncio
async def test_interim_heads_are_skipped_and_bodiless_answers_end_at_the_head(
    serve: Serve,
) -> None:
    _, url = await serve(answering(b"HTTP/1.1 100 Continue\r\n\r\n" + length_answer()))
    pool = pool_for(url)
    assert (await get(pool)).body == ACCEPTED
    await pool.aclose()
    _, url = await serve(answering(b"HTTP/1.1 204 No Content\r\n\r\n"))
    pool = pool_for(url)
    exchange = await get(pool)
    assert (exchange.status, exchange.body) == (204, b"")
    assert len(pool._idle) == 1
    await pool.aclose()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "raw",
    [
        b"HTCPCP/1.0 418 Teapot\r\n\r\n",
        b"HTTP/1.1 2xx Odd\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 202 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"HTTP/1.1 202 OK\r\nBad Header\r\n\r\n",
        b"HTTP/1.1 202 OK\r\n folded: no\r\n\r\n",
        b"HTTP/1.1 202 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 202 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXY",
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
    ],
)
async def test_a_malformed_answer_is_a_protocol_error_and_the_connection_goes(
    serve: Serve, raw: bytes
) -> None:
    _, url = await serve(answering(raw))
    pool = pool_for(url)
    with pytest.raises(httpx.RemoteProtocolError):
        await get(pool)
    assert pool._busy == 0 and not pool._idle
    await pool.aclose()


@pytest.mark.asyncio
async def test_a_malformed_answer_through_the_client_is_a_connection_error(serve: Serve) -> None:
    _, url = await serve(answering(b"HTTP/1.1 202 OK\r\nContent-Length: x\r\n\r\n"))
    async with AsyncSuprsend(KEY, SECRET, url, max_retries=0) as client:
        result = await client.workflows.trigger(BODY)
    assert not result.success and result.error_type == "connection"
    assert "RemoteProtocolError" in str(result.message)


@pytest.mark.asyncio
async def test_an_answer_over_the_cap_is_dropped_with_its_connection(serve: Serve) -> None:
    _, url = await serve(answering(length_answer(b"x" * 5000)))
    pool = pool_for(url)
    exchange = await get(pool, cap=1000)
    assert exchange.body is None and exchange.size > 1000
    assert not pool._idle  # the rest of it was never read: the connection is not reused
    await pool.aclose()


# -- keep-alive ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    """The server closes an idle keep-alive connection; the pool finds out by polling the
    socket before reuse, even when the event loop has not yet heard of it."""
    hang_up = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve_one() -> None:
        with listener, listener.accept()[0] as conn:
            conn.recv(65536)
            conn.sendall(length_answer())
            hang_up.wait(5)
        with socket.create_server(("127.0.0.1", port)) as again, again.accept()[0] as conn:
            conn.recv(65536)
            conn.sendall(length_answer())

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    pool = pool_for(f"http://127.0.0.1:{port}/")
    assert (await get(pool)).body == ACCEPTED
    [idle] = pool._idle
    hang_up.set()
    time.sleep(0.1)  # noqa: ASYNC251 - on purpose: the FIN arrives while the loop cannot run
    assert not idle.closed  # the event loop has not heard of it...
    assert not idle.reusable(None)  # ...the poll has
    assert (await get(pool)).body == ACCEPTED  # on a new connection, with no error
    assert idle not in pool._idle
    await pool.aclose()
    thread.join(5)


@pytest.mark.asyncio
async def test_idle_connections_expire_and_the_keep_alive_budget_holds(serve: Serve) -> None:
    _, url = await serve(answering(length_answer()))
    pool = pool_for(url, max_connections=4, max_keepalive_connections=2, keepalive_expiry=0.05)
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(get, pool)
    assert len(pool._idle) <= 2 and pool._busy == 0
    [first, *_] = pool._idle
    await anyio.sleep(0.1)
    assert not first.reusable(pool.expiry)
    assert (await get(pool)).body == ACCEPTED
    assert first not in pool._idle
    await pool.aclose()


# -- may have been sent, timeouts, cancellation -------------------------------------------


@pytest.mark.asyncio
async def test_a_refused_connection_sent_nothing() -> None:
    with anyio.fail_after(5):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        await listener.aclose()  # nothing listens there now
    pool = pool_for(f"http://127.0.0.1:{port}/")
    sent: list[bool] = []
    with pytest.raises(httpx.ConnectError):
        await get(pool, sent=sent)
    assert sent == [] and pool._busy == 0


@pytest.mark.asyncio
async def test_no_answer_after_the_request_went_out_may_have_been_sent(serve: Serve) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        raise ConnectionError("gone")

    _, url = await serve(hang_up)
    pool = pool_for(url)
    sent: list[bool] = []
    with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
        await get(pool, sent=sent)
    assert sent == [True] and pool._busy == 0
    await pool.aclose()


async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()  # no answer, until the client hangs up


@pytest.mark.asyncio
async def test_read_and_pool_timeouts(serve: Serve) -> None:
    _, url = await serve(stall)
    pool = pool_for(url, max_connections=1)
    sent: list[bool] = []
    with pytest.raises(httpx.ReadTimeout):
        await get(pool, timeout=httpx.Timeout(5.0, read=0.1), sent=sent)
    assert sent == [True] and pool._busy == 0

    # One request holds the only connection; the next waits its pool timeout, unsent.
    later: list[bool] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(get, pool)
        await anyio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await get(pool, timeout=httpx.Timeout(5.0, pool=0.1), sent=later)
        tg.cancel_scope.cancel()
    assert later == [] and pool._busy == 0 and not pool._waiters
    await pool.aclose()


@pytest.mark.asyncio
async def test_a_write_timeout_when_the_server_reads_nothing(serve: Serve) -> None:
    done = asyncio.Event()

    async def deaf(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await done.wait()  # reads nothing until the test is over
        writer.close()

    server = await asyncio.start_server(deaf, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = pool_for(f"http://127.0.0.1:{port}/")
    message = pool.message(b"POST", b"/trigger/", b"", b"x" * (64 << 20))
    with pytest.raises(httpx.WriteTimeout):
        await pool.request(
            Payload(message),
            head_only=False,
            timeout=httpx.Timeout(5.0, write=0.2),
            cap=1000,
            on_sent=None,
        )
    assert pool._busy == 0
    await pool.aclose()
    done.set()
    server.close()
    await server.wait_closed()


@pytest.mark.asyncio
async def test_a_cancelled_request_gives_its_place_back(serve: Serve) -> None:
    calls = 0

    async def slow_then_quick(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            writer.write(b"HTTP/1.1 202 OK\r\nContent-Length: 100\r\n\r\npartial")
            await reader.read()  # the rest never comes; the client hangs up
            return
        writer.write(length_answer())

    _, url = await serve(slow_then_quick)
    pool = pool_for(url, max_connections=1)
    with anyio.move_on_after(0.2):
        await get(pool)
    assert pool._busy == 0 and not pool._idle  # aborted mid-answer: not reused
    assert (await get(pool)).body == ACCEPTED
    await pool.aclose()


@pytest.mark.asyncio
async def test_closing_fails_waiting_requests(serve: Serve) -> None:
    _, url = await serve(stall)
    pool = pool_for(url, max_connections=1)
    outcomes: list[BaseException] = []

    async def waiting() -> None:
        try:
            await get(pool)
        except httpx.TransportError as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(get, pool)
        await anyio.sleep(0.05)
        tg.start_soon(waiting)
        await anyio.sleep(0.05)
        await pool.aclose()
        await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    assert [str(o) for o in outcomes] == ["the transport is closed"]


# -- TLS ----------------------------------------------------------------------------------


@pytest.mark.asyncio
# The test server's side of the refused handshake: asyncio's server leaves that socket to the
# collector (its laddr is the server's port), which pytest reports as unraisable.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_tls_with_the_clients_verify_setting(tmp_path: Path) -> None:
    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_ctx)
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            writer.write(length_answer())
            await writer.drain()
        except (ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    url = f"https://localhost:{server.sockets[0].getsockname()[1]}/"
    try:
        async with AsyncSuprsend(KEY, SECRET, url, verify=str(pem)) as client:
            assert (await client.workflows.trigger(BODY)).success
        async with AsyncSuprsend(KEY, SECRET, url, max_retries=0) as client:
            result = await client.workflows.trigger(BODY)  # the default CAs do not know it
            assert not result.success and "CERTIFICATE_VERIFY_FAILED" in str(result.message)
    finally:
        server.close()


# -- which way a request takes ------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_patched_httpx_takes_the_requests(serve: Serve) -> None:
    _, url = await serve(answering(length_answer()))
    async with AsyncSuprsend(KEY, SECRET, url) as client:
        endpoint = client._core.trigger_endpoint
        assert client._pipe.own_way(endpoint) is None  # not yet bound to a loop
        assert (await client.workflows.trigger(BODY)).success
        assert client._pipe.own_way(endpoint) is client._pool.origin
        with respx.mock(assert_all_called=False) as router:
            router.post(url + "trigger/").respond(202, json={"message": "mocked"})
            assert client._pipe.own_way(endpoint) is None
            result = await client.workflows.trigger(BODY)
        assert "mocked" in str(result.message)  # the mock answered, not the server
        assert client._pipe.own_way(endpoint) is client._pool.origin


@pytest.mark.asyncio
async def test_the_attempts_cap_bounds_every_wait(serve: Serve) -> None:
    """Each wait keeps its own timeout, and all of them together stay within the cap: here a
    queued request whose pool timeout is long gives up when the attempt's time is out."""
    _, url = await serve(stall)
    pool = pool_for(url, max_connections=1)
    message = Payload(pool.message(b"POST", b"/trigger/", b"", b"{}"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(get, pool)
        await anyio.sleep(0.05)
        started = anyio.current_time()
        with pytest.raises(AttemptTimeout):
            await pool.request(
                message, head_only=False, timeout=TIMEOUT, cap=1000, on_sent=None, limit=0.2
            )
        assert anyio.current_time() - started < 4  # the cap, not the pool's 5 s
        tg.cancel_scope.cancel()
    with pytest.raises(AttemptTimeout):  # and the answer's wait, with reads that never come
        await pool.request(
            message, head_only=False, timeout=TIMEOUT, cap=1000, on_sent=None, limit=0.2
        )
    assert pool._busy == 0
    await pool.aclose()


@pytest.mark.asyncio
async def test_an_answer_before_the_request_is_written_is_taken(serve: Serve) -> None:
    """A server may refuse a request (a 413) before reading all of it: the answer is the
    result, not a write timeout, and the connection, with the rest still queued, goes."""
    done = asyncio.Event()

    async def early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        await done.wait()  # reads nothing more
        writer.close()

    server = await asyncio.start_server(early, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = pool_for(f"http://127.0.0.1:{port}/")
    message = Payload(pool.message(b"POST", b"/trigger/", b"", b"x" * (64 << 20)))
    exchange = await pool.request(
        message, head_only=False, timeout=httpx.Timeout(5.0), cap=1000, on_sent=None
    )
    assert exchange.status == 413 and not pool._idle and pool._busy == 0
    await pool.aclose()
    done.set()
    server.close()
    await server.wait_closed()


def test_bytes_after_a_bodiless_answer_cost_its_connection() -> None:
    from suprsend_async._http_answer import AnswerReader

    reader = AnswerReader(1000, head_only=False)
    assert reader.feed(b"HTTP/1.1 204 No Content\r\n\r\nstray")
    assert not reader.keep_alive
    clean = AnswerReader(1000, head_only=False)
    assert clean.feed(b"HTTP/1.1 204 No Content\r\n\r\n") and clean.keep_alive


def test_tls_contexts_for_each_verify_setting() -> None:
    from suprsend_async._http11 import _as_context

    given = ssl.create_default_context()
    assert _as_context(given) is given
    off = _as_context(False)
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname
    assert _as_context(True).verify_mode == ssl.CERT_REQUIRED


def test_the_idle_poll_without_poll(monkeypatch: pytest.MonkeyPatch) -> None:
    """Where select has no poll (Windows), select itself answers."""
    import select as select_module

    from suprsend_async._http11 import _readable

    left, right = socket.socketpair()
    with left, right:
        monkeypatch.delattr(select_module, "poll")
        assert not _readable(left.fileno())
        right.sendall(b"x")
        assert _readable(left.fileno())


@pytest.mark.asyncio
async def test_a_closed_pool_and_a_closed_connection_send_nothing(serve: Serve) -> None:
    _, url = await serve(answering(length_answer()))
    pool = pool_for(url)
    assert (await get(pool)).body == ACCEPTED
    [idle] = pool._idle
    idle.close()
    sent: list[bool] = []
    with pytest.raises(httpx.RemoteProtocolError, match="before the request went out"):
        await idle.exchange(
            Payload(b"GET / HTTP/1.1\r\n\r\n"), AnswerReader(10, False), TIMEOUT, None, None
        )
    assert (await get(pool, sent=sent)).body == ACCEPTED  # the closed one is not reused
    await pool.aclose()
    with pytest.raises(httpx.TransportError, match="closed"):
        await get(pool, sent=sent)
    assert sent == [True]


@pytest.mark.asyncio
async def test_extra_headers_and_an_oversized_answer_through_the_client() -> None:
    heads: list[bytes] = []

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        heads.append(head)
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await reader.readexactly(length)
        writer.write(length_answer(b'{"status":"success","pad":"' + b"x" * 3000 + b'"}'))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with AsyncSuprsend(KEY, SECRET, url, max_answer_bytes=2048) as client:
            result = await client.workflows.trigger(BODY, extra_headers={"X-Trace-Id": "t-1"})
    finally:
        server.close()
        await server.wait_closed()
    assert result.success and "was discarded" in str(result.message)
    [head] = heads
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /trigger/ HTTP/1.1" and lines[1].startswith(b"Host: 127.0.0.1:")
    assert b"X-Trace-Id: t-1" in lines and b"Connection: keep-alive" in lines
    assert any(line.startswith(b"Authorization: ") for line in lines)


# -- a management call that is not idempotent ---------------------------------------------


@pytest.mark.asyncio
async def test_a_lost_answer_to_a_call_that_is_not_idempotent_says_it_may_have_landed(
    serve: Serve,
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        raise ConnectionError("gone")

    server, url = await serve(hang_up)
    async with AsyncSuprsend(KEY, SECRET, url) as client:
        with pytest.raises(APIConnectionError) as lost:
            await client.request("POST", "v1/thing/", json={"n": 1}, idempotent=False)
    assert lost.value.maybe_sent and server.requests == 1  # not retried: it may have landed


@pytest.mark.asyncio
async def test_a_call_that_never_went_out_says_so_and_is_retried() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nothing listens there now
    attempts: list[int] = []
    hooks = Hooks(before_attempt=lambda start: attempts.append(start.attempt))
    async with AsyncSuprsend(
        KEY, SECRET, f"http://127.0.0.1:{port}/", max_retries=2, hooks=hooks
    ) as client:
        with pytest.raises(APIConnectionError) as refused:
            await client.request("POST", "v1/thing/", json={"n": 1}, idempotent=False)
    assert not refused.value.maybe_sent and attempts == [1, 2, 3]


# -- what review found ----------------------------------------------------------------------


def test_own_connections_under_uvloop(tmp_path: Path) -> None:
    """uvloop's transports are not asyncio.Transport subclasses: the same requests work."""
    uvloop = pytest.importorskip("uvloop")
    authority = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_ctx)
    pem = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    chunked = (
        b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n0\r\n\r\n" % (len(ACCEPTED), ACCEPTED)
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            for answer in (length_answer(), chunked, length_answer()):
                await read_request(reader)
                writer.write(answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def main() -> list[bool]:
        plain = await asyncio.start_server(handle, "127.0.0.1", 0)
        tls = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        results = []
        try:
            for url, verify in (
                (f"http://127.0.0.1:{plain.sockets[0].getsockname()[1]}/", True),
                (f"https://localhost:{tls.sockets[0].getsockname()[1]}/", str(pem)),
            ):
                async with AsyncSuprsend(KEY, SECRET, url, verify=verify) as client:
                    for _ in range(3):
                        result = await client.workflows.trigger(BODY)
                        results.append(result.success and result.message_id == "m1")
                    assert client._pool.origin is not None
                    assert len(client._pool.origin._idle) == 1  # one connection, reused
        finally:
            plain.close()
            tls.close()
        return results

    loop = uvloop.new_event_loop()
    try:
        assert loop.run_until_complete(main()) == [True] * 6
    finally:
        loop.close()


@pytest.mark.asyncio
async def test_writing_a_large_body_is_not_read_silence() -> None:
    """The read timeout counts from the end of the write, as httpx's does: a server that
    takes a while to read a large body and then answers at once is on time."""

    async def slow_reader(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        await asyncio.sleep(0.6)  # the body waits in the client's buffer meanwhile
        await reader.readexactly(length)
        writer.write(length_answer())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(slow_reader, "127.0.0.1", 0)
    pool = pool_for(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/")
    message = Payload(pool.message(b"POST", b"/trigger/", b"", b"x" * (16 << 20)))
    try:
        exchange = await pool.request(
            message, head_only=False, timeout=httpx.Timeout(5.0, read=0.4), cap=1000, on_sent=None
        )
        assert exchange.status == 202
    finally:
        await pool.aclose()
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("name", ["Host", "content-length", "Transfer-Encoding", "Connection"])
def test_headers_that_frame_the_request_are_refused(name: str) -> None:
    from suprsend_async._core import PerCall

    with pytest.raises(ValueError, match="framed or carried"):
        PerCall.of({name: "x"}, NOT_GIVEN)


def test_a_patch_is_seen_whenever_the_sdk_was_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    import httpcore

    from suprsend_async._http11 import httpx_patched

    assert not httpx_patched()
    original = httpcore.AsyncConnectionPool.handle_async_request

    async def mocked(self: Any, request: Any) -> Any:  # defined here: another module
        return await original(self, request)

    monkeypatch.setattr(httpcore.AsyncConnectionPool, "handle_async_request", mocked)
    assert httpx_patched()
    wrapped = functools.partial(original)  # not a plain function (as a wrapt proxy is not)
    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", wrapped)
    monkeypatch.setattr(httpcore.AsyncConnectionPool, "handle_async_request", original)
    assert httpx_patched()
    monkeypatch.undo()
    assert not httpx_patched()  # patched and unpatched: the own path comes back


def test_an_international_host_in_its_ascii_form() -> None:
    pool = pool_for("https://b\u00fccher.example/")
    assert pool.host == "xn--bcher-kva.example" and pool.host_header == b"xn--bcher-kva.example"
    assert pool.serves(httpx.URL("https://b\u00fccher.example/trigger/"))
    assert not pool.serves(httpx.URL("https://other.example/trigger/"))


@pytest.mark.asyncio
async def test_a_reset_is_not_the_end_of_an_answer_read_until_close(serve: Serve) -> None:
    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n\r\npartial")
        await writer.drain()
        await asyncio.sleep(0.05)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # an RST, not a FIN
        raise ConnectionError("reset on purpose")

    _, url = await serve(reset)
    pool = pool_for(url)
    with pytest.raises(httpx.RemoteProtocolError):
        await get(pool)
    await pool.aclose()


@pytest.mark.asyncio
async def test_closing_mid_bulk_a_written_chunk_is_unknown_and_a_queued_one_not_sent(
    serve: Serve,
) -> None:
    """One connection: the first chunk is written to a server that never answers, the second
    waits for the connection. Closing the client then settles each truthfully: the written
    one may have reached the service (unknown), the queued one never left (not sent)."""
    arrived = asyncio.Event()

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.set()
        await reader.read()  # reads the rest, answers nothing, until the client hangs up

    server, url = await serve(swallow)
    states: dict[int, str] = {}
    client = AsyncSuprsend(KEY, SECRET, url, limits=httpx.Limits(max_connections=1))
    outcome: list[BaseException] = []

    async def run() -> None:
        try:
            await client.workflows.bulk_trigger(
                [dict(BODY) for _ in range(200)],
                concurrency=2,
                on_outcome=lambda o: states.__setitem__(o.index, o.state),
            )
        except SuprsendError as exc:
            outcome.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        with anyio.fail_after(5):
            await arrived.wait()
        await anyio.sleep(0.05)  # the second chunk is queued for the one connection by now
        await client.aclose()
    assert outcome and "closed" in str(outcome[0])
    assert server.requests == 1  # the queued chunk never went out
    assert sorted(states) == list(range(200))  # every record accounted for, once
    assert [states[i] for i in range(100)] == ["unknown"] * 100
    assert [states[i] for i in range(100, 200)] == ["not_sent"] * 100
