"""The API's input rules, shared by the request models and the pre-check derived from them.

Each rule is a plain function, so the models (``_models``) and the quick pre-check
(``_precheck``) apply the very same one. Imports go one way: this module <- models <- pre-check
<- request preparation. Three kinds of rule live here:

* value checks, such as `check_email`; those that are one regular expression are listed in
  `FORMATS`, which the pre-check runs in pydantic-core instead. Their errors say what a
  valid value looks like, never the expression itself;
* discriminators, which tell the form a value takes in a union (`recipient_kind`, …);
* rules across the fields of one object (`USER_IDENTIFIED`, `SLACK_FORM`,
  `MS_TEAMS_FORM`), on a mapping of fields by Python name, so that they apply alike to a
  model's fields and to a plain dict.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel
from pydantic_core import PydanticCustomError

from ._languages import ISO_639_1

__all__ = [
    "FORMATS",
    "MS_TEAMS_FORM",
    "SLACK_FORM",
    "USER_IDENTIFIED",
    "FieldsRule",
    "actor_kind",
    "check_duration",
    "check_email",
    "check_idempotency_key",
    "check_iso8601",
    "check_language",
    "check_locale",
    "check_non_empty_dict",
    "check_phone",
    "check_slack_access_token",
    "check_slack_channel_id",
    "check_slack_member_id",
    "check_teams_service_url",
    "check_timezone",
    "delay_kind",
    "error",
    "ms_teams_rule",
    "not_null",
    "one_or_many",
    "recipient_kind",
    "slack_rule",
    "token_kind",
    "user_rule",
    "zone_names",
]


def error(kind: str, message: str) -> PydanticCustomError:
    """A validation error of type ``kind`` whose message reaches the caller as written."""
    return PydanticCustomError(kind, message)


# -- value helpers ---------------------------------------------------------------------


def one_or_many(value: Any) -> Any:
    """Every channel key takes one value or a list; both are validated as a list, which keeps
    one error path format (``$email[0]``) and one set of rules."""
    return value if isinstance(value, list | tuple) else [value]


def not_null(value: Any) -> Any:
    """An optional key may be left out, but the API refuses an explicit null for it."""
    if value is None:
        raise error("null", "must not be null (leave the key out instead)")
    return value


# -- formats: one regular expression each ----------------------------------------------

FORMATS: dict[Callable[[str], str], re.Pattern[str]] = {}
"""Each format check and the expression it matches the whole value against.

The expressions keep to the syntax that Python's ``re`` and pydantic-core's regex engine read
alike (no look-around, no backreferences), so the pre-check can run them in Rust.
"""


def _format(kind: str, pattern: str, message: str) -> Callable[[str], str]:
    regex = re.compile(pattern)

    def check(value: str) -> str:
        if regex.fullmatch(value) is None:  # fullmatch: '$' would let a trailing newline in
            raise error(kind, message)
        return value

    check.__name__ = check.__qualname__ = f"check_{kind}"
    FORMATS[check] = regex
    return check


check_email = _format(
    "email",
    r"[^@ ]+@[^ ]+",  # a name, an @, a domain; no spaces anywhere
    "must be an e-mail address like name@example.com",
)
check_phone = _format(
    "phone",
    r"\+[0-9][0-9 ()\-.]{3,30}",
    "must start with +<country code> followed by the number, e.g. +15555550123",
)
check_locale = _format(
    "locale",
    r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*",
    "must be a locale like 'en' or 'en-US'",
)
check_slack_member_id = _format(
    "slack_member_id",
    r"[uUwW][a-zA-Z0-9]+",
    "must be a Slack member id: U or W followed by letters and digits only, e.g. U01ABCD2EFG",
)
check_slack_channel_id = _format(
    "slack_channel_id",
    r"[cC][a-zA-Z0-9]+",
    "must be a Slack channel id: C followed by letters and digits only, e.g. C01ABCD2EFG",
)
check_slack_access_token = _format(
    "slack_access_token",
    r"xox[\s\S]*",
    "must be a Slack access token, which starts with xox (e.g. xoxb-…)",
)
check_teams_service_url = _format(
    "teams_service_url",
    r"https://smba\.trafficmanager\.net/[\s\S]*",
    "must start with https://smba.trafficmanager.net/, e.g. https://smba.trafficmanager.net/amer/",
)


# -- other value checks -----------------------------------------------------------------


def check_idempotency_key(value: str) -> str:
    """Trimmed of spaces, 1-255 characters; the trimmed key is the one sent."""
    trimmed = value.strip()
    if not trimmed:
        raise error("idempotency_key", "must not be empty or only spaces")
    if len(trimmed) > 255:
        raise error(
            "idempotency_key",
            f"must be at most 255 characters after trimming spaces (got {len(trimmed)})",
        )
    return trimmed


RESERVED_EVENT_NAMES = frozenset(
    {
        "$identify",
        "$notification_delivered",
        "$notification_dismiss",
        "$notification_clicked",
        "$app_launched",
        "$user_login",
        "$user_logout",
    }
)
"""The service's own event names: the only ones allowed to start with ``$``."""


