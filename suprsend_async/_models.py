"""Pydantic v2 models of the request bodies the API takes.

The models are the single source of the API's input rules. They serve two uses:

* validating what a caller passes (a plain dict as in the user guide, or a model): the SDK checks
  the dict against these models but sends the caller's own keys and values, so custom properties
  and the spelling the caller chose (``channel`` or ``channel_id`` for Slack) arrive unchanged;
* building bodies in typed code: ``User(distinct_id="u1", email="a@example.com")``. Python names
  are accepted when building a model; dicts are read by their wire names (``$email``) only, so a
  custom property called ``email`` is never mistaken for the ``$email`` channel.

A faster acceptance check for plain dicts is derived from these models (``_precheck``); a rule
added here reaches it too. A new ``model_validator`` needs its rule as a function of a mapping
in ``MODEL_RULES`` (building the pre-check says so otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

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
from pydantic_core import PydanticCustomError

from ._languages import ISO_639_1

__all__ = [
    "AndroidPush",
    "ChannelName",
    "Delivery",
    "IosPush",
    "LegacyUser",
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


def _custom(kind: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message)


def _one_or_many(value: Any) -> Any:
    # Every channel key takes one value or a list; validating both as a list keeps one error
    # path format (``$email[0]``) and one set of rules.
    return value if isinstance(value, list | tuple) else [value]


def _not_null(value: Any) -> Any:
    # An optional key may be left out, but the API refuses an explicit null for it.
    if value is None:
        raise _custom("null", "must not be null (leave the key out instead)")
    return value


NotNull = BeforeValidator(_not_null)
"""Marks an optional field whose explicit ``null`` the API refuses."""


NonEmptyStr = Annotated[StrictStr, Field(min_length=1)]
Str64 = Annotated[StrictStr, Field(max_length=64)]
Str255 = Annotated[StrictStr, Field(max_length=255)]
Slug2 = Annotated[StrictStr, Field(min_length=2)]


def _check_idempotency_key(value: str) -> str:
    trimmed = value.strip()
    if not trimmed:
        raise _custom("idempotency_key", "must not be empty or only spaces")
    if len(trimmed) > 255:
        raise _custom(
            "idempotency_key",
            f"must be at most 255 characters after trimming spaces (got {len(trimmed)})",
        )
    return trimmed


IdempotencyKey = Annotated[StrictStr, AfterValidator(_check_idempotency_key)]

_PHONE = re.compile(r"\+[0-9][0-9 ()\-.]{3,30}")


def _check_phone(value: str) -> str:
    if not _PHONE.fullmatch(value):  # fullmatch: '$' would let a trailing newline through
        raise _custom("phone", "must start with +<country code> followed by the number")
    return value


Phone = Annotated[StrictStr, AfterValidator(_check_phone)]


_EMAIL = re.compile(r"[^@ ]+@[^ ]+")  # a name, an @, a domain; no spaces anywhere


def _check_email(value: str) -> str:
    if not _EMAIL.fullmatch(value):
        raise _custom("email", "must be an e-mail address like name@example.com")
    return value


Email = Annotated[StrictStr, AfterValidator(_check_email)]


def _check_language(value: str) -> str:
    if value not in ISO_639_1:
        raise _custom(
            "language", "must be a two-letter ISO 639-1 language code in lower case, like 'en'"
        )
    return value


LanguageCode = Annotated[StrictStr, AfterValidator(_check_language)]


@lru_cache(maxsize=1024)
def _known_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, like "America"
        return False
    return True


def _check_timezone(value: str) -> str:
    if not value or value != value.strip() or not _known_timezone(value):
        raise PydanticCustomError(
            "timezone",
            "must be an IANA time zone name like 'America/New_York', not '{value}'",
            {"value": value},
        )
    return value


TimeZone = Annotated[StrictStr, AfterValidator(_check_timezone)]


_LOCALE = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*")


def _check_locale(value: str) -> str:
    if not _LOCALE.fullmatch(value):
        raise _custom("locale", "must be a locale like 'en' or 'en-US'")
    return value


Locale = Annotated[StrictStr, AfterValidator(_check_locale)]


def _check_non_empty_dict(value: dict[str, Any]) -> dict[str, Any]:
    if not value:
        raise _custom("non_empty_object", "must be a non-empty object")
    return value


NonEmptyObject = Annotated[dict[str, Any], AfterValidator(_check_non_empty_dict)]


def _one_or_many_of(item: Any) -> Any:
    # The length rule sits before the BeforeValidator so pydantic-core checks it in Rust on
    # the list the validator made (after it, pydantic would wrap it in two Python functions).
    return Annotated[
        list[item],
        Field(min_length=1, max_length=10),
        BeforeValidator(_one_or_many),
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


def _https_prefix(prefix: str, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not value.startswith(prefix):
            raise _custom("url", f"{what} must start with {prefix}")
        return value

    return check


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
    user_id: Annotated[
        Annotated[StrictStr, Field(pattern=r"^[uUwW][a-zA-Z0-9]+$")] | None, NotNull
    ] = None
    channel: Annotated[
        Annotated[StrictStr, Field(pattern=r"^[cC][a-zA-Z0-9]+$")] | None, NotNull
    ] = None
    channel_id: Annotated[
        Annotated[StrictStr, Field(pattern=r"^[cC][a-zA-Z0-9]+$")] | None, NotNull
    ] = None
    access_token: Annotated[Annotated[StrictStr, Field(pattern=r"^xox")] | None, NotNull] = None
    incoming_webhook: Annotated[IncomingWebhook | None, NotNull] = None

    @model_validator(mode="after")
    def _one_form(self) -> Slack:
        _slack_rule(self.__dict__)
        return self


def _url_of(webhook: Any) -> str:
    # The incoming webhook as a model (model validation) or a dict (the pre-check).
    url: str = webhook["url"] if isinstance(webhook, dict) else webhook.url
    return url


def _slack_rule(values: Mapping[str, Any]) -> None:
    """Slack's one-of-four-forms rule, on its fields by Python name (absent means None)."""
    targets = [
        k for k in ("email", "user_id", "channel", "channel_id") if values.get(k) is not None
    ]
    webhook = values.get("incoming_webhook")
    if webhook is not None:
        if targets or values.get("access_token") is not None:
            raise _custom("slack_form", "incoming_webhook cannot be combined with other Slack keys")
        if not _url_of(webhook).startswith("https://hooks.slack.com/"):
            raise _custom(
                "slack_form", "incoming_webhook.url must start with https://hooks.slack.com/"
            )
        return
    if len(targets) != 1:
        raise _custom(
            "slack_form",
            "needs exactly one of email, user_id, channel (or channel_id) with access_token,"
            " or incoming_webhook",
        )
    if values.get("access_token") is None:
        raise _custom("slack_form", "access_token (starting with xox) is required")


