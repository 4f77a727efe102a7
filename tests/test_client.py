"""The async client: single triggers, results, errors, retries, configuration, logging."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

import suprsend_async
from suprsend_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncSuprsend,
    AuthenticationError,
    BadRequestError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SuprsendError,
    SuprsendValidationError,
    Workflow,
    WorkflowTriggerRequest,
)
from suprsend_async._retry import SharedBackoff
from suprsend_async.emulator import Emulator

from .conftest import BASE, KEY, SECRET, body_of
from .open_files import new_fds_once_settled, open_fds

BODY = {"workflow": "w", "recipients": ["u"]}
LEGACY = {
    "name": "wf",
    "template": "tpl",
    "notification_category": "transactional",
    "users": [{"distinct_id": "u", "$email": ["u@example.com"]}],
}


@pytest.mark.asyncio
async def test_trigger_success(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post("trigger/").respond(
        202, json={"status": "success", "message_id": "msg-1"}, headers={"x-request-id": "req-9"}
    )
    body = dict(BODY)
    result = await client.workflows.trigger(
        WorkflowTriggerRequest(body, tenant_id="t1", idempotency_key="k1", cancellation_key="c1")
    )
    assert result.success is True
    assert (result.status, result.status_code, result.message) == ("success", 202, "msg-1")
    assert result.message_id == "msg-1"
    assert result.request_id == "req-9"
    assert result.idempotency_key == "k1"
    assert result["success"] is True and result["status_code"] == 202
    assert result.to_dict() == {
        "success": True,
        "status": "success",
        "status_code": 202,
        "message": "msg-1",
        "raw_response": {"status": "success", "message_id": "msg-1"},
    }
    raw = {"status": "success", "message_id": "msg-1"}
    assert result == {
        "success": True,
        "status": "success",
        "status_code": 202,
        "message": "msg-1",
        "raw_response": raw,
    }
    assert list(result.keys()) == ["success", "status", "status_code", "message", "raw_response"]
    assert result.get("nope", 1) == 1 and "message" in result
    with pytest.raises(KeyError):
        result["headers"]
    sent = body_of(route.calls.last.request)
    assert sent == {
        **BODY,
        "data": {},
        "tenant_id": "t1",
        "$idempotency_key": "k1",
        "cancellation_key": "c1",
    }
    assert body == BODY  # the caller's dict was not touched, even by a successful trigger
    assert result.raise_for_status() is result
    assert "msg-1" in repr(result)


@pytest.mark.asyncio
async def test_plain_dict_accepted(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").respond(202, json={"status": "success"})
    result = await client.workflows.trigger(BODY)
    assert result.success and json.loads(result.message) == {"status": "success"}


@pytest.mark.asyncio
async def test_legacy_trigger(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post(f"{KEY}/trigger/").respond(202, json="Accepted - OK")
    result = await client.trigger_workflow(
        Workflow(LEGACY, idempotency_key="k", brand_id="default")
    )
    assert result.success and result.message == "Accepted - OK" and result.message_id is None
    sent = body_of(route.calls.last.request)
    assert sent["brand_id"] == "default" and sent["$idempotency_key"] == "k"
    assert (await client.trigger_workflow(LEGACY)).success


@pytest.mark.asyncio
async def test_validation_error_sends_nothing(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post("trigger/").respond(202)
    with pytest.raises(SuprsendValidationError) as info:
        await client.workflows.trigger({"workflow": "w", "recipients": [{"$sms": "x"}]})
    assert not route.called
    assert "recipients[0]" in str(info.value)


@pytest.mark.parametrize(
    ("status", "kwargs", "message", "error_cls"),
    [
        (
            400,
            {"json": {"status": "fail", "message": "bad workflow"}},
            "bad workflow",
            BadRequestError,
        ),
        (
            422,
            {"json": {"status": "error", "error": {"message": "nope", "type": "validation"}}},
            "nope",
            BadRequestError,
        ),
        (401, {"text": "invalid signature"}, "invalid signature", AuthenticationError),
        (403, {"json": {"detail": "forbidden"}}, "forbidden", AuthenticationError),
        (404, {"content": b""}, "HTTP 404 Not Found", BadRequestError),
        (409, {"json": {"something": "else"}}, '{"something": "else"}', BadRequestError),
        (
            400,
            {"text": "<html><body>Bad Gateway</body></html>"},
            "HTTP 400 Bad Request (HTML page)",
            BadRequestError,
        ),
    ],
)
@pytest.mark.asyncio
async def test_error_shapes(
    api: respx.MockRouter,
    client: AsyncSuprsend,
    status: int,
    kwargs: dict[str, Any],
    message: str,
    error_cls: type[Exception],
) -> None:
    route = api.post("trigger/").respond(status, headers={"x-request-id": "r1"}, **kwargs)
    result = await client.workflows.trigger(BODY)
    assert route.call_count == 1  # 4xx is never retried
    assert result.success is False and result.status == "fail"
    assert result.status_code == status and result.error_type == "http"
    assert result.message == message
    with pytest.raises(error_cls) as info:
        result.raise_for_status()
    err: Any = info.value
    assert err.status_code == status and err.request_id == "r1"
    assert message in str(err)


@pytest.mark.asyncio
async def test_5xx_retried_then_reported(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post("trigger/").respond(500, json={"status": "fail", "message": "boom"})
    result = await client.workflows.trigger(BODY)
    assert route.call_count == 3  # default: 2 retries
    assert (result.status_code, result.message, result.attempts) == (500, "boom", 3)
    with pytest.raises(ServerError):
        result.raise_for_status()


@pytest.mark.asyncio
async def test_connection_error_is_not_a_500(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").mock(side_effect=httpx.ConnectError("refused"))
    result = await client.workflows.trigger(BODY)
    assert result.status_code is None and result.error_type == "connection"
    assert result.message.startswith("connection error: ConnectError")
    assert result.attempts == 3
    with pytest.raises(APIConnectionError) as info:
        result.raise_for_status()
    assert not isinstance(info.value, APITimeoutError)


@pytest.mark.asyncio
async def test_timeout_told_apart(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").mock(side_effect=httpx.ReadTimeout("slow"))
    result = await client.workflows.trigger(BODY)
    assert result.status_code is None and result.error_type == "timeout"
    with pytest.raises(APITimeoutError):
        result.raise_for_status()


@pytest.mark.asyncio
async def test_idempotency_key_generated_once_and_reused(
    api: respx.MockRouter, client: AsyncSuprsend
) -> None:
    route = api.post("trigger/").mock(
        side_effect=[
            httpx.ConnectError("reset"),
            httpx.Response(502),
            httpx.Response(202, json={"status": "success", "message_id": "m"}),
            httpx.Response(202, json={"status": "success", "message_id": "m2"}),
        ]
    )
    result = await client.workflows.trigger(BODY)
    keys = {body_of(call.request)["$idempotency_key"] for call in route.calls}
    assert len(keys) == 1 and result.idempotency_key in keys
    assert result.success and result.attempts == 3
    # A second trigger of the same request is a new logical trigger: a new key.
    await client.workflows.trigger(BODY)
    assert body_of(route.calls.last.request)["$idempotency_key"] not in keys


@pytest.mark.asyncio
async def test_idempotency_keys_can_be_turned_off(api: respx.MockRouter) -> None:
    route = api.post("trigger/").respond(202, json={})
    async with AsyncSuprsend(KEY, SECRET, BASE, auto_idempotency_keys=False) as c:
        result = await c.workflows.trigger(BODY)
    assert "$idempotency_key" not in body_of(route.calls.last.request)
    assert result.idempotency_key is None


@pytest.mark.asyncio
async def test_retry_after_honoured(
    api: respx.MockRouter, client: AsyncSuprsend, monkeypatch: pytest.MonkeyPatch
) -> None:
    import suprsend_async._retry as retry_mod

    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    paused: list[float] = []
    monkeypatch.setattr("suprsend_async._retry._sleep", fake_sleep)
    monkeypatch.setattr(SharedBackoff, "pause", lambda self, s: paused.append(s))
    api.post("trigger/").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(202, json={}),
        ]
    )
    result = await client.workflows.trigger(BODY)
    assert result.success
    assert slept == [3.0]
    assert paused == [3.0]  # every worker of the client was told to hold off too


@pytest.mark.asyncio
async def test_retry_after_above_cap_returns_the_429(api: respx.MockRouter) -> None:
    route = api.post("trigger/").respond(
        429, headers={"Retry-After": "3600"}, json={"message": "slow down"}
    )
    async with AsyncSuprsend(KEY, SECRET, BASE, retry_policy=RetryPolicy(max_retry_after=60)) as c:
        result = await c.workflows.trigger(BODY)
    assert route.call_count == 1
    assert result.status_code == 429 and result.retry_after == 3600
    with pytest.raises(RateLimitError) as info:
        result.raise_for_status()
    assert info.value.retry_after == 3600


@pytest.mark.asyncio
async def test_retry_after_http_date(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post("trigger/").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            httpx.Response(202, json={}),
        ]
    )
    assert (await client.workflows.trigger(BODY)).success
    assert route.call_count == 2


@pytest.mark.asyncio
async def test_max_retries_zero(api: respx.MockRouter) -> None:
    route = api.post("trigger/").respond(503)
    async with AsyncSuprsend(KEY, SECRET, BASE, max_retries=0) as c:
        result = await c.workflows.trigger(BODY)
    assert route.call_count == 1 and result.attempts == 1 and result.status_code == 503


@pytest.mark.asyncio
async def test_with_options_shares_the_pool(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post("trigger/").respond(503)
    quick = client.with_options(max_retries=0, timeout=2.5)
    assert quick._pool is client._pool
    assert quick.timeout.read == 2.5 and client.timeout.read == 30.0
    assert quick.retry_policy.max_retries == 0 and client.retry_policy.max_retries == 2
    await quick.workflows.trigger(BODY)
    assert route.call_count == 1
    await quick.aclose()  # does not close the shared pool
    assert not client._pool.http.is_closed
    route.respond(202, json={})
    assert (await client.workflows.trigger(BODY)).success
    with pytest.raises(SuprsendError, match="closed"):
        await quick.workflows.trigger(BODY)


@pytest.mark.asyncio
async def test_closed_client_refuses(api: respx.MockRouter) -> None:
    c = AsyncSuprsend(KEY, SECRET, BASE)
    await c.aclose()
    assert c.is_closed
    with pytest.raises(SuprsendError, match="closed"):
        await c.workflows.trigger(BODY)


@pytest.mark.asyncio
async def test_over_cap_retry_after_does_not_freeze_the_client(
    api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import suprsend_async._retry as retry_mod

    monkeypatch.setattr(retry_mod, "_waits_disabled", 0)
    api.post("trigger/").mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "3600"}),
            httpx.Response(202, json={}),
        ]
    )
    async with AsyncSuprsend(KEY, SECRET, BASE) as c:
        first = await c.workflows.trigger(BODY)
        assert first.status_code == 429 and first.retry_after == 3600
        assert c._pool.backoff.remaining == 0.0
        with anyio.fail_after(2):
            assert (await c.workflows.trigger(BODY)).success


@pytest.mark.asyncio
async def test_undecodable_answer_is_a_result(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").mock(
        side_effect=lambda request: httpx.Response(
            202, headers={"Content-Encoding": "gzip"}, stream=httpx.ByteStream(b"not gzip at all")
        )
    )
    result = await client.workflows.trigger(BODY)
    assert result.status_code is None and result.error_type == "connection"
    assert result.message.startswith("unreadable answer: DecodingError")


@pytest.mark.asyncio
async def test_derived_client_closes_with_its_original(api: respx.MockRouter) -> None:
    api.post("trigger/").respond(202, json={})
    original = AsyncSuprsend(KEY, SECRET, BASE)
    derived = original.with_options(max_retries=0)
    await original.aclose()
    assert derived.is_closed
    with pytest.raises(SuprsendError, match="closed"):
        await derived.workflows.trigger(BODY)


def test_retry_policy_retries_are_kept_unless_overridden() -> None:
    assert (
        AsyncSuprsend(KEY, SECRET, retry_policy=RetryPolicy(max_retries=5)).retry_policy.max_retries
        == 5
    )
    assert (
        AsyncSuprsend(
            KEY, SECRET, retry_policy=RetryPolicy(max_retries=5), max_retries=1
        ).retry_policy.max_retries
        == 1
    )
    assert AsyncSuprsend(KEY, SECRET).retry_policy.max_retries == 2


@pytest.mark.asyncio
async def test_callers_client_keeps_its_timeout() -> None:
    async with httpx.AsyncClient(timeout=7.0) as mine:
        assert AsyncSuprsend(KEY, SECRET, http_client=mine).timeout.read == 7.0
        assert AsyncSuprsend(KEY, SECRET, http_client=mine, timeout=3).timeout.read == 3.0
    assert AsyncSuprsend(KEY, SECRET).timeout.read == 30.0


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


@pytest.mark.integration
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_async_client_leaves_no_sockets_or_tasks(suprsend_emulator: Emulator) -> None:
    async def main() -> tuple[set[tuple[int, str]], int]:
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
            assert open_fds() - before  # connections were open
        await asyncio.sleep(0)
        # The emulator runs in this process: its server-side sockets close once it reads EOF.
        left = await asyncio.to_thread(new_fds_once_settled, before)
        return left, len(asyncio.all_tasks()) - baseline_tasks

    leaked_fds, leaked_tasks = asyncio.run(main())
    assert leaked_fds == set()
    assert leaked_tasks == 0


@pytest.mark.integration
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