def check_event_name(value: str) -> str:
    """At least 2 characters; ``$`` and ``ss_`` starts are the service's, except its own."""
    if len(value) < 2:
        raise error("event_name", "must be at least 2 characters, e.g. order_shipped")
    if value not in RESERVED_EVENT_NAMES and (value.startswith("$") or value[:3].lower() == "ss_"):
        raise error(
            "event_name",
            "names starting with $ or ss_ are reserved by SuprSend (except its own, such as"
            " $identify); use a name such as order_shipped",
        )
    return value


def check_language(value: str) -> str:
    """A two-letter ISO 639-1 code in lower case."""
    if value not in ISO_639_1:
        raise error(
            "language", "must be a two-letter ISO 639-1 language code in lower case, like 'en'"
        )
    return value


@lru_cache(maxsize=1024)
def _known_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory, like "America"
        return False
    return True


@lru_cache(maxsize=1)
def zone_names() -> list[str]:
    """Every name the zone database lists (each one `check_timezone` accepts), sorted."""
    return sorted(available_timezones())


def check_timezone(value: str) -> str:
    """An IANA time zone name this machine's zone database knows."""
    if not value or value != value.strip() or not _known_timezone(value):
        raise PydanticCustomError(
            "timezone",
            "must be an IANA time zone name like 'America/New_York', not '{value}'",
            {"value": value},
        )
    return value


def check_non_empty_dict(value: dict[str, Any]) -> dict[str, Any]:
    if not value:
        raise error("non_empty_object", "must be a non-empty object")
    return value


_LIST_ID = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def check_list_id(value: str) -> str:
    """A list id: 1 to 64 characters of ``a-z 0-9 _ -`` (compared in lower case)."""
    if not _LIST_ID.fullmatch(value):
        raise error(
            "list_id", "must be 1 to 64 characters of a-z, 0-9, '_' and '-' (e.g. new-users_2)"
        )
    return value


# Not one of FORMATS: the look-ahead (at least one part) is beyond pydantic-core's regex engine.
_DURATION = re.compile(r"(?=\d)(\d+d)?(\d+h)?(\d+m)?(\d+s)?")


def check_duration(value: str) -> str:
    """A duration such as ``1d2h30m10s``: days, hours, minutes, seconds, each optional."""
    if not _DURATION.fullmatch(value):
        raise error("duration", "must look like 1d2h30m10s (days, hours, minutes, seconds)")
    return value


