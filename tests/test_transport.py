"""Secrets and personal data never leak; TLS verifies by default; redirects are not followed."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import httpx
import pytest
import respx

from suprsend_async import AsyncSuprsend, Suprsend, WorkflowTriggerRequest
from suprsend_async.emulator import Emulator

from .conftest import BASE, bulk_answer, trigger_body

SECRET = "sEcReT-value-9f8e7d"
API_KEY = "api-KEY-value-1a2b3c"
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
    async with AsyncSuprsend("ws", SECRET, BASE, max_retries=1) as client:
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
        assert SECRET not in text
        for sig in signatures:
            assert sig not in text
        assert EMAIL not in text and PHONE not in text


@pytest.mark.asyncio
async def test_api_key_never_leaks(
    api: respx.MockRouter, everything_logged: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").respond(403, json={"message": "forbidden"})
    async with AsyncSuprsend.with_workspace_api_key("uid", API_KEY, BASE) as client:
        result = await client.workflows.trigger(body())
        with pytest.raises(Exception) as info:
            result.raise_for_status()
        for text in (everything_logged.text, repr(client), repr(result), str(info.value)):
            assert API_KEY not in text


@pytest.mark.asyncio
async def test_bulk_results_and_logs_hold_no_secret(
    api: respx.MockRouter, everything_logged: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").mock(
        side_effect=bulk_answer(
            lambda r, i: {"status": "error", "status_code": 400, "error": {"message": "no"}}
        )
    )
    async with AsyncSuprsend("ws", SECRET, BASE) as client:
        bulk = client.workflows.bulk_trigger_instance()
        bulk.append(*[trigger_body(i) for i in range(3)], {"workflow": ""})
        result = await bulk.trigger()
    assert SECRET not in repr(result) and SECRET not in everything_logged.text
    assert all(SECRET not in f.error for f in result.failed_records)


def test_sync_facade_repr_hides_secrets() -> None:
    with Suprsend("ws", SECRET, BASE) as client:
        assert SECRET not in repr(client)
    api_client = Suprsend.with_workspace_api_key("uid", API_KEY, BASE)
    assert API_KEY not in repr(api_client)
    api_client.close()


def test_emulator_records_no_credentials(suprsend_emulator: Emulator) -> None:
    with suprsend_emulator.sync_client() as client:
        client.workflows.trigger(body())
    record = suprsend_emulator.triggers[0].to_json()
    text = str(record) + repr(suprsend_emulator)
    assert suprsend_emulator.config.workspace_secret not in text
    assert "authorization" not in text.lower()


@pytest.mark.asyncio
async def test_bodies_logged_only_on_opt_in(
    api: respx.MockRouter, everything_logged: pytest.LogCaptureFixture
) -> None:
    api.post("trigger/").respond(202, json={})
    async with AsyncSuprsend("ws", SECRET, BASE, log_bodies=True) as client:
        await client.workflows.trigger(body())
    assert EMAIL in everything_logged.text
    assert SECRET not in everything_logged.text


@pytest.mark.asyncio
async def test_redirect_is_not_followed(api: respx.MockRouter) -> None:
    api.post("trigger/").respond(308, headers={"Location": "https://attacker.example/collect"})
    stolen = api.post("https://attacker.example/collect").respond(200)
    async with AsyncSuprsend("ws", SECRET, BASE) as client:
        result = await client.workflows.trigger(body())
    assert not stolen.called
    assert result.status_code == 308 and not result.success


# -- TLS ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    folder = tmp_path_factory.mktemp("tls")
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    return ca_file, cert_file, key_file


@pytest.mark.asyncio
async def test_tls_untrusted_fails_trusted_works(tls_files: tuple[Path, Path, Path]) -> None:
    ca_file, cert_file, key_file = tls_files
    async with Emulator(ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)) as emu:
        assert emu.base_url.startswith("https://")
        key, secret = emu.config.workspace_key, emu.config.workspace_secret
        async with AsyncSuprsend(key, secret, emu.base_url, max_retries=0) as default:
            refused = await default.workflows.trigger(body())
        assert refused.status_code is None and refused.error_type == "connection"
        assert (
            "CERTIFICATE_VERIFY_FAILED" in refused.message
            or "certificate" in refused.message.lower()
        )
        async with AsyncSuprsend(key, secret, emu.base_url, verify=str(ca_file)) as trusting:
            assert (await trusting.workflows.trigger(body())).success
        context = ssl.create_default_context(cafile=str(ca_file))
        async with AsyncSuprsend(key, secret, emu.base_url, verify=context) as with_context:
            assert (await with_context.workflows.trigger(body())).success
        assert len(emu.triggers) == 2
