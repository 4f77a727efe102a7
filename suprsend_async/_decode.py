"""Reading an answer's body under a size cap, decoding its content codings in bounded steps.

The one place where an answer's ``Content-Encoding`` is undone. The rules:

* the header is a list of codings (one header with commas, or the header repeated, in order);
  the codings were applied in that order, so they are undone in reverse;
* ``identity`` is no coding; ``x-gzip`` is ``gzip``; case and spaces do not matter; empty list
  elements are skipped; ``br`` and ``zstd`` are read when their packages (``brotli`` >= 1.2,
  ``zstandard``) are installed;
* anything else (an unknown coding, a coding with parameters, more than
  `MAX_CODINGS` codings) is refused as a protocol error: an `httpx.DecodingError`,
  which the caller reports as an unreadable answer;
* every layer decodes a bounded step at a time (at most about `STEP` bytes out of zlib and
  brotli, at most `ZSTD_SLICE` bytes into zstd, whose output per input byte is bounded by
  its format), and the reader yields to the event loop between steps, so timeouts and
  deadlines still fire while a large answer is being inflated;
* the cap counts decoded bytes at the final layer, and also bounds what every intermediate
  layer produces: a small compressed answer cannot expand in memory beyond the cap, however
  its codings are stacked.

httpx's own decoder (``response.aiter_bytes()``, ``response.read()``) is never used on the
network path: it inflates without a limit.
"""

from __future__ import annotations

import functools
import re
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Protocol

import anyio.lowlevel
import httpx

__all__ = [
    "MAX_CODINGS",
    "STEP",
    "ZSTD_SLICE",
    "available_codings",
    "codings",
    "decode_capped",
    "read_capped",
]

STEP = 1 << 16
"""Bytes a zlib or brotli layer produces per step (a bounded output per call)."""

ZSTD_SLICE = 64
"""Bytes fed to zstd per step. A zstd block holds at most 128 KiB and takes at least 3 bytes,
so one step produces at most about 3 MiB, however hostile the frame."""

ZSTD_MAX_WINDOW = 1 << 23
"""The largest zstd window accepted (8 MiB, what the format asks every decoder to support):
a frame cannot make the decoder allocate more."""

MAX_CODINGS = 4
"""Codings accepted on one answer (``identity`` not counted); servers apply one."""

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]+")
_ALIASES = {"x-gzip": "gzip"}


