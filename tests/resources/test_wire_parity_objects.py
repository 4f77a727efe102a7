"""``client.objects``: every method sends the request the official SDK 0.20.0 sends.

The harness of ``test_wire_parity`` (recording server, HMAC checks) with scenarios over the
``objects`` namespace, run with the official SDK, our async client and our sync facade; ids
that need percent-encoding included. Then what only ours does: edits and subscription
payloads checked before any I/O, and subscriptions of more than 100 recipients chunked.
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import suprsend

from suprsend_async import AsyncSuprsend, Suprsend, SuprsendValidationError

from .recording_server import Answer, RecordedRequest, RecordingServer, verify_hmac, wire_view
from .test_wire_parity import KEY, SECRET, _server, plain, server  # noqa: F401  (fixtures)

Scenario = Callable[[Any], Any]
OBJ = "/v1/object/"
TYPE, TYPE_PATH = "teams/ü", "teams%2F%C3%BC/"
ID, ID_PATH = "fin ance?#1", "fin%20ance%3F%231/"
DETAIL = OBJ + TYPE_PATH + ID_PATH


@dataclass(frozen=True)
class Case:
    id: str
    run: Scenario
    method: str
    path: str
    query: str = ""
    body: Any = None


def call(name: str, *args: Any, **kwargs: Any) -> Scenario:
    return lambda objects: getattr(objects, name)(*args, **kwargs)


def build_edit(objects: Any) -> Any:
    """An edit using every kind of operation, built the same way on either SDK's instance."""
    e = objects.get_edit_instance(TYPE, ID)
    e.set({"name": "Fïnance", "plan": {"tier": 2}})
    e.set_once("founded", "2024-01-01")
    e.increment("seats", 3)
    e.append("tags", "vip")
    e.remove("tags", "old")
    e.unset(["legacy", "$sms"])
    e.set_preferred_language("fr")
    e.set_locale("fr-FR")
    e.set_timezone("Europe/Paris")
    e.add_email("team@example.com")
    e.remove_email("old@example.com")
    e.add_sms("+15555550123")
    e.remove_sms("+15555550000")
    e.add_whatsapp("+15555550123")
    e.remove_whatsapp("+15555550000")
    e.add_androidpush("tok-a", "fcm", "com.example")
    e.remove_androidpush("tok-b")
    e.add_iospush("tok-i", "apns")
    e.remove_iospush("tok-j", "apns", "com.example.ios")
    e.add_webpush({"endpoint": "https://push.example/1"}, "vapid")
    e.remove_webpush({"endpoint": "https://push.example/0"})
    e.add_slack({"channel_id": "C123", "access_token": "xoxb-1"})
    e.remove_slack({"incoming_webhook": {"url": "https://hooks.slack.com/services/T/B/X"}})
    e.add_ms_teams({"incoming_webhook": {"url": "https://example.webhook.office.com/x"}})
    e.remove_ms_teams({"incoming_webhook": {"url": "https://example.webhook.office.com/y"}})
    e.append({"$email": "b@example.com", "$iospush": "tok-k", "$id_provider": "apns"})
    return e


PAYLOAD = {"name": "Ünïcødé 🚀", "$email": ["team@example.com"], "$inbox": ["inbox-1"]}
SUBS = {"recipients": ["u1", {"object_type": "teams", "id": "devs"}], "properties": {"r": "x"}}
UNSUBS = {"recipients": ["u1", {"distinct_id": "u/2"}]}
PREF = {"preference": "opt_out", "opt_out_channels": ["sms"]}
CHANNELS = {"channel_preferences": [{"channel": "email", "is_restricted": True}]}
OPS = {"operations": [{"$set": {"a": 1}}]}

