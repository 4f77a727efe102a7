"""``client.users``: every method sends the request the official SDK 0.20.0 sends.

The harness of ``test_wire_parity`` (its recording server and checks), with scenarios instead
of plain calls, because an edit is built on an instance the SDK hands out: each scenario is a
function of the ``users`` namespace, run with the official SDK, our async client and our sync
facade. Identity events (``POST event/``) are compared without what is stamped per send:
``$insert_id``, ``$time`` and ``properties.$ss_sdk_version`` (each SDK names itself).
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
import suprsend

from suprsend_async import AsyncSuprsend, Suprsend, SuprsendValidationError

from .recording_server import Answer, RecordedRequest, RecordingServer, verify_hmac, wire_view
from .test_wire_parity import KEY, SECRET, _server, plain, server  # noqa: F401  (fixtures)

Scenario = Callable[[Any], Any]
U = "/v1/user/"
ID = "u/1 ü?"
ID_PATH = "u%2F1%20%C3%BC%3F/"


@dataclass(frozen=True)
class Case:
    id: str
    run: Scenario
    method: str
    path: str
    query: str = ""
    body: Any = None
    answer: Answer | None = None


def call(name: str, *args: Any, **kwargs: Any) -> Scenario:
    return lambda users: getattr(users, name)(*args, **kwargs)


def build_edit(distinct_id: str, tenant_id: str | None = None) -> Callable[[Any], Any]:
    """An edit using every kind of operation, built the same way on either SDK's instance."""

    def build(users: Any) -> Any:
        e = users.get_edit_instance(distinct_id, tenant_id)
        e.set({"name": "Ünï", "plan": {"tier": 2}})
        e.set_once("first_seen", "2024-01-01")
        e.increment("logins", 1)
        e.append("tags", "vip")
        e.remove("tags", "old")
        e.unset(["legacy", "$sms"])
        e.set_preferred_language("fr")
        e.set_locale("fr-FR")
        e.set_timezone("Europe/Paris")
        e.add_email("a@example.com")
        e.remove_email("old@example.com")
        e.add_sms("+15555550123")
        e.remove_sms("+15555550000")
        e.add_whatsapp("+15555550123")
        e.remove_whatsapp("+15555550000")
        e.add_androidpush("tok-a", "fcm", "com.example")
        e.remove_androidpush("tok-b")
        e.add_iospush("tok-i", "apns")
        e.remove_iospush("tok-j", "apns", "com.example.ios")
        e.add_webpush({"endpoint": "https://push.example/1", "keys": {"p256dh": "x"}}, "vapid")
        e.remove_webpush({"endpoint": "https://push.example/0"})
        e.add_slack({"email": "a@example.com", "access_token": "xoxb-1"})
        e.remove_slack({"incoming_webhook": {"url": "https://hooks.slack.com/services/T/B/X"}})
        e.add_ms_teams(
            {
                "tenant_id": "t",
                "service_url": "https://smba.trafficmanager.net/amer/",
                "conversation_id": "c",
            }
        )
        e.remove_ms_teams({"incoming_webhook": {"url": "https://example.webhook.office.com/x"}})
        e.append({"$email": "b@example.com", "$iospush": "tok-k", "$id_provider": "apns"})
        return e

    return build


def edit_with(distinct_id: str, tenant_id: str | None = None) -> Scenario:
    return lambda users: users.edit(build_edit(distinct_id, tenant_id)(users))


def async_edit_with(distinct_id: str, tenant_id: str | None = None) -> Scenario:
    return lambda users: users.async_edit(build_edit(distinct_id, tenant_id)(users))


PAYLOAD = {"$email": ["a@example.com"], "name": "Ünïcødé 🚀", "props": {"k": [1, None, True]}}
PREF = {"preference": "opt_out", "opt_out_channels": ["sms"]}
CHANNELS = {"channel_preferences": [{"channel": "email", "is_restricted": True}]}
ACCEPTED = Answer(202, {"status": "success"})

