"""Logging: the package's logger only, nothing configured for the caller; bodies logged only on
opt-in, and never a secret or a signature."""

from __future__ import annotations

import logging

import httpx
import pytest
import respx

from suprsend_async import (
    AsyncSuprsend,
)

from .conftest import BASE, KEY, SECRET

PRIVATE_SECRET = "sEcReT-value-9f8e7d"


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
async def test_bodies_logged_only_on_opt_in(
    api: respx.MockRouter, everything_logged: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").respond(202, json={})
    async with AsyncSuprsend("ws", PRIVATE_SECRET, BASE, log_bodies=True) as client:
        await client.workflows.trigger(body())
    assert EMAIL in everything_logged.text
    assert PRIVATE_SECRET not in everything_logged.text


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
