"""Signing: checked against a vector computed here independently of the SDK's code."""

from __future__ import annotations

import base64
import hashlib
import hmac
import locale
import logging
import re

import httpx
import pytest
import respx

from suprsend_async import AsyncSuprsend, WorkflowTriggerRequest
from suprsend_async._auth import ApiKeyAuth, HmacAuth, http_date, string_to_sign

from .conftest import BASE, KEY, SECRET


def expected_signature(
    secret: str, method: str, body: bytes, ctype: str, date: str, uri: str
) -> str:
    md5 = hashlib.md5(body).hexdigest() if body else ""
    message = f"{method}\n{md5}\n{ctype}\n{date}\n{uri}"
    mac = hmac.new(secret.encode(), message.encode(), hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def test_known_vector() -> None:
    # Computed once by hand (python -c) from the PROTOCOL.md recipe; pinned so a change shows.
    body = b'{"workflow": "w"}'
    date = "Sat, 28 Nov 2026 17:50:19 GMT"
    sig = HmacAuth("key", "secret").signature("POST", "/trigger/", body, date)
    assert sig == expected_signature(
        "secret", "POST", body, "application/json; charset=utf-8", date, "/trigger/"
    )
    assert string_to_sign("GET", b"", "ct", "d", "/x") == "GET\n\nct\nd\n/x"


def test_http_date_format_ignores_locale() -> None:
    before = locale.setlocale(locale.LC_TIME)
    try:
        for name in ("de_DE.UTF-8", "fr_FR.UTF-8"):
            try:
                locale.setlocale(locale.LC_TIME, name)
                break
            except locale.Error:
                continue
        assert http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT"
    finally:
        locale.setlocale(locale.LC_TIME, before)
    assert re.fullmatch(
        r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
        r" \d{4} \d\d:\d\d:\d\d GMT",
        http_date(),
    )


@pytest.mark.asyncio
async def test_signed_request_on_the_wire(api: respx.MockRouter, client: AsyncSuprsend) -> None:
    route = api.post("trigger/").respond(202, json={"status": "success"})
    await client.workflows.trigger(WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]}))
    request = route.calls.last.request
    assert request.headers["content-type"] == "application/json; charset=utf-8"
    key, _, sig = request.headers["authorization"].partition(":")
    assert key == KEY
    assert sig == expected_signature(
        SECRET,
        "POST",
        request.content,
        request.headers["content-type"],
        request.headers["date"],
        "/trigger/",
    )
    assert request.headers["user-agent"].startswith("suprsend-async/")


@pytest.mark.asyncio
async def test_base_url_path_prefix_is_signed() -> None:
    with respx.mock() as router:
        route = router.post("http://proxy.test/ss/api/trigger/").respond(202, json={})
        async with AsyncSuprsend(KEY, SECRET, "http://proxy.test/ss/api") as c:
            await c.workflows.trigger({"workflow": "w", "recipients": ["u"]})
        request = route.calls.last.request
        sig = request.headers["authorization"].split(":", 1)[1]
        assert sig == expected_signature(
            SECRET,
            "POST",
            request.content,
            request.headers["content-type"],
            request.headers["date"],
            "/ss/api/trigger/",
        )


@pytest.mark.asyncio
async def test_api_key_auth(api: respx.MockRouter) -> None:
    route = api.post("ws-uid/trigger/").respond(202, json="Accepted - OK")
    new = api.post("trigger/").respond(202, json={"status": "success"})
    async with AsyncSuprsend.with_workspace_api_key("ws-uid", "api-key-1", BASE) as c:
        await c.trigger_workflow(
            {
                "name": "wf",
                "template": "tpl",
                "notification_category": "system",
                "users": [{"distinct_id": "u"}],
            }
        )
        await c.workflows.trigger({"workflow": "w", "recipients": ["u"]})
    for r in (route, new):
        headers = r.calls.last.request.headers
        assert headers["authorization"] == "Bearer api-key-1"
        assert headers["x-ss-wsuid"] == "ws-uid"
        assert "date" not in headers


def test_auth_reprs_hide_secrets() -> None:
    assert "secret" not in repr(HmacAuth("k", "secret")).replace("workspace_secret", "")
    assert "api-key-1" not in repr(ApiKeyAuth("u", "api-key-1"))


@pytest.mark.asyncio
async def test_every_attempt_is_signed_afresh(
    api: respx.MockRouter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import suprsend_async._auth as auth_mod

    dates = iter(["Sat, 28 Nov 2026 17:50:19 GMT", "Sat, 28 Nov 2026 17:50:21 GMT"])
    monkeypatch.setattr(auth_mod, "http_date", lambda: next(dates))
    route = api.post("trigger/").mock(
        side_effect=[httpx.Response(503), httpx.Response(202, json={})]
    )
    async with AsyncSuprsend(KEY, SECRET, BASE) as c:
        result = await c.workflows.trigger({"workflow": "w", "recipients": ["u"]})
    assert result.success and result.attempts == 2
    first, second = (call.request for call in route.calls)
    assert first.headers["date"] != second.headers["date"]
    assert first.headers["authorization"] != second.headers["authorization"]
    assert first.content == second.content


PRIVATE_SECRET = "sEcReT-value-9f8e7d"


PRIVATE_API_KEY = "api-KEY-value-1a2b3c"


EMAIL = "private.person@example.com"


PHONE = "+15550001234"


@pytest.fixture
def everything_logged(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, every level: ours, httpx, httpcore
    return caplog


def body() -> dict[str, object]:
    return {
        "workflow": "w",
        "recipients": [{"distinct_id": "u1", "$email": [EMAIL], "$sms": [PHONE]}],
        "data": {"token": "push-token-xyz"},
    }


@pytest.mark.asyncio
async def test_no_secret_signature_or_body_in_logs_reprs_or_errors(
    api: respx.MockRouter, everything_logged: pytest.LogCaptureFixture
) -> None:
    route = api.post("trigger/").mock(
        side_effect=[
            httpx.Response(500, text="boom"),
            httpx.Response(401, json={"message": "bad sig"}),
        ]
    )
    api.post("ws/trigger/").mock(side_effect=httpx.ConnectError("refused"))
    async with AsyncSuprsend("ws", PRIVATE_SECRET, BASE, max_retries=1) as client:
        result = await client.workflows.trigger(WorkflowTriggerRequest(body(), idempotency_key="k"))
        legacy = await client.trigger_workflow(
            {
                "name": "wf",
                "template": "tp",
                "notification_category": "system",
                "users": [{"distinct_id": "u", "$email": EMAIL}],
            }
        )
        texts = [repr(client), repr(result), repr(legacy), str(result.to_dict())]
        for response in (result, legacy):
            with pytest.raises(Exception) as info:
                response.raise_for_status()
            texts += [str(info.value), repr(info.value)]
    signatures = [c.request.headers["authorization"].split(":", 1)[1] for c in route.calls]
    logged = everything_logged.text
    for text in [logged, *texts]:
        assert PRIVATE_SECRET not in text
        for sig in signatures:
            assert sig not in text
        assert EMAIL not in text and PHONE not in text


@pytest.mark.asyncio
async def test_api_key_never_leaks(
    api: respx.MockRouter, everything_logged: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").respond(403, json={"message": "forbidden"})
    async with AsyncSuprsend.with_workspace_api_key("uid", PRIVATE_API_KEY, BASE) as client:
        result = await client.workflows.trigger(body())
        with pytest.raises(Exception) as info:
            result.raise_for_status()
        for text in (everything_logged.text, repr(client), repr(result), str(info.value)):
            assert PRIVATE_API_KEY not in text