CASES = [
    Case("list", call("list"), "GET", U),
    Case("list-options", call("list", {"limit": 5, "after": "c1"}), "GET", U, "limit=5&after=c1"),
    Case("get", call("get", ID), "GET", U + ID_PATH),
    Case("get-options", call("get", "u1", {"x": True}), "GET", U + "u1/", "x=true"),
    Case("upsert", call("upsert", ID, PAYLOAD), "POST", U + ID_PATH, body=PAYLOAD),
    Case("upsert-none", call("upsert", "u1"), "POST", U + "u1/", body={}),
    Case("edit-instance", edit_with(ID), "PATCH", U + ID_PATH),
    Case("edit-tenant", edit_with(ID, "t/1"), "PATCH", U + ID_PATH + "tenant/t%2F1/"),
    Case(
        "edit-payload",
        call("edit", "u1", {"operations": [{"$set": {"a": 1}}]}, "t1", {"o": 1}),
        "PATCH",
        U + "u1/tenant/t1/",
        "o=1",
        {"operations": [{"$set": {"a": 1}}]},
    ),
    Case("async-edit", async_edit_with(ID), "POST", "/event/", answer=ACCEPTED),
    Case("async-edit-tenant", async_edit_with("u1", "t1"), "POST", "/event/", answer=ACCEPTED),
    Case(
        "merge",
        call("merge", ID, "u2"),
        "POST",
        U + ID_PATH + "merge/",
        body={"from_user_id": "u2"},
    ),
    Case("delete", call("delete", ID), "DELETE", U + ID_PATH),
    Case(
        "bulk-delete",
        call("bulk_delete", {"distinct_ids": ["u1", "u/2"]}),
        "DELETE",
        "/v1/bulk/user/",
        body={"distinct_ids": ["u1", "u/2"]},
    ),
    Case(
        "associated-tenants",
        call("list_associated_tenants", ID, {"limit": 2}),
        "GET",
        U + ID_PATH + "associated_tenant/",
        "limit=2",
    ),
    Case("get-for-tenant", call("get_for_tenant", ID, "t 1"), "GET", U + ID_PATH + "tenant/t%201/"),
    Case(
        "upsert-for-tenant",
        call("upsert_for_tenant", "u1", "t1", PAYLOAD, {"o": "x"}),
        "POST",
        U + "u1/tenant/t1/",
        "o=x",
        PAYLOAD,
    ),
    Case("unlink-tenant", call("unlink_tenant", ID, "t1"), "DELETE", U + ID_PATH + "tenant/t1/"),
    Case(
        "objects-subscribed",
        call("get_objects_subscribed_to", ID),
        "GET",
        U + ID_PATH + "subscribed_to/object/",
    ),
    Case(
        "lists-subscribed",
        call("get_lists_subscribed_to", "u1", {"after": "x"}),
        "GET",
        U + "u1/subscribed_to/list/",
        "after=x",
    ),
    Case(
        "full-preference",
        call("get_full_preference", ID, {"tenant_id": "t1", "show_opt_out_channels": True}),
        "GET",
        U + ID_PATH + "preference/",
        "tenant_id=t1&show_opt_out_channels=true",
    ),
    Case(
        "global-channels",
        call("update_global_channels_preference", ID, CHANNELS, {"tenant_id": "t1"}),
        "PATCH",
        U + ID_PATH + "preference/channel_preference/",
        "tenant_id=t1",
        CHANNELS,
    ),
    Case(
        "category",
        call("get_category_preference", "u1", "news/ü", {"locale": "fr"}),
        "GET",
        U + "u1/preference/category/news%2F%C3%BC/",
        "locale=fr",
    ),
    Case(
        "category-update",
        call("update_category_preference", ID, "newsletter", PREF),
        "PATCH",
        U + ID_PATH + "preference/category/newsletter/",
        body=PREF,
    ),
]

STAMPS = ("$insert_id", "$time")


def without_stamps(request: RecordedRequest) -> Any:
    """The request's wire view; an identity event without what is stamped per send."""
    view = wire_view(request)
    body = view.json_body
    if request.path != "/event/" or not isinstance(body, dict):
        return view
    assert isinstance(body.get("$insert_id"), str) and isinstance(body.get("$time"), int)
    body = {k: v for k, v in body.items() if k not in STAMPS}
    assert set(body["properties"]) == {"$ss_sdk_version"}
    body["properties"] = {}
    return replace(view, json_body=body)


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def run_official(case: Case, base_url: str) -> Any:
    return case.run(suprsend.Suprsend(KEY, SECRET, base_url=base_url).users)


