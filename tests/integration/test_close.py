"""Closing against misbehaving loopback servers and from other threads: close cancels what runs
and stops pending retries, waits for an earlier close, closes inside a cancelled scope, and
leaves no connection and no warning at exit."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from suprsend_async import (
    AsyncSuprsend,
    RetryPolicy,
    Suprsend,
    SuprsendError,
)

from ..conftest import KEY, SECRET
from .misbehaving_server import BODY, Handler, Server, announcing, answer

pytestmark = pytest.mark.integration


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
    server.handler = announcing(drip, arrived)

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
