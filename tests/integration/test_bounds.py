"""Bounds against misbehaving loopback servers: the client never hangs past its timeout or
deadline, and never balloons on a gzip bomb, an endless body or JSON nested a thousand deep.

Each server below misbehaves on purpose: it drips its answer a byte at a time, answers 503
forever, sends a gzip bomb or an endless chunked body, nests its JSON a thousand deep, or
stalls. None of these checks a duration: each checks an order of events (the call returned
while the server was still dripping) or a quantity (memory, connections, attempts).
"""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest

from suprsend_async import (
    AsyncSuprsend,
    RetryPolicy,
)

from ..conftest import KEY, SECRET
from .misbehaving_server import BODY, Handler, Server, answer, head

pytestmark = pytest.mark.integration


# -- deadlines ------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["headers", "body"])
@pytest.mark.asyncio
async def test_a_dripping_server_cannot_hold_an_attempt_past_its_timeout(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]], where: str
) -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # Headers: a status line, then a header a byte at a time. Body: all headers, a length
        # of 400, then a byte at a time. Each byte is "on time" for a per-read timeout.
        if where == "headers":
            writer.write(b"HTTP/1.1 202 X\r\n")
            dripped = b"x-slow: " + b"y" * 100
        else:
            writer.write(head(202, length=400))
            dripped = b"z" * 100
        for byte in dripped:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.2)
        server.finished = True

    server, url = await serve(drip)
    async with AsyncSuprsend(KEY, SECRET, url, timeout=1, max_retries=0) as client:
        result = await client.workflows.trigger(BODY)
    assert not server.finished  # the call returned while the server was still dripping
    assert (result.error_type, result.message) == (
        "timeout",
        "timed out: the attempt took over 1 s",
    )


@pytest.mark.asyncio
async def test_a_deadline_caps_a_call_with_its_retries(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import suprsend_async._retry as retry_mod

    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)

    async def down(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(503, {"message": "down"}))
        await writer.drain()

    server, url = await serve(down)
    policy = RetryPolicy(max_retries=50, initial_delay=0.05, max_delay=0.05)
    async with AsyncSuprsend(KEY, SECRET, url, retry_policy=policy) as client:
        result = await client.workflows.trigger(BODY, deadline=0.5)
        # A retry that would end past the deadline is not started (the 503 comes back); if
        # the deadline passes during an attempt instead, the result says so.
        assert 2 <= result.attempts < 51 and result.attempts - 1 <= server.requests
        assert result.status_code == 503 or (
            result.error_type == "timeout" and "deadline" in result.message
        )
        short = client.with_options(deadline=0.2)
        bulk = short.workflows.bulk_trigger_instance()
        bulk.append(*[dict(BODY, data={"i": i}) for i in range(3)])
        account = await bulk.trigger()
        assert account.failure == 3 and account.requests < 51
        assert {f.code for f in account.failed_records} == {503} or any(
            "deadline" in w for w in account.warnings
        )
        with pytest.raises(ValueError, match="deadline"):
            await client.workflows.trigger(BODY, deadline=0)


@pytest.mark.asyncio
async def test_a_deadline_during_an_attempt_is_a_timeout_result(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    _, url = await serve(stall)
    async with AsyncSuprsend(KEY, SECRET, url, deadline=0.3) as client:
        result = await client.workflows.trigger(BODY)
        assert result.error_type == "timeout" and "deadline" in result.message
        assert result.attempts == 1


# -- closing -------------------------------------------------------------------------------


# -- bounded answers -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_gzip_bomb_is_read_only_up_to_the_cap(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    bomb = gzip.compress(b'{"status": "success", "pad": "' + b"0" * 200_000_000 + b'"}')

    async def send_bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head(202, "content-encoding: gzip\r\n", len(bomb)) + bomb)
        await writer.drain()

    _, url = await serve(send_bomb)
    tracemalloc.start()
    try:
        async with AsyncSuprsend(KEY, SECRET, url, max_retries=0) as client:
            result = await client.workflows.trigger(BODY)
            bulk = client.workflows.bulk_trigger_instance()
            bulk.append(BODY, BODY)
            account = await bulk.trigger()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(bomb) < 300_000
    assert peak < 40_000_000, peak  # a few times the 4 MiB cap, not the bomb's 200 MB
    assert result.success and "was discarded" in result.message  # the status still tells
    assert (account.unknown, account.success) == (2, 0)
    assert "too big to read" in account.warnings[0]


@pytest.mark.asyncio
async def test_an_endless_chunked_answer_is_cut_off(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 503 X\r\ntransfer-encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        for _ in range(400 * 16):  # 400 MiB if read to the end
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        server.finished = True

    server, url = await serve(endless)
    async with AsyncSuprsend(KEY, SECRET, url, max_retries=0, max_answer_bytes=1 << 20) as c:
        result = await c.workflows.trigger(BODY)
    assert result.status_code == 503 and not result.success
    assert not server.finished


@pytest.mark.asyncio
async def test_answers_nested_too_deep_are_malformed_not_a_crash(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    deep = b"[" * 1000 + b"]" * 1000

    async def nested(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head(207, length=len(deep)) + deep)
        await writer.drain()

    _, url = await serve(nested)
    async with AsyncSuprsend(KEY, SECRET, url, max_retries=0) as client:
        single = await client.workflows.trigger(BODY)
        assert single.success and single.status_code == 207
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(BODY, BODY)
        account = await bulk.trigger()
    assert account.unknown == 2 and "not a JSON object" in account.warnings[0]


# -- bounded inputs --------------------------------------------------------------------------


# -- one event loop per client ---------------------------------------------------------------


# -- no secret in any frame ------------------------------------------------------------------


# -- no warning at exit ----------------------------------------------------------------------


# -- the sync facade's life cycle ----------------------------------------------------------
