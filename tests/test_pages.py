"""Pages (``_pages``): the checks and hints a caller meets before anything is sent."""

from __future__ import annotations

import pytest
import respx

from suprsend_async import AsyncSuprsend, SuprsendValidationError

from .conftest import BASE, KEY, SECRET


@pytest.mark.asyncio
async def test_a_cursor_page_size_outside_the_api_range_is_refused_before_sending(
    api: respx.MockRouter,
) -> None:
    async with AsyncSuprsend(KEY, SECRET, BASE) as client:
        for bad in (0, 1001, "10", True):
            with pytest.raises(SuprsendValidationError, match=r"options\.limit"):
                client.users.list({"limit": bad})
        with pytest.raises(SuprsendValidationError, match=r"options\.limit"):
            client.objects.list("teams", {"limit": 5000})
        with pytest.raises(SuprsendValidationError, match=r"options\.limit"):
            client.messages.list({"limit": 5000})
        client.users.list({"limit": 1000})  # the largest page the API gives
    assert api.calls.call_count == 0


@pytest.mark.asyncio
async def test_a_list_call_used_without_await_says_what_to_do(api: respx.MockRouter) -> None:
    async with AsyncSuprsend(KEY, SECRET, BASE) as client:
        pages = client.tenants.list()
        with pytest.raises(TypeError, match="await"):
            pages["results"]  # type: ignore[index]
        with pytest.raises(TypeError, match="async for"):
            iter(pages)  # type: ignore[call-overload]


def test_the_async_client_in_a_plain_with_says_what_to_do() -> None:
    client = AsyncSuprsend(KEY, SECRET, BASE)
    with pytest.raises(TypeError, match="async with"), client:  # type: ignore[attr-defined]
        pass
