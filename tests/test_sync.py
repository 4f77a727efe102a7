"""The sync facade: scripts, threads, running loops, shutdown, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import httpx
import pytest
import respx

from suprsend_async import Suprsend, SuprsendError, Workflow, WorkflowTriggerRequest
from suprsend_async.emulator import Emulator

from .conftest import BASE, KEY, SECRET, bulk_answer, trigger_body
from .open_files import new_fds_once_settled, open_fds

BODY = {"workflow": "w", "recipients": ["u"]}


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "suprsend-async-loop"]


@pytest.fixture
def sync_client(api: respx.MockRouter) -> Iterator[Suprsend]:
    with Suprsend(KEY, SECRET, BASE) as c:
        yield c


def test_script_use(api: respx.MockRouter) -> None:
    route = api.post("trigger/").respond(202, json={"status": "success", "message_id": "m1"})
    legacy = api.post(f"{KEY}/trigger/").respond(202, json="Accepted - OK")
    before = len(loop_threads())
    client = Suprsend(KEY, SECRET, BASE)
    response = client.workflows.trigger(WorkflowTriggerRequest(BODY, tenant_id="t"))
    assert response.success and response["message"] == "m1"
    wf = Workflow(
        {
            "name": "wf",
            "template": "tpl",
            "notification_category": "system",
            "users": [{"distinct_id": "u"}],
        }
    )
    assert client.trigger_workflow(wf).success
    assert route.called and legacy.called
    client.close()
    client.close()  # idempotent
    assert len(loop_threads()) == before
    with pytest.raises(SuprsendError, match="closed"):
        client.workflows.trigger(BODY)


def test_many_threads_at_once(api: respx.MockRouter, sync_client: Suprsend) -> None:
    route = api.post("trigger/").respond(202, json={"status": "success"})
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: sync_client.workflows.trigger(BODY), range(40)))
    assert all(r.success for r in results)
    assert route.call_count == 40


def test_called_inside_a_running_event_loop(api: respx.MockRouter, sync_client: Suprsend) -> None:
    api.post("trigger/").respond(202, json={"status": "success"})

    async def notebook_cell() -> bool:
        # A sync call from code that runs on an event loop (Jupyter, a sync helper in async code).
        return sync_client.workflows.trigger(BODY).success

    assert asyncio.run(notebook_cell())
    assert anyio.run(notebook_cell)


def test_with_options_shares_loop_and_pool(api: respx.MockRouter, sync_client: Suprsend) -> None:
    route = api.post("trigger/").respond(503)
    quick = sync_client.with_options(max_retries=0, timeout=3)
    assert quick.async_client._pool is sync_client.async_client._pool
    assert quick.workflows.trigger(BODY).status_code == 503
    assert route.call_count == 1
    quick.close()  # no-op for a derived client
    route.respond(202, json={})
    assert sync_client.workflows.trigger(BODY).success
    assert sync_client.base_url == BASE
    assert "ws_secret" not in repr(sync_client)


def test_api_key_facade(api: respx.MockRouter) -> None:
    route = api.post("trigger/").respond(202, json={})
    with Suprsend.with_workspace_api_key("uid", "akey", BASE) as c:
        assert c.workflows.trigger(BODY).success
    assert route.calls.last.request.headers["authorization"] == "Bearer akey"


def test_bad_configuration_leaves_no_thread() -> None:
    before = len(loop_threads())
    with pytest.raises(SuprsendError):
        Suprsend()
    assert len(loop_threads()) == before


def test_bulk_through_the_facade(api: respx.MockRouter, sync_client: Suprsend) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    api.post(f"{KEY}/trigger/").respond(202, json={"status": "success"})
    bulk = sync_client.workflows.bulk_trigger_instance()
    bulk.append(*[WorkflowTriggerRequest(trigger_body(i)) for i in range(150)])
    assert len(bulk) == 150
    result = bulk.trigger()
    assert (result.status, result.total, result.success) == ("success", 150, 150)
    assert bulk.result().success == 150 and len(bulk.outcomes) == 150
    legacy = sync_client.bulk_workflows.new_instance()
    legacy.append(
        Workflow(
            {
                "name": "wf",
                "template": "tpl",
                "notification_category": "system",
                "users": [{"distinct_id": "u"}],
            }
        )
    )
    assert legacy.trigger().success == 1
    streamed = sync_client.workflows.bulk_trigger(trigger_body(i) for i in range(230))
    assert streamed.success == 230
    legacy_streamed = sync_client.bulk_workflows.bulk_trigger(
        [
            {
                "name": "wf",
                "template": "tpl",
                "notification_category": "system",
                "users": [{"distinct_id": "u"}],
            }
        ]
    )
    assert legacy_streamed.success == 1


def test_callback_calling_the_client_back_is_refused(
    api: respx.MockRouter, sync_client: Suprsend
) -> None:
    api.post("trigger/").mock(side_effect=bulk_answer())
    errors: list[BaseException] = []

    def progress(_: object) -> None:
        try:
            sync_client.workflows.trigger(BODY)
        except SuprsendError as exc:
            errors.append(exc)

    sync_client.workflows.bulk_trigger([trigger_body(1)], on_progress=progress)
    assert errors and "callbacks" in str(errors[0])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_cancels_a_bulk_and_keeps_an_account(
    api: respx.MockRouter, sync_client: Suprsend
) -> None:
    started = threading.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        started.set()
        await anyio.sleep(30)
        return bulk_answer()(request)

    api.post("trigger/").mock(side_effect=slow)
    bulk = sync_client.workflows.bulk_trigger_instance()
    bulk.append(*[trigger_body(i) for i in range(1000)])

    def interrupt() -> None:
        started.wait(5)
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt).start()
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        bulk.trigger(concurrency=2)
    assert time.monotonic() - began < 5
    states = [o.state for o in bulk.outcomes]
    assert states.count("unknown") == 200  # two requests of 100 were in flight
    assert states.count("not_sent") == 800
    result = bulk.result()
    assert result.total == 1000 and result.failure == 1000 and result.unknown == 200


def test_script_that_never_closes_exits() -> None:
    code = (
        "from suprsend_async import Suprsend\n"
        "c = Suprsend('k', 's', 'http://127.0.0.1:9/')\n"
        "print('built')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert out.stdout.strip() == "built"


PRIVATE_SECRET = "sEcReT-value-9f8e7d"


PRIVATE_API_KEY = "api-KEY-value-1a2b3c"


def test_sync_facade_repr_hides_secrets() -> None:
    with Suprsend("ws", PRIVATE_SECRET, BASE) as client:
        assert PRIVATE_SECRET not in repr(client)
    api_client = Suprsend.with_workspace_api_key("uid", PRIVATE_API_KEY, BASE)
    assert PRIVATE_API_KEY not in repr(api_client)
    api_client.close()


@pytest.mark.integration
def test_sync_client_leaves_no_threads_or_sockets(suprsend_emulator: Emulator) -> None:
    threads_before = threading.active_count()
    fds_before = open_fds()
    with suprsend_emulator.sync_client() as client:
        assert client.workflows.trigger({"workflow": "w", "recipients": ["u"]}).success
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[{"workflow": "w", "recipients": [f"u{i}"]} for i in range(150)])
        assert bulk.trigger().success == 150
        assert threading.active_count() > threads_before
    assert threading.active_count() == threads_before
    assert new_fds_once_settled(fds_before) == set()
