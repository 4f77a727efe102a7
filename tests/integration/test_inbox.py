"""The inbox behind the web page: what it records, how it answers, and what it keeps on disk."""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest

from suprsend_async import SubscriberListBroadcast, Suprsend
from suprsend_async._demo import run_demo
from suprsend_async.emulator import Emulator
from suprsend_async.emulator._inbox import Inbox, InboxQuery, api_for_path

from .test_emulator_protocol import GOOD, post, signed

pytestmark = pytest.mark.integration


def inbox(emu: Emulator, **filters: str) -> dict[str, Any]:
    r = httpx.get(emu.base_url + "_emulator/inbox", params=filters)
    assert r.status_code == 200
    result: dict[str, Any] = r.json()
    return result


def detail(emu: Emulator, row_id: str) -> dict[str, Any]:
    r = httpx.get(f"{emu.base_url}_emulator/inbox/{row_id}")
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


def statuses(result: dict[str, Any]) -> list[tuple[str | None, str]]:
    return [(i["name"], i["status"]) for i in result["items"]]


def test_every_request_is_listed_newest_first_with_its_status(
    suprsend_emulator: Emulator,
) -> None:
    emu = suprsend_emulator
    keyed = {**GOOD, "workflow": "keyed", "$idempotency_key": "k-1"}
    assert post(emu, "/trigger/", keyed).status_code == 202
    assert post(emu, "/trigger/", keyed).status_code == 202  # a duplicate
    bad_record = {"workflow": "bad"}  # no recipients
    assert post(emu, "/trigger/", [GOOD, bad_record, keyed]).status_code == 207
    assert post(emu, "/trigger/", {"workflow": "signed_wrong"}, secret="nope").status_code == 401
    assert post(emu, "/trigger/", b"{not json").status_code == 400
    result = inbox(emu)
    assert statuses(result) == [
        (None, "refused"),
        ("signed_wrong", "refused"),
        ("keyed", "duplicate"),
        ("bad", "refused"),
        ("w", "accepted"),
        ("keyed", "duplicate"),
        ("keyed", "accepted"),
    ]
    assert result["counts"] == {"accepted": 2, "duplicate": 2, "refused": 3, "fault": 0}
    assert result["total"] == result["matching"] == 7
    bulk = result["items"][3]
    assert bulk["bulk"] == {"index": 2, "of": 3} and bulk["http_status"] == 207
    unreadable = detail(emu, result["items"][0]["id"])
    assert unreadable["request"]["record"] == "{not json"
    assert unreadable["answer"]["body"]["error"]["type"] == "invalid_json"
    dup = detail(emu, result["items"][2]["id"])
    assert dup["duplicate"] is True and dup["idempotency_key"] == "k-1"
    assert dup["message_id"] == detail(emu, result["items"][6]["id"])["message_id"]
    assert dup["answer"]["record"]["status_code"] == 202


