"""Reading an answer's body under a size cap, decoding it in bounded steps.

The decoded size counts: a small compressed answer cannot expand in memory beyond the cap.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import httpx

__all__ = ["read_capped"]


async def read_capped(response: httpx.Response, cap: int) -> tuple[bytes | None, int]:
    """The decoded body, or ``None`` (with the size reached) once it passes ``cap`` bytes.

    The decoded size counts, and gzip and deflate are inflated a bounded step at a time, so a
    small compressed answer cannot expand in memory beyond the cap (a gzip bomb).
    """
    try:
        read = response.content  # already read by the transport (a test's mock transport)
    except httpx.ResponseNotRead:
        pass
    else:
        return (read, len(read)) if len(read) <= cap else (None, len(read))
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "deflate", ""):
        # Encodings the SDK never asks for: httpx decodes them, a chunk at a time.
        return await _collect(response.aiter_bytes(), cap)
    return await _collect(_inflate(response.aiter_raw(), encoding, cap), cap)


async def _inflate(raw: AsyncIterator[bytes], encoding: str, cap: int) -> AsyncIterator[bytes]:
    if encoding in ("identity", ""):
        async for chunk in raw:
            yield chunk
        return
    # 16 + MAX_WBITS: a gzip header; for deflate, a zlib header (servers rarely send raw).
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS)
    step = min(cap + 1, 1 << 20)
    try:
        async for chunk in raw:
            data = chunk
            while data:
                yield inflater.decompress(data, step)
                data = inflater.unconsumed_tail
        yield inflater.flush()
    except zlib.error as exc:
        raise httpx.DecodingError(f"the answer's {encoding} body is corrupt: {exc}") from None


async def _collect(chunks: AsyncIterator[bytes], cap: int) -> tuple[bytes | None, int]:
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > cap:
            return None, size
        parts.append(chunk)
    return b"".join(parts), size
