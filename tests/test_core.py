"""What is not I/O: configuration (arguments, environment, errors), endpoints and their signed
URIs, each attempt's headers, derived cores, and an answer turned into a result."""

from __future__ import annotations

import json

import pytest
import respx

from suprsend_async import (
    AsyncSuprsend,
    ConfigurationError,
)

BODY = {"workflow": "w", "recipients": ["u"]}


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
