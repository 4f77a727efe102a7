"""The emulator's event endpoints: ``v2/event/`` and ``v2/bulk/event/``, as the service has them."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import pytest

from suprsend_async import Event
from suprsend_async.emulator import Emulator

from .test_emulator_protocol import post, signed

pytestmark = pytest.mark.integration


def event(emu: Emulator, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "$insert_id": str(uuid.uuid4()),
        "$time": int(time.time() * 1000),
        "event": "signed_up",
        "env": emu.config.workspace_key,
        "distinct_id": "u1",
        "properties": {"plan": "pro"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def test_single_event_and_inspection(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    body = event(emu, tenant_id="t1", brand_id="b1", **{"$idempotency_key": "e1"})
    r = post(emu, "/v2/event/", body)
    assert r.status_code == 202
    assert r.json()["status"] == "success" and r.json()["message_id"].startswith("emu-")
    listed = httpx.get(emu.base_url + "_emulator/events").json()
    assert listed["count"] == 1
    rec = listed["events"][0]
    assert (rec["api"], rec["path"], rec["event"], rec["distinct_id"]) == (
        "event",
        "/v2/event/",
        "signed_up",
        "u1",
    )
    assert (rec["tenant_id"], rec["brand_id"], rec["idempotency_key"]) == ("t1", "b1", "e1")
    assert rec["insert_id"] == body["$insert_id"] and rec["body"] == body
    assert emu.events[0].message_id == r.json()["message_id"]
    assert emu.triggers == []  # events are listed apart from workflow triggers
    assert httpx.get(emu.base_url + "_emulator/triggers").json()["count"] == 0
    assert httpx.get(emu.base_url + "_emulator/events?bulk=true").json()["count"] == 0
    stats = emu.stats
    assert (stats["event_requests"], stats["events_received"], stats["events_accepted"]) == (
        1,
        1,
        1,
    )
    assert stats["records_accepted"] == 1  # the totals include events
    assert emu.accepted_by_key == {"e1": 1}
    assert httpx.delete(emu.base_url + "_emulator/events").json() == {"status": "reset"}
    assert emu.events == [] and emu.stats["events_accepted"] == 0


def test_event_keys_deduplicated_apart_from_trigger_keys(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    first = post(emu, "/v2/event/", event(emu, **{"$idempotency_key": " same "}))
    second = post(emu, "/v2/event/", event(emu, **{"$idempotency_key": "same"}))
    assert second.status_code == 202
    assert second.json()["message_id"] == first.json()["message_id"]
    assert len(emu.events) == 1
    assert emu.stats["event_duplicates_skipped"] == emu.stats["duplicates_skipped"] == 1
    trigger = {"workflow": "w", "recipients": ["u"], "$idempotency_key": "same"}
    assert post(emu, "/trigger/", trigger).json()["message_id"] != first.json()["message_id"]
    assert len(emu.triggers) == 1 and emu.accepted_by_key == {"same": 2}


def test_bulk_events_207_per_record(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    records = [
        event(emu, properties={"record_id": 1}),
        event(emu, event="$reserved_thing"),
        "not an object",
        event(emu, distinct_id="u2", properties={"record_id": 2}),
        event(emu, env="another_workspace_key_x"),
    ]
    r = post(emu, "/v2/bulk/event/", records)
    assert r.status_code == 207
    out = r.json()["records"]
    assert [o["status"] for o in out] == ["success", "error", "error", "success", "error"]
    assert out[1]["status_code"] == 400 and "event:" in out[1]["error"]["message"]
    assert "env:" in out[4]["error"]["message"]
    assert [e.distinct_id for e in emu.events] == ["u1", "u2"]
    assert {(e.api, e.bulk) for e in emu.events} == {("event", True)}
    assert emu.accepted_by_record == {1: 1, 2: 1}
    assert emu.stats["events_rejected_invalid"] == 3


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        ({"distinct_id": ""}, "distinct_id"),
        ({"event": "x"}, "event"),
        ({"event": "ss_internal"}, "event"),
        ({"properties": []}, "properties"),
        ({"$insert_id": "short"}, "$insert_id"),
        ({"$time": 12}, "$time"),
        ({"tenant_id": "t" * 65}, "tenant_id"),
        ({"$idempotency_key": "k" * 256}, "$idempotency_key"),
        ({"workflow": "w"}, "workflow"),
    ],
)
def test_event_validation_names_the_field(
    suprsend_emulator: Emulator, mutate: dict[str, Any], field: str
) -> None:
    emu = suprsend_emulator
    r = post(emu, "/v2/event/", {**event(emu), **mutate})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["type"] == "validation_error" and err["message"].startswith(f"{field}")
    assert emu.events == [] and emu.stats["events_rejected_invalid"] == 1


def test_event_endpoints_want_their_shape(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    r = post(emu, "/v2/event/", [event(emu)])
    assert r.status_code == 400 and "a JSON object" in r.json()["error"]["message"]
    r = post(emu, "/v2/bulk/event/", event(emu))
    assert r.status_code == 400 and "a JSON array" in r.json()["error"]["message"]
    assert post(emu, "/v2/event/", b"{oops").json()["error"]["type"] == "invalid_json"
    assert post(emu, "/v2/bulk/event/", []).status_code == 400
    assert post(emu, "/v2/bulk/event/", [event(emu)] * 101).status_code == 413
    big = event(emu, properties={"blob": "x" * (800 * 1024)})
    assert post(emu, "/v2/event/", big).status_code == 413
    assert emu.events == [] and emu.stats["events_rejected_invalid"] == 6


def test_event_signatures_checked(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    body = json.dumps(event(emu)).encode()
    bad = signed(emu, "/v2/event/", body, secret="wrong")
    assert httpx.post(emu.base_url + "v2/event/", content=body, headers=bad).status_code == 401
    good = signed(emu, "/v2/event/", body)
    tampered = body.replace(b"signed_up", b"signed_in")
    r = httpx.post(emu.base_url + "v2/event/", content=tampered, headers=good)
    assert r.status_code == 401
    # A signature for one path does not open the other.
    r = httpx.post(emu.base_url + "v2/bulk/event/", content=body, headers=good)
    assert r.status_code == 401
    stale = signed(emu, "/v2/event/", body, date="Mon, 01 Jan 2024 00:00:00 GMT")
    assert httpx.post(emu.base_url + "v2/event/", content=body, headers=stale).status_code == 401
    assert emu.events == [] and emu.stats["rejected_auth"] == 4


def test_event_bearer_auth_wants_the_uid_as_env() -> None:
    with Emulator(api_key="ak", workspace_uid="workspace_uid_of_twenty") as emu:
        headers = {"Authorization": "Bearer ak", "X-SS-WSUID": "workspace_uid_of_twenty"}
        ok = event(emu, env="workspace_uid_of_twenty")
        assert httpx.post(emu.base_url + "v2/event/", json=ok, headers=headers).status_code == 202
        r = httpx.post(emu.base_url + "v2/event/", json=event(emu), headers=headers)
        assert r.status_code == 400 and "env:" in r.json()["error"]["message"]
        wrong = {**headers, "Authorization": "Bearer nope"}
        assert httpx.post(emu.base_url + "v2/event/", json=ok, headers=wrong).status_code == 401
        assert len(emu.events) == 1


def test_event_faults(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    emu.set_faults(rate_429=1.0)
    assert post(emu, "/v2/event/", event(emu)).status_code == 429
    emu.set_faults(rate_5xx=1.0, status_5xx=502)
    assert post(emu, "/v2/bulk/event/", [event(emu)]).status_code == 502
    emu.set_faults(rate_record_5xx=1.0)
    out = post(emu, "/v2/bulk/event/", [event(emu), event(emu)]).json()["records"]
    assert {o["status_code"] for o in out} == {503}
    assert emu.events == []
    emu.set_faults(drop_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        post(emu, "/v2/event/", event(emu))
    assert len(emu.events) == 1  # processed although no answer came
    emu.set_faults()
    stats = emu.stats
    assert (stats["injected_429"], stats["injected_5xx"], stats["injected_record_5xx"]) == (1, 1, 2)
    assert stats["injected_drop"] == 1


def test_event_fast_mode() -> None:
    with Emulator(fast=True) as emu:
        r = post(emu, "/v2/bulk/event/", [{"anything": 1}] * 3)
        assert r.status_code == 207 and len(r.json()["records"]) == 3
        assert post(emu, "/v2/event/", {"x": 1}).status_code == 202
        assert emu.stats["events_accepted"] == 4 and emu.events == []
        body = json.dumps(event(emu)).encode()
        bad = signed(emu, "/v2/event/", body, secret="wrong")
        assert httpx.post(emu.base_url + "v2/event/", content=body, headers=bad).status_code == 401


def test_event_attachments_decoded(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    ev = Event("u1", "invoice_ready", {"n": 1})
    ev.add_attachment_bytes(b"%PDF-1.4 hello", "invoice.pdf")
    ev.add_attachment("https://example.com/terms.pdf")
    with emu.sync_client() as client:
        assert client.track_event(ev).success
    (rec,) = emu.events
    assert [a.filename for a in rec.attachments] == ["invoice.pdf", None]
    assert rec.attachments[0].size == len(b"%PDF-1.4 hello")
    assert rec.attachments[1].url == "https://example.com/terms.pdf"


def test_inbox_rows_for_events(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    post(emu, "/v2/event/", event(emu, tenant_id="t1"))
    post(emu, "/v2/bulk/event/", [event(emu, distinct_id="u2"), event(emu, event="x")])
    emu.set_faults(rate_429=1.0)
    post(emu, "/v2/event/", event(emu, distinct_id="u9"))
    emu.set_faults()
    page = httpx.get(emu.base_url + "_emulator/inbox", params={"kind": "event"}).json()
    rows = {row["id"]: row for row in page["items"]}
    assert {row["kind"] for row in rows.values()} == {"event"}
    assert {
        (r["api"], r["bulk"] is not None, r["status"], tuple(r["recipients"]))
        for r in rows.values()
    } == {
        ("event", False, "accepted", ("u1",)),
        ("event", True, "accepted", ("u2",)),
        ("event", True, "refused", ("u1",)),
        ("event", False, "fault", ("u9",)),
    }
    single = next(r for r in rows.values() if r["tenant"] == "t1")
    detail = httpx.get(emu.base_url + f"_emulator/inbox/{single['id']}").json()
    assert detail["name"] == "signed_up" and detail["data_key"] == "properties"
    assert detail["data"] == {"plan": "pro"}
