"""The emulator's pytest plugin works for suites on pytest-asyncio, in auto and strict modes."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest
from suprsend_async import AsyncSuprsend, Suprsend, WorkflowTriggerRequest

pytest_plugins = ["suprsend_async.emulator.pytest_plugin"]
BODY = {"workflow": "welcome", "recipients": ["u-1"]}


@pytest.fixture
async def client(suprsend_env):
    async with AsyncSuprsend() as c:
        yield c


@pytest.mark.asyncio
async def test_async_client_against_the_emulator(client, suprsend_emulator):
    result = await client.workflows.trigger(WorkflowTriggerRequest(BODY))
    assert result.success
    assert [t.workflow for t in suprsend_emulator.triggers] == ["welcome"]


def test_sync_client_against_the_emulator(suprsend_env):
    with Suprsend() as c:
        assert c.workflows.trigger(WorkflowTriggerRequest(BODY)).success
    assert len(suprsend_env.triggers) == 1  # reset between tests
"""

STRICT_FIXTURE = "import pytest_asyncio\n" + USER_TESTS.replace(
    "@pytest.fixture\nasync def client", "@pytest_asyncio.fixture\nasync def client"
)


@pytest.mark.parametrize(("mode", "source"), [("auto", USER_TESTS), ("strict", STRICT_FIXTURE)])
def test_plugin_under_pytest_asyncio(pytester: pytest.Pytester, mode: str, source: str) -> None:
    pytester.makepyfile(test_user=source)
    result = pytester.runpytest_subprocess(
        "-p",
        "asyncio",
        f"--asyncio-mode={mode}",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
    )
    result.assert_outcomes(passed=2)
