"""A loopback HTTP server that records every request as it arrives, for wire-parity tests.

It runs ``http.server.ThreadingHTTPServer`` on a thread bound to 127.0.0.1 and keeps, for each
request, what a signature check needs untouched: the method, the raw path and query exactly as
written on the request line, the headers in order, and the body bytes read off the socket (by
``Content-Length`` or chunked). It answers every method with plausible JSON (see
:func:`default_answer`); a test can replace the answer rule with :attr:`RecordingServer.answer`.

The checks live here too: :func:`verify_hmac` recomputes a request's signature from what was
received, :func:`verify_bearer` checks API-key headers, and :func:`wire_view` reduces a request
to what two SDKs must agree on.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

__all__ = [
    "Answer",
    "RecordedRequest",
    "RecordingServer",
    "WireView",
    "default_answer",
    "recording_server",
    "string_to_sign",
    "verify_bearer",
    "verify_hmac",
    "wire_view",
]

# Collection paths answered with an empty page when read with GET. A namespace whose list
# answer has another shape adds its pattern here (or sets the case's own answer).
LIST_PATHS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^/v1/(tenant|brand|user|subscriber_list|message)/$"),
    re.compile(r"^/v1/object/[^/]+/$"),
    re.compile(r"/preference/category/$"),
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    target: str
    """The request target exactly as on the request line (``/v1/tenant/t%2F1/?a=b``)."""
    headers: tuple[tuple[str, str], ...]
    body: bytes
    """The body bytes read off the socket; ``b""`` when there was none."""

    @property
    def path(self) -> str:
        """The raw (still percent-encoded) path, without the query."""
        return self.target.partition("?")[0]

    @property
    def query(self) -> str:
        """The raw query string after ``?``, or ``""``."""
        return self.target.partition("?")[2]

    def header(self, name: str) -> str | None:
        """The one value of header ``name`` (any case); ``None`` when absent."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"header {name!r} sent {len(values)} times: {values!r}"
        return values[0] if values else None

    def json(self) -> Any:
        """The body decoded as JSON, or ``None`` when the body is empty."""
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class Answer:
    """What the server sends back: a status and an optional JSON body (``None``: no body)."""

    status: int = 200
    body: Any = None
    has_body: bool = True


def default_answer(request: RecordedRequest) -> Answer:
    """A plausible answer: an empty page for a collection read, 204 for a DELETE, else an echo.

    The echo depends only on what the two SDKs must agree on (the decoded path segments, the
    parsed query, the parsed body), so that equal requests get equal answers.
    """
    if request.method == "DELETE":
        return Answer(204, has_body=False)
    if request.method == "GET" and any(p.search(request.path) for p in LIST_PATHS):
        pairs = dict(parse_qsl(request.query, keep_blank_values=True))
        limit = int(pairs.get("limit", "20"))
        offset = int(pairs.get("offset", "0"))
        return Answer(200, {"meta": {"count": 0, "limit": limit, "offset": offset}, "results": []})
    return Answer(
        200,
        {
            "echo": {
                "method": request.method,
                "segments": [unquote(s) for s in request.path.strip("/").split("/")],
                "query": [list(p) for p in parse_qsl(request.query, keep_blank_values=True)],
                "body": request.json(),
            },
            "name": "Ünïcødé ✓",
        },
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as pooled clients expect
    timeout = 30  # a stalled client cannot hold a handler thread for ever
    server: _Server

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        request = RecordedRequest(
            method=self.command,
            target=self.path,
            headers=tuple(self.headers.items()),
            body=self._read_body(),
        )
        owner = self.server.owner
        with owner._lock:
            owner._requests.append(request)
        answer = owner.answer(request)
        self.send_response(answer.status)
        if answer.has_body:
            data = json.dumps(answer.body, ensure_ascii=False).encode()
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        else:
            if answer.status not in (204, 304) and answer.status >= 200:
                self.send_header("Content-Length", "0")
            self.end_headers()

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean; the recording is the log


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # pooled keep-alive connections must not block shutdown
    owner: RecordingServer


class RecordingServer:
    """A recording HTTP server on 127.0.0.1 (see the module docstring); start with ``with``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self.answer: Callable[[RecordedRequest], Answer] = default_answer
        """The answer rule; a test may replace it (and put :func:`default_answer` back)."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:{port}/``, with the trailing slash both SDKs normalise to."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def take(self) -> list[RecordedRequest]:
        """The requests recorded since the last ``take``, oldest first; clears the record."""
        with self._lock:
            taken, self._requests = self._requests, []
        return taken

    def take_one(self) -> RecordedRequest:
        """The single request recorded since the last ``take``; fails if there was not one."""
        taken = self.take()
        assert len(taken) == 1, f"expected one request, got {len(taken)}: {taken!r}"
        return taken[0]

    def __enter__(self) -> RecordingServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def recording_server() -> Iterator[RecordingServer]:
    """A started :class:`RecordingServer`, shut down on exit."""
    with RecordingServer() as server:
        yield server


# -- checks -------------------------------------------------------------------------------


def string_to_sign(request: RecordedRequest) -> str:
    """The five signed lines, rebuilt from what was received (PROTOCOL.md, Authentication)."""
    digest = hashlib.md5(request.body, usedforsecurity=False).hexdigest() if request.body else ""
    uri = request.path + (f"?{request.query}" if request.query else "")
    return "\n".join(
        (
            request.method,
            digest,
            request.header("Content-Type") or "",
            request.header("Date") or "",
            uri,
        )
    )


def verify_hmac(request: RecordedRequest, workspace_key: str, workspace_secret: str) -> None:
    """Assert that ``Authorization: {key}:{signature}`` signs the request as received."""
    date = request.header("Date")
    assert date is not None, "an HMAC-signed request must carry a Date header"
    assert re.fullmatch(r"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT", date), (
        f"Date is not RFC 1123 GMT: {date!r}"
    )
    skew = abs((datetime.now(UTC) - parsedate_to_datetime(date)).total_seconds())
    assert skew < 15 * 60, f"Date {date!r} is {skew:.0f} s away from now"
    message = string_to_sign(request)
    expected = base64.b64encode(
        hmac.digest(workspace_secret.encode(), message.encode(), "sha256")
    ).decode()
    assert request.header("Authorization") == f"{workspace_key}:{expected}", (
        f"signature does not verify; signed lines as received: {message!r}"
    )


def verify_bearer(request: RecordedRequest, api_key: str, workspace_uid: str | None) -> None:
    """Assert the API-key headers: ``Bearer {api_key}``, and ``X-SS-WSUID`` when one is given
    (``None`` asserts that the header is absent)."""
    assert request.header("Authorization") == f"Bearer {api_key}"
    assert request.header("X-SS-WSUID") == workspace_uid


@dataclass(frozen=True)
class WireView:
    """What two SDKs must agree on for one request."""

    method: str
    path: str
    """Raw path, percent-encoded exactly as sent."""
    query: tuple[tuple[str, str], ...]
    """Query pairs in order, decoded (``+`` and ``%20`` read alike)."""
    json_body: Any
    """The body parsed as JSON; ``None`` when there is none (a DELETE's empty body too)."""
    content_type: str | None


def wire_view(request: RecordedRequest) -> WireView:
    """Reduce a recorded request to its :class:`WireView`."""
    return WireView(
        method=request.method,
        path=request.path,
        query=tuple(parse_qsl(request.query, keep_blank_values=True)),
        json_body=request.json(),
        content_type=request.header("Content-Type"),
    )
