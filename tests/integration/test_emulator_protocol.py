"""The emulator speaks the service's protocol: auth, validation, limits, answers, inspection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from email.utils import formatdate
from typing import Any

import httpx
import pytest

from suprsend_async.emulator import Emulator, Faults

pytestmark = pytest.mark.integration


def signed(
    emu: Emulator, path: str, body: bytes, *, date: str | None = None, secret: str | None = None
) -> dict[str, str]:
    date = date or formatdate(usegmt=True)
    ctype = "application/json; charset=utf-8"
    md5 = hashlib.md5(body).hexdigest() if body else ""
    message = f"POST\n{md5}\n{ctype}\n{date}\n{path}".encode()
    sig = base64.b64encode(
        hmac.new((secret or emu.config.workspace_secret).encode(), message, hashlib.sha256).digest()
    ).decode()
    return {
        "Content-Type": ctype,
        "Date": date,
        "Authorization": f"{emu.config.workspace_key}:{sig}",
    }


def post(emu: Emulator, path: str, payload: Any, **kw: Any) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = kw.pop("headers", None) or signed(emu, path, body, **kw)
    return httpx.post(emu.base_url.rstrip("/") + path, content=body, headers=headers)


GOOD = {"workflow": "w", "recipients": ["u"], "data": {}}


def test_single_trigger_and_inspection(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    r = post(emu, "/trigger/", {**GOOD, "tenant_id": "t1", "$idempotency_key": "k1"})
    assert r.status_code == 202
    assert r.json()["status"] == "success" and r.json()["message_id"].startswith("emu-")
    listed = httpx.get(emu.base_url + "_emulator/triggers").json()
    assert listed["count"] == 1
    rec = listed["triggers"][0]
    assert (rec["path"], rec["api"], rec["tenant_id"], rec["idempotency_key"]) == (
        "/trigger/",
        "trigger",
        "t1",
        "k1",
    )
    assert rec["body"]["recipients"] == ["u"] and rec["received_at"]
    assert emu.triggers[0].message_id == r.json()["message_id"]
    assert httpx.delete(emu.base_url + "_emulator/triggers").json() == {"status": "reset"}
    assert emu.triggers == [] and emu.stats["requests"] == 0
    assert httpx.get(emu.base_url + "_emulator/health").json() == {"status": "ok"}


def test_repeated_idempotency_key_processed_once(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    first = post(emu, "/trigger/", {**GOOD, "$idempotency_key": " same "})
    second = post(emu, "/trigger/", {**GOOD, "$idempotency_key": "same"})
    assert second.status_code == 202
    assert second.json()["message_id"] == first.json()["message_id"]
    assert len(emu.triggers) == 1 and emu.stats["duplicates_skipped"] == 1
    assert emu.accepted_by_key == {"same": 1}


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda h: {**h, "Authorization": h["Authorization"][:-4] + "AAAA"}, "signature mismatch"),
        (
            lambda h: {**h, "Authorization": "other:" + h["Authorization"].split(":")[1]},
            "unknown workspace key",
        ),
        (lambda h: {k: v for k, v in h.items() if k != "Date"}, "Date header"),
        (lambda h: {k: v for k, v in h.items() if k != "Authorization"}, "Authorization"),
        (lambda h: {**h, "Content-Type": "application/json"}, "signature mismatch"),
    ],
)
def test_bad_signatures_get_401(suprsend_emulator: Emulator, mutate: Any, reason: str) -> None:
    emu = suprsend_emulator
    body = json.dumps(GOOD).encode()
    r = post(emu, "/trigger/", body, headers=mutate(signed(emu, "/trigger/", body)))
    assert r.status_code == 401 and reason in r.json()["message"]
    assert emu.triggers == []


def test_stale_date_refused(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    old = formatdate(time.time() - 16 * 60, usegmt=True)
    assert post(emu, "/trigger/", GOOD, date=old).status_code == 401
    recent = formatdate(time.time() - 14 * 60, usegmt=True)
    assert post(emu, "/trigger/", GOOD, date=recent).status_code == 202


def test_body_tampering_detected(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    body = json.dumps(GOOD).encode()
    headers = signed(emu, "/trigger/", body)
    tampered = json.dumps({**GOOD, "workflow": "x"}).encode()
    r = httpx.post(emu.base_url + "trigger/", content=tampered, headers=headers)
    assert r.status_code == 401


def test_bearer_auth() -> None:
    with Emulator(api_key="ak", workspace_uid="uid") as emu:
        ok = {"Authorization": "Bearer ak", "X-SS-WSUID": "uid", "Content-Type": "application/json"}
        assert httpx.post(emu.base_url + "trigger/", json=GOOD, headers=ok).status_code == 202
        no_uid = {"Authorization": "Bearer ak"}
        assert httpx.post(emu.base_url + "trigger/", json=GOOD, headers=no_uid).status_code == 202
        wrong_uid = {**ok, "X-SS-WSUID": "other"}
        assert (
            httpx.post(emu.base_url + "trigger/", json=GOOD, headers=wrong_uid).status_code == 401
        )
        wrong_key = {**ok, "Authorization": "Bearer nope"}
        assert (
            httpx.post(emu.base_url + "trigger/", json=GOOD, headers=wrong_key).status_code == 401
        )
        legacy_body = {
            "name": "wf",
            "template": "tp",
            "notification_category": "system",
            "users": [{"distinct_id": "u"}],
        }
        assert (
            httpx.post(emu.base_url + "uid/trigger/", json=legacy_body, headers=ok).status_code
            == 202
        )
        assert (
            httpx.post(
                emu.base_url + "emulator_workspace_key/trigger/", json=legacy_body, headers=ok
            ).status_code
            == 401
        )


def test_validation_errors_name_the_field(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    r = post(
        emu, "/trigger/", {"workflow": "w", "recipients": [{"distinct_id": "u", "$sms": ["555"]}]}
    )
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "validation_error"
    assert "recipients[0].$sms[0]: must start with +<country code>" in err["message"]
    assert post(emu, "/trigger/", b"{not json").json()["error"]["type"] == "invalid_json"
    assert post(emu, "/trigger/", b'"a string"').status_code == 400
    assert emu.triggers == []


def test_bulk_207_per_record(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    records = [
        GOOD,
        {"workflow": "", "recipients": ["u"]},
        "not an object",
        {**GOOD, "data": {"i": 3}},
    ]
    r = post(emu, "/trigger/", records)
    assert r.status_code == 207
    out = r.json()["records"]
    assert [o["status"] for o in out] == ["success", "error", "error", "success"]
    assert (
        out[1]["status_code"] == 400 and "workflow: must not be empty" in out[1]["error"]["message"]
    )
    assert out[0]["message_id"] != out[3]["message_id"]
    assert len(emu.triggers) == 2


def test_limits_enforced(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    assert post(emu, "/trigger/", [GOOD] * 101).status_code == 413
    assert post(emu, "/trigger/", []).status_code == 400
    big = {**GOOD, "data": {"blob": "x" * (800 * 1024)}}
    assert post(emu, "/trigger/", big).status_code == 413
    half = {**GOOD, "data": {"blob": "x" * (450 * 1024)}}
    r = post(emu, "/trigger/", [half, half])
    assert r.status_code == 413 and "apparent size" in r.json()["error"]["message"]
    assert emu.triggers == []


def test_legacy_endpoint(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    body = {
        "name": "wf",
        "template": "tp",
        "notification_category": "system",
        "users": [{"distinct_id": "u"}],
    }
    path = f"/{emu.config.workspace_key}/trigger/"
    r = post(emu, path, body)
    assert (r.status_code, r.json()) == (202, "Accepted - OK")
    r = post(emu, path, [body, body])
    assert r.status_code == 202 and len(emu.triggers) == 3
    r = post(emu, path, [body, {"name": "x"}])
    assert r.status_code == 400 and "record 1" in r.json()["error"]["message"]
    assert len(emu.triggers) == 3  # all or nothing
    assert post(emu, "/wrong_key/trigger/", body).status_code == 401


def test_faults_switchable_over_http(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    r = httpx.put(emu.base_url + "_emulator/faults", json={"rate_5xx": 1.0, "status_5xx": 502})
    assert r.json()["rate_5xx"] == 1.0
    assert post(emu, "/trigger/", GOOD).status_code == 502
    assert emu.triggers == [] and emu.stats["injected_5xx"] == 1
    assert httpx.put(emu.base_url + "_emulator/faults", json={"bogus": 1}).status_code == 400
    assert httpx.put(emu.base_url + "_emulator/faults", json={"rate_429": 2}).status_code == 400
    httpx.put(emu.base_url + "_emulator/faults", json={"rate_429": 1.0, "retry_after": 7})
    r = post(emu, "/trigger/", GOOD)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert httpx.get(emu.base_url + "_emulator/faults").json()["retry_after"] == 7


def test_drop_processes_then_hangs_up(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    emu.set_faults(drop_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        post(emu, "/trigger/", {**GOOD, "$idempotency_key": "d1"})
    assert len(emu.triggers) == 1  # processed although no answer came
    assert post(emu, "/trigger/", GOOD).status_code == 202  # only the next one was dropped


def test_record_5xx_not_processed(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    emu.set_faults(rate_record_5xx=1.0)
    out = post(emu, "/trigger/", [GOOD, GOOD]).json()["records"]
    assert {o["status_code"] for o in out} == {503}
    assert emu.triggers == []


def test_latency() -> None:
    with Emulator(faults=Faults(latency_ms=80)) as emu:
        started = time.perf_counter()
        assert post(emu, "/trigger/", GOOD).status_code == 202
        assert time.perf_counter() - started >= 0.075


def test_fast_mode_counts_without_storing() -> None:
    with Emulator(fast=True) as emu:
        r = post(emu, "/trigger/", [{"anything": 1}] * 3)
        assert r.status_code == 207 and len(r.json()["records"]) == 3
        assert post(emu, "/trigger/", {"x": 1}).status_code == 202
        assert emu.stats["records_accepted"] == 4 and emu.triggers == []
        body = json.dumps(GOOD).encode()
        bad = signed(emu, "/trigger/", body, secret="wrong")
        assert httpx.post(emu.base_url + "trigger/", content=body, headers=bad).status_code == 401


def test_faults_validation() -> None:
    with pytest.raises(ValueError, match="rate_drop"):
        Faults(rate_drop=1.5)
    with pytest.raises(ValueError, match="5xx"):
        Faults(status_5xx=404)
    with pytest.raises(ValueError, match="drop_next"):
        Faults(drop_next=-1)
    with pytest.raises(ValueError, match=">= 0"):
        Faults(latency_ms=-1)
    with pytest.raises(ValueError, match="unknown fault settings: nope"):
        Faults.from_mapping({"nope": 1})


def test_repr_hides_secrets() -> None:
    emu = Emulator(workspace_secret="very-secret", api_key="api-secret")
    assert "very-secret" not in repr(emu) and "api-secret" not in repr(emu)
    assert "not running" in repr(emu)
    with pytest.raises(RuntimeError, match="not running"):
        _ = emu.base_url


def test_attachments_are_decoded_and_recorded(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    payload = b"%PDF-1.4 hello"
    attachments = [
        {
            "filename": "bill.pdf",
            "contentType": "application/pdf",
            "data": base64.b64encode(payload).decode(),
            "url": None,
            "ignore_if_error": False,
        },
        {
            "filename": "x.png",
            "contentType": None,
            "data": None,
            "url": "https://cdn.example/x.png",
            "ignore_if_error": True,
        },
        {"filename": "broken", "data": "!!not base64!!"},
        "junk",
    ]
    r = post(emu, "/trigger/", {**GOOD, "data": {"$attachments": attachments}})
    assert r.status_code == 202
    info = emu.triggers[0].attachments
    assert len(info) == 3
    assert (info[0].filename, info[0].content_type, info[0].size) == (
        "bill.pdf",
        "application/pdf",
        len(payload),
    )
    assert info[0].sha256 == hashlib.sha256(payload).hexdigest()
    assert (info[1].url, info[1].size) == ("https://cdn.example/x.png", None)
    assert info[2].size is None
    listed = httpx.get(emu.base_url + "_emulator/triggers?api=trigger").json()["triggers"][0]
    assert listed["attachments"][0]["sha256"] == info[0].sha256
    assert httpx.get(emu.base_url + "_emulator/triggers?api=legacy").json()["count"] == 0
    assert httpx.get(emu.base_url + "_emulator/stats").json()["records_accepted"] == 1


def test_async_emulator_context() -> None:
    async def main() -> int:
        async with Emulator() as emu, emu.client() as client:
            result = await client.workflows.trigger(GOOD)
            assert result.success
            return len(emu.triggers)

    import anyio

    assert anyio.run(main) == 1


EMAIL = "private.person@example.com"


PHONE = "+15550001234"


def body() -> dict[str, object]:
    return {
        "workflow": "w",
        "recipients": [{"distinct_id": "u1", "$email": [EMAIL], "$sms": [PHONE]}],
        "data": {"token": "push-token-xyz"},
    }


def test_emulator_records_no_credentials(suprsend_emulator: Emulator) -> None:
    with suprsend_emulator.sync_client() as client:
        client.workflows.trigger(body())
    record = suprsend_emulator.triggers[0].to_json()
    text = str(record) + repr(suprsend_emulator)
    assert suprsend_emulator.config.workspace_secret not in text
    assert "authorization" not in text.lower()
