"""The async client: single triggers, results, errors, retries, configuration, logging."""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
import pytest
import respx

from suprsend_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncSuprsend,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    SuprsendError,
    SuprsendValidationError,
    TriggerResponse,
    Workflow,
    WorkflowTriggerRequest,
)
from suprsend_async._retry import SharedBackoff

from .conftest import BASE, KEY, SECRET, body_of

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
async def test_callers_http_client_is_never_closed(api: respx.MockRouter) -> None:
    api.post("trigger/").respond(202, json={})
    mine = httpx.AsyncClient()
    async with AsyncSuprsend(KEY, SECRET, BASE, http_client=mine) as c:
        assert (await c.workflows.trigger(BODY)).success
    assert not mine.is_closed
    await mine.aclose()


@pytest.mark.asyncio
async def test_closed_client_refuses(api: respx.MockRouter) -> None:
    c = AsyncSuprsend(KEY, SECRET, BASE)
    await c.aclose()
    assert c.is_closed
    with pytest.raises(SuprsendError, match="closed"):
        await c.workflows.trigger(BODY)


@pytest.mark.asyncio
async def test_fork_is_detected(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    client._pool.pid = -1
    with pytest.raises(SuprsendError, match="forked child"):
        await client.workflows.trigger(BODY)


def test_configuration_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUPRSEND_WORKSPACE_KEY", "env-key")
    monkeypatch.setenv("SUPRSEND_WORKSPACE_SECRET", "env-secret")
    monkeypatch.setenv("SUPRSEND_BASE_URL", "http://env.test///")
    c = AsyncSuprsend()
    assert c.base_url == "http://env.test/"
    assert "env-key" in repr(c) and "env-secret" not in repr(c)
    assert c._core.legacy_endpoint.url == "http://env.test/env-key/trigger/"
    explicit = AsyncSuprsend("k", "s", "https://x.test")
    assert explicit.base_url == "https://x.test/"
    monkeypatch.setenv("SUPRSEND_WORKSPACE_UID", "uid")
    monkeypatch.setenv("SUPRSEND_API_KEY", "akey")
    bearer = AsyncSuprsend.with_workspace_api_key()
    assert bearer._core.legacy_endpoint.url == "http://env.test/uid/trigger/"


def test_default_base_url() -> None:
    assert AsyncSuprsend("k", "s").base_url == "https://hub.suprsend.com/"


def test_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match=r"workspace_key \(or the SUPRSEND_WORKSPACE_KEY"):
        AsyncSuprsend(workspace_secret="s")
    with pytest.raises(ConfigurationError, match="workspace_secret"):
        AsyncSuprsend("k")
    with pytest.raises(ConfigurationError, match="api_key"):
        AsyncSuprsend.with_workspace_api_key("uid")
    with pytest.raises(ConfigurationError, match="base_url"):
        AsyncSuprsend("k", "s", "ftp://x")
    with pytest.raises(ValueError, match="max_retries"):
        AsyncSuprsend("k", "s", max_retries=-1)


@pytest.mark.asyncio
async def test_debug_logs_hold_no_secrets_or_bodies(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").mock(side_effect=[httpx.Response(500), httpx.Response(202, json={})])
    body = {"workflow": "w", "recipients": [{"distinct_id": "u", "$email": "person@example.com"}]}
    caplog.set_level(logging.DEBUG, logger="suprsend_async")
    async with AsyncSuprsend(KEY, SECRET, BASE) as c:
        result = await c.workflows.trigger(body)
        auth = None
        for record in api.calls:
            auth = record.request.headers["authorization"]
    text = caplog.text
    assert "POST /trigger/ -> 500" in text and "POST /trigger/ -> 202" in text
    assert SECRET not in text
    assert auth is not None and auth.split(":")[1] not in text
    assert "person@example.com" not in text
    assert SECRET not in repr(result)


@pytest.mark.asyncio
async def test_bodies_logged_only_when_asked(
    api: respx.MockRouter, caplog: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").respond(202, json={})
    caplog.set_level(logging.DEBUG, logger="suprsend_async")
    async with AsyncSuprsend(KEY, SECRET, BASE, log_bodies=True) as c:
        await c.workflows.trigger({"workflow": "w", "recipients": ["person-77"]})
    assert "person-77" in caplog.text


@pytest.mark.asyncio
async def test_library_does_not_configure_logging() -> None:
    logger = logging.getLogger("suprsend_async")
    assert logger.handlers == [] and logger.level == logging.NOTSET


@pytest.mark.asyncio
async def test_response_for_non_json_success(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").respond(202, text="OK")
    result = await client.workflows.trigger(BODY)
    assert result.success and result.message == "OK" and result.body == "OK"
    api.post("trigger/").respond(202, content=b"")
    result = await client.workflows.trigger(BODY)
    assert result.success and result.message == "OK" and result.body is None
    api.post("trigger/").respond(200, json=[1, 2])
    result = await client.workflows.trigger(BODY)
    assert result.success and json.loads(result.message) == [1, 2]
    api.post("trigger/").respond(200, json={"status": "success"})
    assert json.loads((await client.workflows.trigger(BODY)).message) == {"status": "success"}


@pytest.mark.asyncio
async def test_redirects_are_not_followed(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    api.post("trigger/").respond(307, headers={"Location": "http://elsewhere.test/steal"})
    elsewhere = api.post("http://elsewhere.test/steal").respond(202)
    result = await client.workflows.trigger(BODY)
    assert not elsewhere.called
    assert result.status_code == 307 and not result.success


def test_trigger_response_equality_and_repr() -> None:
    a = TriggerResponse(True, "success", 202, "m", message_id="m")
    b = TriggerResponse(True, "success", 202, "m", message_id="m")
    assert a == b and a != TriggerResponse(False, "fail", 500, "x")
    assert a.__eq__(5) is NotImplemented
    r = repr(TriggerResponse(False, "fail", None, "t", error_type="timeout", retry_after=1.0))
    assert "error_type='timeout'" in r and "retry_after=1.0" in r


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


def test_proxy_from_environment_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    client = AsyncSuprsend(KEY, SECRET)
    assert client._pool.transport is None  # httpx's own client, which routes through the proxy
    assert client._pool.http._mounts  # a proxy route, from trust_env
