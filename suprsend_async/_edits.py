"""Edit builders: operations on a profile's properties and channels, checked as they are added.

`ProfileEdit` holds what every profile shares (a user today, an object later): ``set``,
``set_once``, ``increment``, ``append``, ``remove``, ``unset``, the language, locale and time
zone, and ``add_``/``remove_`` for each channel. Each call adds one operation, the very one the
official SDK 0.20.0 adds (``{"$set": {...}}``, ``{"$append": {"$email": ...}}``...), so the
requests are the same. Unlike the official SDK, every value is checked when it is added, and a
problem is kept as a `FieldError` naming the call and the key (``add_email``,
``set.$timezone``): an edit with errors refuses to be sent, with all of them in the exception.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from typing import Any, ClassVar, Final

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from . import _rules as rules
from ._errors import FieldError, SuprsendValidationError
from ._models import MsTeams, Slack
from ._serialize import field_errors_from_pydantic

__all__ = [
    "BUNDLE_KEY",
    "CHANNEL_KEYS",
    "IDENTITY_EVENT_MAX_BYTES",
    "PROVIDER_KEY",
    "SPECIAL_SETS",
    "ProfileEdit",
    "UserEdit",
    "channel_errors",
    "identity_event_size",
    "non_idempotent",
]

CHANNEL_KEYS: Final = (
    "$email",
    "$sms",
    "$whatsapp",
    "$androidpush",
    "$iospush",
    "$webpush",
    "$slack",
    "$ms_teams",
)
"""The channel keys an edit adds to and removes from (``append``/``remove`` route them)."""

PROVIDER_KEY: Final = "$id_provider"
BUNDLE_KEY: Final = "$bundle_id"
SPECIAL_SETS: Final = ("$preferred_language", "$locale", "$timezone")
IDENTITY_EVENT_MAX_BYTES: Final = 10 * 1024
"""An identity event (``POST event/``) may be at most 10 KiB of JSON (``constants.py``)."""

_OP_ORDER = ("$set", "$set_once", "$add", "$append", "$remove", "$unset")
_PROVIDERS: Final[dict[str, tuple[str, ...]]] = {
    "$androidpush": ("fcm", "xiaomi", "oppo"),
    "$iospush": ("apns",),
    "$webpush": ("vapid",),
}
_NOT_IDEMPOTENT: Final = frozenset({"$append", "$add", "$increment", "$remove"})


def non_idempotent(operations: Iterable[Any]) -> bool:
    """Whether applying ``operations`` twice differs from once (an append, add or remove)."""
    return any(isinstance(op, Mapping) and _NOT_IDEMPOTENT & set(op) for op in operations)


def identity_event_size(event: Mapping[str, Any]) -> int:
    """The apparent size of an identity event: its UTF-8 JSON length."""
    return len(json.dumps(event, ensure_ascii=False).encode())


def _reserved(key: str) -> bool:
    return key.startswith("$") or key[:3].lower() == "ss_"


def _rule_message(check: Callable[[str], str], value: Any) -> str | None:
    """Why ``value`` breaks ``check`` (a rule of ``_rules``), or ``None``."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    try:
        check(value)
    except PydanticCustomError as exc:
        return exc.message()
    return None


@cache
def _adapter(model: type[Slack] | type[MsTeams]) -> TypeAdapter[Any]:
    return TypeAdapter(model)  # built on first use: most edits never need one


def _model_errors(model: type[Slack] | type[MsTeams], value: Any, path: str) -> list[FieldError]:
    try:
        _adapter(model).validate_python(value)
    except ValidationError as exc:
        return field_errors_from_pydantic(exc, prefix=path)
    return []