def check_iso8601(value: Any) -> Any:
    """A ``datetime``, or a string ``datetime.fromisoformat`` reads."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise error("iso8601", "must be an ISO 8601 date-time string or a datetime")
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise error(
            "iso8601", "must be an ISO 8601 date-time like 2021-08-27T20:14:51.643Z"
        ) from None
    return value


# -- discriminators ---------------------------------------------------------------------
# Each names the form a value takes (a tag of its union) or None when it takes none of them.
# A model instance is read by its fields, as a dict is by its keys: an object recipient has
# ``object_type``, a user ``distinct_id``.


def _model_fields(value: Any) -> Mapping[str, Any]:
    return type(value).model_fields if isinstance(value, BaseModel) else {}


def recipient_kind(value: Any) -> str | None:
    """``~id`` (a distinct_id), ``~object`` (an object recipient) or ``~user``."""
    if isinstance(value, str):
        return "~id"
    if isinstance(value, dict):
        return "~object" if "object_type" in value else "~user"
    fields = _model_fields(value)
    if "object_type" in fields:
        return "~object"
    return "~user" if "distinct_id" in fields else None


def actor_kind(value: Any) -> str | None:
    """``~id`` (a distinct_id) or ``~user``."""
    if isinstance(value, str):
        return "~id"
    if isinstance(value, dict) or "distinct_id" in _model_fields(value):
        return "~user"
    return None


def token_kind(value: Any) -> str:
    """A legacy push value: ``~token`` (a bare token string) or ``~setting`` (an object)."""
    return "~token" if isinstance(value, str) else "~setting"


def delay_kind(value: Any) -> str:
    """A legacy delay: ``~text`` (``1d2h``) or ``~seconds``."""
    return "~text" if isinstance(value, str) else "~seconds"


# -- rules across the fields of one object ----------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldsRule:
    """A rule across the fields of one object.

    ``check`` takes a mapping of the fields by Python name (an absent field reads as ``None``)
    and raises a validation error when the rule is broken. ``met_by`` names a field whose
    non-null presence alone satisfies the rule, when there is one.
    """

    check: Callable[[Mapping[str, Any]], None]
    met_by: str | None = None


def user_rule(values: Mapping[str, Any]) -> None:
    """A user needs a distinct_id unless it is transient."""
    if values.get("distinct_id") is None and not values.get("is_transient"):
        raise error("missing_distinct_id", "distinct_id is required unless is_transient is true")


USER_IDENTIFIED = FieldsRule(user_rule, met_by="distinct_id")


def _url_of(webhook: Any) -> str:
    # The incoming webhook as a model (model validation) or a dict (the pre-check).
    url: str = webhook["url"] if isinstance(webhook, dict) else webhook.url
    return url


def slack_rule(values: Mapping[str, Any]) -> None:
    """Slack's one-of-four-forms rule (see ``_models.Slack``)."""
    targets = [
        k for k in ("email", "user_id", "channel", "channel_id") if values.get(k) is not None
    ]
    webhook = values.get("incoming_webhook")
    if webhook is not None:
        if targets or values.get("access_token") is not None:
            raise error("slack_form", "incoming_webhook cannot be combined with other Slack keys")
        if not _url_of(webhook).startswith("https://hooks.slack.com/"):
            raise error(
                "slack_form",
                "incoming_webhook.url must start with https://hooks.slack.com/,"
                " e.g. https://hooks.slack.com/services/T000/B000/XXXX",
            )
        return
    if len(targets) != 1:
        raise error(
            "slack_form",
            "needs exactly one of email, user_id, channel (or channel_id) with access_token,"
            " or incoming_webhook",
        )
    if values.get("access_token") is None:
        raise error("slack_form", "access_token (starting with xox) is required")


SLACK_FORM = FieldsRule(slack_rule)


def ms_teams_rule(values: Mapping[str, Any]) -> None:
    """MS Teams' one-of-three-forms rule (see ``_models.MsTeams``)."""
    bot_keys = [
        k
        for k in ("tenant_id", "service_url", "conversation_id", "user_id")
        if values.get(k) is not None
    ]
    if values.get("incoming_webhook") is not None:
        if bot_keys:
            raise error(
                "ms_teams_form", "incoming_webhook cannot be combined with other MS Teams keys"
            )
        return
    if values.get("tenant_id") is None or values.get("service_url") is None:
        raise error(
            "ms_teams_form",
            "needs tenant_id and service_url with conversation_id or user_id, or incoming_webhook",
        )
    if (values.get("conversation_id") is None) == (values.get("user_id") is None):
        raise error("ms_teams_form", "needs exactly one of conversation_id or user_id")


MS_TEAMS_FORM = FieldsRule(ms_teams_rule)