async def run_async(case: Case, base_url: str) -> Any:
    async with AsyncSuprsend(KEY, SECRET, base_url=base_url) as client:
        return await _resolve(case.run(client.users))


def run_sync(case: Case, base_url: str) -> Any:
    with Suprsend(KEY, SECRET, base_url=base_url) as client:
        return case.run(client.users)


def _answer(srv: RecordingServer, case: Case) -> None:
    if case.answer is not None:
        answer = case.answer
        srv.answer = lambda _request: answer


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_users_send_what_the_official_sends(server: RecordingServer, case: Case) -> None:  # noqa: F811
    _answer(server, case)
    their_result = await asyncio.to_thread(run_official, case, server.base_url)
    theirs = server.take_one()
    verify_hmac(theirs, KEY, SECRET)
    assert (theirs.method, theirs.path, theirs.query) == (case.method, case.path, case.query)
    if case.body is not None:
        assert theirs.json() == case.body
    for runner in ("async", "sync"):
        if runner == "async":
            ours_result = await run_async(case, server.base_url)
        else:
            ours_result = await asyncio.to_thread(run_sync, case, server.base_url)
        ours = server.take_one()
        verify_hmac(ours, KEY, SECRET)
        assert without_stamps(ours) == without_stamps(theirs), runner
        if ours.path != "/event/" or case.answer is not None:
            assert plain(ours_result) == their_result, runner


def test_the_edit_builds_the_officials_operations() -> None:
    theirs = build_edit(ID, "t1")(suprsend.Suprsend(KEY, SECRET).users)
    ours = build_edit(ID, "t1")(AsyncSuprsend(KEY, SECRET).users)
    assert ours.operations == theirs.operations
    assert ours.get_payload() == theirs.get_payload()
    assert (ours.distinct_id, ours.tenant_id) == (theirs.distinct_id, theirs.tenant_id)
    assert ours.errors == []


async def test_an_edit_with_errors_is_not_sent(server: RecordingServer) -> None:  # noqa: F811
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        edit = client.users.get_edit_instance("u1")
        edit.add_email("not-an-email")
        edit.set("name", "ok")
        with pytest.raises(SuprsendValidationError, match="add_email"):
            await client.users.edit(edit)
        with pytest.raises(SuprsendValidationError, match="add_email"):
            await client.users.async_edit(edit)
        big = client.users.get_edit_instance("u1")
        big.set("blob", "x" * 11_000)
        with pytest.raises(SuprsendValidationError, match="10 KiB"):
            await client.users.async_edit(big)
    assert server.take() == []


async def test_listing_walks_every_user_by_cursor(server: RecordingServer) -> None:  # noqa: F811
    """``async for`` follows ``meta.after`` while ``meta.has_next``; one request per page."""
    pages: dict[str | None, tuple[dict[str, Any], list[str]]] = {
        None: ({"has_next": True, "after": "c1"}, ["u1", "u2"]),
        "c1": ({"has_next": True, "after": "c2"}, ["u3"]),
        "c2": ({"has_next": False, "after": None}, ["u4"]),
    }

    def answer(request: RecordedRequest) -> Answer:
        after = dict(p.split("=") for p in request.query.split("&") if p).get("after")
        meta, ids = pages[after]
        return Answer(
            200, {"meta": {"limit": 2, **meta}, "results": [{"distinct_id": i} for i in ids]}
        )

    server.answer = answer
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        seen = [u["distinct_id"] async for u in client.users.list({"limit": 2})]
    assert seen == ["u1", "u2", "u3", "u4"]
    assert [r.query for r in server.take()] == ["limit=2", "limit=2&after=c1", "limit=2&after=c2"]
    with Suprsend(KEY, SECRET, base_url=server.base_url) as sync_client:
        assert [u["distinct_id"] for u in sync_client.users.list({"limit": 2})] == seen