def _text_value(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    return None


def _object_value(value: Any) -> str | None:
    if not isinstance(value, Mapping) or not value:
        return "must be a non-empty object"
    return None


def channel_errors(key: str, value: Any, path: str, adding: bool) -> list[FieldError]:
    """The problems of a channel value; removing checks only its type (a value stored before
    a rule existed must stay removable)."""
    if key in ("$slack", "$ms_teams", "$webpush"):
        problem = _object_value(value)
        if problem is None and adding and key != "$webpush":
            return _model_errors(Slack if key == "$slack" else MsTeams, value, path)
    else:
        problem = _text_value(value)
        if problem is None and adding and key == "$email":
            problem = _rule_message(rules.check_email, value)
        elif problem is None and adding and key in ("$sms", "$whatsapp"):
            problem = _rule_message(rules.check_phone, value)
    return [FieldError(path, problem)] if problem else []


class _Operation:
    """The operation one builder call adds: ``{"$set": {...}, "$unset": [...]}``."""

    __slots__ = ("edit", "parts")

    def __init__(self, edit: ProfileEdit) -> None:
        self.edit = edit
        self.parts: dict[str, Any] = {}

    def put(self, op: str, key: str, value: Any) -> None:
        self.parts.setdefault(op, {})[key] = copy.deepcopy(value)

    def unset(self, key: str) -> None:
        self.parts.setdefault("$unset", []).append(key)

    def fail(self, path: str, message: str) -> None:
        self.edit._errors.append(FieldError(path, message))

    def done(self) -> None:
        if self.parts:
            self.edit.operations.append(
                {op: self.parts[op] for op in _OP_ORDER if op in self.parts}
            )


class ProfileEdit:
    """Operations on a profile's properties and channels, built call by call.

    Every method adds one operation to `operations` (what the request sends) and checks
    what it was given: a problem goes to `errors` (a `FieldError` naming the call
    and the key), and an edit with errors is refused when sent, before any I/O. Values are
    copied when added: changing the caller's dict afterwards changes nothing.
    """

    _subject: ClassVar[str] = "edit"

    def __init__(self) -> None:
        self.operations: list[dict[str, Any]] = []
        """The operations, in the order they were added (sent as ``operations``)."""
        self._errors: list[FieldError] = []
        self._warnings: list[str] = []

    @property
    def errors(self) -> list[FieldError]:
        """The problems found so far; the edit is refused while there is any."""
        return list(self._errors)

    @property
    def warnings(self) -> list[str]:
        """Notes that do not stop the edit (none today; kept for the official SDK's name)."""
        return list(self._warnings)

    def validate_body(self) -> list[str]:
        """Every warning and error as text (the official SDK's name); raises nothing."""
        return [*self._warnings, *(str(e) for e in self._errors)]

    def check(self) -> None:
        """Raise `SuprsendValidationError` with every problem, if there is any."""
        if self._errors:
            raise SuprsendValidationError(self._errors, subject=self._subject)

    def get_payload(self) -> dict[str, Any]:
        """The body of the edit request: ``{"operations": [...]}`` (a copy)."""
        return {"operations": copy.deepcopy(self.operations)}

    # -- keys and values --------------------------------------------------------------------

    def _key(self, op: _Operation, caller: str, key: Any) -> str | None:
        if not isinstance(key, str):
            op.fail(caller, f"a key must be a string, not {type(key).__name__}")
            return None
        stripped = key.strip()
        if not stripped:
            op.fail(caller, "a key must not be empty")
            return None
        return stripped

    def _pairs(self, op: _Operation, caller: str, arg1: Any, arg2: Any) -> list[tuple[Any, Any]]:
        if isinstance(arg1, str):
            if arg2 is None:
                op.fail(f"{caller}.{arg1.strip()}", "needs a value (arg2) when arg1 is a key")
                return []
            return [(arg1, arg2)]
        if isinstance(arg1, Mapping):
            return list(arg1.items())
        op.fail(caller, f"takes a key and a value, or a dict; not {type(arg1).__name__}")
        return []

    def _special(self, op: _Operation, path: str, key: str, value: Any) -> None:
        check = {
            "$preferred_language": rules.check_language,
            "$locale": rules.check_locale,
            "$timezone": rules.check_timezone,
        }[key]
        problem = _rule_message(check, value)
        if problem is not None:
            op.fail(path, problem)
        else:
            op.put("$set", key, value)

    def _setting(self, caller: str, opname: str, arg1: Any, arg2: Any) -> None:
        op = _Operation(self)
        for raw, value in self._pairs(op, caller, arg1, arg2):
            key = self._key(op, caller, raw)
            if key is None:
                continue
            path = f"{caller}.{key}"
            if key in SPECIAL_SETS and opname == "$set":
                self._special(op, path, key, value)
            elif _reserved(key):
                op.fail(path, "keys starting with $ or ss_ are reserved by SuprSend")
            elif opname == "$add" and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                op.fail(path, f"must be a number, not {type(value).__name__}")
            else:
                op.put(opname, key, value)
        op.done()

    def _listing(self, caller: str, opname: str, arg1: Any, arg2: Any) -> None:
        op = _Operation(self)
        extras = arg1 if isinstance(arg1, Mapping) else {}
        has_channel = any(k in CHANNEL_KEYS for k in extras)
        for raw, value in self._pairs(op, caller, arg1, arg2):
            key = self._key(op, caller, raw)
            if key is None:
                continue
            path = f"{caller}.{key}"
            if key in CHANNEL_KEYS:
                self._channel(op, path, opname, key, value, extras)
            elif key in (PROVIDER_KEY, BUNDLE_KEY) and has_channel:
                op.put(opname, key, value)  # the channel's own setting, as the official sends it
            elif _reserved(key):
                op.fail(path, "keys starting with $ or ss_ are reserved by SuprSend")
            else:
                op.put(opname, key, value)
        op.done()

    def _channel(
        self,
        op: _Operation,
        path: str,
        opname: str,
        key: str,
        value: Any,
        settings: Mapping[str, Any],
    ) -> None:
        problems = channel_errors(key, value, path, adding=opname == "$append")
        provider, bundle = settings.get(PROVIDER_KEY), settings.get(BUNDLE_KEY)
        if key in _PROVIDERS and provider is not None and provider not in _PROVIDERS[key]:
            allowed = ", ".join(_PROVIDERS[key])
            problems.append(FieldError(f"{path}.provider", f"must be one of {allowed}"))
        if key in ("$androidpush", "$iospush") and bundle is not None:
            problem = _text_value(bundle)
            if problem:
                problems.append(FieldError(f"{path}.bundle_id", problem))
        if problems:
            self._errors.extend(problems)
            return
        op.put(opname, key, value)
        if key in _PROVIDERS:
            op.put(opname, PROVIDER_KEY, provider)
        if key in ("$androidpush", "$iospush") and bundle:
            op.put(opname, BUNDLE_KEY, bundle)

    def _one_channel(self, caller: str, opname: str, key: str, value: Any, **extra: Any) -> None:
        op = _Operation(self)
        settings = {PROVIDER_KEY: extra.get("provider"), BUNDLE_KEY: extra.get("bundle_id")}
        self._channel(op, caller, opname, key, value, settings)
        op.done()

    # -- properties -------------------------------------------------------------------------

    def set(self, arg1: str | Mapping[str, Any], arg2: Any = None) -> None:
        """Set properties: ``set(key, value)`` or ``set({key: value, ...})`` (``$set``).

        ``$preferred_language``, ``$locale`` and ``$timezone`` may be set here too (checked as
        by their own methods); other keys starting with ``$`` or ``ss_`` are SuprSend's.
        """
        self._setting("set", "$set", arg1, arg2)

    def set_once(self, arg1: str | Mapping[str, Any], arg2: Any = None) -> None:
        """Set properties only where they are not set yet (``$set_once``)."""
        self._setting("set_once", "$set_once", arg1, arg2)

    def increment(self, arg1: str | Mapping[str, Any], arg2: Any = None) -> None:
        """Add a number to numeric properties (``$add``); a negative number subtracts."""
        self._setting("increment", "$add", arg1, arg2)

    def append(self, arg1: str | Mapping[str, Any], arg2: Any = None) -> None:
        """Append to list properties (``$append``); channel keys (``$email``...) add a channel.

        In the dict form, ``$id_provider`` and ``$bundle_id`` go with a push channel's token.
        """
        self._listing("append", "$append", arg1, arg2)

    def remove(self, arg1: str | Mapping[str, Any], arg2: Any = None) -> None:
        """Remove a value from list properties (``$remove``); channel keys remove a channel."""
        self._listing("remove", "$remove", arg1, arg2)

    def unset(self, key: str | Iterable[str]) -> None:
        """Delete properties: ``unset(key)`` or ``unset([key, ...])`` (``$unset``).

        Channel keys (``$email``...) and ``$preferred_language``, ``$locale``, ``$timezone``
        may be unset; other keys starting with ``$`` or ``ss_`` are SuprSend's.
        """
        op = _Operation(self)
        if isinstance(key, str):
            keys: list[Any] = [key]
        elif isinstance(key, list | tuple | set | frozenset):
            keys = list(key)
        else:
            op.fail("unset", f"takes a key or a list of keys, not {type(key).__name__}")
            keys = []
        for raw in keys:
            name = self._key(op, "unset", raw)
            if name is None:
                continue
            if _reserved(name) and name not in (*CHANNEL_KEYS, *SPECIAL_SETS):
                op.fail(f"unset.{name}", "keys starting with $ or ss_ are reserved by SuprSend")
            else:
                op.unset(name)
        op.done()

    def set_preferred_language(self, lang_code: str) -> None:
        """The language of notifications: a two-letter ISO 639-1 code such as ``en``."""
        op = _Operation(self)
        self._special(op, "set_preferred_language", "$preferred_language", lang_code)
        op.done()

    def set_locale(self, locale_code: str) -> None:
        """The locale, such as ``en`` or ``en-US``."""
        op = _Operation(self)
        self._special(op, "set_locale", "$locale", locale_code)
        op.done()

    def set_timezone(self, timezone: str) -> None:
        """The time zone: an IANA name such as ``America/New_York``."""
        op = _Operation(self)
        self._special(op, "set_timezone", "$timezone", timezone)
        op.done()

    # -- channels ---------------------------------------------------------------------------

    def add_email(self, value: str) -> None:
        """Add an e-mail address."""
        self._one_channel("add_email", "$append", "$email", value)

    def remove_email(self, value: str) -> None:
        """Remove an e-mail address."""
        self._one_channel("remove_email", "$remove", "$email", value)

    def add_sms(self, value: str) -> None:
        """Add a phone number for SMS, with ``+<country code>``."""
        self._one_channel("add_sms", "$append", "$sms", value)

    def remove_sms(self, value: str) -> None:
        """Remove a phone number for SMS."""
        self._one_channel("remove_sms", "$remove", "$sms", value)

    def add_whatsapp(self, value: str) -> None:
        """Add a WhatsApp number, with ``+<country code>``."""
        self._one_channel("add_whatsapp", "$append", "$whatsapp", value)

    def remove_whatsapp(self, value: str) -> None:
        """Remove a WhatsApp number."""
        self._one_channel("remove_whatsapp", "$remove", "$whatsapp", value)

    def add_androidpush(
        self, value: str, provider: str | None = None, bundle_id: str | None = None
    ) -> None:
        """Add an Android push token (``provider``: ``fcm``, ``xiaomi`` or ``oppo``;
        ``bundle_id``: the app's package name). As the official SDK, a provider left out is
        sent as ``null``."""
        self._one_channel(
            "add_androidpush",
            "$append",
            "$androidpush",
            value,
            provider=provider,
            bundle_id=bundle_id,
        )

    def remove_androidpush(
        self, value: str, provider: str | None = None, bundle_id: str | None = None
    ) -> None:
        """Remove an Android push token."""
        self._one_channel(
            "remove_androidpush",
            "$remove",
            "$androidpush",
            value,
            provider=provider,
            bundle_id=bundle_id,
        )

    def add_iospush(
        self, value: str, provider: str | None = None, bundle_id: str | None = None
    ) -> None:
        """Add an iOS push token (``provider``: ``apns``)."""
        self._one_channel(
            "add_iospush", "$append", "$iospush", value, provider=provider, bundle_id=bundle_id
        )

    def remove_iospush(
        self, value: str, provider: str | None = None, bundle_id: str | None = None
    ) -> None:
        """Remove an iOS push token."""
        self._one_channel(
            "remove_iospush", "$remove", "$iospush", value, provider=provider, bundle_id=bundle_id
        )

    def add_webpush(self, value: Mapping[str, Any], provider: str | None = None) -> None:
        """Add a web push subscription (a non-empty object; ``provider``: ``vapid``)."""
        self._one_channel("add_webpush", "$append", "$webpush", value, provider=provider)

    def remove_webpush(self, value: Mapping[str, Any], provider: str | None = None) -> None:
        """Remove a web push subscription."""
        self._one_channel("remove_webpush", "$remove", "$webpush", value, provider=provider)

    def add_slack(self, value: Mapping[str, Any]) -> None:
        """Add a Slack setting: ``{email, access_token}``, ``{user_id, access_token}``,
        ``{channel_id, access_token}`` or ``{incoming_webhook: {url}}``."""
        self._one_channel("add_slack", "$append", "$slack", value)

    def remove_slack(self, value: Mapping[str, Any]) -> None:
        """Remove a Slack setting."""
        self._one_channel("remove_slack", "$remove", "$slack", value)

    def add_ms_teams(self, value: Mapping[str, Any]) -> None:
        """Add an MS Teams setting: ``{tenant_id, service_url, conversation_id}``,
        ``{tenant_id, service_url, user_id}`` or ``{incoming_webhook: {url}}``."""
        self._one_channel("add_ms_teams", "$append", "$ms_teams", value)

    def remove_ms_teams(self, value: Mapping[str, Any]) -> None:
        """Remove an MS Teams setting."""
        self._one_channel("remove_ms_teams", "$remove", "$ms_teams", value)


class UserEdit(ProfileEdit):
    """The edit of one user, from ``client.users.get_edit_instance(distinct_id, tenant_id)``.

    Send it with ``await client.users.edit(edit)`` (``PATCH v1/user/{id}/``, or the tenant's
    profile ``v1/user/{id}/tenant/{tenant}/`` when ``tenant_id`` is given), or queue it as an
    identity event with ``await client.users.async_edit(edit)``.
    """

    _subject = "user edit"

    def __init__(self, distinct_id: str, tenant_id: str | None = None) -> None:
        super().__init__()
        self.distinct_id = distinct_id
        self.tenant_id = tenant_id

    def identity_event(self, env: str, sdk_version: str) -> dict[str, Any]:
        """The edit as an identity event (``POST event/``); stamped anew on every call."""
        event: dict[str, Any] = {
            "$schema": "2",
            "$insert_id": str(uuid.uuid4()),
            "$time": int(time.time() * 1000),
            "env": env,
            "distinct_id": self.distinct_id,
            # Each operation is a dict of its own, never changed once added (every builder call
            # adds a new one, its values copied when put): a new list is copy enough.
            "$user_operations": list(self.operations),
            "properties": {"$ss_sdk_version": sdk_version},
        }
        if self.tenant_id:
            event["tenant_id"] = self.tenant_id
        return event

    def __repr__(self) -> str:
        return (
            f"UserEdit(distinct_id={self.distinct_id!r}, tenant_id={self.tenant_id!r},"
            f" operations={len(self.operations)}, errors={len(self._errors)})"
        )