class MsTeams(_Strict):
    """An MS Teams channel setting, in one of three forms.

    * ``{tenant_id, service_url: https://smba.trafficmanager.net/…, conversation_id}``;
    * ``{tenant_id, service_url, user_id}``;
    * ``{incoming_webhook: {url}}``.
    """

    tenant_id: Annotated[NonEmptyStr | None, NotNull] = None
    service_url: Annotated[
        Annotated[
            StrictStr,
            AfterValidator(_https_prefix("https://smba.trafficmanager.net/", "service_url")),
        ]
        | None,
        NotNull,
    ] = None
    conversation_id: Annotated[NonEmptyStr | None, NotNull] = None
    user_id: Annotated[NonEmptyStr | None, NotNull] = None
    incoming_webhook: Annotated[IncomingWebhook | None, NotNull] = None

    @model_validator(mode="after")
    def _one_form(self) -> MsTeams:
        _ms_teams_rule(self.__dict__)
        return self


def _ms_teams_rule(values: Mapping[str, Any]) -> None:
    """MS Teams' one-of-three-forms rule, on its fields by Python name (absent means None)."""
    bot_keys = [
        k
        for k in ("tenant_id", "service_url", "conversation_id", "user_id")
        if values.get(k) is not None
    ]
    if values.get("incoming_webhook") is not None:
        if bot_keys:
            raise _custom(
                "ms_teams_form", "incoming_webhook cannot be combined with other MS Teams keys"
            )
        return
    if values.get("tenant_id") is None or values.get("service_url") is None:
        raise _custom(
            "ms_teams_form",
            "needs tenant_id and service_url with conversation_id or user_id, or incoming_webhook",
        )
    if (values.get("conversation_id") is None) == (values.get("user_id") is None):
        raise _custom("ms_teams_form", "needs exactly one of conversation_id or user_id")


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

    @model_validator(mode="after")
    def _identified(self) -> User:
        _user_rule(self.__dict__)
        return self


