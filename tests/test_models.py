"""Validation of request bodies: every form the user guide shows, and every rule's error."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from suprsend_async import (
    AndroidPush,
    Delivery,
    LegacyUser,
    MsTeams,
    ObjectRecipient,
    Slack,
    SuprsendValidationError,
    User,
    Workflow,
    WorkflowBody,
    WorkflowTriggerBody,
    WorkflowTriggerRequest,
)
from suprsend_async._precheck import precheck
from suprsend_async._rules import FORMATS

# What a raw regular expression looks like in a message: anchors, classes, escapes, groups,
# repeats. Messages say what a valid value looks like instead.
REGEX_SYNTAX = re.compile(r"\^|\\[dDsSwWbB]|\[[^\]]*\]|\(\?|[\])][+*?]|\{\d+,\d*\}|\.[*+]|\$$")


def shows_no_pattern(message: str) -> bool:
    return REGEX_SYNTAX.search(message) is None


GUIDE_TRIGGER: dict[str, Any] = {
    "workflow": "_workflow_slug_",
    "actor": {
        "distinct_id": "0fxxx8f74-xxxx-41c5-8752-xxxcb6911fb08",
        "name": "actor_1",
        "$skip_create": True,
    },
    "recipients": [
        {
            "distinct_id": "0gxxx9f14-xxxx-23c5-1902-xxxcb6912ab09",
            "$email": ["abc@example.com"],
            "name": "recipient_1",
            "$preferred_language": "en",
            "$timezone": "America/New_York",
            "$skip_create": True,
        },
        {"object_type": "teams", "id": "finance", "$skip_create": True},
    ],
    "data": {"first_name": "User", "invoice_amount": "$5000", "invoice_id": "Invoice-1234"},
}

CHANNELS: dict[str, Any] = {
    "$email": ["user@example.com"],
    "$whatsapp": ["+15555555555"],
    "$sms": ["+15555555555"],
    "$androidpush": [{"token": "__android_push_token__", "provider": "fcm", "device_id": ""}],
    "$iospush": [{"token": "__ios_push_token__", "provider": "apns", "device_id": ""}],
    "$webpush": [{"endpoint": "https://push.example/1", "keys": {"p256dh": "k", "auth": "a"}}],
    "$inbox": ["inbox-id"],
    "$messenger": "messenger-id",
}

SLACK_FORMS = [
    {"email": "user@example.com", "access_token": "xoxb-XXXXXXXX"},
    {"user_id": "UXXXXXXXX", "access_token": "xoxb-XXXXXX"},
    {"user_id": "WXXXXXXXX", "access_token": "xoxb-XXXXXX"},
    {"channel": "CXXXXXXXX", "access_token": "xoxb-XXXXXX"},
    {"channel_id": "CXXXXXXXX", "access_token": "xoxb-XXXXXX"},
    {"incoming_webhook": {"url": "https://hooks.slack.com/services/TXXXX/BXXXX/XXXXXXX"}},
]

TEAMS_FORMS = [
    {
        "tenant_id": "c1981ab2-9aaf-xxxx-xxxx",
        "service_url": "https://smba.trafficmanager.net/amer",
        "conversation_id": "19:c1524d7c-a06f-456f-8abe-xxxx",
    },
    {
        "tenant_id": "c1981ab2-9aaf-xxxx-xxxx",
        "service_url": "https://smba.trafficmanager.net/amer",
        "user_id": "29:1nsLcmJ2RKtYH6Cxxxx-xxxx",
    },
    {"incoming_webhook": {"url": "https://wnk1z.webhook.office.com/webhookb2/XXXXXXXXX"}},
]


def errors_of(body: Any, **kw: Any) -> list[str]:
    with pytest.raises(SuprsendValidationError) as info:
        WorkflowTriggerRequest(body, **kw).prepare()
    assert "Traceback" not in str(info.value)
    return [str(e) for e in info.value.errors]


def test_guide_sample_payload_is_valid_and_sent_as_given() -> None:
    original = copy.deepcopy(GUIDE_TRIGGER)
    req = WorkflowTriggerRequest(
        GUIDE_TRIGGER, tenant_id="tenant_id1", idempotency_key="_unique_identifier_of_the_request_"
    )
    prepared = req.prepare()
    sent = json.loads(prepared.content)
    assert original == GUIDE_TRIGGER  # the caller's dict is untouched
    assert sent["tenant_id"] == "tenant_id1"
    assert sent["$idempotency_key"] == "_unique_identifier_of_the_request_"
    assert sent["recipients"] == GUIDE_TRIGGER["recipients"]
    assert sent["actor"] == GUIDE_TRIGGER["actor"]
    # The apparent-size rule, whatever separators the bytes on the wire use.
    assert prepared.exact_size() == len(json.dumps(sent, ensure_ascii=False).encode()) + 200


@pytest.mark.parametrize("form", ["distinct_ids", "inline"])
def test_multiple_recipients_forms(form: str) -> None:
    recipients: list[Any] = (
        ["id1", "id2"]
        if form == "distinct_ids"
        else [
            {"distinct_id": "id1", "$email": ["id1@example.com"], "name": "recipient_1"},
            {"distinct_id": "id1", "$email": ["id2@example.com"], "name": "recipient_2"},
        ]
    )
    WorkflowTriggerRequest({"workflow": "w", "recipients": recipients}).prepare()


def test_full_recipient_object_with_channels_and_custom_props() -> None:
    recipient = {
        "distinct_id": "0gxxx9f14",
        "$email": ["abc@example.com"],
        "$channels": ["email", "inbox"],
        "user_prop1": "value_1",
        "$preferred_language": "en",
        "$timezone": "America/New_York",
        **CHANNELS,
        "$slack": SLACK_FORMS,
        "$ms_teams": TEAMS_FORMS,
    }
    sent = json.loads(
        WorkflowTriggerRequest({"workflow": "w", "recipients": [recipient]}).prepare().content
    )
    assert sent["recipients"][0] == recipient


@pytest.mark.parametrize("form", SLACK_FORMS)
def test_each_slack_form_alone(form: dict[str, Any]) -> None:
    body = {"workflow": "w", "recipients": [{"distinct_id": "u", "$slack": form}]}
    sent = json.loads(WorkflowTriggerRequest(body).prepare().content)
    assert sent["recipients"][0]["$slack"] == form  # spelling kept (channel vs channel_id)


@pytest.mark.parametrize("form", TEAMS_FORMS)
def test_each_ms_teams_form_alone(form: dict[str, Any]) -> None:
    WorkflowTriggerRequest(
        {"workflow": "w", "recipients": [{"distinct_id": "u", "$ms_teams": [form]}]}
    ).prepare()


def test_anonymous_actor_and_recipient() -> None:
    body = {
        "workflow": "_workflow_slug_",
        "actor": {"is_transient": True, "name": "actor_1"},
        "recipients": [{"is_transient": True, "$email": ["abc@example.com"], "name": "r"}],
        "data": {"first_name": "User"},
    }
    WorkflowTriggerRequest(body, tenant_id="tenant_id1", idempotency_key="k").prepare()


def test_actor_as_string() -> None:
    WorkflowTriggerRequest({"workflow": "w", "recipients": ["a"], "actor": "actor-1"}).prepare()


def test_every_problem_is_listed_by_path() -> None:
    body = {
        "workflow": "",
        "recipients": [
            "ok",
            {
                "distinct_id": "x",
                "$sms": ["5555"],
                "$email": "not-an-email",
                "$timezone": "Mars/Olympus",
                "$preferred_language": "english",
                "$channels": ["pigeon"],
            },
            5,
            {"name": "no id"},
            "",
        ],
        "actor": 3,
        "unknown_key": 1,
    }
    errors = errors_of(body)
    assert "workflow: must not be empty" in errors
    assert (
        "recipients[1].$sms[0]: must start with +<country code> followed by the number, e.g. +15555550123"
        in errors
    )
    assert "recipients[1].$email[0]: must be an e-mail address like name@example.com" in errors
    assert any(e.startswith("recipients[1].$timezone: must be an IANA") for e in errors)
    assert any(
        e.startswith("recipients[1].$preferred_language: must be a two-letter") for e in errors
    )
    assert any(e.startswith("recipients[1].$channels[0]: must be one of") for e in errors)
    assert (
        "recipients[2]: must be a distinct_id string, a user object or an object recipient"
        in errors
    )
    assert "recipients[3]: distinct_id is required unless is_transient is true" in errors
    assert "recipients[4]: must not be empty" in errors
    assert "actor: must be a distinct_id string or a user object" in errors
    assert "unknown_key: is not a field the API accepts" in errors


def test_error_message_lists_problems_one_per_line() -> None:
    with pytest.raises(ValueError, match=r"recipients: must have at least 1 item"):
        WorkflowTriggerRequest({"workflow": "w", "recipients": []}).prepare()


def test_recipient_limit() -> None:
    body = {"workflow": "w", "recipients": [f"u{i}" for i in range(101)]}
    assert errors_of(body) == ["recipients: must have at most 100 items (got 101)"]
    body["recipients"] = body["recipients"][:100]
    WorkflowTriggerRequest(body).prepare()


def test_channel_value_limits() -> None:
    emails = [f"a{i}@example.com" for i in range(11)]
    errors = errors_of({"workflow": "w", "recipients": [{"distinct_id": "u", "$email": emails}]})
    assert errors == ["recipients[0].$email: must have at most 10 items (got 11)"]
    errors = errors_of({"workflow": "w", "recipients": [{"distinct_id": "u", "$email": []}]})
    assert errors == ["recipients[0].$email: must have at least 1 item"]


@pytest.mark.parametrize(
    ("slack", "message"),
    [
        ({"channel": "C1"}, "access_token (starting with xox) is required"),
        (
            {"user_id": "X123", "access_token": "xoxb-1"},
            "user_id: must be a Slack member id: U or W followed by letters and digits only,"
            " e.g. U01ABCD2EFG",
        ),
        (
            {"user_id": "U/WXXXXXXXX", "access_token": "xoxb-1"},  # the user guide's placeholder
            "user_id: must be a Slack member id",
        ),
        (
            {"channel": "#general", "access_token": "xoxb-1"},
            "channel: must be a Slack channel id: C followed by letters and digits only,"
            " e.g. C01ABCD2EFG",
        ),
        ({"channel_id": "D1", "access_token": "xoxb-1"}, "channel_id: must be a Slack channel id"),
        ({"email": "a@b.c", "user_id": "U1", "access_token": "xoxb-1"}, "needs exactly one of"),
        ({"incoming_webhook": {"url": "https://evil.example/"}}, "hooks.slack.com"),
        (
            {"incoming_webhook": {"url": "https://hooks.slack.com/x"}, "access_token": "xoxb"},
            "incoming_webhook cannot be combined with other Slack keys",
        ),
        (
            {"access_token": "bad", "email": "a@b.c"},
            "access_token: must be a Slack access token, which starts with xox",
        ),
        ({"email": "a@b.c", "access_token": "xoxb", "extra": 1}, "is not a field"),
    ],
)
def test_slack_rules(slack: dict[str, Any], message: str) -> None:
    errors = errors_of({"workflow": "w", "recipients": [{"distinct_id": "u", "$slack": slack}]})
    assert any(message in e and e.startswith("recipients[0].$slack[0]") for e in errors), errors


@pytest.mark.parametrize(
    ("teams", "message"),
    [
        ({"tenant_id": "t", "service_url": "https://smba.trafficmanager.net/x"}, "exactly one of"),
        (
            {"tenant_id": "t", "service_url": "https://x.example/", "user_id": "u"},
            "service_url: must start with https://smba.trafficmanager.net/, e.g.",
        ),
        ({"user_id": "u"}, "needs tenant_id and service_url"),
        ({"incoming_webhook": {"url": "https://x"}, "tenant_id": "t"}, "cannot be combined"),
    ],
)
def test_ms_teams_rules(teams: dict[str, Any], message: str) -> None:
    errors = errors_of({"workflow": "w", "recipients": [{"distinct_id": "u", "$ms_teams": teams}]})
    assert any(message in e for e in errors), errors


def test_push_rules() -> None:
    errors = errors_of(
        {
            "workflow": "w",
            "recipients": [
                {
                    "distinct_id": "u",
                    "$androidpush": {"token": "t", "provider": "apns"},
                    "$iospush": {"token": "", "provider": "apns"},
                    "$webpush": {},
                }
            ],
        }
    )
    assert any(
        e.startswith("recipients[0].$androidpush[0].provider: must be one of") for e in errors
    )
    assert "recipients[0].$iospush[0].token: must not be empty" in errors
    assert "recipients[0].$webpush[0]: must be a non-empty object" in errors


def test_strict_types_are_not_coerced() -> None:
    errors = errors_of(
        {"workflow": "w", "recipients": [{"distinct_id": "u", "$skip_create": "yes"}]}
    )
    assert errors == ["recipients[0].$skip_create: must be true or false"]
    assert errors_of({"workflow": 5, "recipients": ["u"]}) == ["workflow: must be a string"]


def test_custom_property_named_like_a_channel_is_not_the_channel() -> None:
    body = {"workflow": "w", "recipients": [{"distinct_id": "u", "email": "", "sms": 5}]}
    sent = json.loads(WorkflowTriggerRequest(body).prepare().content)
    assert sent["recipients"][0] == {"distinct_id": "u", "email": "", "sms": 5}


def test_idempotency_key_trimmed_and_limited() -> None:
    prepared = WorkflowTriggerRequest(
        {"workflow": "w", "recipients": ["u"]}, idempotency_key="  k1  "
    ).prepare()
    assert prepared.idempotency_key == "k1"
    assert json.loads(prepared.content)["$idempotency_key"] == "k1"
    # 255 characters plus surrounding spaces is fine; 256 is not.
    WorkflowTriggerRequest(
        {"workflow": "w", "recipients": ["u"]}, idempotency_key=" " + "k" * 255 + " "
    ).prepare()
    errors = errors_of({"workflow": "w", "recipients": ["u"]}, idempotency_key="k" * 256)
    assert errors == [
        "$idempotency_key: must be at most 255 characters after trimming spaces (got 256)"
    ]
    assert errors_of({"workflow": "w", "recipients": ["u"], "$idempotency_key": "  "}) == [
        "$idempotency_key: must not be empty or only spaces"
    ]


def test_tenant_and_cancellation_limits() -> None:
    errors = errors_of(
        {"workflow": "w", "recipients": ["u"]}, tenant_id="t" * 65, cancellation_key="c" * 256
    )
    assert "tenant_id: must be at most 64 characters long" in errors
    assert "cancellation_key: must be at most 255 characters long" in errors
    sent = json.loads(
        WorkflowTriggerRequest(
            {"workflow": "w", "recipients": ["u"]}, tenant_id="t" * 64, cancellation_key="c1"
        )
        .prepare()
        .content
    )
    assert sent["tenant_id"] == "t" * 64
    assert sent["cancellation_key"] == "c1"


def test_request_arguments_override_body_keys() -> None:
    body = {"workflow": "w", "recipients": ["u"], "tenant_id": "a", "$idempotency_key": "b"}
    sent = json.loads(
        WorkflowTriggerRequest(body, tenant_id="t2", idempotency_key="k2").prepare().content
    )
    assert (sent["tenant_id"], sent["$idempotency_key"]) == ("t2", "k2")
    assert body["tenant_id"] == "a"


def test_body_size_limit() -> None:
    big = "x" * (800 * 1024)
    errors = errors_of({"workflow": "w", "recipients": ["u"], "data": {"blob": big}})
    assert len(errors) == 1
    assert "apparent size" in errors[0]
    assert "819,200 bytes (800 KiB)" in errors[0]


def test_body_must_be_a_dict() -> None:
    assert errors_of(["not", "a", "dict"]) == ["body: must be a dict, not list"]


def test_typed_models_build_the_same_body() -> None:
    body = WorkflowTriggerBody(
        workflow="w",
        recipients=[
            User(
                distinct_id="u1",
                email="a@example.com",
                preferred_language="en",
                timezone="Europe/Paris",
                slack=Slack(channel="C123", access_token="xoxb-1"),
                androidpush=[AndroidPush(token="t", provider="fcm")],
                ms_teams=MsTeams(incoming_webhook={"url": "https://x.example/"}),
                plan="pro",
            ),
            ObjectRecipient(object_type="teams", id="finance"),
            "u2",
        ],
        data={"amount": 5},
        tenant_id="t1",
    )
    sent = json.loads(WorkflowTriggerRequest(body, idempotency_key="k").prepare().content)
    assert sent["recipients"][0] == {
        "$email": ["a@example.com"],
        "$androidpush": [{"token": "t", "provider": "fcm"}],
        "$slack": [{"channel": "C123", "access_token": "xoxb-1"}],
        "$ms_teams": [{"incoming_webhook": {"url": "https://x.example/"}}],
        "distinct_id": "u1",
        "$preferred_language": "en",
        "$timezone": "Europe/Paris",
        "plan": "pro",
    }
    assert sent["recipients"][1] == {"object_type": "teams", "id": "finance"}
    assert sent["tenant_id"] == "t1"


# -- legacy Workflow -------------------------------------------------------------------

LEGACY: dict[str, Any] = {
    "name": "workflow_name",
    "template": "template_slug",
    "notification_category": "transactional",
    "delay": "1d2h30m10s",
    "trigger_at": "2021-08-27T20:14:51.643Z",
    "users": [
        {
            "distinct_id": "distinct_id",
            "$channels": ["email"],
            **CHANNELS,
            "$slack": {"email": "user@example.com", "access_token": "xoxb-XXXXXXXX"},
            "$ms_teams": TEAMS_FORMS[0],
        }
    ],
    "delivery": {
        "smart": True,
        "success": "seen",
        "time_to_live": "1h",
        "mandatory_channels": ["email"],
    },
    "data": {"key": "value", "nested_key": {"nested_key1": "v", "nested_key2": {"k3": "v3"}}},
}


def test_legacy_guide_body() -> None:
    original = copy.deepcopy(LEGACY)
    wf = Workflow(body=LEGACY, idempotency_key="__uniq_request_id__", brand_id="default")
    sent = json.loads(wf.prepare().content)
    assert original == LEGACY
    assert sent["brand_id"] == "default"
    assert sent["$idempotency_key"] == "__uniq_request_id__"
    assert sent["users"] == LEGACY["users"]


@pytest.mark.parametrize("delay", ["1d", "2h30m", "10s", "1d2h30m10s", 0, 3600])
def test_legacy_delay_forms(delay: Any) -> None:
    Workflow({**LEGACY, "delay": delay}).prepare()


@pytest.mark.parametrize("delay", ["", "1x", "h1", "1d\n", -1, 1.5, True])
def test_legacy_bad_delay(delay: Any) -> None:
    with pytest.raises(SuprsendValidationError) as info:
        Workflow({**LEGACY, "delay": delay}).prepare()
    assert all(e.path == "delay" for e in info.value.errors)


def test_legacy_rules() -> None:
    body = {
        "name": "w",
        "template": "t",
        "notification_category": "marketing",
        "users": [{"$email": "a@example.com"}],
        "trigger_at": "next tuesday",
        "delivery": {"smart": "yes", "bogus": 1},
    }
    with pytest.raises(SuprsendValidationError) as info:
        Workflow(body, brand_id="b" * 65).prepare()
    errors = [str(e) for e in info.value.errors]
    assert "name: must be at least 2 characters long" in errors
    assert "template: must be at least 2 characters long" in errors
    assert any(e.startswith("notification_category: must be one of") for e in errors)
    assert "users[0].distinct_id: is required" in errors
    assert any(e.startswith("trigger_at: must be an ISO 8601") for e in errors)
    assert "delivery.smart: must be true or false" in errors
    assert "delivery.bogus: is not a field the API accepts" in errors
    assert "brand_id: must be at most 64 characters long" in errors


def test_legacy_push_tokens_may_be_strings_and_typed_build() -> None:
    body = WorkflowBody(
        name="wf",
        template="tpl",
        notification_category="system",
        users=[LegacyUser(distinct_id="u", androidpush=["tok"], iospush="tok2")],
        delivery=Delivery(smart=False, success="seen"),
        delay=30,
    )
    sent = json.loads(Workflow(body).prepare().content)
    assert sent["users"][0]["$androidpush"] == ["tok"]
    assert sent["delivery"] == {"smart": False, "success": "seen"}


def test_get_final_json_does_not_invent_a_key() -> None:
    final = Workflow(LEGACY).get_final_json()
    assert "$idempotency_key" not in final
    assert final["data"] == LEGACY["data"]


def test_repr_shows_no_body() -> None:
    r = repr(WorkflowTriggerRequest(GUIDE_TRIGGER, tenant_id="t"))
    assert "abc@example.com" not in r
    assert "_workflow_slug_" in r


@pytest.mark.parametrize("phone", ["+15555555555\n", "+1555\n5555"])
def test_phone_with_a_newline_is_refused(phone: str) -> None:
    body = {"workflow": "w", "recipients": [{"distinct_id": "u", "$sms": phone}]}
    assert errors_of(body) == [
        "recipients[0].$sms[0]: must start with +<country code> followed by the number, e.g. +15555550123"
    ]


@pytest.mark.parametrize("zone", ["America", "Europe/", "../etc/passwd", "Europe/Nowhere"])
def test_a_timezone_that_is_not_a_zone_is_a_validation_error(zone: str) -> None:
    body = {"workflow": "w", "recipients": [{"distinct_id": "u", "$timezone": zone}]}
    assert errors_of(body) == [
        f"recipients[0].$timezone: must be an IANA time zone name like 'America/New_York',"
        f" not '{zone}'"
    ]


# -- formats: clear errors, and the same verdicts from the pre-check ------------------------


def recipient_with(key: str, value: Any) -> dict[str, Any]:
    return {"workflow": "w", "recipients": [{"distinct_id": "u", key: value}]}


# Per format check: where its value goes in a body, values it takes, values it refuses.
FORMAT_CASES: dict[str, tuple[Callable[[str], dict[str, Any]], list[str], list[str]]] = {
    "check_email": (
        lambda v: recipient_with("$email", v),
        ["a@example.com", "x.y+z@sub.example.io"],
        ["bad", "a b@c.d", "@c.d", "a@", "a@b c", ""],
    ),
    "check_phone": (
        lambda v: recipient_with("$sms", v),
        ["+15555550123", "+44 20 7946 0958", "+1(555)-0100"],
        ["5555", "+", "15555550123", "+1555\n5555", "+15555555555\n", "+1", "+a5555555"],
    ),
    "check_locale": (
        lambda v: recipient_with("$locale", v),
        ["en", "en-US", "pt_BR", "zh-Hant-TW"],
        ["english", "e", "en-", "en US", "en-US\n", "12-US"],
    ),
    "check_slack_member_id": (
        lambda v: recipient_with("$slack", {"user_id": v, "access_token": "xoxb-1"}),
        ["U01ABCD2EFG", "WXXXXXXXX"],
        ["U/WXXXXXXXX", "X123", "U", "U12 3", "U1\n", "U-1"],
    ),
    "check_slack_channel_id": (
        lambda v: recipient_with("$slack", {"channel": v, "access_token": "xoxb-1"}),
        ["C01ABCD2EFG", "CXXXXXXXX"],
        ["#general", "D1", "C", "C-1", "C1\n"],
    ),
    "check_slack_access_token": (
        lambda v: recipient_with("$slack", {"email": "a@b.c", "access_token": v}),
        ["xoxb-1", "xoxp-XXXXXX", "xox"],
        ["bad", "xo", " xoxb-1", "XOXB-1", ""],
    ),
    "check_teams_service_url": (
        lambda v: recipient_with(
            "$ms_teams", {"tenant_id": "t", "service_url": v, "user_id": "29:u"}
        ),
        ["https://smba.trafficmanager.net/amer/", "https://smba.trafficmanager.net/"],
        [
            "http://smba.trafficmanager.net/amer/",
            "https://smba.trafficmanager.netx/",
            "https://smbaxtrafficmanager.net/",
            "https://example.com/",
        ],
    ),
}


def test_every_format_has_its_cases() -> None:
    assert set(FORMAT_CASES) == {check.__name__ for check in FORMATS}


@pytest.mark.parametrize(
    ("check", "value", "valid"),
    [
        (check, value, valid)
        for check, (_, good, bad) in FORMAT_CASES.items()
        for valid, values in ((True, good), (False, bad))
        for value in values
    ],
)
def test_formats_take_and_refuse_alike_in_the_models_and_the_precheck(
    check: str, value: str, valid: bool
) -> None:
    body = FORMAT_CASES[check][0](value)
    assert precheck(WorkflowTriggerBody).accepts(body) is valid
    if valid:
        WorkflowTriggerRequest(body).prepare()
        return
    (error,) = errors_of(body)
    message = error.split(": ", 1)[1]
    assert "e.g." in message or "like" in message, message  # says what a valid value looks like
    assert shows_no_pattern(message), message


def test_the_guide_slack_placeholder_gets_a_clear_error() -> None:
    body = recipient_with("$slack", {"user_id": "U/WXXXXXXXX", "access_token": "xoxb-XXXXXX"})
    assert errors_of(body) == [
        "recipients[0].$slack[0].user_id: must be a Slack member id: U or W followed by letters"
        " and digits only, e.g. U01ABCD2EFG"
    ]


def schema_patterns(schema: Any) -> list[str]:
    if isinstance(schema, dict):
        own = [schema["pattern"]] if isinstance(schema.get("pattern"), str) else []
        return own + [p for v in schema.values() for p in schema_patterns(v)]
    if isinstance(schema, list):
        return [p for v in schema for p in schema_patterns(v)]
    return []


@pytest.mark.parametrize("model", [WorkflowTriggerBody, WorkflowBody])
def test_no_field_uses_a_pydantic_pattern(model: Any) -> None:
    """A ``Field(pattern=...)`` error shows the raw expression; formats are checks instead."""
    model.model_rebuild()
    assert schema_patterns(model.__pydantic_core_schema__) == []
    assert schema_patterns({"a": [{"pattern": "^x"}]}) == ["^x"]  # the walk finds one


@pytest.mark.parametrize(
    "message",
    [
        "must match the pattern ^xox",
        "must match [A-Z0-9]{8,}",
        "must match \\d+",
        "must match (?:a|b)",
        "must match a.*",
        "ends with x$",
    ],
)
def test_the_pattern_detector_sees_regex_syntax(message: str) -> None:
    assert not shows_no_pattern(message)


def test_the_pattern_detector_lets_plain_messages_through() -> None:
    for message in (
        "must start with +<country code> followed by the number, e.g. +15555550123",
        "must be one of 'fcm', 'xiaomi' or 'oppo'",
        "must be at most 10 items (got 11)",
    ):
        assert shows_no_pattern(message)


def test_model_instances_take_the_form_their_fields_say() -> None:
    """A model given as a recipient or actor is read by its fields, as a dict by its keys."""
    team = ObjectRecipient(object_type="teams", id="finance")
    legacy = LegacyUser(distinct_id="u9")
    sent = json.loads(
        WorkflowTriggerRequest({"workflow": "w", "recipients": [team, legacy], "actor": legacy})
        .prepare()
        .content
    )
    assert sent["recipients"] == [{"object_type": "teams", "id": "finance"}, {"distinct_id": "u9"}]
    slack = Slack(channel="C123", access_token="xoxb-1")
    assert errors_of({"workflow": "w", "recipients": [slack], "actor": team}) == [
        "recipients[0]: must be a distinct_id string, a user object or an object recipient",
        "actor: must be a distinct_id string or a user object",
    ]


def test_legacy_trigger_at_may_be_a_datetime_in_typed_code() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    body = WorkflowBody(
        name="wf",
        template="tpl",
        notification_category="system",
        users=[LegacyUser(distinct_id="u")],
        trigger_at=at,
    )
    assert body.trigger_at == at
    assert json.loads(Workflow(body).prepare().content)["trigger_at"] == "2026-01-02T03:04:05+00:00"
