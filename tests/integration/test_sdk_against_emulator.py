"""The SDK against the emulator over loopback sockets: every trigger path, each fault type."""

from __future__ import annotations

from typing import Any

import pytest

from suprsend_async import AsyncSuprsend, Suprsend, Workflow, WorkflowTriggerRequest
from suprsend_async.emulator import Emulator, EmulatorProcess, Faults

pytestmark = pytest.mark.integration

LEGACY = {
    "name": "wf",
    "template": "tpl",
    "notification_category": "transactional",
    "users": [{"distinct_id": "u", "$email": ["u@example.com"]}],
}


def body(i: int) -> dict[str, Any]:
    return {"workflow": "wf", "recipients": [f"user-{i}"], "data": {"rid": i}}


@pytest.mark.asyncio
async def test_every_path_over_sockets(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    async with emu.client() as client:
        single = await client.workflows.trigger(WorkflowTriggerRequest(body(0), tenant_id="t"))
        legacy = await client.trigger_workflow(Workflow(LEGACY, brand_id="b"))
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[body(i) for i in range(1, 251)])
        bulk_result = await bulk.trigger()
        lbulk = client.bulk_workflows.new_instance()
        lbulk.append(*[Workflow(LEGACY) for _ in range(120)])
        lbulk_result = await lbulk.trigger()
        streamed = await client.workflows.bulk_trigger(body(i) for i in range(300, 800))
    assert single.success and single.message_id == emu.triggers[0].message_id
    assert legacy.success and legacy.message == "Accepted - OK"
    assert (bulk_result.success, lbulk_result.success, streamed.success) == (250, 120, 500)
    assert bulk_result.outcomes is not None
    assert {o.message_id for o in bulk_result.outcomes} <= {t.message_id for t in emu.triggers}
    assert len(emu.triggers) == 1 + 1 + 250 + 120 + 500
    assert emu.stats["rejected_auth"] == emu.stats["rejected_invalid"] == 0


@pytest.mark.asyncio
async def test_api_key_auth_over_sockets() -> None:
    async with Emulator(api_key="ak", workspace_uid="uid") as emu:
        async with AsyncSuprsend.with_workspace_api_key("uid", "ak", emu.base_url) as client:
            assert (await client.workflows.trigger(body(1))).success
            assert (await client.trigger_workflow(LEGACY)).success
            result = await client.workflows.bulk_trigger([body(i) for i in range(150)])
            assert result.success == 150
        async with AsyncSuprsend.with_workspace_api_key("uid", "wrong", emu.base_url) as bad:
            refused = await bad.workflows.trigger(body(1))
        assert refused.status_code == 401 and "API key" in refused.message


@pytest.mark.asyncio
async def test_wrong_secret_is_401(suprsend_emulator: Emulator) -> None:
    async with AsyncSuprsend(
        suprsend_emulator.config.workspace_key, "wrong", suprsend_emulator.base_url
    ) as client:
        result = await client.workflows.trigger(body(1))
    assert (result.status_code, result.message) == (401, "signature mismatch")


@pytest.mark.parametrize(
    ("faults", "stat"),
    [
        (Faults(rate_429=0.5, retry_after=0.01, seed=1), "injected_429"),
        (Faults(rate_5xx=0.5, seed=2), "injected_5xx"),
        (Faults(rate_record_5xx=0.3, seed=3), "injected_record_5xx"),
        (Faults(rate_drop=0.4, seed=4), "injected_drop"),
        (Faults(latency_ms=20, latency_jitter_ms=10), None),
    ],
)
@pytest.mark.asyncio
async def test_each_fault_is_survived(
    suprsend_emulator: Emulator, faults: Faults, stat: str | None
) -> None:
    emu = suprsend_emulator
    emu.set_faults(faults)
    # Enough retries that no request meets its fault every time: with 8, a request at a 50%
    # fault rate failed all 9 attempts once in 512, about one run in 15 over 35 requests.
    async with emu.client(max_retries=30) as client:
        result = await client.workflows.bulk_trigger(body(i) for i in range(1500))
        singles = [await client.workflows.trigger(body(10_000 + i)) for i in range(20)]
    assert result.success == 1500 and result.failure == 0
    assert all(s.success for s in singles)
    # Nothing processed twice, nothing lost.
    assert len(emu.triggers) == 1520
    assert max(emu.accepted_by_key.values()) == 1
    if stat:
        assert emu.stats[stat] > 0


@pytest.mark.asyncio
async def test_default_budget_reports_what_it_gave_up_on(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    emu.set_faults(rate_5xx=0.6, seed=11)
    async with emu.client() as client:
        result = await client.workflows.bulk_trigger(body(i) for i in range(2000))
    assert result.total == 2000 and result.success + result.failure == 2000
    assert result.failure > 0 and {f.code for f in result.failed_records} == {503}
    assert len(emu.triggers) == result.success  # every success was processed, once


def test_sync_facade_against_the_emulator(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    with emu.sync_client() as client:
        assert client.workflows.trigger(WorkflowTriggerRequest(body(1))).success
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[body(i) for i in range(120)])
        assert bulk.trigger().success == 120
    assert len(emu.triggers) == 121


def test_facade_built_from_environment(suprsend_env: Emulator) -> None:
    with Suprsend() as client:
        assert client.workflows.trigger(body(5)).success
    assert suprsend_env.triggers[0].body["data"] == {"rid": 5}


def test_emulator_in_its_own_process() -> None:
    with (
        EmulatorProcess(fast=True, latency_ms=1) as emu,
        Suprsend(emu.workspace_key, emu.workspace_secret, emu.base_url) as client,
    ):
        result = client.workflows.bulk_trigger([body(i) for i in range(300)])
    assert result.success == 300
    with pytest.raises(ValueError, match="rate_5xx"):
        EmulatorProcess(rate_5xx=3)
