"""Resource hygiene: nothing left after close, no __del__, no blocking calls on the loop, fork."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest

import suprsend_async
from suprsend_async import AsyncSuprsend, SuprsendError, WorkflowTriggerRequest
from suprsend_async._requests import new_idempotency_key
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled_fds(expected: int) -> int:
    """Open fds once the in-process emulator has seen the client's hang-ups (or 3 s passed)."""
    deadline = time.monotonic() + 3
    while (now := open_fds()) != expected and time.monotonic() < deadline:
        time.sleep(0.02)
    return now


def test_no_class_relies_on_del() -> None:
    import importlib
    import pkgutil

    for info in pkgutil.walk_packages(suprsend_async.__path__, "suprsend_async."):
        if info.name.endswith("__main__") or info.name.endswith("pytest_plugin"):
            continue
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__.startswith("suprsend_async"):
                assert "__del__" not in vars(cls), f"{cls.__qualname__} defines __del__"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_async_client_leaves_no_sockets_or_tasks(suprsend_emulator: Emulator) -> None:
    async def main() -> tuple[int, int]:
        baseline_tasks = len(asyncio.all_tasks())
        before = open_fds()
        async with suprsend_emulator.client() as client:
            results = await asyncio.gather(
                *(
                    client.workflows.trigger({"workflow": "w", "recipients": [f"u{i}"]})
                    for i in range(50)
                )
            )
            await client.workflows.bulk_trigger(
                {"workflow": "w", "recipients": [f"b{i}"]} for i in range(300)
            )
            assert all(r.success for r in results)
            assert open_fds() > before  # connections were open
        await asyncio.sleep(0)
        # The emulator runs in this process: its server-side sockets close once it reads EOF.
        fds = await asyncio.to_thread(settled_fds, before)
        return fds - before, len(asyncio.all_tasks()) - baseline_tasks

    leaked_fds, leaked_tasks = asyncio.run(main())
    assert leaked_fds == 0
    assert leaked_tasks == 0


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
    assert settled_fds(fds_before) == fds_before


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


def test_no_blocking_calls_on_the_event_loop(suprsend_emulator: Emulator, tmp_path: Path) -> None:
    """blockbuster raises if anything in the async paths blocks the loop (file I/O, sleeps...)."""
    from blockbuster import blockbuster_ctx

    attachment = tmp_path / "doc.pdf"
    attachment.write_bytes(b"%PDF-1.4 " + bytes(3000))

    async def main() -> None:
        with blockbuster_ctx("suprsend_async"):
            async with AsyncSuprsend(
                suprsend_emulator.config.workspace_key,
                suprsend_emulator.config.workspace_secret,
                suprsend_emulator.base_url,
            ) as client:
                single = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
                await single.add_attachment_async(str(attachment))
                assert (await client.workflows.trigger(single)).success
                bulk = client.workflows.bulk_trigger_instance()
                for i in range(120):
                    req = WorkflowTriggerRequest({"workflow": "w", "recipients": [f"u{i}"]})
                    await req.add_attachment_async(str(attachment))
                    bulk.append(req)
                assert (await bulk.trigger()).success == 120
                streamed = await client.workflows.bulk_trigger(
                    {"workflow": "w", "recipients": [f"s{i}"]} for i in range(300)
                )
                assert streamed.success == 300
                legacy = await client.trigger_workflow(
                    {
                        "name": "wf",
                        "template": "tp",
                        "notification_category": "system",
                        "users": [{"distinct_id": "u"}],
                    }
                )
                assert legacy.success

    asyncio.run(main())


def test_idempotency_keys_are_distinct_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        batches = list(pool.map(lambda _: [new_idempotency_key() for _ in range(500)], range(8)))
    keys = [k for batch in batches for k in batch]
    assert len(set(keys)) == len(keys) == 4000
    assert all(len(k) == 32 and int(k, 16) >= 0 for k in keys)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_draws_its_own_idempotency_keys() -> None:
    new_idempotency_key()  # the parent now holds keys drawn ahead
    parents_next = [new_idempotency_key() for _ in range(5)]
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.write(write, "".join(new_idempotency_key() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 5 * 32).decode()
    os.close(read)
    parents_later = [new_idempotency_key() for _ in range(5)]
    child_keys = [child[i : i + 32] for i in range(0, len(child), 32)]
    assert len(child_keys) == 5
    assert not set(child_keys) & set(parents_next + parents_later)


def test_imports_where_the_os_has_no_fork() -> None:
    """Windows has neither os.fork nor os.register_at_fork."""
    code = (
        "import os\n"
        "del os.register_at_fork, os.fork\n"
        "import suprsend_async\n"
        "from suprsend_async._requests import new_idempotency_key\n"
        "assert len(new_idempotency_key()) == 32\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