def _user_rule(values: Mapping[str, Any]) -> None:
    """A user needs a distinct_id unless it is transient (fields by Python name)."""
    if values.get("distinct_id") is None and not values.get("is_transient"):
        raise _custom("missing_distinct_id", "distinct_id is required unless is_transient is true")


def _token_kind(value: Any) -> str:
    return "~token" if isinstance(value, str) else "~setting"


def _token_or(setting: type[BaseModel]) -> Any:
    return Annotated[
        Annotated[NonEmptyStr, Tag("~token")] | Annotated[setting, Tag("~setting")],
        Discriminator(_token_kind),
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


def _recipient_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "~id"
    if isinstance(value, ObjectRecipient):
        return "~object"
    if isinstance(value, User):
        return "~user"
    if isinstance(value, dict):
        return "~object" if "object_type" in value else "~user"
    return None


_SHAPE_ERROR = "must be a distinct_id string, a user object or an object recipient"

Recipient = Annotated[
    Annotated[NonEmptyStr, Tag("~id")]
    | Annotated[User, Tag("~user")]
    | Annotated[ObjectRecipient, Tag("~object")],
    Discriminator(
        _recipient_kind, custom_error_type="recipient_shape", custom_error_message=_SHAPE_ERROR
    ),
]
"""One recipient: a distinct_id, an inline :class:`User` or an :class:`ObjectRecipient`."""


def _actor_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "~id"
    if isinstance(value, dict | User):
        return "~user"
    return None


Actor = Annotated[
    Annotated[NonEmptyStr, Tag("~id")] | Annotated[User, Tag("~user")],
    Discriminator(
        _actor_kind,
        custom_error_type="actor_shape",
        custom_error_message="must be a distinct_id string or a user object",
    ),
]


class WorkflowTriggerBody(BaseModel):
    """The body of a workflow trigger (``POST trigger/``, :class:`WorkflowTriggerRequest`)."""

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


_DELAY = re.compile(r"(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?")


def _check_duration(value: str) -> str:
    if not _DELAY.fullmatch(value):
        raise _custom("duration", "must look like 1d2h30m10s (days, hours, minutes, seconds)")
    return value


Duration = Annotated[StrictStr, AfterValidator(_check_duration)]


def _check_iso8601(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise _custom("iso8601", "must be an ISO 8601 date-time string or a datetime")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise _custom(
            "iso8601", "must be an ISO 8601 date-time like 2021-08-27T20:14:51.643Z"
        ) from None
    return value


def _delay_kind(value: Any) -> str:
    return "~text" if isinstance(value, str) else "~seconds"


Delay = Annotated[
    Annotated[Duration, Tag("~text")] | Annotated[StrictInt, Field(ge=0), Tag("~seconds")],
    Discriminator(_delay_kind),
]
"""A delay: ``1d2h30m10s`` style text, or a non-negative number of seconds."""


class Delivery(_Strict):
    """Delivery instructions of a legacy workflow (smart delivery)."""

    smart: Annotated[StrictBool | None, NotNull] = None
    success: Annotated[NonEmptyStr | None, NotNull] = None
    time_to_live: Annotated[Duration | None, NotNull] = None
    mandatory_channels: Annotated[list[ChannelName] | None, NotNull] = None


class WorkflowBody(BaseModel):
    """The body of a legacy dynamic workflow (``POST {workspace}/trigger/``, :class:`Workflow`)."""

    model_config = _MODEL_CONFIG

    name: Slug2
    template: Slug2
    notification_category: Literal["system", "transactional", "promotional"]
    users: Annotated[list[LegacyUser], Field(min_length=1, max_length=100)]
    data: dict[str, Any] = Field(default_factory=dict)
    delay: Annotated[Delay | None, NotNull] = None
    trigger_at: Annotated[Annotated[Any, AfterValidator(_check_iso8601)] | None, NotNull] = None
    delivery: Annotated[Delivery | None, NotNull] = None
    brand_id: Str64 | None = None
    tenant_id: Str64 | None = None
    idempotency_key: IdempotencyKey | None = Field(None, alias="$idempotency_key")


MODEL_RULES: dict[object, Callable[[Mapping[str, Any]], None]] = {
    User._identified: _user_rule,
    Slack._one_form: _slack_rule,
    MsTeams._one_form: _ms_teams_rule,
}
"""Each model validator and the same rule on a plain mapping of fields, for the pre-check."""

RULE_MET_BY: dict[object, str] = {User._identified: "distinct_id"}
"""A field whose (non-null) presence alone satisfies a model validator's rule."""
