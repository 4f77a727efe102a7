"""Options the official SDK's constructor takes (``debug``, ``app_info``) and its signed
escape hatch (``request``), as this SDK honours them."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
import suprsend

from suprsend_async import AppInfo, AsyncSuprsend, NotFoundError, Suprsend
from suprsend_async._observe import enable_debug_logging

from .resources.recording_server import Answer, RecordingServer, verify_hmac, wire_view

KEY, SECRET = "ws_key", "ws_secret"


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as recording:
        yield recording


@pytest.fixture
def clean_logger() -> Iterator[logging.Logger]:
    package = logging.getLogger("suprsend_async")
    level, handlers = package.level, list(package.handlers)
    yield package
    package.setLevel(level)
    package.handlers[:] = handlers


@pytest.mark.asyncio
async def test_app_info_is_named_in_the_user_agent(server: RecordingServer) -> None:
    info: AppInfo = {"name": "billing", "version": "2.3.1"}
    async with AsyncSuprsend(KEY, SECRET, server.base_url, app_info=info) as client:
        await client.tenants.get("t1")
    request = server.take_one()
    assert (request.header("user-agent") or "").endswith(" (billing/2.3.1)")
    described = json.loads(request.header("x-suprsend-client-user-agent") or "{}")
    assert described["sdk"] == "suprsend-async" and described["app_info"] == info
    verify_hmac(request, KEY, SECRET)


@pytest.mark.asyncio
async def test_request_sends_what_the_official_request_sends(server: RecordingServer) -> None:
    body = {"tenant_name": "Ünï", "n": 1}
    official = suprsend.Suprsend(KEY, SECRET, base_url=server.base_url)
    await asyncio.to_thread(
        official.request, "POST", server.base_url + "v1/tenant/t%2F1/?a=1", body
    )
    theirs = server.take_one()
    async with AsyncSuprsend(KEY, SECRET, server.base_url) as client:
        result = await client.request("post", "v1/tenant/t%2F1/", json=body, params={"a": 1})
    ours = server.take_one()
    assert wire_view(ours) == wire_view(theirs)
    verify_hmac(ours, KEY, SECRET)
    assert result["echo"]["body"] == body and result.status_code == 200
    # A full URL under the base URL is taken too; a GET sends no body.
    with Suprsend(KEY, SECRET, server.base_url) as sync:
        sync.request("GET", server.base_url + "v1/brand/", params={"limit": 2, "x": None})
    got = server.take_one()
    assert (got.method, got.path, got.query, got.body) == ("GET", "/v1/brand/", "limit=2", b"")


@pytest.mark.asyncio
async def test_request_raises_typed_errors(server: RecordingServer) -> None:
    server.answer = lambda request: Answer(404, {"message": "no such tenant"})
    async with AsyncSuprsend(KEY, SECRET, server.base_url) as client:
        with pytest.raises(NotFoundError, match="no such tenant"):
            await client.request("GET", "v1/tenant/nope/")


def test_debug_turns_on_the_package_logger_only(
    clean_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = logging.getLogger()
    root_level, root_handlers = root.level, list(root.handlers)
    clean_logger.handlers.clear()
    clean_logger.setLevel(logging.NOTSET)
    AsyncSuprsend(KEY, SECRET, "http://127.0.0.1:9/", debug=True)
    assert clean_logger.level == logging.DEBUG and len(clean_logger.handlers) == 1
    enable_debug_logging()  # a second client adds nothing
    assert len(clean_logger.handlers) == 1
    assert (root.level, root.handlers) == (root_level, root_handlers)


def test_suprsend_log_env_turns_it_on(
    clean_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_logger.handlers.clear()
    clean_logger.setLevel(logging.NOTSET)
    AsyncSuprsend(KEY, SECRET, "http://127.0.0.1:9/")
    assert clean_logger.level == logging.NOTSET
    monkeypatch.setenv("SUPRSEND_LOG", "debug")
    AsyncSuprsend(KEY, SECRET, "http://127.0.0.1:9/")
    assert clean_logger.level == logging.DEBUG


@pytest.mark.asyncio
async def test_extra_headers_and_timeout_per_call(server: RecordingServer) -> None:
    async with AsyncSuprsend(KEY, SECRET, server.base_url, timeout=0.01) as client:
        extra = {"X-Trace": "t-1"}
        await client.workflows.trigger(
            {"workflow": "w", "recipients": ["u"]}, extra_headers=extra, timeout=10
        )
        await client.tenants.get("t1", extra_headers=extra, timeout=10)
        async for _ in client.tenants.list(extra_headers=extra, timeout=10):
            pass
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append({"workflow": "w", "recipients": ["u"]})
        done = await bulk.trigger(extra_headers=extra, timeout=10)
        assert done.total == 1  # the recording server does not answer per record
        await client.track_event(
            {"distinct_id": "u", "event": "signed_up"}, extra_headers=extra, timeout=10
        )
    requests = server.take()
    assert len(requests) == 5
    for request in requests:
        assert request.header("x-trace") == "t-1"
        verify_hmac(request, KEY, SECRET)


def test_signed_headers_cannot_be_replaced() -> None:
    with (
        Suprsend(KEY, SECRET, "http://127.0.0.1:9/") as client,
        pytest.raises(ValueError, match="Authorization"),
    ):
        client.tenants.get("t1", extra_headers={"Authorization": "x"})


@pytest.mark.asyncio
async def test_a_request_of_the_wrong_class_names_the_call_that_takes_it(
    server: RecordingServer,
) -> None:
    from suprsend_async import Event, SuprsendValidationError, Workflow, WorkflowTriggerRequest

    legacy = Workflow({"name": "wf", "template": "t", "notification_category": "system",
                       "users": [{"distinct_id": "u"}]})  # fmt: skip
    async with AsyncSuprsend(KEY, SECRET, server.base_url) as client:
        with pytest.raises(SuprsendValidationError, match=r"client\.trigger_workflow") as info:
            await client.workflows.trigger(legacy)  # type: ignore[arg-type]
        assert "takes a WorkflowTriggerRequest" in str(info.value)
        request = WorkflowTriggerRequest({"workflow": "w", "recipients": ["u"]})
        with pytest.raises(SuprsendValidationError, match=r"client\.workflows\.trigger"):
            await client.trigger_workflow(request)  # type: ignore[arg-type]
        with pytest.raises(SuprsendValidationError, match=r"client\.track_event"):
            await client.workflows.trigger(Event("u", "signed_up"))  # type: ignore[arg-type]
    assert server.take() == []
