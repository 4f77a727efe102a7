"""Pydantic v2 models of the request bodies the API takes.

The models, built from the rules in ``_rules``, are the single source of the API's input
rules. They serve two uses:

* validating what a caller passes (a plain dict as in the user guide, or a model): the SDK checks
  the dict against these models but sends the caller's own keys and values, so custom properties
  and the spelling the caller chose (``channel`` or ``channel_id`` for Slack) arrive unchanged;
* building bodies in typed code: ``User(distinct_id="u1", email="a@example.com")``. Python names
  are accepted when building a model; dicts are read by their wire names (``$email``) only, so a
  custom property called ``email`` is never mistaken for the ``$email`` channel.

The rules themselves (formats, discriminators, rules across fields) live in ``_rules``; this
module builds the models from them. A faster acceptance check for plain dicts is derived from
these models (``_precheck``), so a rule added here reaches it too. A rule across fields is
declared with ``_applying(rule)``, which lists it in ``VALIDATOR_RULES`` for the pre-check; a
bare ``model_validator`` cannot be mirrored (building the pre-check says so).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
    model_validator,
)

from . import _rules as rules

__all__ = [
    "AndroidPush",
    "ChannelName",
    "Delivery",
    "IosPush",
    "LegacyUser",
    "ListBroadcastBody",
    "MsTeams",
    "ObjectRecipient",
    "Slack",
    "User",
    "WorkflowBody",
    "WorkflowTriggerBody",
]

ChannelName = Literal[
    "email",
    "sms",
    "whatsapp",
    "androidpush",
    "iospush",
    "slack",
    "webpush",
    "ms_teams",
    "inbox",
    "messenger",
]
"""A channel name as used in ``$channels`` and ``delivery.mandatory_channels``."""

_MODEL_CONFIG = ConfigDict(
    extra="allow",
    validate_by_name=True,
    # Schemas are built on first use, not at import: importing the SDK stays quick.
    defer_build=True,
    validate_by_alias=True,
    serialize_by_alias=True,
    # Fields are read-only snapshots of the caller's input, never coerced into new objects.
    revalidate_instances="never",
)


NotNull = BeforeValidator(rules.not_null)
"""Marks an optional field whose explicit ``null`` the API refuses."""


NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
Str64 = Annotated[StrictStr, Field(max_length=64)]
Str255 = Annotated[StrictStr, Field(max_length=255)]
Slug2 = Annotated[StrictStr, Field(min_length=2)]
IdempotencyKey = Annotated[StrictStr, AfterValidator(rules.check_idempotency_key)]
Phone = Annotated[StrictStr, AfterValidator(rules.check_phone)]
Email = Annotated[StrictStr, AfterValidator(rules.check_email)]
LanguageCode = Annotated[StrictStr, AfterValidator(rules.check_language)]
TimeZone = Annotated[StrictStr, AfterValidator(rules.check_timezone)]
Locale = Annotated[StrictStr, AfterValidator(rules.check_locale)]
NonEmptyObject = Annotated[dict[str, Any], AfterValidator(rules.check_non_empty_dict)]
SlackMemberId = Annotated[StrictStr, AfterValidator(rules.check_slack_member_id)]
SlackChannelId = Annotated[StrictStr, AfterValidator(rules.check_slack_channel_id)]
SlackAccessToken = Annotated[StrictStr, AfterValidator(rules.check_slack_access_token)]
TeamsServiceUrl = Annotated[StrictStr, AfterValidator(rules.check_teams_service_url)]


VALIDATOR_RULES: dict[Callable[..., Any], rules.FieldsRule] = {}
"""Each model validator and the rule across fields it applies to the model's fields.

The pre-check applies the same rule to a plain dict; a model validator not listed here cannot be
mirrored, and building the pre-check says so.
"""


def _applying(rule: rules.FieldsRule) -> Any:
    """A model validator (after the fields) that applies ``rule``, listed in ``VALIDATOR_RULES``."""

    def validate(model: BaseModel) -> BaseModel:
        rule.check(model.__dict__)
        return model

    validate.__name__ = validate.__qualname__ = f"applying_{rule.check.__name__}"

    VALIDATOR_RULES[validate] = rule
    return model_validator(mode="after")(validate)


def _one_or_many_of(item: Any) -> Any:
    # The length rule sits before the BeforeValidator so pydantic-core checks it in Rust on
    # the list the validator made (after it, pydantic would wrap it in two Python functions).
    return Annotated[
        list[item],
        Field(min_length=1, max_length=10),
        BeforeValidator(rules.one_or_many),
    ]


def _channel(item: Any) -> Any:
    """A channel key's type: one value or 1-10 values; optional, but never an explicit null."""
    return Annotated[_one_or_many_of(item) | None, NotNull]


class _Strict(BaseModel):
    """Base of the small channel-setting objects: unknown keys are refused, as by the API."""

    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        defer_build=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


class AndroidPush(_Strict):
    """An Android push token: ``{token, provider: fcm|xiaomi|oppo, device_id?, bundle_id?}``."""

    token: NonEmptyStr
    provider: Literal["fcm", "xiaomi", "oppo"]
    device_id: StrictStr | None = None
    bundle_id: StrictStr | None = None