def test_filters_and_limit(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    post(emu, "/trigger/", {"workflow": "a_flow", "recipients": ["ann"], "tenant_id": "t1"})
    post(
        emu,
        "/trigger/",
        {"workflow": "b_flow", "recipients": [{"distinct_id": "bo", "$sms": ["+15555550100"]}]},
    )
    post(emu, "/trigger/", {"workflow": "b_flow", "recipients": ["cy"], "tenant_id": "t2"})
    assert statuses(inbox(emu, name="B_")) == [("b_flow", "accepted")] * 2
    assert [i["recipients"] for i in inbox(emu, distinct_id="B")["items"]] == [["bo"]]
    assert [i["tenant"] for i in inbox(emu, tenant="t")["items"]] == ["t2", "t1"]
    assert [i["name"] for i in inbox(emu, channel="sms")["items"]] == ["b_flow"]
    assert inbox(emu, status="refused")["matching"] == 0
    assert (
        inbox(emu, kind="event")["matching"] == 0 and inbox(emu, kind="workflow")["matching"] == 3
    )
    limited = inbox(emu, limit="1")
    assert len(limited["items"]) == 1 and limited["matching"] == 3
    r = httpx.get(emu.base_url + "_emulator/inbox", params={"limit": "many"})
    assert r.status_code == 400


def test_legacy_requests_are_listed(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    body = {
        "name": "billing",
        "template": "tp",
        "notification_category": "system",
        "users": [{"distinct_id": "u9", "$email": ["u9@example.com"]}],
        "brand_id": "brand-1",
    }
    assert post(emu, f"/{emu.config.workspace_key}/trigger/", [body, body]).status_code == 202
    items = inbox(emu)["items"]
    assert [(i["name"], i["tenant"], i["api"], i["channels"]) for i in items] == [
        ("billing", "brand-1", "legacy", ["email"])
    ] * 2
    assert detail(emu, items[0]["id"])["answer"]["body"] == {"status": "success"}


def test_detail_shows_recipients_actor_attachments_and_hides_secrets() -> None:
    with Emulator(api_key="the-api-key", workspace_uid="ws-uid") as emu:
        content = b"%PDF-1.4 pretend"
        body = {
            "workflow": "with_everything",
            "actor": "actor-1",
            "recipients": [
                {"distinct_id": "r1", "$email": ["r1@example.com"], "$channels": ["email", "sms"]},
                {"object_type": "teams", "id": "finance"},
                {"is_transient": True, "name": "guest"},
                {"is_transient": True},
            ],
            "data": {
                "$attachments": [
                    {
                        "filename": "a.pdf",
                        "contentType": "application/pdf",
                        "data": base64.b64encode(content).decode(),
                    },
                    {"filename": "bad.bin", "data": "***not base64***"},
                    {"url": "https://example.com/file.pdf", "filename": "linked.pdf"},
                    "not an object",
                ],
            },
        }
        r = httpx.post(
            emu.base_url + "trigger/",
            json=body,
            headers={"Authorization": "Bearer the-api-key", "X-SS-WSUID": "ws-uid"},
        )
        assert r.status_code == 202
        row = inbox(emu)["items"][0]
        assert row["recipients"] == ["r1", "object teams/finance", "guest", "(anonymous)"]
        assert row["channels"] == ["email", "sms"]
        d = detail(emu, row["id"])
        assert d["actor"]["label"] == "actor-1"
        r1 = d["recipient_details"][0]
        assert r1["channels"] == {"email": ["r1@example.com"], "sms": []}
        assert r1["preferred"] == ["email", "sms"]
        headers = dict(d["request"]["headers"])
        assert headers["authorization"] == "[hidden] (Bearer API key)"
        assert "the-api-key" not in json.dumps(d)
        infos = d["attachments"]
        assert [(a["filename"], a["size"], a["download"] is not None) for a in infos] == [
            ("a.pdf", len(content), True),
            ("bad.bin", None, False),
            ("linked.pdf", None, False),
        ]
        assert infos[2]["url"] == "https://example.com/file.pdf"
        assert d["data"]["$attachments"][0]["data"].endswith("see Attachments>")
        assert d["request"]["record"]["data"]["$attachments"][0]["data"].endswith("Attachments>")
        got = httpx.get(emu.base_url.rstrip("/") + infos[0]["download"])
        assert got.content == content and got.headers["content-type"] == "application/pdf"
        assert got.headers["content-disposition"] == "attachment; filename*=UTF-8''a.pdf"
        assert got.headers["content-security-policy"] == "sandbox"
        for n in (1, 2, 3, 9):
            url = f"{emu.base_url}_emulator/inbox/{row['id']}/attachments/{n}"
            assert httpx.get(url).status_code == 404
        no_data = {"workflow": "w", "recipients": ["u"]}
        httpx.post(
            emu.base_url + "trigger/",
            json=no_data,
            headers={"Authorization": "Bearer the-api-key"},
        )
        plain = inbox(emu)["items"][0]
        assert plain["name"] == "w"
        url = f"{emu.base_url}_emulator/inbox/{plain['id']}/attachments/0"
        assert httpx.get(url).status_code == 404


def test_hmac_authorization_is_hidden(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    body = json.dumps(GOOD).encode()
    headers = signed(emu, "/trigger/", body)
    httpx.post(emu.base_url + "trigger/", content=body, headers=headers)
    d = detail(emu, inbox(emu)["items"][0]["id"])
    shown = dict(d["request"]["headers"])["authorization"]
    assert shown == "[hidden] (workspace key and HMAC signature)"
    signature = headers["Authorization"].partition(":")[2]
    assert signature not in json.dumps(d) and emu.config.workspace_key not in json.dumps(d)


@pytest.mark.parametrize("row_id", ["999", "1-9", "x", "1-y"])
def test_unknown_entries_are_404(suprsend_emulator: Emulator, row_id: str) -> None:
    post(suprsend_emulator, "/trigger/", [GOOD, GOOD])
    r = httpx.get(f"{suprsend_emulator.base_url}_emulator/inbox/{row_id}")
    assert r.status_code == 404


def test_injected_faults_are_recorded_with_the_request(suprsend_emulator: Emulator) -> None:
    emu = suprsend_emulator
    emu.set_faults(rate_429=1.0, retry_after=3)
    assert post(emu, "/trigger/", {**GOOD, "workflow": "limited"}).status_code == 429
    emu.set_faults(rate_5xx=1.0, status_5xx=502)
    assert post(emu, "/trigger/", [GOOD, GOOD]).status_code == 502
    assert httpx.get(emu.base_url + "trigger/").status_code in (404, 405, 502)
    assert httpx.post(emu.base_url + "elsewhere/").status_code == 502
    assert httpx.get(emu.base_url).status_code == 200  # never on the page itself
    emu.set_faults(rate_record_5xx=1.0)
    assert post(emu, "/trigger/", [GOOD]).status_code == 207  # a bulk of one
    emu.set_faults(drop_next=1)
    with pytest.raises(httpx.RemoteProtocolError):
        post(emu, "/trigger/", {**GOOD, "workflow": "dropped"})
    emu.set_faults(latency_ms=5)
    assert post(emu, "/trigger/", {**GOOD, "workflow": "slow"}).status_code == 202
    emu.set_faults()
    result = inbox(emu)
    assert statuses(result) == [
        ("slow", "accepted"),
        ("dropped", "fault"),
        ("w", "fault"),
        ("w", "fault"),
        ("w", "fault"),
        ("limited", "fault"),
    ]
    assert result["counts"]["fault"] == 5
    assert result["items"][2]["bulk"] == {"index": 1, "of": 1}
    items = result["items"]
    assert detail(emu, items[0]["id"])["answer"]["latency_ms"] == 5
    assert "dropped" in detail(emu, items[1]["id"])["answer"]["fault"]
    assert detail(emu, items[2]["id"])["answer"]["record"]["status_code"] == 503
    five = detail(emu, items[3]["id"])
    assert five["answer"]["fault"] == "502 injected" and five["request"]["record"] == GOOD
    limited = detail(emu, items[5]["id"])
    assert limited["answer"]["fault"] == "429 injected"
    assert limited["answer"]["headers"] == {"retry-after": "3"}


def test_fast_mode_records_without_parsing_until_asked() -> None:
    with Emulator(fast=True) as emu:
        assert (
            post(emu, "/trigger/", [{"workflow": "f", "recipients": ["u"]}] * 2).status_code == 207
        )
        assert post(emu, "/trigger/", {"workflow": "g"}).status_code == 202
        exchanges = emu.state.inbox.exchanges()
        assert len(exchanges) == 2 and all(ex._rows is None for ex in exchanges)
        assert emu.state.inbox.max_bytes < Inbox().max_bytes  # only a short tail is kept
        result = inbox(emu)
        assert result["fast"] is True
        assert statuses(result) == [("g", "accepted"), ("f", "accepted"), ("f", "accepted")]
        assert detail(emu, result["items"][1]["id"])["message_id"].startswith("fast-")


def test_page_and_assets_are_served_with_a_strict_policy(suprsend_emulator: Emulator) -> None:
    base = suprsend_emulator.base_url
    page = httpx.get(base)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    for name, kind in (("inbox.css", "text/css"), ("inbox.js", "text/javascript")):
        r = httpx.get(f"{base}_emulator/inbox/assets/{name}")
        assert r.status_code == 200 and r.headers["content-type"].startswith(kind)
        assert not re.search(r"https?://", r.text), f"{name} refers to another site"
    assert not re.search(r"https?://", page.text)
    for name in ("index.html", "nope.js"):
        assert httpx.get(f"{base}_emulator/inbox/assets/{name}").status_code == 404


def test_live_stream_announces_changes_and_ends_when_the_emulator_stops() -> None:
    async def main() -> None:
        async with (
            Emulator() as emu,
            httpx.AsyncClient(base_url=emu.base_url) as http,
            http.stream("GET", "/_emulator/inbox/stream") as stream,
        ):
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            versions = []

            async def next_version() -> int:
                async for line in lines:
                    if line.startswith("data: "):
                        return int(line[6:])
                raise AssertionError("the stream ended")

            versions.append(await next_version())
            async with emu.client() as client:
                await client.workflows.trigger({"workflow": "w", "recipients": ["u"]})
            versions.append(await next_version())
            emu.reset()
            versions.append(await next_version())
            assert versions[0] < versions[1] < versions[2]
            emu.state.inbox.stopping = lambda: True
            rest = [line async for line in lines]  # the stream ends by itself
            assert all(not line.startswith("data: ") for line in rest)

    anyio.run(main)


def test_stream_pings_while_nothing_happens(monkeypatch: pytest.MonkeyPatch) -> None:
    from suprsend_async.emulator import _app

    monkeypatch.setattr(_app, "_STREAM_PING", 0.05)

    async def main() -> None:
        async with (
            Emulator() as emu,
            httpx.AsyncClient(base_url=emu.base_url) as http,
            http.stream("GET", "/_emulator/inbox/stream") as stream,
        ):
            lines = []
            with anyio.fail_after(5):  # pings come every 0.05 s: 5 s means there are none
                async for line in stream.aiter_lines():
                    lines.append(line)
                    if line.startswith(": ping"):
                        break
            assert lines[-1] == ": ping"
            # Nothing changed, so the only event before the ping is the first announcement.
            assert len([line for line in lines if line.startswith("data: ")]) == 1

    anyio.run(main)


def test_events_share_the_record_model() -> None:
    box = Inbox()
    event = {"event": "order_paid", "distinct_id": "u1", "properties": {"amount": 5}}
    box.record("event", "/event/", [], json.dumps(event).encode(), 202, b'{"status":"success"}', {})
    box.record("event", "/bulk/event/", [], json.dumps([event]).encode(), 207, b"{}", {})
    box.record("api", "/x/", [], json.dumps(event).encode(), 202, b"{}", {})
    box.record("api", "/x/", [], b'{"workflow": "w"}', 202, b"{}", {})
    box.record("event", "/event/", [], b'{"properties": 1}', 400, b"{}", {})
    odd_answer = b'{"records": [{"status_code": "202"}]}'  # not a number: the HTTP status counts
    box.record("event", "/bulk/event/", [], b"[{}]", 207, odd_answer, {})
    result = box.query(InboxQuery(kind="event"))
    assert [(i["kind"], i["name"], i["distinct_ids"]) for i in result["items"]] == [
        ("event", None, []),
        ("event", None, []),
        ("event", "order_paid", ["u1"]),
        ("event", "order_paid", ["u1"]),
        ("event", "order_paid", ["u1"]),
    ]
    assert box.query(InboxQuery(kind="workflow"))["matching"] == 1
    assert result["items"][0]["status"] == "accepted" and result["items"][1]["status"] == "refused"
    d = box.detail(result["items"][4]["id"])
    assert d is not None and d["data_key"] == "properties" and d["data"] == {"amount": 5}
    assert box.attachment(result["items"][4]["id"], 0) is None


def test_history_is_bounded_by_count_and_bytes() -> None:
    box = Inbox(max_exchanges=3, max_bytes=10**9)
    for i in range(5):
        box.record(
            "trigger", "/trigger/", [], json.dumps({"workflow": f"w{i}"}).encode(), 202, b"{}", {}
        )
    assert [i["name"] for i in box.query(InboxQuery())["items"]] == ["w4", "w3", "w2"]
    small = Inbox(max_bytes=100)
    for _ in range(3):
        small.record("trigger", "/trigger/", [], b"x" * 60, 400, b"{}", {})
    assert len(small.exchanges()) == 1  # the newest always stays
    scanned = Inbox(scan_limit=4)
    bulk = json.dumps([{"workflow": "w", "recipients": ["u"]}] * 3).encode()
    for _ in range(2):
        scanned.record("trigger", "/trigger/", [], bulk, 207, b"{}", {})
    result = scanned.query(InboxQuery())
    assert (result["total"], result["truncated"], len(result["items"])) == (4, True, 4)
    assert box.query(InboxQuery())["truncated"] is False
    assert api_for_path("/a/b/trigger/") is None and api_for_path("/event/") is None


def test_history_survives_a_restart_with_db(tmp_path: Path) -> None:
    db = tmp_path / "state" / "inbox.sqlite"
    with Emulator(db=db) as emu:
        post(emu, "/trigger/", {**GOOD, "workflow": "before_restart"})
        post(emu, "/trigger/", [GOOD, GOOD], secret="wrong")
        first = inbox(emu)
    with Emulator(db=db) as emu:
        again = inbox(emu)
        assert again["items"] == first["items"]
        post(emu, "/trigger/", {**GOOD, "workflow": "after_restart"})
        items = inbox(emu)["items"]
        assert [i["name"] for i in items] == ["after_restart", "w", "w", "before_restart"]
        assert int(items[0]["id"]) > int(items[1]["id"].split("-")[0])  # ids keep counting
        d = detail(emu, items[3]["id"])
        assert dict(d["request"]["headers"])["authorization"].startswith("[hidden]")
    raw = db.read_bytes()
    assert b"emulator_workspace_key:" not in raw  # no key or signature on disk
    with Emulator(db=db) as emu:
        emu.reset()
    with Emulator(db=db) as emu:
        assert inbox(emu)["total"] == 0


def test_the_same_emulator_can_stop_and_start_again_with_db(tmp_path: Path) -> None:
    emu = Emulator(db=tmp_path / "inbox.sqlite")
    with emu:
        post(emu, "/trigger/", GOOD)
    with emu:
        post(emu, "/trigger/", GOOD)
    assert len(Inbox(str(tmp_path / "inbox.sqlite")).exchanges()) == 2


def test_cli_emulator_keeps_history_in_db_across_restarts(tmp_path: Path) -> None:
    db = str(tmp_path / "inbox.sqlite")

    def run_once(workflow: str) -> list[str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "suprsend_async", "emulator", "--port", "0", "--db", db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            # Ctrl-C as a terminal delivers it, even when this run was started in the
            # background (a shell's background jobs start with SIGINT ignored).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            assert proc.stdout is not None
            url = re.search(r"listening on (\S+)", proc.stdout.readline())
            assert url is not None
            assert "inbox" in proc.stdout.readline()
            base = url.group(1)
            with Suprsend("emulator_workspace_key", "emulator_workspace_secret", base) as client:
                assert client.workflows.trigger({"workflow": workflow, "recipients": ["u"]}).success
            names = [i["name"] for i in httpx.get(base + "_emulator/inbox").json()["items"]]
        finally:
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=20)
        assert proc.returncode == 0  # Ctrl-C is how a server is stopped: a clean exit
        return names

    assert run_once("first") == ["first"]
    assert run_once("second") == ["second", "first"]


def test_demo_keep_open_serves_the_inbox_until_interrupted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def main() -> int:
        result: list[int] = []

        async def demo() -> None:
            result.append(await run_demo(records=20, progress=False, keep_open=True))

        async with anyio.create_task_group() as tg:
            tg.start_soon(demo)
            printed = ""
            with anyio.fail_after(60):
                while "stays open" not in printed:
                    await anyio.sleep(0.05)
                    printed += capsys.readouterr().out
            url = re.search(r"browse (\S+)", printed)
            assert url is not None and "watch every request live" in printed
            async with httpx.AsyncClient() as http:
                listed = (await http.get(url.group(1) + "_emulator/inbox")).json()
            assert listed["counts"]["accepted"] >= 20 and listed["counts"]["duplicate"] == 1
            os.kill(os.getpid(), signal.SIGINT)
        return result[0]

    assert anyio.run(main) == 0


def users_setup(emu: Emulator) -> None:
    """A team of two (one opted out of the workflow's category), a direct trigger, a broadcast."""
    settings = {"approve": {"category": "order-updates"}}
    assert httpx.put(emu.base_url + "_emulator/workflows", json=settings).status_code == 200
    with emu.sync_client() as client:
        client.users.upsert("u/1", {"name": "Ada", "$email": ["ada@example.com"]})
        client.users.update_category_preference("u/1", "newsletter", {"preference": "opt_out"})
        client.objects.upsert("teams", "t1", {"name": "Team one"})
        members = {"recipients": ["u/1", "bob"], "properties": {"role": "approver"}}
        client.objects.create_subscriptions("teams", "t1", members)
        client.users.update_category_preference("bob", "order-updates", {"preference": "opt_out"})
        team = {"object_type": "teams", "id": "t1"}
        assert client.workflows.trigger({"workflow": "approve", "recipients": [team]}).success
        assert client.workflows.trigger({"workflow": "direct", "recipients": ["u/1"]}).success
        client.subscriber_lists.create({"list_id": "l1"})
        client.subscriber_lists.add("l1", ["u/1"])
        body = {"list_id": "l1", "template": "news", "notification_category": "promotional"}
        assert client.subscriber_lists.broadcast(SubscriberListBroadcast(body)).success


def test_users_view_and_whom_a_trigger_to_an_object_reached(
    suprsend_emulator: Emulator,
) -> None:
    emu = suprsend_emulator
    users_setup(emu)
    listed = httpx.get(emu.base_url + "_emulator/users").json()
    assert {u["distinct_id"] for u in listed["users"]} == {"u/1", "bob"}
    ada = next(u for u in listed["users"] if u["distinct_id"] == "u/1")
    assert ada["name"] == "Ada" and ada["channels"] == ["email"]

    r = httpx.get(emu.base_url + "_emulator/users/" + quote("u/1", safe=""))
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["channels"] == {"email": ["ada@example.com"]}
    [prefs] = view["preferences"]
    newsletter = next(c for c in prefs["categories"] if c["category"] == "newsletter")
    assert newsletter["preference"] == "opt_out" and newsletter["chosen"] is True
    # Newest first: the broadcast delivery, then the direct trigger; the object trigger names
    # the team, not the user, so it is under "reached" instead.
    assert [(n["api"], n["name"]) for n in view["notifications"]] == [
        ("broadcast", "news"),
        ("trigger", "direct"),
    ]
    [reached] = view["reached"]
    assert reached["workflow"] == "approve" and reached["status"] == "delivered"
    assert reached["via"] == {"object_type": "teams", "id": "t1"}
    assert reached["subscription"] == {"role": "approver"}
    assert httpx.get(emu.base_url + "_emulator/users/nobody").status_code == 404

    row = next(i for i in inbox(emu)["items"] if i["name"] == "approve")
    fanout = detail(emu, row["id"])["fanout"]
    shown = {(e["recipient"].get("distinct_id") or e["recipient"]["id"]): e for e in fanout}
    assert set(shown) == {"t1", "u/1", "bob"}
    assert shown["u/1"]["status"] == "delivered" and shown["u/1"]["channels"] == ["email"]
    assert shown["bob"]["status"] == "suppressed"
    assert shown["bob"]["reason"] == "opted out of category 'order-updates'"
    direct = next(i for i in inbox(emu)["items"] if i["name"] == "direct")
    assert detail(emu, direct["id"])["fanout"] == []