CASES = [
    Case("list", call("list", TYPE), "GET", OBJ + TYPE_PATH),
    Case("list-options", call("list", "teams", {"limit": 5, "after": "c1"}), "GET",
         OBJ + "teams/", "limit=5&after=c1"),
    Case("get", call("get", TYPE, ID), "GET", DETAIL),
    Case("upsert", call("upsert", TYPE, ID, PAYLOAD), "POST", DETAIL, body=PAYLOAD),
    Case("upsert-none", call("upsert", "teams", "t1"), "POST", OBJ + "teams/t1/", body={}),
    Case("edit-instance", lambda objects: objects.edit(build_edit(objects)), "PATCH", DETAIL),
    Case("edit-payload", call("edit", TYPE, ID, OPS), "PATCH", DETAIL, body=OPS),
    Case("delete", call("delete", TYPE, ID), "DELETE", DETAIL),
    Case("bulk-delete", call("bulk_delete", TYPE, {"object_ids": ["a", "b/c"]}), "DELETE",
         "/v1/bulk/object/" + TYPE_PATH, body={"object_ids": ["a", "b/c"]}),
    Case("subscriptions", call("get_subscriptions", TYPE, ID), "GET", DETAIL + "subscription/"),
    Case("subscriptions-options", call("get_subscriptions", "teams", "t1", {"limit": 2}),
         "GET", OBJ + "teams/t1/subscription/", "limit=2"),
    Case("subscribe", call("create_subscriptions", TYPE, ID, SUBS), "POST",
         DETAIL + "subscription/", body=SUBS),
    Case("unsubscribe", call("delete_subscriptions", TYPE, ID, UNSUBS), "DELETE",
         DETAIL + "subscription/", body=UNSUBS),
    Case("subscribed-to", call("get_objects_subscribed_to", TYPE, ID, {"after": "x"}), "GET",
         DETAIL + "subscribed_to/object/", "after=x"),
    Case("full-preference",
         call("get_full_preference", TYPE, ID, {"tenant_id": "t1", "show_opt_out_channels": True}),
         "GET", DETAIL + "preference/", "tenant_id=t1&show_opt_out_channels=true"),
    Case("global-channels",
         call("update_global_channels_preference", TYPE, ID, CHANNELS, {"tenant_id": "t1"}),
         "PATCH", DETAIL + "preference/channel_preference/", "tenant_id=t1", CHANNELS),
    Case("category", call("get_category_preference", TYPE, ID, "news/ü", {"locale": "fr"}),
         "GET", DETAIL + "preference/category/news%2F%C3%BC/", "locale=fr"),
    Case("category-update", call("update_category_preference", TYPE, ID, "newsletter", PREF),
         "PATCH", DETAIL + "preference/category/newsletter/", body=PREF),
]  # fmt: skip


async def _resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def run_official(case: Case, base_url: str) -> Any:
    return case.run(suprsend.Suprsend(KEY, SECRET, base_url=base_url).objects)


async def run_async(case: Case, base_url: str) -> Any:
    async with AsyncSuprsend(KEY, SECRET, base_url=base_url) as client:
        return await _resolve(case.run(client.objects))


def run_sync(case: Case, base_url: str) -> Any:
    with Suprsend(KEY, SECRET, base_url=base_url) as client:
        return case.run(client.objects)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_objects_send_what_the_official_sends(server: RecordingServer, case: Case) -> None:  # noqa: F811
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
        assert wire_view(ours) == wire_view(theirs), runner
        assert plain(ours_result) == their_result, runner


def test_the_edit_builds_the_officials_operations() -> None:
    theirs = build_edit(suprsend.Suprsend(KEY, SECRET).objects)
    ours = build_edit(AsyncSuprsend(KEY, SECRET).objects)
    assert ours.operations == theirs.operations
    assert ours.get_payload() == theirs.get_payload()
    assert (ours.object_type, ours.object_id) == (theirs.object_type, theirs.object_id)
    assert ours.errors == []


async def test_listing_walks_every_object_by_cursor(server: RecordingServer) -> None:  # noqa: F811
    pages: dict[str | None, tuple[dict[str, Any], list[str]]] = {
        None: ({"has_next": True, "after": "c1"}, ["a", "b"]),
        "c1": ({"has_next": False, "after": None}, ["c"]),
    }

    def answer(request: RecordedRequest) -> Answer:
        after = dict(p.split("=") for p in request.query.split("&") if p).get("after")
        meta, ids = pages[after]
        return Answer(200, {"meta": meta, "results": [{"id": i} for i in ids]})

    server.answer = answer
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        seen = [o["id"] async for o in client.objects.list("teams", {"limit": 2})]
        subs = [s["id"] async for s in client.objects.get_subscriptions("teams", "t1")]
    assert seen == subs == ["a", "b", "c"]
    assert [r.query for r in server.take()] == ["limit=2", "limit=2&after=c1", "", "after=c1"]
    with Suprsend(KEY, SECRET, base_url=server.base_url) as sync_client:
        assert [o["id"] for o in sync_client.objects.list("teams")] == seen