class IosPush(_Strict):
    """An iOS push token: ``{token, provider: apns, device_id?, bundle_id?}``."""

    token: NonEmptyStr
    provider: Literal["apns"]
    device_id: StrictStr | None = None
    bundle_id: StrictStr | None = None


class IncomingWebhook(_Strict):
    """An incoming-webhook channel: ``{url}``."""

    url: NonEmptyStr


class Slack(_Strict):
    """A Slack channel setting, in one of four forms.

    * ``{email, access_token}``: a member found by e-mail;
    * ``{user_id: U…/W…, access_token}``: a member by id;
    * ``{channel: C…, access_token}`` or ``{channel_id: C…, access_token}``: a channel (the user
      guide spells it ``channel``, older SDKs ``channel_id``; both are accepted and sent as given);
    * ``{incoming_webhook: {url: https://hooks.slack.com/…}}``.
    """

    email: Annotated[NonEmptyStr | None, NotNull] = None
    user_id: Annotated[SlackMemberId | None, NotNull] = None
    channel: Annotated[SlackChannelId | None, NotNull] = None
    channel_id: Annotated[SlackChannelId | None, NotNull] = None
    access_token: Annotated[SlackAccessToken | None, NotNull] = None
    incoming_webhook: Annotated[IncomingWebhook | None, NotNull] = None

    _one_form = _applying(rules.SLACK_FORM)


class MsTeams(_Strict):
    """An MS Teams channel setting, in one of three forms.

    * ``{tenant_id, service_url: https://smba.trafficmanager.net/…, conversation_id}``;
    * ``{tenant_id, service_url, user_id}``;
    * ``{incoming_webhook: {url}}``.
    """

    tenant_id: Annotated[NonEmptyStr | None, NotNull] = None
    service_url: Annotated[TeamsServiceUrl | None, NotNull] = None
    conversation_id: Annotated[NonEmptyStr | None, NotNull] = None
    user_id: Annotated[NonEmptyStr | None, NotNull] = None
    incoming_webhook: Annotated[IncomingWebhook | None, NotNull] = None

    _one_form = _applying(rules.MS_TEAMS_FORM)


class _ChannelKeys(BaseModel):
    """The ``$<channel>`` keys shared by users and object recipients."""

    model_config = _MODEL_CONFIG

    email: _channel(Email) = Field(None, alias="$email")  # type: ignore[valid-type]
    sms: _channel(Phone) = Field(None, alias="$sms")  # type: ignore[valid-type]
    whatsapp: _channel(Phone) = Field(None, alias="$whatsapp")  # type: ignore[valid-type]
    androidpush: _channel(AndroidPush) = Field(None, alias="$androidpush")  # type: ignore[valid-type]
    iospush: _channel(IosPush) = Field(None, alias="$iospush")  # type: ignore[valid-type]
    slack: _channel(Slack) = Field(None, alias="$slack")  # type: ignore[valid-type]
    ms_teams: _channel(MsTeams) = Field(None, alias="$ms_teams")  # type: ignore[valid-type]
    webpush: _channel(NonEmptyObject) = Field(None, alias="$webpush")  # type: ignore[valid-type]
    inbox: _channel(NonEmptyStr) = Field(None, alias="$inbox")  # type: ignore[valid-type]
    messenger: _channel(NonEmptyStr) = Field(None, alias="$messenger")  # type: ignore[valid-type]


class User(_ChannelKeys):
    """A user given inline, as a recipient or as the actor.

    Any key that is not one of the named fields is a custom user property and is sent as given
    (usable in templates as ``$recipient.<prop>`` / ``$actor.<prop>``).
    """

    distinct_id: NonEmptyStr | None = None
    is_transient: StrictBool | None = None
    skip_create: StrictBool | None = Field(None, alias="$skip_create")
    preferred_language: LanguageCode | None = Field(None, alias="$preferred_language")
    locale: Locale | None = Field(None, alias="$locale")
    timezone: TimeZone | None = Field(None, alias="$timezone")
    channels: Annotated[list[ChannelName] | None, NotNull] = Field(None, alias="$channels")

    _identified = _applying(rules.USER_IDENTIFIED)


def _token_or(setting: type[BaseModel]) -> Any:
    return Annotated[
        Annotated[NonEmptyStr, Tag("~token")] | Annotated[setting, Tag("~setting")],
        Discriminator(rules.token_kind),
    ]


class LegacyUser(User):
    """A user of the legacy ``Workflow`` body: ``distinct_id`` is mandatory.

    Push channels also take a bare token string, as the legacy API does.
    """

    distinct_id: NonEmptyStr
    androidpush: _channel(_token_or(AndroidPush)) = Field(  # type: ignore[valid-type]
        None, alias="$androidpush"
    )
    iospush: _channel(_token_or(IosPush)) = Field(None, alias="$iospush")  # type: ignore[valid-type]


class ObjectRecipient(_ChannelKeys):
    """An object recipient such as a team: ``{"object_type": "teams", "id": "finance"}``."""

    object_type: NonEmptyStr
    id: NonEmptyStr
    skip_create: StrictBool | None = Field(None, alias="$skip_create")


