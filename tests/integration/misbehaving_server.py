"""Loopback servers that misbehave on purpose: each runs a handler per request (drip, stall,
answer 503 forever, send a bomb) and logs what it did, so a test can check an order of events
or a quantity rather than a duration."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
BODY = {"workflow": "w", "recipients": ["u"]}


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    return await reader.readexactly(length)


class Server:
    """A loopback server running ``handler`` for each request, with a log of what it did."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests = 0
        self.open_connections = 0
        self.finished = False  # a handler that ran to its end sets this
        self._server: asyncio.base_events.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open_connections += 1
        try:
            while True:
                await read_request(reader)
                self.requests += 1
                await self.handler(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


def announcing(handler: Handler, arrived: anyio.Event) -> Handler:
    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.set()
        await handler(reader, writer)

    return run


def head(code: int, extra: str = "", length: int | None = None) -> bytes:
    size = f"content-length: {length}\r\n" if length is not None else ""
    return f"HTTP/1.1 {code} X\r\ncontent-type: application/json\r\n{size}{extra}\r\n".encode()


def answer(code: int, body: Any) -> bytes:
    data = json.dumps(body).encode()
    return head(code, length=len(data)) + data
