"""The SDK's transport against a real TLS server: certificates verified by default, a CA file
or an SSL context trusted when given."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from suprsend_async import AsyncSuprsend
from suprsend_async.emulator import Emulator


def body() -> dict[str, object]:
    return {"workflow": "w", "recipients": ["u1"]}


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
