"""``client.objects``: teams, accounts, projects... their subscribers and preferences.

Requests as the official SDK 0.20.0 sends them (``objects_api.py``, ``object_edit.py``) and
SuprSend's API reference documents them; ``docs/protocol.md`` ("Objects") lists each request
and answer and where it came from. Subscriptions of more than 100 recipients are split and
sent concurrently (``_subscriptions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .._core import PerCall
from .._edits import non_idempotent
from .._errors import SuprsendValidationError
from .._object_edit import ObjectEdit
from .._pages import AsyncPageRequest, CursorPaging
from .._responses import APIResult
from .._types import NOT_GIVEN, NotGiven
from ._base import APIResource, deleted, path_of, required_id
from ._subscriptions import MAX_RECIPIENTS, check_subscriptions, send_chunked

__all__ = ["AsyncObjects"]


def _path(object_type: Any, object_id: Any, *more: str) -> str:
    return path_of(
        "v1",
        "object",
        required_id("object_type", object_type),
        required_id("object_id", object_id),
        *more,
    )


def _bulk_delete_body(payload: Any) -> dict[str, Any]:
    ids = payload.get("object_ids") if isinstance(payload, Mapping) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        raise SuprsendValidationError.single(
            "payload.object_ids",
            "must be a non-empty list of object id strings",
            subject="arguments",
        )
    return dict(payload)


class AsyncObjects(APIResource):
    """``client.objects``: list, read, create or update, edit and delete objects; their
    subscribers (users and other objects) and their notification preferences.

    An object is named by its ``object_type`` (a plural such as ``teams``) and its id. Every
    call raises `NotFoundError` for an unknown object and another
    `APIStatusError` for other refusals; bad arguments raise
    `SuprsendValidationError` before anything is sent.
    """

    _namespace = "objects"

    async def _read(
        self,
        call: str,
        path: str,
        options: Mapping[str, Any] | None,
        deadline: float | NotGiven | None,
        per_call: PerCall | None,
    ) -> APIResult:
        return await self._call(
            call, "GET", path, params=options, deadline=deadline, per_call=per_call
        )

    async def _write(
        self,
        call: str,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None,
        idempotent: bool,
        deadline: float | NotGiven | None,
        per_call: PerCall | None,
    ) -> APIResult:
        return await self._call(
            call, method, path, params=options, body=dict(payload or {}),
            idempotent=idempotent, deadline=deadline, per_call=per_call,
        )  # fmt: skip

    def _cursor_pages(
        self, call: str, path: str, options: Mapping[str, Any] | None, per_call: PerCall | None
    ) -> AsyncPageRequest:
        async def fetch(params: dict[str, Any]) -> APIResult:
            return await self._call(call, "GET", path, params=params, per_call=per_call)

        return AsyncPageRequest(fetch, CursorPaging(dict(options or {})))

    # -- objects ----------------------------------------------------------------------------

    def list(
        self,
        object_type: str,
        options: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> AsyncPageRequest:
        """Objects of one type, a page at a time by cursor (``GET v1/object/{object_type}/``;
        ``options``: ``limit``, ``after``, ``before``).

        ``await`` it for one page (``page["results"]``, ``page["meta"]``); ``async for``
        over it walks every object, following ``meta.after`` while ``meta.has_next``.
        """
        path = path_of("v1", "object", required_id("object_type", object_type))
        return self._cursor_pages("list", path, options, PerCall.of(extra_headers, timeout))

    async def get(
        self,
        object_type: str,
        object_id: str,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """One object (``GET v1/object/{object_type}/{object_id}/``): its properties,
        channels and ``subscriptions_count``."""
        path = _path(object_type, object_id)
        return await self._read("get", path, None, deadline, PerCall.of(extra_headers, timeout))

    async def upsert(
        self,
        object_type: str,
        object_id: str,
        payload: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Create or update an object (``POST v1/object/{object_type}/{object_id}/``); the
        object as saved.

        ``payload``: properties and channels (``$email``, ``$slack``, ``$inbox``...),
        ``$preferred_language``, ``$timezone``. Retried like a trigger (twice is as once).
        """
        return await self._write(
            "upsert", "POST", _path(object_type, object_id), payload, None, True,
            deadline, PerCall.of(extra_headers, timeout),
        )  # fmt: skip

    async def edit(
        self,
        edit_ins_or_object_type: ObjectEdit | str,
        object_id: str | None = None,
        edit_payload: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Apply operations to an object (``PATCH v1/object/{object_type}/{object_id}/``);
        the object after them.

        Takes an `ObjectEdit` (refused, with its errors, if it has any), or an
        ``object_type`` with ``object_id`` and ``edit_payload`` (``{"operations": [...]}``).
        An edit that appends, adds or removes is not retried once it may have reached the
        service (doing it twice differs from once).
        """
        if isinstance(edit_ins_or_object_type, ObjectEdit):
            edit = edit_ins_or_object_type
            edit.check()
            path, body = _path(edit.object_type, edit.object_id), edit.get_payload()
        else:
            path = _path(edit_ins_or_object_type, object_id)
            body = dict(edit_payload or {})
        operations = body.get("operations")
        idempotent = not non_idempotent(operations if isinstance(operations, list) else [])
        return await self._write(
            "edit", "PATCH", path, body, None, idempotent, deadline,
            PerCall.of(extra_headers, timeout),
        )  # fmt: skip

    async def delete(
        self,
        object_type: str,
        object_id: str,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Delete an object (``DELETE v1/object/{object_type}/{object_id}/``): ``{"success":
        True, "status_code": ...}``, as the official SDK returns."""
        answer = await self._call(
            "delete",
            "DELETE",
            _path(object_type, object_id),
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
        return deleted(answer)

    async def bulk_delete(
        self,
        object_type: str,
        payload: Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Delete several objects of one type (``DELETE v1/bulk/object/{object_type}/``, body
        ``{"object_ids": [...]}``): ``{"success": True, "status_code": ...}``."""
        path = path_of("v1", "bulk", "object", required_id("object_type", object_type))
        answer = await self._call(
            "bulk_delete",
            "DELETE",
            path,
            body=_bulk_delete_body(payload),
            deadline=deadline,
            per_call=PerCall.of(extra_headers, timeout),
        )
        return deleted(answer)

    def get_edit_instance(self, object_type: str, object_id: str) -> ObjectEdit:
        """A new `ObjectEdit` of this object."""
        return ObjectEdit(
            required_id("object_type", object_type), required_id("object_id", object_id)
        )

    # -- subscriptions ----------------------------------------------------------------------

    def get_subscriptions(
        self,
        object_type: str,
        object_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> AsyncPageRequest:
        """The object's subscribers, users and objects, a page at a time by cursor (``GET
        .../subscription/``; ``options``: ``limit``, ``after``, ``before``).

        ``await`` it for one page (each result holds ``user`` or ``object``, and the
        subscription's ``properties``); ``async for`` walks every subscription.
        """
        path = _path(object_type, object_id, "subscription")
        per_call = PerCall.of(extra_headers, timeout)
        return self._cursor_pages("get_subscriptions", path, options, per_call)

    async def create_subscriptions(
        self,
        object_type: str,
        object_id: str,
        payload: Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Subscribe users and objects to the object (``POST .../subscription/``).

        ``payload``: ``{"recipients": [...], "properties": {...}}``; a recipient is a
        distinct_id, a user (``{"distinct_id": ..., "$email": ...}``, created if new) or an
        object (``{"object_type": ..., "id": ...}``); ``properties`` describe the relation
        (``$recipient.subscription.<key>`` in templates). Subscribing is an upsert, so it is
        retried like a trigger. Up to 100 recipients: one call, the service's answer. More:
        sent 100 a call, concurrently, and answered with every recipient accounted for
        (``total``, ``succeeded``, ``failed``, ``failed_recipients``, ``results``).
        """
        recipients, rest = check_subscriptions(payload, properties=True)
        path = _path(object_type, object_id, "subscription")
        per_call = PerCall.of(extra_headers, timeout)

        async def send(body: dict[str, Any]) -> APIResult:
            return await self._write(
                "create_subscriptions", "POST", path, body, None, True, deadline, per_call
            )

        if len(recipients) <= MAX_RECIPIENTS:
            return await send(dict(payload))
        return await send_chunked(send, recipients, rest, deleting=False)

    async def delete_subscriptions(
        self,
        object_type: str,
        object_id: str,
        payload: Mapping[str, Any],
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Unsubscribe users and objects (``DELETE .../subscription/``, body ``{"recipients":
        [...]}``): ``{"success": True, "status_code": ...}``. More than 100 recipients are
        sent 100 a call, concurrently, with every recipient accounted for."""
        recipients, rest = check_subscriptions(payload, properties=False)
        path = _path(object_type, object_id, "subscription")
        per_call = PerCall.of(extra_headers, timeout)

        async def send(body: dict[str, Any]) -> APIResult:
            answer = await self._call(
                "delete_subscriptions", "DELETE", path, body=body,
                deadline=deadline, per_call=per_call,
            )  # fmt: skip
            return deleted(answer)

        if len(recipients) <= MAX_RECIPIENTS:
            return await send(dict(payload))
        return await send_chunked(send, recipients, rest, deleting=True)

    def get_objects_subscribed_to(
        self,
        object_type: str,
        object_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> AsyncPageRequest:
        """The objects this object is subscribed to, by cursor (``GET
        .../subscribed_to/object/``); ``await`` for a page, ``async for`` for all."""
        path = _path(object_type, object_id, "subscribed_to", "object")
        per_call = PerCall.of(extra_headers, timeout)
        return self._cursor_pages("get_objects_subscribed_to", path, options, per_call)

    # -- preferences ------------------------------------------------------------------------

    async def get_full_preference(
        self,
        object_type: str,
        object_id: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """All the object's preferences (``GET .../preference/``; ``options``: ``tenant_id``,
        ``show_opt_out_channels``, ``tags``, ``locale``)."""
        path = _path(object_type, object_id, "preference")
        per_call = PerCall.of(extra_headers, timeout)
        return await self._read("get_full_preference", path, options, deadline, per_call)

    async def update_global_channels_preference(
        self,
        object_type: str,
        object_id: str,
        payload: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Restrict or allow channels for every category (``PATCH
        .../preference/channel_preference/``; ``payload``: ``{"channel_preferences":
        [{"channel": "email", "is_restricted": true}, ...]}``). Retried like a trigger."""
        path = _path(object_type, object_id, "preference", "channel_preference")
        return await self._write(
            "update_global_channels_preference", "PATCH", path, payload, options, True,
            deadline, PerCall.of(extra_headers, timeout),
        )  # fmt: skip

    async def get_category_preference(
        self,
        object_type: str,
        object_id: str,
        category: str,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """The object's preference for one category (``GET
        .../preference/category/{category}/``)."""
        category = required_id("category", category)
        path = _path(object_type, object_id, "preference", "category", category)
        per_call = PerCall.of(extra_headers, timeout)
        return await self._read("get_category_preference", path, options, deadline, per_call)

    async def update_category_preference(
        self,
        object_type: str,
        object_id: str,
        category: str,
        payload: Mapping[str, Any] | None,
        options: Mapping[str, Any] | None = None,
        *,
        deadline: float | NotGiven | None = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        timeout: float | httpx.Timeout | NotGiven | None = NOT_GIVEN,
    ) -> APIResult:
        """Opt the object in or out of a category, or of some of its channels (``PATCH
        .../preference/category/{category}/``; ``payload``: ``preference``,
        ``opt_out_channels``...). Retried like a trigger."""
        category = required_id("category", category)
        path = _path(object_type, object_id, "preference", "category", category)
        return await self._write(
            "update_category_preference", "PATCH", path, payload, options, True,
            deadline, PerCall.of(extra_headers, timeout),
        )  # fmt: skip
