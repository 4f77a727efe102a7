"""Hostile servers on loopback: the client never hangs, never balloons, never shows a secret.

Each server below misbehaves on purpose: it drips its answer a byte at a time, answers 503
forever, sends a gzip bomb or an endless chunked body, nests its JSON a thousand deep, or
stalls. None of these checks a duration: each checks an order of events (the call returned
while the server was still dripping) or a quantity (memory, connections, attempts).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import sys
import threading
import traceback
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
import pytest_asyncio

from suprsend_async import (
    AsyncSuprsend,
    RetryPolicy,
    Suprsend,
    SuprsendError,
    SuprsendValidationError,
    WorkflowTriggerRequest,
)

from ..conftest import KEY, SECRET

pytestmark = pytest.mark.integration

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


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[tuple[Server, str]]]]:
    servers: list[Server] = []

    async def start(handler: Handler) -> tuple[Server, str]:
        server = Server(handler)
        servers.append(server)
        return server, await server.start()

    yield start
    for server in servers:
        await server.stop()


def _announcing(handler: Handler, arrived: anyio.Event) -> Handler:
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


@pytest.mark.asyncio
async def test_aclose_stops_a_pending_retry_and_leaves_no_connection(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    import suprsend_async._retry as retry_mod

    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)
    answered = anyio.Event()

    async def down(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer(503, {"message": "down"}))
        await writer.drain()
        answered.set()

    server, url = await serve(down)
    policy = RetryPolicy(max_retries=3, initial_delay=20, max_delay=20)
    client = AsyncSuprsend(KEY, SECRET, url, retry_policy=policy)
    errors: list[BaseException] = []

    async def call() -> None:
        try:
            await client.workflows.trigger(BODY)
        except SuprsendError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await answered.wait()
        await anyio.sleep(0.05)  # the call is now waiting out its 20 s back-off
        await client.aclose()
    assert [str(e) for e in errors] == ["the client was closed while this call ran"]
    await anyio.sleep(0.05)
    assert server.requests == 1  # the retry never went out
    assert server.open_connections == 0
    with pytest.raises(SuprsendError, match="closed"):
        await client.workflows.trigger(BODY)


@pytest.mark.asyncio
async def test_sync_close_cancels_a_call_on_another_thread(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    async def drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 202 X\r\n")
        for _ in range(100):
            writer.write(b"x-drip: 1\r\n")
            await writer.drain()
            await asyncio.sleep(0.2)
        server.finished = True

    server, url = await serve(drip)
    client = Suprsend(KEY, SECRET, url, timeout=60)
    outcome: list[Any] = []
    arrived = anyio.Event()
    server.handler = _announcing(drip, arrived)

    def call() -> None:
        try:
            outcome.append(client.workflows.trigger(BODY))
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    await arrived.wait()
    await anyio.to_thread.run_sync(client.close)
    await anyio.to_thread.run_sync(thread.join)
    assert not server.finished  # close() did not wait for the dripping answer
    assert len(outcome) == 1 and isinstance(outcome[0], SuprsendError), outcome


@pytest.mark.asyncio
async def test_sync_close_races_raise_only_library_errors(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    async def slow_ok(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(0.01)
        writer.write(answer(202, {"status": "success"}))
        await writer.drain()

    _, url = await serve(slow_ok)

    def race() -> list[BaseException]:
        client = Suprsend(KEY, SECRET, url)
        errors: list[BaseException] = []

        def caller() -> None:
            for _ in range(20):
                try:
                    client.workflows.trigger(BODY)
                except BaseException as exc:
                    errors.append(exc)

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for thread in threads:
            thread.start()
        closers = [threading.Thread(target=client.close) for _ in range(2)]
        for closer in closers:
            closer.start()
        for thread in [*threads, *closers]:
            thread.join()
        return errors

    errors = await anyio.to_thread.run_sync(race)
    assert errors, "the close raced no call: the test proves nothing"
    assert all(isinstance(e, SuprsendError) for e in errors), {type(e) for e in errors}


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


def nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["a"] = {}
        node = node["a"]
    return root


def test_inputs_nested_too_deep_or_cyclic_name_their_path() -> None:
    cyclic: dict[str, Any] = {"ok": 1}
    cyclic["loop"] = [0, cyclic]
    with pytest.raises(SuprsendValidationError) as deep:
        WorkflowTriggerRequest({**BODY, "data": nested(1000)}).prepare()
    assert deep.value.errors[0].path.startswith("data.a.a.a")
    assert "nested more than" in deep.value.errors[0].message
    with pytest.raises(SuprsendValidationError) as loop:
        WorkflowTriggerRequest({**BODY, "data": {"x": cyclic}}).prepare()
    assert loop.value.errors[0].path == "data.x.loop[1]"
    assert "contains itself" in loop.value.errors[0].message


@pytest.mark.asyncio
async def test_bulk_append_never_raises_on_deep_or_cyclic_records() -> None:
    cyclic: dict[str, Any] = {}
    cyclic["me"] = cyclic
    async with AsyncSuprsend(KEY, SECRET, "http://127.0.0.1:9/") as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(BODY, {**BODY, "data": nested(1000)}, {**BODY, "data": cyclic}, BODY)
        states = [(o.state, o.error_type) for o in bulk.outcomes]
    assert len(states) == 4
    assert states[1] == states[2] == ("failed", "validation")
    assert states[0] == states[3] == ("not_sent", None)


# -- one event loop per client ---------------------------------------------------------------


def test_a_client_used_from_a_second_event_loop_says_why() -> None:
    import asyncio as aio

    client = AsyncSuprsend(KEY, SECRET, "http://127.0.0.1:9/", max_retries=0)

    async def first() -> None:
        await client.workflows.trigger(BODY)  # connection refused: fine, the loop is bound

    async def second() -> None:
        await client.workflows.trigger(BODY)

    aio.run(first())
    with pytest.raises(SuprsendError, match="another event loop") as info:
        aio.run(second())
    assert "lifespan" in str(info.value)


# -- no secret in any frame ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_credentials_or_attachment_bytes_in_frame_locals(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    marker = b"ATTACHMENT-BYTES-" * 8

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    _, url = await serve(stall)
    rendered: list[str] = []

    async def capture(call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except BaseException as exc:
            text = "".join(
                traceback.TracebackException.from_exception(exc, capture_locals=True).format()
            )
            rendered.append(text)
            raise

    import base64

    request = WorkflowTriggerRequest(dict(BODY))
    request.add_attachment_bytes(marker, "a.bin")
    hmac_client = AsyncSuprsend(KEY, SECRET, url, max_retries=0)
    bearer = AsyncSuprsend.with_workspace_api_key("uid-1", "api-key-SECRET-1", url)
    bulk = hmac_client.workflows.bulk_trigger_instance()
    bulk.append(request)
    for call in (
        lambda: hmac_client.workflows.trigger(request),
        lambda: bearer.workflows.trigger(BODY),
        lambda: bulk.trigger(),
    ):
        with anyio.move_on_after(0.3):
            await capture(call)
    await hmac_client.aclose()
    await bearer.aclose()
    assert len(rendered) == 3
    text = "\n".join(rendered)
    assert "Traceback" in text and "_post" in text  # the frames of the I/O were rendered
    for secret in (SECRET, "api-key-SECRET-1", f"{KEY}:", "Bearer "):
        assert secret not in text, secret
    assert marker.decode() not in text and base64.b64encode(marker).decode()[:40] not in text


# -- no warning at exit ----------------------------------------------------------------------


def test_a_script_that_never_closes_prints_no_resource_warning() -> None:
    import subprocess

    code = (
        "from suprsend_async import Suprsend, WorkflowTriggerRequest\n"
        "from suprsend_async.emulator import Emulator\n"
        "emu = Emulator().start()\n"
        "supr_client = Suprsend('emulator_workspace_key', 'emulator_workspace_secret',"
        " emu.base_url)\n"
        "res = supr_client.workflows.trigger(WorkflowTriggerRequest("
        "body={'workflow': 'w', 'recipients': ['u']}))\n"
        "print(res.success)\n"
    )
    out = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.stdout.strip() == "True", out.stderr
    assert "ResourceWarning" not in out.stderr and "unclosed" not in out.stderr, out.stderr


# -- the sync facade's life cycle ----------------------------------------------------------


def test_what_a_client_made_keeps_working_after_the_client_is_dropped(
    suprsend_emulator: Any,
) -> None:
    import gc

    def derived() -> Suprsend:
        return suprsend_emulator.sync_client().with_options(max_retries=0)  # type: ignore[no-any-return]

    def instance() -> Any:
        return suprsend_emulator.sync_client().workflows.bulk_trigger_instance()

    client = derived()
    bulk = instance()
    gc.collect()
    assert client.workflows.trigger(BODY).success
    bulk.append(BODY)
    assert bulk.trigger().success == 1


def test_close_from_a_callback_is_refused_and_a_later_close_still_closes(
    suprsend_emulator: Any,
) -> None:
    client = suprsend_emulator.sync_client()
    refused: list[BaseException] = []

    def on_outcome(outcome: Any) -> None:
        try:
            client.close()
        except SuprsendError as exc:
            refused.append(exc)

    client.workflows.bulk_trigger([BODY], on_outcome=on_outcome)
    assert refused and "callback" in str(refused[0])
    client.close()
    assert client.async_client.is_closed and not client._portal.alive


def test_a_second_close_waits_for_the_first(suprsend_emulator: Any) -> None:
    suprsend_emulator.set_faults(latency_ms=800)
    client = suprsend_emulator.sync_client(max_retries=0)
    calling = threading.Thread(target=lambda: _swallow(client.workflows.trigger, BODY))
    calling.start()
    while suprsend_emulator.stats.get("requests", 0) == 0 and not suprsend_emulator.triggers:
        threading.Event().wait(0.01)
    first = threading.Thread(target=client.close)
    first.start()
    threading.Event().wait(0.05)
    client.close()  # returns only once the client is closed, whoever started closing it
    assert not client._portal.alive and client.async_client.is_closed
    first.join()
    calling.join()


def _swallow(func: Callable[..., Any], *args: Any) -> None:
    with contextlib.suppress(SuprsendError):
        func(*args)


@pytest.mark.asyncio
async def test_aclose_inside_a_cancelled_scope_still_closes_the_connections(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    _, url = await serve(stall)
    client = AsyncSuprsend(KEY, SECRET, url, max_retries=0)
    errors: list[BaseException] = []

    async def call() -> None:
        try:
            await client.workflows.trigger(BODY)
        except SuprsendError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(call)
        await anyio.sleep(0.1)
        with anyio.move_on_after(0.05):  # a shutdown timeout around the close
            async with client:
                await anyio.sleep(10)
    assert errors and client._pool.http.is_closed
