"""What is not I/O: configuration (arguments, environment, errors), endpoints and their signed
URIs, each attempt's headers, derived cores, and an answer turned into a result."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json

import httpx
import pytest
import respx

from suprsend_async import (
    AsyncSuprsend,
    ConfigurationError,
    RetryPolicy,
)
from suprsend_async._auth import HmacAuth
from suprsend_async._core import DEFAULT_TIMEOUT, ClientCore, Endpoint, Settings, user_agents
from suprsend_async._observe import Observer

from .conftest import BASE, KEY, SECRET

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


def settings(**changes: object) -> Settings:
    base = Settings(BASE, DEFAULT_TIMEOUT, RetryPolicy(), True, False)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def signature(method: str, body: bytes, date: str, uri: str) -> str:
    """The HMAC computed here from the published scheme, not by the SDK's code."""
    md5 = hashlib.md5(body).hexdigest() if body else ""
    message = f"{method}\n{md5}\napplication/json; charset=utf-8\n{date}\n{uri}"
    return base64.b64encode(hmac.new(SECRET.encode(), message.encode(), "sha256").digest()).decode()


def test_headers_sign_with_the_endpoints_method_and_carry_the_user_agents() -> None:
    agent, client_agent = user_agents({"name": "billing", "version": "2.3.1"})
    core = ClientCore(
        HmacAuth(KEY, SECRET), settings(user_agent=agent, client_user_agent=client_agent)
    )
    content = b'{"tenant_name": "Acme"}'
    for method in ("POST", "GET", "PATCH", "DELETE"):
        endpoint = Endpoint.at(BASE, "v1/tenant/acme/", method)
        headers = core.headers(endpoint, content)
        # Signed over this endpoint's method and path: a signature made for POST (or for the
        # base URL's path) would not match.
        assert headers["Authorization"] == f"{KEY}:" + signature(
            method, content, headers["Date"], "/v1/tenant/acme/"
        )
        assert headers["Content-Type"] == "application/json; charset=utf-8"
        assert headers["User-Agent"] == agent
        assert headers["X-Suprsend-Client-User-Agent"] == client_agent
    assert agent.endswith("(billing/2.3.1)")
    assert json.loads(client_agent)["app_info"] == {"name": "billing", "version": "2.3.1"}


def test_an_endpoint_keeps_a_percent_encoded_path_and_query_in_the_signed_uri() -> None:
    path = "v1/subscriber/a%2Fb%20c/preference/?tenant_id=t%26x&show_opt_out_channels=true"
    endpoint = Endpoint.at("https://hub.test/prefix/", path, "GET")
    assert endpoint.method == "GET"
    assert endpoint.url == "https://hub.test/prefix/" + path
    # Neither decoded (%2F is not a path separator, %26 not a query separator) nor re-encoded.
    assert endpoint.uri == "/prefix/" + path
    core = ClientCore(HmacAuth(KEY, SECRET), settings(base_url="https://hub.test/prefix/"))
    headers = core.headers(endpoint, b"")
    assert headers["Authorization"] == f"{KEY}:" + signature(
        "GET", b"", headers["Date"], "/prefix/" + path
    )


def test_derive_keeps_what_is_not_replaced() -> None:
    observer = Observer(None)
    original = ClientCore(
        HmacAuth(KEY, SECRET),
        settings(deadline=4.0, log_bodies=True, max_answer_bytes=1234, user_agent="ua/1"),
        observer,
    )
    shorter = original.derive(timeout=httpx.Timeout(2.0))
    assert shorter is not original
    assert shorter.settings == dataclasses.replace(original.settings, timeout=httpx.Timeout(2.0))
    assert shorter.auth is original.auth and shorter.observer is observer
    assert shorter.endpoints == original.endpoints
    assert shorter.bulk_endpoints == original.bulk_endpoints
    no_retries = shorter.derive(retry=RetryPolicy(max_retries=0), deadline=None)
    assert no_retries.settings == dataclasses.replace(
        shorter.settings, retry=RetryPolicy(max_retries=0), deadline=None
    )
    assert original.derive().settings == original.settings  # nothing given: nothing replaced
    assert original.settings.deadline == 4.0  # deriving never changes the original
    with pytest.raises(ValueError, match="deadline"):
        original.derive(deadline=0)


def test_a_reply_reads_as_httpx_reads_an_answer() -> None:
    from suprsend_async._core import Reply

    raw = [(b"Content-Type", b"text/plain; charset=latin-1"), (b"X-Request-Id", b"r1")]
    reply = Reply(207, raw, "caf\u00e9".encode("latin-1"))
    same = httpx.Response(207, headers=raw, content="caf\u00e9".encode("latin-1"))
    assert reply.text == same.text == "caf\u00e9"
    assert reply.header(b"x-request-id") == "r1" and reply.header(b"retry-after") is None
    assert dict(reply.headers) == {k: v for k, v in same.headers.items() if k != "content-length"}
    assert (reply.is_success, reply.is_error) == (same.is_success, same.is_error) == (True, False)
    unknown = Reply(500, [(b"content-type", b"application/json; charset=x-nope")], b"{}")
    assert unknown.text == "{}" and unknown.is_error and not unknown.is_success
    assert Reply(204, [], b"").text == ""