def _members(request: RecordedRequest) -> list[Any]:
    return list(json.loads(request.body)["recipients"])


async def test_large_subscriptions_are_chunked_and_accounted(server: RecordingServer) -> None:  # noqa: F811
    """250 recipients: three calls of at most 100, each recipient sent once; a refused chunk
    comes back as its recipients in ``failed_recipients``, with the status and reason."""
    ids = [f"u{i}" for i in range(250)]

    def answer(request: RecordedRequest) -> Answer:
        members = _members(request)
        if "u120" in members:
            return Answer(400, {"status": "fail", "message": "no such user u120"})
        return Answer(200, {"results": [{"user": {"distinct_id": m}} for m in members]})

    server.answer = answer
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url, max_retries=0) as client:
        result = await client.objects.create_subscriptions(
            "teams", "t1", {"recipients": ids, "properties": {"role": "x"}}
        )
    requests = server.take()
    sent = [m for r in requests for m in _members(r)]
    assert sorted(sent) == sorted(ids) and all(len(_members(r)) <= 100 for r in requests)
    assert all(json.loads(r.body)["properties"] == {"role": "x"} for r in requests)
    assert (result["total"], result["succeeded"], result["failed"]) == (250, 150, 100)
    assert result.status_code == 207 and result["chunks"] == 3
    failed = {f["recipient"] for f in result["failed_recipients"]}
    assert failed == set(ids[100:200])
    assert {f["code"] for f in result["failed_recipients"]} == {400}
    assert "u120" in result["failed_recipients"][0]["error"]
    delivered = {r["user"]["distinct_id"] for r in result["results"]}
    assert delivered | failed == set(ids) and not delivered & failed

    server.answer = lambda _request: Answer(204, None)
    with Suprsend(KEY, SECRET, base_url=server.base_url) as sync_client:
        gone = sync_client.objects.delete_subscriptions("teams", "t1", {"recipients": ids})
    assert gone["success"] is True and gone["succeeded"] == 250 and len(server.take()) == 3


GOOD_SLACK = {"channel_id": "C1", "access_token": "xoxb-1"}

BAD_EDITS: list[tuple[str, Callable[[Any], None], str]] = [
    ("set-type", lambda e: e.set(3), "set"),
    ("set-no-value", lambda e: e.set("k"), "set.k"),
    ("set-reserved", lambda e: e.set("$x", 1), "set.$x"),
    ("set-bad-timezone", lambda e: e.set("$timezone", "Mars/Base"), "set.$timezone"),
    ("set-once-empty-key", lambda e: e.set_once({" ": 1}), "set_once"),
    ("increment-text", lambda e: e.increment("n", "1"), "increment.n"),
    ("increment-bool", lambda e: e.increment({"n": True}), "increment.n"),
    ("append-reserved", lambda e: e.append("ss_x", 1), "append.ss_x"),
    ("append-bad-email", lambda e: e.append("$email", "nope"), "append.$email"),
    ("remove-type", lambda e: e.remove(["x"]), "remove"),
    ("unset-type", lambda e: e.unset(3), "unset"),
    ("unset-reserved", lambda e: e.unset(["$x"]), "unset.$x"),
    ("language", lambda e: e.set_preferred_language("english"), "set_preferred_language"),
    ("locale", lambda e: e.set_locale(""), "set_locale"),
    ("timezone", lambda e: e.set_timezone("Nowhere/City"), "set_timezone"),
    ("email", lambda e: e.add_email("a@"), "add_email"),
    ("remove-email-type", lambda e: e.remove_email(3), "remove_email"),
    ("sms", lambda e: e.add_sms("12345"), "add_sms"),
    ("remove-sms", lambda e: e.remove_sms(""), "remove_sms"),
    ("whatsapp", lambda e: e.add_whatsapp("phone"), "add_whatsapp"),
    ("remove-whatsapp", lambda e: e.remove_whatsapp(None), "remove_whatsapp"),
    ("androidpush-provider", lambda e: e.add_androidpush("t", "apns"), "add_androidpush.provider"),
    ("androidpush-token", lambda e: e.add_androidpush(""), "add_androidpush"),
    ("remove-androidpush", lambda e: e.remove_androidpush(1), "remove_androidpush"),
    ("iospush-provider", lambda e: e.add_iospush("t", "fcm"), "add_iospush.provider"),
    ("iospush-bundle", lambda e: e.add_iospush("t", "apns", ""), "add_iospush.bundle_id"),
    ("remove-iospush", lambda e: e.remove_iospush(""), "remove_iospush"),
    ("webpush", lambda e: e.add_webpush({}), "add_webpush"),
    ("webpush-provider", lambda e: e.add_webpush({"a": 1}, "fcm"), "add_webpush.provider"),
    ("remove-webpush", lambda e: e.remove_webpush("x"), "remove_webpush"),
    ("slack", lambda e: e.add_slack({"channel_id": "C1"}), "add_slack"),
    ("remove-slack", lambda e: e.remove_slack({}), "remove_slack"),
    ("ms-teams", lambda e: e.add_ms_teams({"tenant_id": "t"}), "add_ms_teams"),
    ("remove-ms-teams", lambda e: e.remove_ms_teams([]), "remove_ms_teams"),
]

