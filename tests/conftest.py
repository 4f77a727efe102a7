"""Shared fixtures: a respx-mocked API, clients bound to it, retry waits removed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
import respx
from hypothesis import settings

from suprsend_async import AsyncSuprsend
from suprsend_async.testing import retry_waits_disabled

pytest_plugins = ["suprsend_async.emulator.pytest_plugin"]

# ``nox -s stress`` runs the property and fuzz tests with many more examples.
settings.register_profile("stress", max_examples=5000, deadline=None)

BASE = "http://api.test/"
KEY = "ws_key"
SECRET = "ws_secret_value"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    with retry_waits_disabled():
        yield


@pytest.fixture(autouse=True)
def _no_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "SUPRSEND_WORKSPACE_KEY",
        "SUPRSEND_WORKSPACE_SECRET",
        "SUPRSEND_BASE_URL",
        "SUPRSEND_WORKSPACE_UID",
        "SUPRSEND_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def api() -> Iterator[respx.MockRouter]:
    with respx.mock(base_url=BASE, assert_all_called=False) as router:
        yield router


@pytest_asyncio.fixture
async def client(api: respx.MockRouter) -> AsyncIterator[AsyncSuprsend]:
    async with AsyncSuprsend(KEY, SECRET, BASE) as c:
        yield c


def bulk_answer(
    per_record: Callable[[dict[str, Any], int], dict[str, Any]] | None = None,
    status: int = 207,
) -> Callable[[httpx.Request], httpx.Response]:
    """A respx side effect answering a bulk array record by record."""

    def answer(request: httpx.Request) -> httpx.Response:
        records = json.loads(request.content)
        out = []
        for i, rec in enumerate(records):
            if per_record is None:
                out.append(
                    {"status": "success", "status_code": 202, "message_id": f"m-{_rid(rec)}"}
                )
            else:
                out.append(per_record(rec, i))
        return httpx.Response(status, json={"status": "success", "records": out})

    return answer


def _rid(rec: dict[str, Any]) -> str:
    return str(rec.get("data", {}).get("rid", rec.get("$idempotency_key")))


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


def trigger_body(i: int = 0, **extra: Any) -> dict[str, Any]:
    return {"workflow": "wf", "recipients": [f"user-{i}"], "data": {"rid": i}, **extra}
