"""A misbehaving server over real sockets: stalls, hang-ups mid-answer, junk answers.

Each case gives a clear result (or the SDK's own typed error), and a bulk still accounts for
every record.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio

from suprsend_async import APIConnectionError, APITimeoutError, AsyncSuprsend, RetryPolicy

pytestmark = pytest.mark.integration

Behaviour = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any]


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Callable[[Behaviour], Any]]:
    servers: list[asyncio.base_events.Server] = []

    async def start(behaviour: Behaviour) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    await read_request(reader)
                    await behaviour(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        servers.append(srv)
        port = srv.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/"

    yield start
    for srv in servers:
        srv.close()
        await srv.wait_closed()


def response(
    status: str, body: bytes, content_type: bytes = b"application/json", extra: bytes = b""
) -> bytes:
    return (
        b"HTTP/1.1 "
        + status.encode()
        + b"\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n"
        + extra
        + b"\r\n"
        + body
    )


def client(url: str, **kw: Any) -> AsyncSuprsend:
    return AsyncSuprsend(
        "k", "s", url, retry_policy=RetryPolicy(max_retries=kw.pop("max_retries", 1)), **kw
    )


BODY = {"workflow": "w", "recipients": ["u"]}


@pytest.mark.asyncio
async def test_stall_past_read_timeout(server: Any) -> None:
    async def stall(reader: Any, writer: Any) -> None:
        await asyncio.sleep(30)

    url = await server(stall)
    async with client(url, timeout=0.3) as c:
        result = await c.workflows.trigger(BODY)
        bulk = c.workflows.bulk_trigger_instance()
        bulk.append(BODY, BODY, BODY)
        outcome = await bulk.trigger()
    assert (result.status_code, result.error_type) == (None, "timeout")
    with pytest.raises(APITimeoutError):
        result.raise_for_status()
    assert outcome.total == 3 and outcome.failure == 3
    assert {f.error_type for f in outcome.failed_records} == {"timeout"}


@pytest.mark.asyncio
async def test_close_mid_response(server: Any) -> None:
    async def cut(reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b'HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{"sta'
        )
        await writer.drain()
        writer.close()
        raise ConnectionError

    url = await server(cut)
    async with client(url) as c:
        result = await c.workflows.trigger(BODY)
        streamed = await c.workflows.bulk_trigger([BODY] * 150)
    assert result.status_code is None and result.error_type == "connection"
    with pytest.raises(APIConnectionError):
        result.raise_for_status()
    assert streamed.total == 150 and streamed.failure == 150
    assert all(f.code is None and "Traceback" not in f.error for f in streamed.failed_records)


@pytest.mark.asyncio
async def test_close_without_answer(server: Any) -> None:
    async def hang_up(reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.close()
        raise ConnectionError

    url = await server(hang_up)
    async with client(url) as c:
        result = await c.workflows.trigger(BODY)
    assert result.error_type == "connection" and "disconnected" in result.message.lower()


@pytest.mark.parametrize(
    ("raw", "success", "message"),
    [
        (response("202 Accepted", b"not json at all", b"text/plain"), True, "not json at all"),
        (response("202 Accepted", b'"Accepted - OK"'), True, "Accepted - OK"),
        (response("202 Accepted", b""), True, "OK"),
        (
            response("502 Bad Gateway", b"<html><h1>502</h1></html>", b"text/html"),
            False,
            "HTTP 502 Bad Gateway (HTML page)",
        ),
        (response("500 Internal Server Error", b""), False, "HTTP 500 Internal Server Error"),
        (
            response("400 Bad Request", b'{"status": "fail", "message": "bad body"}'),
            False,
            "bad body",
        ),
    ],
)
@pytest.mark.asyncio
async def test_odd_single_answers(server: Any, raw: bytes, success: bool, message: str) -> None:
    async def answer(reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        await writer.drain()

    url = await server(answer)
    async with client(url, max_retries=0) as c:
        result = await c.workflows.trigger(BODY)
    assert (result.success, result.message) == (success, message)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'"a string"',
        b'{"status": "success"}',
        b'{"records": []}',
        b'{"records": [{}, {}, {}, {}, {}]}',
        b"",
    ],
)
@pytest.mark.asyncio
async def test_malformed_bulk_answers_account_for_every_record(server: Any, payload: bytes) -> None:
    async def answer(reader: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(response("207 Multi-Status", payload))
        await writer.drain()

    url = await server(answer)
    async with client(url, max_retries=0) as c:
        bulk = c.workflows.bulk_trigger_instance()
        bulk.append(BODY, BODY, BODY)
        result = await bulk.trigger()
    assert result.total == 3 and result.success + result.failure == 3
    assert len(result.warnings) == 1