BAD_SUBSCRIPTIONS: list[tuple[str, Any, str]] = [
    ("not-a-dict", ["u1"], "payload"),
    ("no-recipients", {"properties": {}}, "payload.recipients"),
    ("empty", {"recipients": []}, "payload.recipients"),
    ("a-string", {"recipients": "u1"}, "payload.recipients"),
    ("blank-id", {"recipients": ["u1", " "]}, "payload.recipients[1]"),
    ("number", {"recipients": [7]}, "payload.recipients[0]"),
    ("user-without-id", {"recipients": [{"$email": "a@example.com"}]},
     "payload.recipients[0].distinct_id"),
    ("object-without-id", {"recipients": [{"object_type": "teams"}]}, "payload.recipients[0].id"),
    ("object-without-type", {"recipients": [{"id": "devs"}]},
     "payload.recipients[0].object_type"),
    ("inline-bad-email", {"recipients": [{"distinct_id": "u", "$email": ["ok@example.com", "x"]}]},
     "payload.recipients[0].$email[1]"),
    ("inline-bad-slack", {"recipients": [{"distinct_id": "u", "$slack": {"channel_id": "C"}}]},
     "payload.recipients[0].$slack"),
    ("properties", {"recipients": ["u1"], "properties": ["role"]}, "payload.properties"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("build", "path"), [c[1:] for c in BAD_EDITS], ids=[c[0] for c in BAD_EDITS]
)
async def test_a_bad_edit_names_the_call_and_sends_nothing(
    server: RecordingServer,  # noqa: F811
    build: Callable[[Any], None],
    path: str,
) -> None:
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        edit = client.objects.get_edit_instance("teams", "t1")
        build(edit)
        edit.set("fine", 1)
        assert [e.path for e in edit.errors] == [path]
        with pytest.raises(SuprsendValidationError, match="object edit") as caught:
            await client.objects.edit(edit)
    assert caught.value.errors[0].path == path
    assert server.take() == []


@pytest.mark.parametrize(
    ("payload", "path"), [c[1:] for c in BAD_SUBSCRIPTIONS], ids=[c[0] for c in BAD_SUBSCRIPTIONS]
)
async def test_a_bad_subscription_payload_names_the_field_and_sends_nothing(
    server: RecordingServer,  # noqa: F811
    payload: Any,
    path: str,
) -> None:
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        for method in ("create_subscriptions", "delete_subscriptions"):
            if method == "delete_subscriptions" and path == "payload.properties":
                continue  # an unsubscribe sends no properties: they are passed through
            with pytest.raises(SuprsendValidationError) as caught:
                await getattr(client.objects, method)("teams", "t1", payload)
            got = caught.value.errors[0].path
            assert got == path or got.startswith(path + "."), method
    assert server.take() == []


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (("", "t1"), "object_type"),
        (("teams", " "), "object_id"),
        ((None, "t1"), "object_type"),
    ],
)
async def test_ids_are_checked_before_sending(
    server: RecordingServer,  # noqa: F811
    args: tuple[Any, ...],
    name: str,
) -> None:
    async with AsyncSuprsend(KEY, SECRET, base_url=server.base_url) as client:
        with pytest.raises(SuprsendValidationError, match=name):
            await client.objects.get(*args)
        with pytest.raises(SuprsendValidationError, match=name):
            client.objects.get_edit_instance(*args)
        with pytest.raises(SuprsendValidationError, match="object_ids"):
            await client.objects.bulk_delete("teams", {"object_ids": []})
    assert server.take() == []