class _Oversized(Exception):
    """A layer's output passed the cap; ``size`` is how far it got."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.size = size


def _corrupt(coding: str, exc: Exception) -> httpx.DecodingError:
    return httpx.DecodingError(f"the answer's {coding} body is corrupt: {exc}")


class _Layer(Protocol):
    """One content coding being undone: bounded pieces out for each piece in."""

    def feed(self, data: bytes) -> Iterator[bytes]: ...

    def end(self) -> Iterator[bytes]: ...


@functools.cache
def _brotli() -> Any:
    try:
        import brotli
    except ImportError:
        return None
    # Before 1.2 the decompressor has no bounded output: reading br with it could not be capped.
    return brotli if hasattr(brotli.Decompressor(), "can_accept_more_data") else None


@functools.cache
def _zstandard() -> Any:
    try:
        import zstandard
    except ImportError:
        return None
    return zstandard


def available_codings() -> frozenset[str]:
    """The codings this installation can undo (``br`` and ``zstd`` need their packages)."""
    names = {"gzip", "deflate"}
    if _brotli() is not None:
        names.add("br")
    if _zstandard() is not None:
        names.add("zstd")
    return frozenset(names)


def codings(values: Sequence[str]) -> list[str]:
    """The codings named by the ``Content-Encoding`` header values, in the order applied.

    ``identity`` and empty list elements are dropped; an unknown or unavailable coding raises
    `httpx.DecodingError`.
    """
    found: list[str] = []
    usable = available_codings()
    for value in values:
        for element in value.split(","):
            token = element.strip(" \t").lower()
            if not token or token == "identity":
                continue
            token = _ALIASES.get(token, token)
            if token not in usable:
                shown = element.strip(" \t")[:40]
                why = "" if _TOKEN.fullmatch(token) else " (not a coding token)"
                if token in ("br", "zstd"):
                    package = "brotli>=1.2" if token == "br" else "zstandard"
                    why = f" (install {package} to read it)"
                raise httpx.DecodingError(f"the answer's content coding {shown!r} is unknown{why}")
            found.append(token)
    if len(found) > MAX_CODINGS:
        raise httpx.DecodingError(
            f"the answer stacks {len(found)} content codings (at most {MAX_CODINGS} are read)"
        )
    return found


class _Zlib:
    """gzip (``wbits`` 31; members in a row are read in turn) or deflate (zlib-wrapped, as
    the standard says, or raw, as some servers send it: told apart by the first two bytes)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._head = b""  # deflate: bytes held until the wrapper can be told
        self._inflater: Any = None
        if coding == "gzip":
            self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)

    def _start_deflate(self, data: bytes) -> bytes:
        data = self._head + data
        if len(data) < 2:
            self._head = data
            return b""
        self._head = b""
        cmf, flg = data[0], data[1]
        wrapped = cmf & 0x0F == 8 and (cmf << 8 | flg) % 31 == 0
        self._inflater = zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)
        return data

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._inflater is None:
            data = self._start_deflate(data)
        try:
            while data:
                inflater = self._inflater
                if inflater.eof:
                    # After the end: another gzip member, or bytes that are ignored (as
                    # httpx and browsers do).
                    if self.coding != "gzip" or data[:1] != b"\x1f":
                        return
                    self._inflater = inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                yield inflater.decompress(data, STEP)
                data = inflater.unconsumed_tail or inflater.unused_data
        except zlib.error as exc:
            raise _corrupt(self.coding, exc) from None

    def end(self) -> Iterator[bytes]:
        inflater = self._inflater
        if self._head or inflater is None:
            raise httpx.DecodingError(f"the answer's {self.coding} body ends early")
        # Output zlib still holds (a step ended on the output limit), a step at a time.
        while not inflater.eof:
            try:
                piece = inflater.decompress(b"", STEP)
            except zlib.error as exc:
                raise _corrupt(self.coding, exc) from None
            if not piece:
                raise httpx.DecodingError(f"the answer's {self.coding} body ends early")
            yield piece


class _Brotli:
    """br, through brotli's bounded ``process`` (``output_buffer_limit``)."""

    def __init__(self) -> None:
        self._module = _brotli()
        self._inflater = self._module.Decompressor()

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            yield self._inflater.process(data, output_buffer_limit=STEP)
            yield from self._drain()
        except self._module.error as exc:
            raise _corrupt("br", exc) from None

    def _drain(self) -> Iterator[bytes]:
        # What the decoder holds past the step's limit, a step at a time, before more input
        # (its ``can_accept_more_data`` may say yes while output is still held).
        while piece := self._inflater.process(b"", output_buffer_limit=STEP):
            yield piece

    def end(self) -> Iterator[bytes]:
        try:
            yield from self._drain()
        except self._module.error as exc:
            raise _corrupt("br", exc) from None
        if not self._inflater.is_finished():
            raise httpx.DecodingError("the answer's br body ends early")


class _Zstd:
    """zstd, a few bytes of input per step (see `ZSTD_SLICE`); frames in a row are read
    in turn."""

    def __init__(self) -> None:
        self._module = _zstandard()
        self._decompressor = self._module.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._inflater = self._decompressor.decompressobj(write_size=STEP)

    def feed(self, data: bytes) -> Iterator[bytes]:
        view = memoryview(data)
        at = 0
        after = b""  # what followed a frame's end in the last slice (at most a slice)
        try:
            while after or at < len(view):
                if self._inflater.eof:
                    self._inflater = self._decompressor.decompressobj(write_size=STEP)
                if after:
                    piece: bytes | memoryview = after
                else:
                    piece, at = view[at : at + ZSTD_SLICE], at + ZSTD_SLICE
                yield self._inflater.decompress(piece)
                after = self._inflater.unused_data if self._inflater.eof else b""
        except self._module.ZstdError as exc:
            raise _corrupt("zstd", exc) from None

    def end(self) -> Iterator[bytes]:
        if not self._inflater.eof:
            raise httpx.DecodingError("the answer's zstd body ends early")
        yield from ()


