"""Fuzzing: any body gives a prepared request or the SDK's validation error, never another
exception; and the official SDK's published JSON schemas (an independent oracle) accept every
body the SDK accepts, except for the one documented case where the SDK follows the user guide.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from importlib.resources import files
from typing import Any
from unittest import mock

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from suprsend_async import Event, SuprsendValidationError, Workflow, WorkflowTriggerRequest
from suprsend_async._models import EventBody, WorkflowBody, WorkflowTriggerBody
from suprsend_async._precheck import precheck
from suprsend_async._prepared import prepare_plain

from .test_models import shows_no_pattern

SCHEMAS = files("suprsend") / "request_json"
TRIGGER_SCHEMA = jsonschema.Draft7Validator(
    json.loads((SCHEMAS / "workflow_trigger.json").read_text())
)
LEGACY_SCHEMA = jsonschema.Draft7Validator(json.loads((SCHEMAS / "workflow.json").read_text()))

json_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True),
    st.text(max_size=8),
)
json_value = st.recursive(
    json_scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Well-formed values nineteen times in twenty, anything at all otherwise: enough junk to
    probe every rule, little enough that many whole bodies are valid and reach the oracle."""
    return st.integers(0, 19).flatmap(lambda n: json_value if n == 0 else valid)


def mostly(good: list[Any], bad: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(good * 15 + bad)


emails = mostly(["a@example.com", "x.y@z.io"], ["bad", "", "a b@c.d"])
phones = mostly(["+15555555555", "+44 20 7946 0958", "+1(555)-0100"], ["5555", "+"])
push = st.fixed_dictionaries(
    {"token": mostly(["tok"], [""]), "provider": mostly(["fcm", "xiaomi", "oppo"], ["apns", "x"])},
    optional={"device_id": st.sampled_from(["d1", ""]), "bundle_id": st.just("b")},
)
ios = st.fixed_dictionaries(
    {"token": mostly(["tok"], [""]), "provider": mostly(["apns"], ["fcm"])},
    optional={"device_id": st.just("d")},
)
slack = st.one_of(
    st.fixed_dictionaries({"email": emails, "access_token": mostly(["xoxb-1"], ["bad", "xo"])}),
    st.fixed_dictionaries(
        {
            "user_id": mostly(["U123", "W9"], ["X1", "U/WXXXXXXXX", "U"]),
            "access_token": st.just("xoxp-2"),
        }
    ),
    st.fixed_dictionaries(
        {
            "channel_id": mostly(["C123", "CXXXXXXXX"], ["D1", "#general", "C-1"]),
            "access_token": st.just("xoxb-3"),
        }
    ),
    st.fixed_dictionaries(
        {
            "incoming_webhook": st.fixed_dictionaries(
                {"url": mostly(["https://hooks.slack.com/x"], ["https://evil"])}
            )
        }
    ),
)
teams = st.one_of(
    st.fixed_dictionaries(
        {
            "tenant_id": st.just("t"),
            "service_url": mostly(
                ["https://smba.trafficmanager.net/amer"],
                ["http://x", "https://smbaxtrafficmanager.net/"],
            ),
        },
        optional={"conversation_id": st.just("19:c"), "user_id": st.just("29:u")},
    ),
    st.fixed_dictionaries(
        {
            "incoming_webhook": st.fixed_dictionaries(
                {"url": st.just("https://x.webhook.office.com/y")}
            )
        }
    ),
)


def one_or_list(s: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(s, st.lists(s, min_size=1, max_size=3), st.lists(s, max_size=0))


channels = {
    "$email": maybe(one_or_list(emails)),
    "$sms": maybe(one_or_list(phones)),
    "$whatsapp": maybe(one_or_list(phones)),
    "$androidpush": maybe(one_or_list(push)),
    "$iospush": maybe(one_or_list(ios)),
    "$slack": maybe(one_or_list(slack)),
    "$ms_teams": maybe(one_or_list(teams)),
    "$webpush": maybe(
        one_or_list(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2))
    ),
    "$inbox": maybe(one_or_list(mostly(["i1"], [""]))),
    "$messenger": maybe(one_or_list(mostly(["m1"], [""]))),
}
user_keys = {
    "is_transient": maybe(st.booleans()),
    "$skip_create": maybe(st.booleans()),
    "$preferred_language": maybe(mostly(["en", "fr"], ["xx", "EN", "english"])),
    "$locale": maybe(mostly(["en-US", "pt_BR"], ["e"])),
    "$timezone": maybe(mostly(["America/New_York", "UTC"], ["Mars/Base", ""])),
    "$channels": maybe(st.lists(mostly(["email", "sms", "inbox"], ["fax"]), max_size=3)),
    "name": json_value,
    **channels,
}
users = st.fixed_dictionaries(
    {"distinct_id": maybe(mostly(["u1", "user-2"], [""]))}, optional=user_keys
)
objects = st.fixed_dictionaries(
    {"object_type": maybe(mostly(["teams"], [""])), "id": maybe(mostly(["finance"], [""]))},
    optional={"$skip_create": maybe(st.booleans()), "$email": maybe(one_or_list(emails))},
)
recipient = st.one_of(
    mostly(["u1"], [""]),
    users,
    objects,
    st.integers(0, 9).flatmap(lambda n: json_scalar if n == 0 else users),
)
data = st.dictionaries(st.text(max_size=6), json_value, max_size=4)

trigger_bodies = st.fixed_dictionaries(
    {
        "workflow": maybe(mostly(["wf"], [""])),
        "recipients": maybe(st.lists(recipient, min_size=1, max_size=4)),
    },
    optional={
        "actor": maybe(st.one_of(mostly(["a1"], [""]), users)),
        "data": maybe(data),
        "tenant_id": maybe(st.text(max_size=66)),
        "$idempotency_key": maybe(st.text(max_size=10)),
        "cancellation_key": maybe(st.text(max_size=10)),
        "metadata": maybe(data),
    },
)
# Now and then a key the API does not know.
trigger_bodies = st.tuples(trigger_bodies, st.integers(0, 9), json_value).map(
    lambda t: {**t[0], "unexpected": t[2]} if t[1] == 0 else t[0]
)
legacy_bodies = st.fixed_dictionaries(
    {
        "name": maybe(mostly(["wf"], ["w"])),
        "template": maybe(mostly(["tpl"], ["t"])),
        "notification_category": maybe(mostly(["system", "transactional", "promotional"], ["x"])),
        "users": maybe(st.lists(users, min_size=1, max_size=3)),
    },
    optional={
        "data": maybe(data),
        "delay": maybe(st.one_of(mostly(["1d2h", "30m"], ["x", ""]), st.integers(-5, 10**5))),
        "trigger_at": maybe(mostly(["2021-08-27T20:14:51.643Z", "2026-01-01"], ["soon"])),
        "delivery": maybe(
            st.fixed_dictionaries(
                {},
                optional={
                    "smart": maybe(st.booleans()),
                    "success": maybe(mostly(["seen"], [""])),
                    "time_to_live": maybe(mostly(["1h"], ["x"])),
                    "mandatory_channels": maybe(st.lists(mostly(["email"], ["fax"]), max_size=2)),
                },
            )
        ),
        "brand_id": maybe(st.text(max_size=66)),
    },
)

STRESS = settings.get_current_profile_name() == "stress"  # nox -s stress
FUZZ = settings(
    max_examples=5000 if STRESS else 400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(has_nan(v) for v in value.values())
    if isinstance(value, list):
        return any(has_nan(v) for v in value)
    return False


def check_against_oracle(
    make: type[WorkflowTriggerRequest] | type[Workflow], oracle: Any, body: dict[str, Any]
) -> None:
    """Either the SDK's validation error, or a body the official schema accepts too."""
    try:
        prepared = make(body).prepare()
    except SuprsendValidationError as exc:
        assert exc.errors and "Traceback" not in str(exc)  # noqa: PT017 - either outcome is fine
        return
    assert not has_nan(body.get("data"))
    sent = json.loads(prepared.content)
    errors = sorted(oracle.iter_errors(sent), key=str)
    assert not errors, f"the SDK accepted what the official schema refuses: {errors[0].message}"


@FUZZ
@given(trigger_bodies)
def test_trigger_bodies_fuzzed(body: dict[str, Any]) -> None:
    check_against_oracle(WorkflowTriggerRequest, TRIGGER_SCHEMA, body)


@FUZZ
@given(
    st.one_of(
        trigger_bodies.map(lambda b: (WorkflowTriggerRequest, b)),
        legacy_bodies.map(lambda b: (Workflow, b)),
    )
)
def test_error_messages_never_show_a_pattern(
    case: tuple[type[WorkflowTriggerRequest] | type[Workflow], dict[str, Any]],
) -> None:
    """Every message for a refused value says what is wanted, in words (never a raw regex)."""
    make, body = case
    try:
        make(body).prepare()
    except SuprsendValidationError as exc:
        for error in exc.errors:
            assert shows_no_pattern(error.message), str(error)


@FUZZ
@given(legacy_bodies)
def test_legacy_bodies_fuzzed(body: dict[str, Any]) -> None:
    check_against_oracle(Workflow, LEGACY_SCHEMA, body)


def test_the_documented_exception_slack_channel() -> None:
    """The guide writes the Slack channel form as ``channel``; the official schema knows only
    ``channel_id``. The SDK accepts both (docs/behaviour.md) and sends what the caller wrote."""
    body = {
        "workflow": "w",
        "recipients": [
            {"distinct_id": "u", "$slack": {"channel": "C123", "access_token": "xoxb-1"}}
        ],
    }
    sent = json.loads(WorkflowTriggerRequest(body).prepare().content)
    assert list(TRIGGER_SCHEMA.iter_errors(sent))  # the oracle refuses it...
    body["recipients"][0]["$slack"] = {"channel_id": "C123", "access_token": "xoxb-1"}  # type: ignore[index]
    sent = json.loads(WorkflowTriggerRequest(body).prepare().content)
    assert not list(TRIGGER_SCHEMA.iter_errors(sent))  # ...and accepts the other spelling


@pytest.mark.parametrize(
    "bad",
    [
        {"workflow": "w", "recipients": [{"distinct_id": "u", "$email": None}]},
        {"workflow": "w", "recipients": ["u"], "actor": None},
        {"workflow": "w", "recipients": ["u"], "metadata": None},
        {
            "workflow": "w",
            "recipients": [{"distinct_id": "u", "$slack": {"email": None, "access_token": "xoxb"}}],
        },
    ],
)
def test_explicit_nulls_refused_like_the_oracle(bad: dict[str, Any]) -> None:
    with pytest.raises(SuprsendValidationError, match="must not be null"):
        WorkflowTriggerRequest(bad).prepare()


def model_accepts(model: Any, body: dict[str, Any]) -> bool:
    try:
        model.__pydantic_validator__.validate_python(body, by_alias=True, by_name=False)
    except ValidationError:
        return False
    return True


@FUZZ
@given(
    st.one_of(
        trigger_bodies.map(lambda b: (WorkflowTriggerBody, b)),
        legacy_bodies.map(lambda b: (WorkflowBody, b)),
    )
)
def test_precheck_agrees_with_the_models(case: tuple[Any, dict[str, Any]]) -> None:
    """The quick pre-check says yes exactly when the models do and the body is plain JSON.

    (It may refuse more, for shapes such as tuples or model instances inside a dict, which the
    models then validate; it must never accept what the models refuse.)"""
    model, body = case
    assert precheck(model).accepts(body) == (model_accepts(model, body) and is_plain(body))


def is_plain(value: Any) -> bool:
    """The JSON the fast encoder writes exactly as json.dumps does (see _precheck)."""
    if type(value) is float:
        return math.isfinite(value) and (value == 0 or abs(value) >= 1e-4)
    if type(value) in (str, int, bool) or value is None:
        return True
    if type(value) is list:
        return all(is_plain(v) for v in value)
    if type(value) is dict:
        return all(type(k) is str and is_plain(v) for k, v in value.items())
    return False


_SLACK = {"email": "a@example.com", "access_token": "xoxb-1"}
_TEAMS = {"tenant_id": "t", "service_url": "https://smba.trafficmanager.net/x", "user_id": "29:u"}
_USER: dict[str, Any] = {
    "distinct_id": "u1",
    "$email": ["a@example.com"],
    "$sms": "+15555555555",
    "$locale": "en-US",
    "$slack": _SLACK,
    "$ms_teams": [_TEAMS],
    "$androidpush": {"token": "t", "provider": "fcm"},
}
# One change at a time to a valid user, touching each rule the pre-check rewrites.
_USER_CHANGES: list[dict[str, Any]] = [
    {},
    {"$email": "bad"},
    {"$email": "a b@c.d"},
    {"$email": "@c.d"},
    {"$email": "a@"},
    {"$email": "a@b@c"},
    {"$email": ["a@example.com"] * 11},
    {"$email": []},
    {"$email": None},
    {"$email": ("a@example.com",)},
    {"$sms": "5555"},
    {"$sms": "+15555555555\n"},
    {"$locale": "english"},
    {"$locale": "en_GB"},
    {"$slack": {**_SLACK, "user_id": "U1"}},
    {"$slack": {"incoming_webhook": {"url": "https://hooks.slack.com/x"}}},
    {"$slack": {"incoming_webhook": {"url": "https://example.com/x"}}},
    {"$slack": {"channel": "C1"}},
    {"$slack": {"user_id": "U/WXXXXXXXX", "access_token": "xoxb-1"}},
    {"$slack": {"user_id": "W01ABCD2EFG", "access_token": "xoxb-1"}},
    {"$slack": {"channel_id": "#general", "access_token": "xoxb-1"}},
    {"$slack": {"channel": "C01ABCD2EFG", "access_token": "xoxb-1"}},
    {"$slack": {**_SLACK, "access_token": "bad"}},
    {"$ms_teams": {**_TEAMS, "service_url": "https://smbaxtrafficmanager.net/x"}},
    {"$ms_teams": {**_TEAMS, "conversation_id": "19:c"}},
    {"$ms_teams": {"incoming_webhook": {"url": "https://x"}, "tenant_id": "t"}},
    {"$ms_teams": {"tenant_id": "t"}},
    {"distinct_id": None},
    {"distinct_id": None, "is_transient": True},
    {"$androidpush": {"token": "t", "provider": "apns"}},
    {"$androidpush": {"token": "t", "provider": "fcm", "extra": 1}},
    {"custom_property": {"any": ["thing"]}},
    {"email": "not-an-email"},  # a custom property: channels are read by wire name only
    {"timezone": "Mars/Olympus"},
    {"object_type": "team"},  # an object recipient, so the user keys do not fit it
]


@pytest.mark.parametrize("change", _USER_CHANGES)
def test_precheck_agrees_on_each_rule(change: dict[str, Any]) -> None:
    user = {k: v for k, v in {**_USER, **change}.items() if v is not None or k == "$email"}
    body = {"workflow": "w", "recipients": [user], "actor": user}
    model_says = model_accepts(WorkflowTriggerBody, body)
    if change == {"$email": ("a@example.com",)}:
        # Shapes only the models accept: the pre-check refuses them and the models decide.
        assert model_says
        assert not precheck(WorkflowTriggerBody).accepts(body)
        WorkflowTriggerRequest(body).prepare()
    else:
        assert precheck(WorkflowTriggerBody).accepts(body) == model_says


# -- events -------------------------------------------------------------------------------------

EVENT_SCHEMA = jsonschema.Draft7Validator(json.loads((SCHEMAS / "event.json").read_text()))
# The official schema wants ``env`` (the workspace key) of at least 20 characters, as real
# workspace keys are.
EVENT_ENV = "fuzz_workspace_key_0001"

event_names = mostly(
    ["signed_up", "Product Purchased", "$identify", "$app_launched", "ab", " trimmed "],
    ["", "a", " a ", "$custom", "ss_custom", "$", "SS_upper", "\u00e9v\u00e9nement"],
)
distinct_ids = mostly(["u1", "user@example.com", " padded ", "\u7528\u6237"], ["", "   "])
event_properties = st.one_of(
    st.none(),
    st.dictionaries(st.text(max_size=6), json_value, max_size=4),
    st.fixed_dictionaries({"record_id": st.integers(), "nested": json_value}),
)
short_ids = mostly([None, "t1", "x" * 64], ["", "y" * 65])
event_keys = mostly([None, "k-1", "z" * 255], ["", "w" * 256])
events = st.builds(
    Event,
    maybe(distinct_ids),
    maybe(event_names),
    maybe(event_properties),
    maybe(event_keys),
    maybe(short_ids),
    maybe(short_ids),
)


@FUZZ
@given(events, st.booleans())
def test_event_bodies_fuzzed(event: Event, auto_key: bool) -> None:
    """Every event body the SDK would send, the official ``event.json`` schema accepts."""
    try:
        prepared = event.prepare(auto_idempotency_key=auto_key, env=EVENT_ENV)
    except SuprsendValidationError as exc:
        assert exc.errors and "Traceback" not in str(exc)  # noqa: PT017 - either outcome is fine
        return
    sent = json.loads(prepared.content)
    errors = sorted(EVENT_SCHEMA.iter_errors(sent), key=str)
    assert not errors, f"the SDK accepted what the official schema refuses: {errors[0].message}"
    assert sent["env"] == EVENT_ENV and sent["properties"]["$ss_sdk_version"]
    assert sent["event"] == event.event_name.strip()
    assert sent["distinct_id"] == event.distinct_id.strip()
    assert EventBody.model_validate(sent, by_alias=True, by_name=False)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            ["distinct_id", "event", "event_name", "properties", "$idempotency_key", "tenant_id"]
        ),
        json_value,
        max_size=5,
    ).map(lambda d: {"distinct_id": "u1", "event": "signed_up", **d})
)
def test_event_dicts_fuzzed(record: dict[str, Any]) -> None:
    """``Event.from_dict`` plus ``prepare``: the SDK's error, or a body the schema accepts."""
    try:
        prepared = Event.from_dict(record).prepare(env=EVENT_ENV)
    except SuprsendValidationError as exc:
        assert exc.errors  # noqa: PT017 - either outcome is fine
        return
    sent = json.loads(prepared.content)
    assert not list(EVENT_SCHEMA.iter_errors(sent))


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("$identify", True),
        ("$user_logout", True),
        ("signed_up", True),
        ("$custom", False),
        ("ss_custom", False),
        ("a", False),
    ],
)
def test_event_names_reserved_as_documented(name: str, accepted: bool) -> None:
    event = Event("u1", name)
    if accepted:
        sent = json.loads(event.prepare(env=EVENT_ENV).content)
        assert not list(EVENT_SCHEMA.iter_errors(sent))
    else:
        with pytest.raises(SuprsendValidationError, match="event"):
            event.prepare(env=EVENT_ENV)


