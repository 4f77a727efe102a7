"""The Content-Encoding grammar, and decoding in bounded steps (``suprsend_async._decode``).

Every list a server can send decodes to the right bytes, whatever its chunking; every token the
SDK cannot read is refused as a protocol error; a decoder never blocks the loop for long.
"""

from __future__ import annotations

import functools
import gzip
import os
import time
import zlib
from collections.abc import AsyncIterator, Callable, Sequence

import anyio
import anyio.lowlevel
import httpx
import pytest

from suprsend_async import _decode
from suprsend_async._decode import STEP, codings, read_capped

brotli = pytest.importorskip("brotli")
zstandard = pytest.importorskip("zstandard")

PAYLOAD = b'{"status": "success", "records": []}' + os.urandom(3000) + b"z" * 200_000

Encoder = Callable[[bytes], bytes]


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


ENCODERS: dict[str, Encoder] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # zlib-wrapped, as the standard says
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


def encode(applied: Sequence[str], data: bytes = PAYLOAD) -> bytes:
    for coding in applied:
        data = ENCODERS[coding](data)
    return data


class Chunks(httpx.AsyncByteStream):
    """A body that arrives in the given chunks, without yielding to the loop in between."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


def answer(values: Sequence[str], body: bytes, chunk: int = 4096) -> httpx.Response:
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    headers = [(b"content-encoding", value.encode("latin-1")) for value in values]
    return httpx.Response(200, headers=headers, stream=Chunks(chunks))


# -- the grammar ---------------------------------------------------------------------------

# header values as sent (one entry per header line) -> the codings applied, in order
VALID: list[tuple[list[str], list[str]]] = [
    ([], []),
    ([""], []),
    (["identity"], []),
    (["IDENTITY"], []),
    ([" , ,\t"], []),
    (["identity, identity"], []),
    (["gzip"], ["gzip"]),
    (["GZIP"], ["gzip"]),
    ([" gzip\t"], ["gzip"]),
    (["x-gzip"], ["gzip"]),
    (["X-Gzip"], ["gzip"]),
    (["deflate"], ["deflate"]),
    (["br"], ["br"]),
    (["zstd"], ["zstd"]),
    (["gzip, identity"], ["gzip"]),
    (["identity,gzip"], ["gzip"]),
    (["gzip", "identity"], ["gzip"]),
    (["gzip, gzip"], ["gzip", "gzip"]),
    (["gzip", "gzip"], ["gzip", "gzip"]),
    (["gzip,gzip,gzip"], ["gzip", "gzip", "gzip"]),
    (["gzip", "x-gzip, identity", "GZip"], ["gzip", "gzip", "gzip"]),
    (["deflate, gzip"], ["deflate", "gzip"]),
    (["gzip ,\tdeflate"], ["gzip", "deflate"]),
    (["br, zstd"], ["br", "zstd"]),
    (["zstd", "br"], ["zstd", "br"]),
    (["gzip, br", "identity", "zstd , deflate"], ["gzip", "br", "zstd", "deflate"]),
    ([",gzip,,"], ["gzip"]),
]

REFUSED: list[list[str]] = [
    ["compress"],
    ["x-compress"],
    ["foo"],
    ["gzip, foo"],
    ["gzip", "foo"],
    ["gzip;q=1"],
    ["identity;q=0"],
    ["gzip deflate"],
    ["*"],
    ["gzïp"],
    ["gzip, gzip, gzip, gzip, gzip"],
    ["gzip, gzip", "gzip, gzip", "gzip"],
]


@pytest.mark.parametrize(("values", "applied"), VALID)
def test_a_valid_list_names_the_codings_in_the_order_applied(
    values: list[str], applied: list[str]
) -> None:
    assert codings(values) == applied


@pytest.mark.parametrize(("values", "applied"), VALID)
@pytest.mark.parametrize("chunk", [7, 4096, 1 << 20])
async def test_a_valid_list_decodes_to_the_right_bytes(
    values: list[str], applied: list[str], chunk: int
) -> None:
    body, size = await read_capped(answer(values, encode(applied), chunk), 1 << 20)
    assert body == PAYLOAD and size == len(PAYLOAD)


@pytest.mark.parametrize("values", REFUSED)
async def test_codings_the_sdk_cannot_read_are_refused(values: list[str]) -> None:
    with pytest.raises(httpx.DecodingError, match=r"content coding|stacks"):
        codings(values)
    with pytest.raises(httpx.DecodingError):
        await read_capped(answer(values, encode(["gzip"])), 1 << 20)


@pytest.mark.parametrize(("coding", "package"), [("br", "brotli"), ("zstd", "zstandard")])
async def test_br_and_zstd_without_their_package_are_refused_naming_it(
    coding: str, package: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_decode, "_brotli" if coding == "br" else "_zstandard", lambda: None)
    with pytest.raises(httpx.DecodingError, match=f"install {package}"):
        await read_capped(answer([coding], encode([coding])), 1 << 20)
    assert coding not in _decode.available_codings()


# -- bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
async def test_a_body_arriving_a_byte_at_a_time_decodes(coding: str) -> None:
    data = PAYLOAD[:20_000]
    body, _ = await read_capped(answer([coding], encode([coding], data), 1), 1 << 20)
    assert body == data


async def test_raw_deflate_is_read_as_well_as_zlib_wrapped() -> None:
    body, _ = await read_capped(answer(["deflate"], _raw_deflate(PAYLOAD), 1), 1 << 20)
    assert body == PAYLOAD


async def test_gzip_members_in_a_row_are_read_in_turn_and_zstd_frames_too() -> None:
    halves = PAYLOAD[:1000], PAYLOAD[1000:]
    body, _ = await read_capped(answer(["gzip"], b"".join(map(gzip.compress, halves))), 1 << 20)
    assert body == PAYLOAD
    frames = b"".join(ENCODERS["zstd"](half) for half in halves)
    body, _ = await read_capped(answer(["zstd"], frames, 100), 1 << 20)
    assert body == PAYLOAD


async def test_an_empty_body_with_a_coding_is_empty() -> None:
    assert await read_capped(answer(["gzip, br"], b""), 100) == (b"", 0)


@pytest.mark.parametrize("applied", [["gzip"], ["deflate"], ["br"], ["zstd"], ["gzip", "br"]])
async def test_corrupt_or_cut_bodies_are_decoding_errors(applied: list[str]) -> None:
    good = encode(applied)
    header = [", ".join(applied)]
    with pytest.raises(httpx.DecodingError, match=r"ends early|corrupt"):
        await read_capped(answer(header, good[: len(good) // 2]), 1 << 20)
    with pytest.raises(httpx.DecodingError, match="corrupt"):
        await read_capped(answer(header, good[:6] + b"\xff" * 64 + good[70:]), 1 << 20)


# -- bounded -------------------------------------------------------------------------------


def _bomb(applied: Sequence[str]) -> bytes:
    return _bomb_of(tuple(applied))


@functools.cache
def _bomb_of(applied: tuple[str, ...]) -> bytes:
    """64 MiB of zeros under ``applied``, the first coding fed in 1 MiB pieces."""
    first = applied[0]
    zero = bytes(1 << 20)
    if first == "zstd":
        compressor = zstandard.ZstdCompressor().compressobj()
        data = b"".join(compressor.compress(zero) for _ in range(64)) + compressor.flush()
    elif first == "br":
        stream = brotli.Compressor(quality=5)
        data = b"".join(stream.process(zero) for _ in range(64)) + stream.finish()
    else:
        wbits = 31 if first == "gzip" else zlib.MAX_WBITS
        deflater = zlib.compressobj(6, zlib.DEFLATED, wbits)
        data = b"".join(deflater.compress(zero) for _ in range(64)) + deflater.flush()
    return encode(applied[1:], data)


@pytest.mark.parametrize(
    "applied", [["gzip"], ["br"], ["zstd"], ["zstd", "gzip"], ["gzip", "gzip", "br"]]
)
@pytest.mark.parametrize("cap", [1000, 1 << 20, 4 << 20])
async def test_every_layer_stops_at_the_cap(applied: list[str], cap: int) -> None:
    body, size = await read_capped(answer([", ".join(applied)], _bomb(applied), 1 << 16), cap)
    assert body is None and cap < size


def test_intermediate_layers_are_capped_too() -> None:
    """``zstd, gzip``: the gzip layer's output (the zstd bomb) is small, its zstd output is
    not; ``gzip`` under ``identity`` wrappers alike. With a cap below the intermediate size the
    intermediate layer itself stops."""
    inner = _bomb(["gzip"])  # ~64 KiB of gzip, 64 MiB of zeros
    decoder = _decode.Decoder(["gzip", "zstd"], cap=len(inner) // 2)
    with pytest.raises(_decode._Oversized):
        for _ in decoder.feed(ENCODERS["zstd"](inner)):
            pass
    assert decoder.sizes[0] > len(inner) // 2 and decoder.sizes[1] == 0


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_each_step_yields_a_bounded_piece(coding: str) -> None:
    decoder = _decode.Decoder([coding], cap=1 << 40)
    biggest = max(len(piece) for piece in decoder.feed(_bomb([coding])))
    # zstd: at most about 3 MiB from a 64-byte slice (a block per 3 bytes); others: a step.
    assert biggest <= (3 << 20 if coding == "zstd" else 2 * STEP), biggest


async def test_inflating_yields_to_the_loop_so_deadlines_fire() -> None:
    """The whole bomb arrives in one chunk that does not yield: only the decoder's own
    checkpoints let a deadline in, and other tasks run meanwhile."""
    bomb = _bomb(["gzip", "br"])
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(tick)
        body, _ = await read_capped(answer(["gzip, br"], bomb, len(bomb)), 8 << 20)
        tg.cancel_scope.cancel()
    assert body is None and ticks > 50  # the loop ran other tasks during the decoding

    started = time.perf_counter()
    with anyio.move_on_after(0.01) as scope:
        await read_capped(answer(["gzip, br"], bomb, len(bomb)), 1 << 40)
    assert scope.cancelled_caught
    assert time.perf_counter() - started < 0.5  # not the whole 64 MiB
