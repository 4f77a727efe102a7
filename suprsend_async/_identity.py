"""Identity events (``POST event/``): a `UserEdit` as a bulk record, and the legacy
builder `Subscriber` (``client.user.get_instance(distinct_id)``).

An identity event carries an edit's operations to the service, which applies them later:
``$schema: "2"``, ``$insert_id``, ``$time``, ``env``, ``distinct_id``, ``$user_operations``
and ``properties.$ss_sdk_version`` (``tenant_id`` when the edit has one), as the official SDK
0.20.0 sends it. Its apparent size is its UTF-8 JSON length, at most 10 KiB; a request holds
at most 400 of them (``_bulk._plan``). The ``$insert_id`` is drawn once, when the record is
prepared, so every retry and resend carries the same one: the emulator, like the service's
event intake, skips an ``$insert_id`` it has already applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from ._edits import IDENTITY_EVENT_MAX_BYTES, UserEdit
from ._errors import SuprsendValidationError
from ._requests import SDK_VERSION, PreparedRecord, _BaseRequest
from ._serialize import encode

__all__ = [
    "IdentityEvent",
    "Subscriber",
    "edit_view",
    "identity_request",
    "insert_id_for",
    "legacy_distinct_id",
]

_KEYS = uuid.UUID("4f1c1f36-5b3e-4f7e-9d1e-6a0c2b9e7d15")  # the namespace of derived ids


def insert_id_for(key: str) -> str:
    """The ``$insert_id`` derived from a business key: a UUID, the same for the same key, so
    a rerun of a crashed import sends each user's event under the id it had."""
    return str(uuid.uuid5(_KEYS, key))


def edit_view(edit: UserEdit) -> dict[str, Any]:
    """An edit refused before sending, as the official SDK reports it (``as_json_async``)."""
    view: dict[str, Any] = {
        "distinct_id": edit.distinct_id,
        "$user_operations": list(edit.operations),
        "warnings": edit.validate_body(),
    }
    if edit.tenant_id:
        view["tenant_id"] = edit.tenant_id
    return view


class IdentityEvent(_BaseRequest):
    """A `UserEdit` on its way as a bulk record (the bulk engine's view of it).

    ``body`` is what ``idempotency_key_from`` paths look into: ``distinct_id``,
    ``tenant_id`` and ``$user_operations``. ``idempotency_key``, when given, is the key the
    event's ``$insert_id`` is derived from (it wins over ``idempotency_key_from``).
    """

    _kind = "identity"
    _subject = "user edit"

    __slots__ = ("edit",)

    def __init__(self, edit: UserEdit, idempotency_key: str | None = None) -> None:
        view = {
            "distinct_id": edit.distinct_id,
            "tenant_id": edit.tenant_id,
            "$user_operations": edit.operations,
        }
        super().__init__(view, idempotency_key=idempotency_key, tenant_id=edit.tenant_id)
        self.edit = edit

    def prepare(
        self,
        *,
        auto_idempotency_key: bool = True,
        fallback_key: str | None = None,
        env: str | None = None,
    ) -> PreparedRecord:
        """The event as it will be sent, snapshotted now; refused (with every problem) when
        the edit has errors, has no operation, or is over 10 KiB."""
        edit = self.edit
        edit.check()
        if not edit.operations:
            raise SuprsendValidationError.single(
                "$user_operations", "the edit has no operation", subject=self._subject
            )
        event = edit.identity_event(env or "", SDK_VERSION)
        key = self.idempotency_key if self.idempotency_key is not None else fallback_key
        if key is not None:
            event["$insert_id"] = insert_id_for(key)
        content = encode(event)
        if len(content) > IDENTITY_EVENT_MAX_BYTES:
            raise SuprsendValidationError.single(
                "",
                f"the identity event is {len(content):,} bytes, over 10 KiB",
                subject=self._subject,
            )
        return PreparedRecord("identity", content, len(content), event["$insert_id"])


def identity_request(raw: Any) -> IdentityEvent:
    """``raw`` (a `UserEdit`, a `Subscriber`) as a bulk record."""
    if isinstance(raw, IdentityEvent):
        return raw
    if isinstance(raw, UserEdit):
        return IdentityEvent(raw)
    raise SuprsendValidationError.single(
        "",
        "a bulk of user edits takes UserEdit objects (client.users.get_edit_instance, or"
        f" client.user.get_instance), not {type(raw).__name__}",
        subject="user edit",
    )


class Subscriber(UserEdit):
    """The legacy builder of a user's identity event: ``client.user.get_instance(id)``.

    Kept for code written against older guides: the same methods as `UserEdit`
    (``add_email``, ``set``, ``set_preferred_language``...), then ``save()``, which sends the
    edit as an identity event (``POST event/``, as ``client.users.async_edit`` does). On
    `AsyncSuprsend` ``save()`` is awaited; on `Suprsend` it returns at once. It
    returns ``{"success", "status", "status_code", "message"}`` as the official SDK does, a
    refusal by the service included (``success`` false, its status and text); an edit with
    errors raises `SuprsendValidationError` before anything is sent.
    """

    _subject = "user"

    def __init__(self, distinct_id: str, save: Callable[[UserEdit], Any]) -> None:
        super().__init__(distinct_id)
        self._save = save

    def save(self) -> Any:
        """Send the edit as an identity event; see the class."""
        return self._save(self)

    def _bind(self, save: Callable[[UserEdit], Any]) -> Subscriber:
        """This builder, saving through ``save`` (the sync facade binds its own)."""
        self._save = save
        return self

    def __repr__(self) -> str:
        return (
            f"Subscriber(distinct_id={self.distinct_id!r}, operations={len(self.operations)},"
            f" errors={len(self._errors)})"
        )


def legacy_distinct_id(distinct_id: Any) -> str:
    """A ``get_instance`` argument checked as the official SDK checks it (stripped, non-empty)."""
    if not isinstance(distinct_id, str) or not distinct_id.strip():
        raise SuprsendValidationError.single(
            "distinct_id",
            "must be a non-empty string: the id that identifies the user in your app",
            subject="arguments",
        )
    return distinct_id.strip()