@contextlib.contextmanager
def fixed_keys() -> Iterator[None]:
    """Both ways draw the same generated idempotency key."""
    with (
        mock.patch("suprsend_async._prepared.new_idempotency_key", return_value="k" * 32),
        mock.patch("suprsend_async._requests.new_idempotency_key", return_value="k" * 32),
    ):
        yield


@FUZZ
@given(
    st.one_of(
        trigger_bodies.map(lambda b: (WorkflowTriggerRequest, b)),
        legacy_bodies.map(lambda b: (Workflow, b)),
    ),
    st.booleans(),
)
def test_the_quick_way_sends_the_bytes_the_request_way_sends(
    case: tuple[type[WorkflowTriggerRequest] | type[Workflow], dict[str, Any]], auto_key: bool
) -> None:
    """A plain dict prepared the quick way (the bulk engine's) is the record the request class
    makes: the same bytes, key, size and size bound; and it never takes a body the request
    way refuses."""
    make, body = case
    with fixed_keys():
        quick = prepare_plain(make._kind, make._model, body, auto_key)
        try:
            model = make(body).prepare(auto_idempotency_key=auto_key)
        except SuprsendValidationError:
            assert quick is None
            return
    if quick is None:
        return  # the request way's business (a key to trim, a value json writes its own way)
    assert quick.content == model.content
    assert quick.idempotency_key == model.idempotency_key
    assert quick.label == model.label
    assert quick.size >= model.exact_size()
    assert quick.exact_size() == model.exact_size()
    assert quick.kind == model.kind and quick.placeholders is None


