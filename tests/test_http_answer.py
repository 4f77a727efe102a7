"""The answer reader of the SDK's own connections, fed bytes directly: framing, limits, and
when a connection may carry another request."""

from __future__ import annotations

import httpx
import pytest

from suprsend_async._http_answer import MAX_HEAD, AnswerReader


def read(*pieces: bytes, cap: int = 1 << 20) -> AnswerReader:
    reader = AnswerReader(cap, head_only=False)
    for piece in pieces[:-1]:
        assert not reader.feed(piece)
    assert reader.feed(pieces[-1])
    return reader


def test_a_length_answer_in_pieces_and_bytes_past_it() -> None:
    reader = read(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", b"cde")
    assert reader.result().body == b"abcde" and reader.keep_alive
    extra = read(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabXYZ")
    assert extra.result().body == b"ab" and not extra.keep_alive


def test_chunked_pieces_trailers_and_bytes_past_them() -> None:
    reader = read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", b"c\r\n0\r\n\r\n"
    )
    assert reader.result().body == b"abc" and reader.keep_alive
    partial = AnswerReader(1000, head_only=False)
    assert not partial.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab")
    assert not partial.feed(b"c\r\n0\r\nX-T: 1\r\n")
    assert partial.feed(b"\r\nSTRAY") and not partial.keep_alive
    assert partial.result().body == b"abc"


def test_framings_that_end_the_connection() -> None:
    reader = AnswerReader(1000, head_only=False)
    reader.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxyz")
    assert reader.at_close() and not reader.keep_alive
    both = read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
        b"3\r\nabc\r\n0\r\n\r\n"
    )
    assert both.result().body == b"abc" and not both.keep_alive
    old = read(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx")
    assert not old.keep_alive
    closing = read(b"HTTP/1.1 200 OK\r\nConnection: keep-alive, close\r\nContent-Length: 0\r\n\r\n")
    assert not closing.keep_alive


def test_a_head_answer_has_no_body() -> None:
    reader = AnswerReader(1000, head_only=True)
    assert reader.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n")
    assert reader.result().body == b"" and reader.keep_alive


@pytest.mark.parametrize(
    "raw",
    [
        b"HTTP/1.1 200 OK\r\n" + b"x-long: " + b"y" * (MAX_HEAD + 10),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"1" * 5000,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + b"t" * (MAX_HEAD + 10),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + b"f" * 17 + b"\r\n",
    ],
)
def test_limits_on_heads_chunk_lines_and_trailers(raw: bytes) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        AnswerReader(1 << 20, head_only=False).feed(raw)


def test_the_cap_stops_keeping_a_body() -> None:
    chunked = read(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n", cap=5
    )
    assert chunked.result().body is None and chunked.result().size == 10
    until_close = AnswerReader(5, head_only=False)
    assert until_close.feed(b"HTTP/1.1 200 OK\r\n\r\n0123456789")
    assert until_close.result().body is None and not until_close.keep_alive