_SHAPE_ERROR = "must be a distinct_id string, a user object or an object recipient"

Recipient = Annotated[
    Annotated[NonEmptyStr, Tag("~id")]
    | Annotated[User, Tag("~user")]
    | Annotated[ObjectRecipient, Tag("~object")],
    Discriminator(
        rules.recipient_kind, custom_error_type="recipient_shape", custom_error_message=_SHAPE_ERROR
    ),
]
"""One recipient: a distinct_id, an inline `User` or an `ObjectRecipient`."""


Actor = Annotated[
    Annotated[NonEmptyStr, Tag("~id")] | Annotated[User, Tag("~user")],
    Discriminator(
        rules.actor_kind,
        custom_error_type="actor_shape",
        custom_error_message="must be a distinct_id string or a user object",
    ),
]


class WorkflowTriggerBody(BaseModel):
    """The body of a workflow trigger (``POST trigger/``, `WorkflowTriggerRequest`)."""

    model_config = ConfigDict(
        # The API refuses unknown top-level keys; say so before sending.
        extra="forbid",
        validate_by_name=True,
        defer_build=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    workflow: NonEmptyStr
    recipients: Annotated[list[Recipient], Field(min_length=1, max_length=100)]
    actor: Annotated[Actor | None, NotNull] = None
    data: dict[str, Any] = Field(default_factory=dict)
    tenant_id: Str64 | None = None
    idempotency_key: IdempotencyKey | None = Field(None, alias="$idempotency_key")
    cancellation_key: Str255 | None = None
    metadata: Annotated[dict[str, Any] | None, NotNull] = None


Duration = Annotated[StrictStr, AfterValidator(rules.check_duration)]
IsoDateTime = Annotated[Any, AfterValidator(rules.check_iso8601)]


Delay = Annotated[
    Annotated[Duration, Tag("~text")] | Annotated[StrictInt, Field(ge=0), Tag("~seconds")],
    Discriminator(rules.delay_kind),
]
"""A delay: ``1d2h30m10s`` style text, or a non-negative number of seconds."""


class Delivery(_Strict):
    """Delivery instructions of a legacy workflow (smart delivery)."""

    smart: Annotated[StrictBool | None, NotNull] = None
    success: Annotated[NonEmptyStr | None, NotNull] = None
    time_to_live: Annotated[Duration | None, NotNull] = None
    mandatory_channels: Annotated[list[ChannelName] | None, NotNull] = None


class WorkflowBody(BaseModel):
    """The body of a legacy dynamic workflow (``POST {workspace}/trigger/``, `Workflow`)."""

    model_config = _MODEL_CONFIG

    name: Slug2
    template: Slug2
    notification_category: Literal["system", "transactional", "promotional"]
    users: Annotated[list[LegacyUser], Field(min_length=1, max_length=100)]
    data: dict[str, Any] = Field(default_factory=dict)
    delay: Annotated[Delay | None, NotNull] = None
    trigger_at: Annotated[IsoDateTime | None, NotNull] = None
    delivery: Annotated[Delivery | None, NotNull] = None
    brand_id: Str64 | None = None
    tenant_id: Str64 | None = None
    idempotency_key: IdempotencyKey | None = Field(None, alias="$idempotency_key")


class EventBody(BaseModel):
    """The body of an event (``POST v2/event/``, `Event`), as the SDK sends it."""

    model_config = ConfigDict(
        extra="forbid",
        validate_by_name=True,
        defer_build=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )

    insert_id: Annotated[StrictStr, Field(min_length=36)] = Field(alias="$insert_id")
    time: Annotated[StrictInt, Field(ge=1640995200000)] = Field(alias="$time")
    event: Annotated[StrictStr, AfterValidator(rules.check_event_name)]
    env: StrictStr
    distinct_id: NonEmptyStr
    properties: dict[str, Any]
    idempotency_key: IdempotencyKey | None = Field(None, alias="$idempotency_key")
    tenant_id: Str64 | None = None
    brand_id: Str64 | None = None


ListId = Annotated[StrictStr, AfterValidator(rules.check_list_id)]


class ListBroadcastBody(BaseModel):
    """The body of a broadcast to a list (``POST {workspace}/broadcast/``,
    `SubscriberListBroadcast`), as the SDK sends it."""

    model_config = _MODEL_CONFIG

    insert_id: Annotated[StrictStr, Field(min_length=36)] = Field(alias="$insert_id")
    time: Annotated[StrictInt, Field(ge=1640995200000)] = Field(alias="$time")
    list_id: ListId
    template: Slug2
    notification_category: Slug2
    channels: Annotated[list[ChannelName] | None, NotNull] = None
    data: dict[str, Any] = Field(default_factory=dict)
    delay: Annotated[Delay | None, NotNull] = None
    trigger_at: Annotated[IsoDateTime | None, NotNull] = None
    idempotency_key: IdempotencyKey | None = Field(None, alias="$idempotency_key")
    tenant_id: Str64 | None = None
    brand_id: Str64 | None = None
