"""The emulator's management API refuses bad requests as the API does: 404 for what does not
exist, 400 (naming the field) for what is malformed, over every namespace, through the SDK's
signed escape hatch (``client.request``)."""

from __future__ import annotations

from typing import Any

import pytest

from suprsend_async import APIStatusError
from suprsend_async.emulator import Emulator

pytestmark = pytest.mark.integration

NOPE = "no-such-id"

CASES: list[tuple[str, str, str, dict[str, Any] | None, Any, int]] = [
    # users
    ("users: bad limit", "GET", "v1/user/", {"limit": 0}, None, 400),
    ("users: foreign cursor", "GET", "v1/user/", {"after": "zzz"}, None, 400),
    ("users: get unknown", "GET", f"v1/user/{NOPE}/", None, None, 404),
    ("users: edit unknown", "PATCH", f"v1/user/{NOPE}/", None, {"operations": []}, 404),
    ("users: delete unknown", "DELETE", f"v1/user/{NOPE}/", None, None, 404),
    ("users: upsert not an object", "POST", "v1/user/u1/", None, [1, 2], 400),
    ("users: merge without source", "POST", "v1/user/u1/merge/", None, {}, 400),
    ("users: merge into itself", "POST", "v1/user/u1/merge/", None, {"from_user_id": "u1"}, 400),
    ("users: merge unknown source", "POST", "v1/user/u1/merge/", None, {"from_user_id": NOPE}, 404),
    ("users: bulk delete nothing", "DELETE", "v1/bulk/user/", None, {"distinct_ids": []}, 400),
    ("users: tenant unknown", "GET", f"v1/user/u1/tenant/{NOPE}/", None, None, 404),
    ("users: tenants of unknown", "GET", f"v1/user/{NOPE}/associated_tenant/", None, None, 404),
    ("users: preference of unknown", "GET", f"v1/user/{NOPE}/preference/", None, None, 404),
    ("users: category unknown", "GET", "v1/user/u1/preference/category/nope-cat/", None, None, 404),
    (
        "users: channel preference not an object",
        "PATCH",
        "v1/user/u1/preference/channel_preference/",
        None,
        [],
        400,
    ),
    # objects
    ("objects: bad limit", "GET", "v1/object/teams/", {"limit": 5000}, None, 400),
    ("objects: foreign cursor", "GET", "v1/object/teams/", {"after": "x"}, None, 400),
    ("objects: get unknown", "GET", f"v1/object/teams/{NOPE}/", None, None, 404),
    ("objects: delete unknown", "DELETE", f"v1/object/teams/{NOPE}/", None, None, 404),
    ("objects: edit unknown", "PATCH", f"v1/object/teams/{NOPE}/", None, {"operations": []}, 404),
    ("objects: upsert not an object", "POST", "v1/object/teams/t1/", None, "x", 400),
    ("objects: bulk delete nothing", "DELETE", "v1/bulk/object/teams/", None, {}, 400),
    (
        "objects: subscriptions of unknown",
        "GET",
        f"v1/object/teams/{NOPE}/subscription/",
        None,
        None,
        404,
    ),
    (
        "objects: subscribe nothing",
        "POST",
        "v1/object/teams/t1/subscription/",
        None,
        {"recipients": []},
        400,
    ),
    (
        "objects: preference of unknown",
        "GET",
        f"v1/object/teams/{NOPE}/preference/",
        None,
        None,
        404,
    ),
    # lists
    ("lists: get unknown", "GET", f"v1/subscriber_list/{NOPE}/", None, None, 404),
    ("lists: create without id", "POST", "v1/subscriber_list/", None, {}, 400),
    (
        "lists: add to unknown",
        "POST",
        f"v1/subscriber_list/{NOPE}/subscriber/add/",
        None,
        {"distinct_ids": ["u1"]},
        404,
    ),
    ("lists: sync unknown", "POST", f"v1/subscriber_list/{NOPE}/start_sync/", None, None, 404),
    ("lists: version unknown", "GET", "v1/subscriber_list/l1/version/v9/", None, None, 404),
    # messages and runs
    ("messages: bad limit", "GET", "v1/message/", {"limit": 0}, None, 400),
    ("messages: update nothing", "PATCH", "v1/bulk/message/", None, {"messages": []}, 400),
    ("runs: cancel without a filter", "POST", "v1/workflow_run/cancel/", None, {}, 400),
    ("runs: broadcast cancel not an object", "POST", "v1/broadcast_run/cancel/", None, [], 400),
]


@pytest.fixture
def seeded(suprsend_emulator: Emulator) -> Emulator:
    with suprsend_emulator.sync_client() as client:
        client.users.upsert("u1", {"$email": ["u1@example.com"]})
        client.objects.upsert("teams", "t1", {"name": "T1"})
        client.subscriber_lists.create({"list_id": "l1", "list_name": "L1"})
    return suprsend_emulator


@pytest.mark.parametrize(
    ("method", "path", "params", "body", "status"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_a_bad_request_is_refused_as_the_api_refuses_it(
    seeded: Emulator,
    method: str,
    path: str,
    params: dict[str, Any] | None,
    body: Any,
    status: int,
) -> None:
    with seeded.sync_client() as client, pytest.raises(APIStatusError) as info:
        client.with_options(max_retries=0).request(method, path, params=params, json=body)
    assert info.value.status_code == status, info.value
    assert str(info.value).strip()


def test_an_objects_preferences_read_back_as_they_were_set(seeded: Emulator) -> None:
    with seeded.sync_client() as client:
        objects = client.objects
        full = objects.get_full_preference("teams", "t1")
        assert {c["channel"] for c in full["channel_preferences"]} >= {"email", "sms"}
        changed = objects.update_global_channels_preference(
            "teams", "t1", {"channel_preferences": [{"channel": "sms", "is_restricted": True}]}
        )
        restricted = {c["channel"] for c in changed["channel_preferences"] if c["is_restricted"]}
        assert restricted == {"sms"}
        hidden = objects.get_full_preference("teams", "t1", {"show_opt_out_channels": False})
        assert "sections" in hidden
        categories = [c for section in full["sections"] for c in section["subcategories"]]
        category = next(c["category"] for c in categories if c["category"] == "newsletter")
        objects.update_category_preference("teams", "t1", category, {"preference": "opt_out"})
        assert objects.get_category_preference("teams", "t1", category)["preference"] == "opt_out"
        for bad in ({"channel_preferences": "sms"}, {"channel_preferences": [{"channel": "x"}]}):
            with pytest.raises(APIStatusError) as info:
                objects.update_global_channels_preference("teams", "t1", bad)
            assert info.value.status_code == 400


EVENT = {"distinct_id": "u9", "$insert_id": "i-1", "env": "k", "$user_operations": []}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "empty"),
        (["x"], "JSON object"),
        ([{**EVENT, "distinct_id": ""}], "distinct_id"),
        ([{**EVENT, "$user_operations": {}}], "$user_operations"),
        ([{**EVENT, "tenant_id": 5}], "tenant_id"),
        ([{**EVENT, "big": "x" * 11_000}], "10 KiB"),
        ([EVENT] * 401, "over 400"),
    ],
)
def test_identity_events_the_service_would_refuse_are_refused(
    seeded: Emulator, body: Any, field: str
) -> None:
    with seeded.sync_client() as client, pytest.raises(APIStatusError) as info:
        client.with_options(max_retries=0).request("POST", "event/", json=body)
    assert info.value.status_code == 400 and field in str(info.value)
