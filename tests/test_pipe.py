"""The pool and one attempt: a pool a family of clients shares, closed once and waited on; fork
and second-loop use refused with the reason; no redirect followed; proxies from the
environment."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import respx

from suprsend_async import (
    AsyncSuprsend,
    SuprsendError,
    _pipe,
)
from suprsend_async._pipe import Life, Pool
from suprsend_async.emulator import Emulator

from .conftest import BASE, KEY, SECRET

BODY = {"workflow": "w", "recipients": ["u"]}

PRIVATE_SECRET = "sEcReT-value-9f8e7d"


EMAIL = "private.person@example.com"


PHONE = "+15550001234"


def body() -> dict[str, object]:
    return {
        "workflow": "w",
        "recipients": [{"distinct_id": "u1", "$email": [EMAIL], "$sms": [PHONE]}],
        "data": {"token": "push-token-xyz"},
    }


@pytest.mark.asyncio
async def test_redirect_is_not_followed(api: respx.MockRouter) -> None:
    api.post("trigger/").respond(308, headers={"Location": "https://attacker.example/collect"})
    stolen = api.post("https://attacker.example/collect").respond(200)
    async with AsyncSuprsend("ws", PRIVATE_SECRET, BASE) as client:
        result = await client.workflows.trigger(body())
    assert not stolen.called
    assert result.status_code == 308 and not result.success


@pytest.mark.integration
@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_use_after_fork_is_detected_and_explained(suprsend_emulator: Emulator) -> None:
    client = suprsend_emulator.sync_client()
    assert client.workflows.trigger({"workflow": "w", "recipients": ["u"]}).success
    async_client = suprsend_emulator.client()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: both clients must refuse with an explanation
        code = 0
        try:
            client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        except SuprsendError as exc:
            code |= 1 if "fork" in str(exc) and "worker_process_init" in str(exc) else 0
        try:
            asyncio.run(async_client.workflows.trigger({"workflow": "w", "recipients": ["u"]}))
        except SuprsendError as exc:
            code |= 2 if "forked child" in str(exc) else 0
        os.write(write, bytes([code]))
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(pid, 0)
    result = os.read(read, 1)
    os.close(read)
    assert os.WEXITSTATUS(status) == 0
    assert result == bytes([3])
    client.close()
    anyio.run(async_client.aclose)


@pytest.mark.asyncio
async def test_callers_http_client_is_never_closed(api: respx.MockRouter) -> None:
    api.post("trigger/").respond(202, json={})
    mine = httpx.AsyncClient()
    async with AsyncSuprsend(KEY, SECRET, BASE, http_client=mine) as c:
        assert (await c.workflows.trigger(BODY)).success
    assert not mine.is_closed
    await mine.aclose()


@pytest.mark.asyncio
async def test_fork_is_detected(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    client._pool.pid = -1
    with pytest.raises(SuprsendError, match="forked child"):
        await client.workflows.trigger(BODY)


@pytest.mark.asyncio
async def test_redirects_are_not_followed(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").respond(307, headers={"Location": "http://elsewhere.test/steal"})
    elsewhere = api.post("http://elsewhere.test/steal").respond(202)
    result = await client.workflows.trigger(BODY)
    assert not elsewhere.called
    assert result.status_code == 307 and not result.success


def test_proxy_from_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    client = AsyncSuprsend(KEY, SECRET)
    assert client._pool.transport is None  # httpx's own client, which routes through the proxy
    assert client._pool.http._mounts  # a proxy route, from trust_env


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


class AnyioWithoutSleep:
    """``anyio`` as ``_pipe`` sees it, but sleeping fails: a close that polls would sleep.

    Patched into ``_pipe`` alone: the emulator's thread and pytest's loop keep their own sleep.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(anyio, name)

    @staticmethod
    async def sleep(*args: object, **kwargs: object) -> None:
        raise AssertionError("Pool.close polled (slept) instead of waiting on its event")


@pytest.mark.asyncio
async def test_pool_close_waits_on_its_event_and_never_polls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_pipe, "anyio", AnyioWithoutSleep())
    http = httpx.AsyncClient()
    pool = Pool(http, None, owned=True)
    running = anyio.CancelScope()  # a call in flight, as Pipe.operation registers it
    pool.operations.add(running)
    steps: list[str] = []

    async def close() -> None:
        await pool.close(grace=60)
        steps.append("closed")

    async with anyio.create_task_group() as tg:
        tg.start_soon(close)
        await anyio.wait_all_tasks_blocked()
        # close() cancelled the call and now waits for it to settle: nothing is closed yet.
        assert running.cancel_called
        assert pool.life is Life.CLOSING and not http.is_closed and steps == []
        steps.append("call left")
        pool.left(running)  # the call's account is settled: this alone wakes close()
        for _ in range(10):  # a few turns of the loop, no time: an event, not a poll
            if steps[-1] == "closed":
                break
            await anyio.lowlevel.checkpoint()
        assert steps == ["call left", "closed"]
    assert pool.life is Life.CLOSED and http.is_closed


@pytest.mark.asyncio
async def test_pool_close_gives_up_on_a_call_that_never_leaves_after_its_grace() -> None:
    http = httpx.AsyncClient()
    pool = Pool(http, None, owned=True)
    pool.operations.add(anyio.CancelScope())  # a call that never reports leaving
    with anyio.fail_after(30):  # generous: the grace below is what must end the wait
        await pool.close(grace=0.05)
    assert pool.life is Life.CLOSED and http.is_closed


@pytest.mark.asyncio
async def test_pool_close_with_no_call_running_closes_at_once_but_not_a_callers_client() -> None:
    mine = httpx.AsyncClient()
    pool = Pool(mine, None, owned=False)
    with anyio.fail_after(30):
        await pool.close(grace=60)  # nothing to wait for: the 60 s grace is never spent
    assert pool.life is Life.CLOSED and not mine.is_closed
    await mine.aclose()
