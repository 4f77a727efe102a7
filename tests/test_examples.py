"""The examples run against the emulator, as a user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@pytest.mark.asyncio
async def test_fastapi_app(suprsend_env: Emulator) -> None:
    from examples.fastapi_app import app

    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            r = await http.post(
                "/comments",
                json={
                    "document": "Q3 report",
                    "author_id": "u-1",
                    "owner_id": "u-2",
                    "text": "LGTM",
                },
            )
            assert r.status_code == 200 and r.json()["notified"] is True
            r = await http.post(
                "/invoices/remind",
                json={
                    "invoice_id": "INV-9",
                    "customer_ids": [f"c{i}" for i in range(120)],
                    "amount": "$10",
                },
            )
            assert r.status_code == 202 and r.json() == {"queued": 120}
    assert app.state.last_bulk.success == 120
    triggers = suprsend_env.triggers
    assert triggers[0].workflow == "new_comment" and triggers[0].body["recipients"] == ["u-2"]
    assert len(triggers) == 121
    assert {t.idempotency_key for t in triggers[1:]} == {f"INV-9-c{i}" for i in range(120)}


@pytest.mark.asyncio
async def test_fastapi_app_notifies_every_comment(suprsend_env: Emulator) -> None:
    from examples.fastapi_app import app

    comment = {"document": "Q3 report", "author_id": "u-1", "owner_id": "u-2", "text": "+1"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            first = (await http.post("/comments", json=comment)).json()
            second = (await http.post("/comments", json=comment)).json()
    # Two genuine comments with the same text are two notifications, each keyed by its id.
    assert first["notified"] is True and second["notified"] is True
    assert first["comment_id"] != second["comment_id"]
    triggers = suprsend_env.triggers
    assert [t.idempotency_key for t in triggers] == [
        f"comment-{first['comment_id']}",
        f"comment-{second['comment_id']}",
    ]
    assert suprsend_env.stats["duplicates_skipped"] == 0
    assert [t.message_id for t in triggers] == [first["message_id"], second["message_id"]]


@pytest.mark.asyncio
async def test_fastapi_app_reports_refusals(suprsend_env: Emulator) -> None:
    from examples.fastapi_app import app

    suprsend_env.set_faults(rate_5xx=1.0)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            r = await http.post(
                "/comments", json={"document": "d", "author_id": "a", "owner_id": "o", "text": "t"}
            )
    assert r.status_code == 502 and "not accepted" in r.json()["detail"]


@pytest.mark.asyncio
async def test_anyio_worker(suprsend_env: Emulator) -> None:
    from examples.worker import run_anyio_worker

    send, receive = anyio.create_memory_object_stream[dict[str, object]](10)
    async with anyio.create_task_group() as tg:

        async def produce() -> None:
            async with send:
                for i in range(30):
                    await send.send(
                        {"workflow": "digest", "user_id": f"u{i}", "job_id": f"job-{i}"}
                    )
                await send.send(
                    {"workflow": "digest", "user_id": "u0", "job_id": "job-0"}
                )  # redelivered

        tg.start_soon(produce)
        results = await run_anyio_worker(receive, parallel=4)
    assert len(results) == 31 and all(r.success for r in results)
    assert len(suprsend_env.triggers) == 30  # the redelivered job was not processed again


@pytest.mark.asyncio
async def test_taskiq_worker(suprsend_env: Emulator) -> None:
    from examples.worker import broker, send_welcome

    await broker.startup()
    try:
        task = await send_welcome.kiq("user-7", "u7@example.com")
        result = await task.wait_result(timeout=10)
    finally:
        await broker.shutdown()
    assert not result.is_err
    assert result.return_value == suprsend_env.triggers[0].message_id


def test_script(suprsend_env: Emulator) -> None:
    env = {
        **os.environ,
        "SUPRSEND_WORKSPACE_KEY": suprsend_env.config.workspace_key,
        "SUPRSEND_WORKSPACE_SECRET": suprsend_env.config.workspace_secret,
        "SUPRSEND_BASE_URL": suprsend_env.base_url,
    }
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "script.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "bulk: success, 250/250 accepted" in out.stdout
    assert len(suprsend_env.triggers) == 251
