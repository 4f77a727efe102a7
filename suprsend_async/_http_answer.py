"""Reading an HTTP/1.1 answer as its bytes arrive: the head, then the body by its framing.

Pure: no I/O. `_http11`'s connections feed it; every malformed answer is an
``httpx.RemoteProtocolError``, and a body past the cap stops being kept (``oversized``).
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

__all__ = ["MAX_HEAD", "AnswerReader", "Exchange"]

MAX_HEAD = 64 * 1024
"""The largest answer head (status line and headers) read; a longer one is refused."""


class Exchange:
    """One answer as read: status, headers (raw pairs), the raw body (``None`` when it
    passed the cap, ``size`` then saying how far it got)."""

    __slots__ = ("body", "headers", "reason", "size", "status")

    def __init__(
        self, status: int, reason: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.size = 0

    def values(self, name: bytes) -> list[str]:
        """The values of header ``name`` (lower case), in order."""
        return [v.decode("latin-1") for k, v in self.headers if k.lower() == name]


_LENGTH, _CHUNKED, _UNTIL_CLOSE, _NONE = range(4)
_SIZE, _DATA, _DATA_END, _TRAILER = range(4)


class AnswerReader:
    """An answer parsed as bytes arrive (``feed``), to its end or to the cap."""

    __slots__ = (
        "body",
        "buffer",
        "cap",
        "chunk_left",
        "chunk_state",
        "exchange",
        "framing",
        "head_only",
        "keep_alive",
        "left",
        "oversized",
        "size",
    )

    def __init__(self, cap: int, head_only: bool) -> None:
        self.cap = cap
        self.head_only = head_only
        self.buffer = bytearray()
        self.exchange: Exchange | None = None
        self.body: list[bytes] = []
        self.size = 0
        self.framing = _NONE
        self.left = 0
        self.chunk_state = _SIZE
        self.chunk_left = 0
        self.keep_alive = True
        self.oversized = False

    def feed(self, data: bytes) -> bool:
        """Take ``data``; True once the answer is complete (or past the cap)."""
        if self.exchange is None:
            self.buffer += data
            if not self._head():
                return False
            data = bytes(self.buffer)
            self.buffer.clear()
            if self.framing == _NONE:
                if data:
                    self.keep_alive = False  # bytes past a bodiless answer: not trusted
                return True
        if self.framing == _LENGTH:
            return self._take(data[: self.left]) or self._length_done(len(data))
        if self.framing == _UNTIL_CLOSE:
            return self._take(data)
        self.buffer += data
        return self._chunks()

    def _length_done(self, got: int) -> bool:
        if got > self.left:
            self.keep_alive = False  # bytes past the answer: the connection is not trusted
        self.left = max(0, self.left - got)
        return self.left == 0

    def _take(self, data: bytes) -> bool:
        """Keep body bytes; True when past the cap (the rest is not read)."""
        self.size += len(data)
        if self.size > self.cap:
            self.oversized = True
            self.keep_alive = False
            self.body.clear()
            return True
        if data:
            self.body.append(data)
        return False

    def at_close(self) -> bool:
        """The server closed the connection: whether that ended the answer properly."""
        return self.exchange is not None and self.framing == _UNTIL_CLOSE

    def result(self) -> Exchange:
        exchange = self.exchange
        assert exchange is not None
        exchange.body = None if self.oversized else b"".join(self.body)
        exchange.size = self.size
        return exchange

    # -- the head -------------------------------------------------------------------------

    def _head(self) -> bool:
        """Parse a complete head from the buffer (skipping interim 1xx ones)."""
        while True:
            end, size = _head_end(self.buffer)
            if end < 0:
                if len(self.buffer) > MAX_HEAD:
                    raise httpx.RemoteProtocolError("the answer's head is too long")
                return False
            head = bytes(self.buffer[:end])
            del self.buffer[: end + size]
            # Lines end in CRLF; a bare LF is read too (as h11 reads it).
            lines = [line.removesuffix(b"\r") for line in head.split(b"\n")]
            version, status, reason = _status_line(lines[0])
            if 100 <= status < 200:
                if status == 101:
                    raise httpx.RemoteProtocolError("the server switched protocols unasked")
                continue  # interim (100 Continue, 103 Early Hints): the answer follows
            headers = _header_lines(lines[1:])
            self.exchange = Exchange(status, reason, headers, None)
            self._framing(version, status, headers)
            return True

    def _framing(self, version: bytes, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        connection = b""
        lengths: list[bytes] = []
        encodings: list[bytes] = []
        for name, value in headers:
            lowered = name.lower()
            if lowered == b"content-length":
                lengths.append(value)
            elif lowered == b"transfer-encoding":
                encodings += [v.strip().lower() for v in value.split(b",") if v.strip()]
            elif lowered == b"connection":
                connection += b"," + value.lower()
        tokens = {t.strip() for t in connection.split(b",")}
        self.keep_alive = version == b"HTTP/1.1" and b"close" not in tokens
        if self.head_only or status in (204, 304):
            self.framing = _NONE
            return
        if encodings:
            if encodings[-1] != b"chunked":
                self.framing, self.keep_alive = _UNTIL_CLOSE, False
                return
            self.framing = _CHUNKED
            if lengths:  # both: the length is ignored, and so is the connection after
                self.keep_alive = False
            return
        if lengths:
            values = {v.strip() for v in b",".join(lengths).split(b",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise httpx.RemoteProtocolError("the answer's Content-Length is malformed")
            self.left = int(next(iter(values)))
            self.framing = _LENGTH if self.left else _NONE
            return
        self.framing, self.keep_alive = _UNTIL_CLOSE, False

    # -- chunked bodies -------------------------------------------------------------------

    def _chunks(self) -> bool:
        buffer = self.buffer
        at = 0
        try:
            while True:
                if self.chunk_state == _SIZE:
                    end = buffer.find(b"\r\n", at)
                    if end < 0:
                        if len(buffer) - at > 4096:
                            raise httpx.RemoteProtocolError("a chunk size line is too long")
                        return False
                    self.chunk_left = _chunk_size(bytes(buffer[at:end]))
                    at = end + 2
                    self.chunk_state = _DATA if self.chunk_left else _TRAILER
                elif self.chunk_state == _DATA:
                    piece = bytes(buffer[at : at + self.chunk_left])
                    if not piece:
                        return False
                    at += len(piece)
                    self.chunk_left -= len(piece)
                    if self._take(piece):
                        return True
                    if not self.chunk_left:
                        self.chunk_state = _DATA_END
                elif self.chunk_state == _DATA_END:
                    if len(buffer) - at < 2:
                        return False
                    if buffer[at : at + 2] != b"\r\n":
                        raise httpx.RemoteProtocolError("a chunk does not end with CRLF")
                    at += 2
                    self.chunk_state = _SIZE
                else:  # trailer lines, up to an empty one
                    end = buffer.find(b"\r\n", at)
                    if end < 0:
                        if len(buffer) - at > MAX_HEAD:
                            raise httpx.RemoteProtocolError("the answer's trailer is too long")
                        return False
                    line_empty = end == at
                    at = end + 2
                    if line_empty:
                        if at < len(buffer):
                            self.keep_alive = False  # bytes past the answer
                        return True
        finally:
            del buffer[:at]


def _head_end(buffer: bytearray) -> tuple[int, int]:
    """Where the head in ``buffer`` ends (its empty line) and the size of that line break;
    ``(-1, 0)`` while it has not arrived."""
    crlf = buffer.find(b"\r\n\r\n")
    if crlf >= 0 and b"\n\n" not in buffer[:crlf]:
        return crlf, 4
    lf = buffer.find(b"\n\n")
    if lf < 0:
        return -1, 0
    if lf > 0 and buffer[lf - 1 : lf] == b"\r":  # "\r\n\n": the head ends at that \r
        return lf - 1, 3
    return lf, 2


def _status_line(line: bytes) -> tuple[bytes, int, bytes]:
    parts = line.split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or len(parts[0]) != 8:
        raise httpx.RemoteProtocolError(f"not an HTTP/1.1 status line: {line[:60]!r}")
    code = parts[1]
    if len(code) != 3 or not code.isdigit():
        raise httpx.RemoteProtocolError(f"not an HTTP status: {code[:10]!r}")
    return parts[0], int(code), parts[2] if len(parts) > 2 else b""


def _header_lines(lines: Sequence[bytes]) -> list[tuple[bytes, bytes]]:
    headers = []
    for line in lines:
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise httpx.RemoteProtocolError(f"a malformed header line: {line[:60]!r}")
        headers.append((name, value.strip(b" \t")))
    return headers


def _chunk_size(line: bytes) -> int:
    digits = line.split(b";", 1)[0].strip()
    if not digits or len(digits) > 16 or digits.strip(b"0123456789abcdefABCDEF"):
        raise httpx.RemoteProtocolError(f"a malformed chunk size: {line[:30]!r}")
    return int(digits, 16)