def test_the_common_body_takes_the_quick_way() -> None:
    body = {
        "workflow": "wf",
        "recipients": [{"distinct_id": "u1", "$email": ["a@example.com"], "name": "A"}],
        "data": {"n": 1},
    }
    with fixed_keys():
        quick = prepare_plain("trigger", WorkflowTriggerBody, body, True)
        model = WorkflowTriggerRequest(body).prepare()
    assert quick is not None and quick.content == model.content
    assert quick.content.endswith(b',"$idempotency_key":"' + b"k" * 32 + b'"}')
    no_data: dict[str, Any] = {
        "name": "wf",
        "template": "tpl",
        "notification_category": "system",
        "users": [],
    }
    assert prepare_plain("legacy", WorkflowBody, no_data, False) is None  # users must not be empty
    no_data["users"] = [{"distinct_id": "u"}]
    with fixed_keys():
        quick = prepare_plain("legacy", WorkflowBody, no_data, False)
        model = Workflow(no_data).prepare(auto_idempotency_key=False)
    assert quick is not None and quick.content == model.content
    assert quick.content.endswith(b',"data":{}}') and quick.idempotency_key is None


def test_a_body_near_the_size_limit_takes_the_request_way() -> None:
    # Its loose bound passes 800 KiB: the request way measures it exactly (and accepts it).
    body = {"workflow": "wf", "recipients": ["u"], "data": {"t": "x" * (600 * 1024)}}
    assert prepare_plain("trigger", WorkflowTriggerBody, body, False) is None
    assert WorkflowTriggerRequest(body).prepare(auto_idempotency_key=False).size < 800 * 1024
