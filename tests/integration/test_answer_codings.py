"""Hostile content codings over real loopback sockets: every stacking stays under the cap.

Each server answers with 1 GiB of JSON padding (``{"status": "success", "pad": "000..."}``)
compressed under a stack of codings, named as servers do it: one header with a comma list,
repeated headers, ``identity`` mixed in, odd case and spaces, ``x-gzip``. Each call must end
within its timeout plus a second, with the process's traced peak under 150 MB, and the loop
never held for long; unknown codings are an unreadable answer, never a crash.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest
import pytest_asyncio

from suprsend_async import AsyncSuprsend

from ..conftest import KEY, SECRET
from .misbehaving_server import BODY, Handler, Server, head

brotli = pytest.importorskip("brotli")
zstandard = pytest.importorskip("zstandard")

pytestmark = pytest.mark.integration

PREFIX = b'{"status": "success", "pad": "'
SUFFIX = b'"}'
BLOCK = b"0" * (1 << 20)
BLOCKS = 1024  # 1 GiB of padding
TIMEOUT = 5.0
PEAK = 150_000_000


def _padding() -> Iterator[bytes]:
    yield PREFIX
    for _ in range(BLOCKS):
        yield BLOCK
    yield SUFFIX


@functools.cache
def _raw_deflate() -> bytes:
    """The padding as one raw deflate stream, built in milliseconds: after a full flush the
    compressor starts afresh, so every 1 MiB block of zeros compresses to the same bytes."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head_ = deflater.compress(PREFIX) + deflater.flush(zlib.Z_FULL_FLUSH)
    block = deflater.compress(BLOCK) + deflater.flush(zlib.Z_FULL_FLUSH)
    again = deflater.compress(BLOCK) + deflater.flush(zlib.Z_FULL_FLUSH)
    assert block == again
    return head_ + block * BLOCKS + deflater.compress(SUFFIX) + deflater.flush()


@functools.cache
def _bomb(coding: str) -> bytes:
    """The 1 GiB padding under one coding (a real, complete stream: checksums and all)."""
    if coding == "gzip":
        crc = functools.reduce(lambda c, part: zlib.crc32(part, c), _padding(), 0)
        size = (len(PREFIX) + len(SUFFIX) + BLOCKS * len(BLOCK)) & 0xFFFFFFFF
        trailer = struct.pack("<II", crc, size)
        return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + _raw_deflate() + trailer
    if coding == "deflate":
        adler = functools.reduce(lambda a, part: zlib.adler32(part, a), _padding(), 1)
        return b"\x78\x9c" + _raw_deflate() + struct.pack(">I", adler)
    if coding == "br":
        stream = brotli.Compressor(quality=5)
        return bytes(b"".join(map(stream.process, _padding())) + stream.finish())
    compressor = zstandard.ZstdCompressor(level=3).compressobj()
    return bytes(b"".join(map(compressor.compress, _padding())) + compressor.flush())


ENCODE: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: zlib.compress(data, wbits=31),
    "deflate": zlib.compress,
    "br": lambda data: brotli.compress(data, quality=5),
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def stacked(applied: tuple[str, ...]) -> bytes:
    """The bomb under ``applied`` (in the order applied: the first is innermost)."""
    data = _bomb(applied[0])
    for coding in applied[1:]:
        data = ENCODE[coding](data)
    return data


CODINGS = ("gzip", "deflate", "br", "zstd")
STACKS = [
    *((c,) for c in CODINGS),
    *((a, b) for a in CODINGS for b in CODINGS),
    ("gzip", "gzip", "gzip"),
    ("zstd", "br", "deflate", "gzip"),
    ("gzip", "zstd", "gzip", "br"),
]


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> str:
        server = Server(handler)
        servers.append(server)
        return await server.start()

    yield start
    for server in servers:
        await server.stop()