def _layer(coding: str) -> _Layer:
    if coding == "br":
        return _Brotli()
    if coding == "zstd":
        return _Zstd()
    return _Zlib(coding)


class Decoder:
    """The layers for a list of codings (as applied), undone in reverse, each under ``cap``.

    ``feed`` and ``end`` yield the final layer's pieces, and an empty piece after each step
    of an intermediate layer: every item is a point where the reader may yield to the loop.
    """

    def __init__(self, applied: Sequence[str], cap: int) -> None:
        self.layers = [_layer(coding) for coding in reversed(applied)]
        self.cap = cap
        self.sizes = [0] * len(self.layers)
        self.fed = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        self.fed += len(data)
        return self._through(0, data) if self.layers else iter((data,))

    def end(self) -> Iterator[bytes]:
        if not self.fed:
            return  # no body at all (a 204, say): nothing to undo
        for i, layer in enumerate(self.layers):
            yield from self._pass(i, layer.end())

    def _through(self, i: int, data: bytes) -> Iterator[bytes]:
        yield from self._pass(i, self.layers[i].feed(data))

    def _pass(self, i: int, pieces: Iterator[bytes]) -> Iterator[bytes]:
        last = i + 1 == len(self.layers)
        for piece in pieces:
            self.sizes[i] += len(piece)
            if self.sizes[i] > self.cap:
                raise _Oversized(self.sizes[i])
            if last:
                yield piece
            else:
                yield b""
                if piece:
                    yield from self._through(i + 1, piece)


async def read_capped(response: httpx.Response, cap: int) -> tuple[bytes | None, int]:
    """The decoded body, or ``None`` (with the size reached) once it passes ``cap`` bytes.

    Raises `httpx.DecodingError` for a coding that cannot be read or a corrupt body.
    """
    try:
        read = response.content  # already read by the transport (a test's mock transport)
    except httpx.ResponseNotRead:
        pass
    else:
        return (read, len(read)) if len(read) <= cap else (None, len(read))
    decoder = Decoder(codings(response.headers.get_list("content-encoding")), cap)
    return await _decoded(decoder, response.aiter_raw(), cap)


async def decode_capped(
    content_encoding: Sequence[str], raw: bytes, cap: int
) -> tuple[bytes | None, int]:
    """`read_capped` for a body already read whole (its raw bytes, within the cap): the
    codings named by the ``Content-Encoding`` values undone, under the same cap and steps."""
    decoder = Decoder(codings(content_encoding), cap)
    if not decoder.layers:
        return (raw, len(raw)) if len(raw) <= cap else (None, len(raw))
    return await _decoded(decoder, _one(raw), cap)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _decoded(
    decoder: Decoder, chunks: AsyncIterator[bytes], cap: int
) -> tuple[bytes | None, int]:
    parts: list[bytes] = []
    size = 0

    async def take(pieces: Iterator[bytes]) -> bool:
        """Keep the pieces while under the cap; False once past it."""
        nonlocal size
        for piece in pieces:
            size += len(piece)
            if size > cap:
                return False
            if piece:
                parts.append(piece)
            if decoder.layers:
                # A step of inflating: let deadlines, timeouts and other tasks in.
                await anyio.lowlevel.checkpoint()
        return True

    try:
        async for chunk in chunks:
            if not await take(decoder.feed(chunk)):
                return None, size
        if not await take(decoder.end()):
            return None, size
    except _Oversized as exc:
        return None, exc.size
    return b"".join(parts), size
