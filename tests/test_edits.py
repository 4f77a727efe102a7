"""The edit builder: bad input to every method is kept as an error naming the call and key.

Every method of :class:`UserEdit` is covered by :data:`BAD` (a test checks that none is
missing); a bad call adds no operation, and an edit with errors refuses to be sent.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from suprsend_async import FieldError, SuprsendValidationError, UserEdit
from suprsend_async._edits import ProfileEdit, identity_event_size, non_idempotent

SLACK_OK = {"email": "a@example.com", "access_token": "xoxb-1"}
TEAMS_OK = {"tenant_id": "t", "service_url": "https://smba.trafficmanager.net/x/", "user_id": "u"}

# (method, args, the error's path, a word of its message)
BAD: list[tuple[str, tuple[Any, ...], str, str]] = [
    ("set", (42,), "set", "dict"),
    ("set", ("name",), "set.name", "needs a value"),
    ("set", ({"": 1},), "set", "empty"),
    ("set", ({1: 1},), "set", "string"),
    ("set", ({"$custom": 1},), "set.$custom", "reserved"),
    ("set", ({"ss_x": 1},), "set.ss_x", "reserved"),
    ("set", ("$timezone", "Mars/Base"), "set.$timezone", "IANA"),
    ("set_once", ("$preferred_language", "en"), "set_once.$preferred_language", "reserved"),
    ("set_once", ([1],), "set_once", "dict"),
    ("increment", ("n", "1"), "increment.n", "number"),
    ("increment", ({"n": True},), "increment.n", "number"),
    ("increment", ("$n", 1), "increment.$n", "reserved"),
    ("append", ("tags",), "append.tags", "needs a value"),
    ("append", ({"$email": "nope"},), "append.$email", "e-mail"),
    ("append", ({"$id_provider": "fcm"},), "append.$id_provider", "reserved"),
    (
        "append",
        ({"$androidpush": "t", "$id_provider": "apns"},),
        "append.$androidpush.provider",
        "fcm",
    ),
    ("remove", ({"$sms": ""},), "remove.$sms", "non-empty"),
    ("remove", (None,), "remove", "dict"),
    ("unset", (42,), "unset", "list of keys"),
    ("unset", (["ok", "$secret"],), "unset.$secret", "reserved"),
    ("unset", ([""],), "unset", "empty"),
    ("set_preferred_language", ("english",), "set_preferred_language", "ISO 639-1"),
    ("set_preferred_language", (None,), "set_preferred_language", "string"),
    ("set_locale", ("e",), "set_locale", "locale"),
    ("set_timezone", ("UTC+2",), "set_timezone", "IANA"),
    ("add_email", ("a b@example.com",), "add_email", "e-mail"),
    ("add_email", (None,), "add_email", "non-empty"),
    ("remove_email", ("",), "remove_email", "non-empty"),
    ("add_sms", ("5555550123",), "add_sms", "+<country code>"),
    ("remove_sms", (5,), "remove_sms", "non-empty"),
    ("add_whatsapp", ("0044 20",), "add_whatsapp", "+<country code>"),
    ("remove_whatsapp", ([],), "remove_whatsapp", "non-empty"),
    ("add_androidpush", ("",), "add_androidpush", "non-empty"),
    ("add_androidpush", ("tok", "apns"), "add_androidpush.provider", "fcm"),
    ("add_androidpush", ("tok", "fcm", 5), "add_androidpush.bundle_id", "non-empty"),
    ("remove_androidpush", (None,), "remove_androidpush", "non-empty"),
    ("add_iospush", ("tok", "fcm"), "add_iospush.provider", "apns"),
    ("remove_iospush", ("",), "remove_iospush", "non-empty"),
    ("add_webpush", ({},), "add_webpush", "non-empty object"),
    ("add_webpush", ({"endpoint": "x"}, "fcm"), "add_webpush.provider", "vapid"),
    ("remove_webpush", ("x",), "remove_webpush", "non-empty object"),
    ("add_slack", ({"email": "a@example.com"},), "add_slack", "access_token"),
    ("add_slack", ({"user_id": "X1", "access_token": "xoxb"},), "add_slack.user_id", "U or W"),
    ("remove_slack", ({},), "remove_slack", "non-empty object"),
    ("add_ms_teams", ({"tenant_id": "t"},), "add_ms_teams", "service_url"),
    ("remove_ms_teams", (None,), "remove_ms_teams", "non-empty object"),
]


@pytest.mark.parametrize(("method", "args", "path", "word"), BAD)
def test_bad_input_is_an_error_naming_the_call(
    method: str, args: tuple[Any, ...], path: str, word: str
) -> None:
    edit = UserEdit("u1")
    getattr(edit, method)(*args)
    assert [e.path for e in edit.errors] == [path]
    assert word in edit.errors[0].message
    assert not any(k for op in edit.operations for part in op.values() for k in part if k == "")
    with pytest.raises(SuprsendValidationError) as raised:
        edit.check()
    assert raised.value.errors == edit.errors
    assert edit.validate_body() == [str(e) for e in edit.errors]


def test_every_builder_method_has_a_bad_case() -> None:
    methods = {
        name
        for name, _ in inspect.getmembers(ProfileEdit, inspect.isfunction)
        if not name.startswith("_") and name not in {"check", "get_payload", "validate_body"}
    }
    assert methods == {m for m, *_ in BAD}


def test_good_input_builds_the_operations_the_api_takes() -> None:
    edit = UserEdit("u1")
    value = {"k": [1]}
    edit.set("obj", value)
    value["k"].append(2)  # the caller's later change does not reach the edit
    edit.set({"$timezone": "Asia/Kolkata", "$locale": "en-IN"})
    edit.increment({"a": 1, "b": -2.5})
    edit.add_slack(SLACK_OK)
    edit.add_ms_teams(TEAMS_OK)
    edit.remove_email("stored once, before the rules")  # removing checks only the type
    edit.unset("$email")
    assert edit.errors == []
    assert edit.operations == [
        {"$set": {"obj": {"k": [1]}}},
        {"$set": {"$timezone": "Asia/Kolkata", "$locale": "en-IN"}},
        {"$add": {"a": 1, "b": -2.5}},
        {"$append": {"$slack": SLACK_OK}},
        {"$append": {"$ms_teams": TEAMS_OK}},
        {"$remove": {"$email": "stored once, before the rules"}},
        {"$unset": ["$email"]},
    ]
    edit.check()


def test_errors_are_field_errors_and_good_calls_still_count() -> None:
    edit = UserEdit("u1")
    edit.set({"ok": 1, "$bad": 2})
    assert edit.errors == [
        FieldError("set.$bad", "keys starting with $ or ss_ are reserved by SuprSend")
    ]
    assert edit.operations == [{"$set": {"ok": 1}}]


def test_which_operations_are_not_idempotent() -> None:
    assert not non_idempotent([{"$set": {"a": 1}}, {"$unset": ["b"]}, {"$set_once": {"c": 1}}])
    for op in ("$append", "$add", "$remove"):
        assert non_idempotent([{"$set": {"a": 1}}, {op: {"x": 1}}])


def test_identity_event() -> None:
    edit = UserEdit("u1", "t1")
    edit.set("a", "ü")
    first, second = edit.identity_event("ws", "v"), edit.identity_event("ws", "v")
    assert first["$insert_id"] != second["$insert_id"]
    assert {k: first[k] for k in ("$schema", "env", "distinct_id", "tenant_id")} == {
        "$schema": "2",
        "env": "ws",
        "distinct_id": "u1",
        "tenant_id": "t1",
    }
    assert first["$user_operations"] == [{"$set": {"a": "ü"}}]
    assert identity_event_size({"a": "ü"}) == len('{"a": "ü"}'.encode())