def serving(headers: str, body: bytes) -> Handler:
    async def send(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(head(202, headers, len(body)) + body)
        await writer.drain()

    return send


async def measured(url: str, bulk: bool = False) -> tuple[Any, int, float, float]:
    """One call (a single trigger, or a bulk of two): its result, the traced peak, its
    duration and the longest the event loop went without running another task."""
    longest = 0.0

    async def heartbeat() -> None:
        nonlocal longest
        last = time.perf_counter()
        while True:
            await anyio.sleep(0.005)
            now = time.perf_counter()
            longest, last = max(longest, now - last), now

    tracemalloc.start()
    try:
        async with (
            AsyncSuprsend(KEY, SECRET, url, timeout=TIMEOUT, max_retries=0) as client,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(heartbeat)
            started = time.perf_counter()
            if bulk:
                instance = client.workflows.bulk_trigger_instance()
                instance.append(BODY, BODY)
                result: Any = await instance.trigger()
            else:
                result = await client.workflows.trigger(BODY)
            elapsed = time.perf_counter() - started
            tg.cancel_scope.cancel()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak, elapsed, longest


@pytest.mark.parametrize("applied", STACKS, ids="+".join)
async def test_a_bomb_under_any_stack_of_codings_is_cut_at_the_cap(
    serve: Callable[[Handler], Awaitable[str]], applied: tuple[str, ...]
) -> None:
    body = stacked(applied)
    url = await serve(serving(f"content-encoding: {', '.join(applied)}\r\n", body))
    result, peak, elapsed, longest = await measured(url)
    assert len(body) < 5_000_000
    assert peak < PEAK, peak
    assert elapsed < TIMEOUT + 1, elapsed
    assert longest < 1.0, longest  # the loop was never held for long
    assert result.success and "was discarded" in result.message  # the status still tells


# How servers name ``gzip, gzip`` (and ``gzip``): the reproducers among them.
SPELLINGS = [
    ("gzip, gzip", ("gzip", "gzip")),
    ("gzip,gzip", ("gzip", "gzip")),
    ("gzip\r\ncontent-encoding: gzip", ("gzip", "gzip")),
    ("GZip , identity,\tX-GZIP", ("gzip", "gzip")),
    ("gzip, identity", ("gzip",)),
    ("identity\r\ncontent-encoding: gzip\r\ncontent-encoding: identity", ("gzip",)),
    ("br\r\nContent-Encoding: ZSTD", ("br", "zstd")),
]


@pytest.mark.parametrize(("header", "applied"), SPELLINGS)
async def test_every_spelling_of_a_stack_is_bounded(
    serve: Callable[[Handler], Awaitable[str]], header: str, applied: tuple[str, ...]
) -> None:
    url = await serve(serving(f"content-encoding: {header}\r\n", stacked(applied)))
    result, peak, elapsed, _ = await measured(url)
    assert peak < PEAK and elapsed < TIMEOUT + 1, (peak, elapsed)
    assert result.success and "was discarded" in result.message


async def test_a_bulk_answer_under_stacked_codings_is_unknown_not_a_balloon(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    url = await serve(serving("content-encoding: gzip, gzip\r\n", stacked(("gzip", "gzip"))))
    account, peak, elapsed, _ = await measured(url, bulk=True)
    assert peak < PEAK and elapsed < TIMEOUT + 1, (peak, elapsed)
    assert (account.unknown, account.success) == (2, 0)
    assert "too big to read" in account.warnings[0]


@pytest.mark.parametrize(
    "header", ["gzip, foo", "compress", "gzip;q=1", "gzip, gzip, gzip, gzip, gzip"]
)
async def test_an_unknown_coding_is_an_unreadable_answer(
    serve: Callable[[Handler], Awaitable[str]], header: str
) -> None:
    url = await serve(serving(f"content-encoding: {header}\r\n", stacked(("gzip",))))
    result, peak, elapsed, _ = await measured(url)
    assert peak < PEAK and elapsed < TIMEOUT + 1, (peak, elapsed)
    assert not result.success and result.status_code is None
    assert result.message.startswith("unreadable answer: DecodingError: "), result.message
    account, *_ = await measured(url, bulk=True)  # it may have been processed: unknown
    assert (account.unknown, account.success) == (2, 0)
