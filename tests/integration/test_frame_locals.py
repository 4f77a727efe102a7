"""No secret in any frame: a call stalled by a loopback server and cancelled renders its
traceback with locals, and no credential, signature or attachment byte is in it."""

from __future__ import annotations

import asyncio
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest

from suprsend_async import (
    AsyncSuprsend,
    WorkflowTriggerRequest,
)

from ..conftest import KEY, SECRET
from .misbehaving_server import BODY, Handler, Server

pytestmark = pytest.mark.integration


@pytest.mark.asyncio
async def test_no_credentials_or_attachment_bytes_in_frame_locals(
    serve: Callable[[Handler], Awaitable[tuple[Server, str]]],
) -> None:
    marker = b"ATTACHMENT-BYTES-" * 8

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    _, url = await serve(stall)
    rendered: list[str] = []

    async def capture(call: Callable[[], Awaitable[Any]]) -> None:
        try:
            await call()
        except BaseException as exc:
            text = "".join(
                traceback.TracebackException.from_exception(exc, capture_locals=True).format()
            )
            rendered.append(text)
            raise

    import base64

    request = WorkflowTriggerRequest(dict(BODY))
    request.add_attachment_bytes(marker, "a.bin")
    hmac_client = AsyncSuprsend(KEY, SECRET, url, max_retries=0)
    bearer = AsyncSuprsend.with_workspace_api_key("uid-1", "api-key-SECRET-1", url)
    bulk = hmac_client.workflows.bulk_trigger_instance()
    bulk.append(request)
    for call in (
        lambda: hmac_client.workflows.trigger(request),
        lambda: bearer.workflows.trigger(BODY),
        lambda: bulk.trigger(),
    ):
        with anyio.move_on_after(0.3):
            await capture(call)
    await hmac_client.aclose()
    await bearer.aclose()
    assert len(rendered) == 3
    text = "\n".join(rendered)
    assert "Traceback" in text and "_post" in text  # the frames of the I/O were rendered
    for secret in (SECRET, "api-key-SECRET-1", f"{KEY}:", "Bearer "):
        assert secret not in text, secret
    assert marker.decode() not in text and base64.b64encode(marker).decode()[:40] not in text
